"""The CLI: user mistakes exit 2 with one line; real builds and status on the shipped corpus."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from assistant.cli import main
from tests.conftest import REAL_CORPUS, REAL_MODEL


def run(*args, **env):
    result = CliRunner().invoke(main, list(args), env=env or None)
    return result


@pytest.mark.parametrize(
    "args, message",
    [
        (["index", "status", "--index", "/nonexistent/idx"], "No index at /nonexistent/idx"),
        (["index", "build", "--corpus", "/nonexistent/corpus", "--index", "/tmp/x"], "does not exist"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_empty_corpus_is_a_user_mistake(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "empty.txt").write_text("")
    result = run("index", "build", "--corpus", str(tmp_path / "c"), "--index", str(tmp_path / "i"))
    assert result.exit_code == 2 and "No articles found" in result.output and "1 unusable" in result.output


def test_options_are_read_from_the_environment(tmp_path):
    result = run("index", "status", ASSISTANT_INDEX=str(tmp_path / "from-env"))
    assert result.exit_code == 2 and str(tmp_path / "from-env") in result.output


@pytest.mark.integration
def test_status_json_on_the_shipped_corpus(real_index):
    result = run("index", "status", "--index", str(real_index.index_dir), "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["articles"] >= 10
    assert set(status["languages"]) == {"sv", "da"}
    assert status["dimension"] == 384
    assert status["model"] == "multilingual-e5-small" and status["model_path"] == str(REAL_MODEL)
    assert status["chunks"] > status["articles"] and status["built_at"]


def _cli(*args):
    return [sys.executable, "-m", "assistant.cli", *args]


@pytest.mark.integration
def test_cli_build_reports_what_changed(tmp_path):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(REAL_CORPUS, corpus)
    env = {**os.environ, "ASSISTANT_CORPUS": str(corpus), "ASSISTANT_INDEX": str(index)}
    first = subprocess.run(_cli("index", "build"), env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "Added     10 articles" in first.stdout
    built_at = json.loads((index / "manifest.json").read_text())["built_at"]

    edited = corpus / "003_6c20b7587ebfaa38.txt"
    edited.write_text(edited.read_text().replace("seks socialrådgivere", "syv socialrådgivere"))
    second = subprocess.run(_cli("index", "build"), env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "Changed    1 articles: Giv plads til skæve ideer blandt medarbejderne!" in second.stdout
    assert "Reused     9 articles" in second.stdout
    assert json.loads((index / "manifest.json").read_text())["built_at"] >= built_at
    embedded = int(second.stdout.split("Embedding ")[1].split(" of ")[0])
    total = json.loads((index / "manifest.json").read_text())["counts"]["chunks"]
    assert 1 <= embedded <= total // 5
