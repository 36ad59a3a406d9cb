"""`make test` does its own set-up on a bare machine; `.ci/run` only calls it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]
INSTALL = "apt-get install -y chromium fonts-dejavu-core"


def make(*args, path: str | None = None):
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    return subprocess.run(
        [shutil.which("make"), "-s", "-C", str(ROOT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_without_chromium_and_not_root_make_says_the_command_to_run():
    result = make("browser", "CHROMIUM=/nonexistent/chromium", "USER_ID=1000")
    assert result.returncode != 0
    assert f"sudo apt-get update && sudo {INSTALL}" in result.stderr


def test_without_chromium_as_root_make_installs_it(tmp_path):
    log = tmp_path / "apt.log"
    fake = tmp_path / "bin" / "apt-get"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    result = make("browser", "CHROMIUM=/nonexistent/chromium", "USER_ID=0", path=f"{fake.parent}:{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        "update -q",
        "install -y -q --no-install-recommends chromium fonts-dejavu-core",
    ]


def test_with_chromium_present_nothing_is_installed():
    result = make("browser", "CHROMIUM=/bin/sh", "USER_ID=0", path="/nonexistent")  # no apt-get reachable
    assert result.returncode == 0 and result.stdout == result.stderr == ""


def test_make_test_sets_up_the_browser_before_pytest_and_ci_only_calls_it():
    steps = make("-n", "test", "CHROMIUM=/nonexistent/chromium").stdout
    assert "ruff format --check" in steps and steps.index("apt-get install") < steps.index("pytest -q")
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and line[0] != "#"]
    assert commands[-1] == "make test" and not [c for c in commands if "apt-get" in c or "eval" in c]
