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
        # Click's own usage errors: one line too, not a usage block and a hint above it.
        (["ask", "--k", "abc", "x"], "Invalid value for '--k'"),
        (["ask"], "Missing argument 'QUESTION'. (see `main ask --help`)"),
        (["bogus"], "No such command 'bogus'"),
        (["index", "worker", "--wait", "-5"], "Invalid value for '--wait'"),
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


@pytest.mark.parametrize(
    "env, command",
    [
        ({"ASSISTANT_CHUNK_TOKENS": "abc"}, ["index", "build"]),
        ({"ASSISTANT_FUSION": "typo"}, ["ask", "Umeå?"]),
        ({"ASSISTANT_DENSE_WEIGHT": "7"}, ["ask", "Umeå?"]),
        ({"ASSISTANT_MODE": "fast"}, ["index", "status"]),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(env, command):
    result = run(*command, **env)
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    name, value = next(iter(env.items()))
    assert line.startswith(f"Error: {name}={value!r} is not allowed: use ") and "Traceback" not in result.output


def test_serve_refuses_to_start_with_a_bad_setting(tmp_path):
    env = {**os.environ, "ASSISTANT_AUTH": "admin", "ASSISTANT_INDEX": str(tmp_path / "index")}
    result = subprocess.run(_cli("serve", "--port", "1"), env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "Error: ASSISTANT_AUTH must be user:password (both non-empty), or empty for no login; got a value without "
        "that form."
    ]


def test_serve_on_a_port_in_use_or_out_of_range_is_one_line(tmp_path):
    import socket

    env = {**os.environ, "ASSISTANT_INDEX": str(tmp_path / "index")}  # no index: the check comes before a build
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            _cli("serve", "--port", str(port)), env=env, capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 2 and result.stdout == "" and not (tmp_path / "index").exists()
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: Cannot serve on 127.0.0.1:{port} (") and "choose another --port" in line
    result = run("serve", "--port", "99999")
    assert result.exit_code == 2 and "99999 is not in the range 1<=x<=65535" in result.output
    from assistant.cli import _check_bindable

    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        return  # this machine has no IPv6 loopback
    _check_bindable("::1", 0)  # an IPv6 address is a host like any other (raises if refused)


def test_build_and_ask_print_no_terminal_escape_codes_from_the_corpus(tiny_settings, fake_embedder, monkeypatch):
    (tiny_settings.corpus_dir / "evil.txt").write_text(
        "Elak \x1b]0;pwned\x07titel\n\nUmeå kommun \x1b[31mröd text\x1b[0m och \x1b[2J rensad skärm \x9b1m här.\n"
    )
    (tiny_settings.corpus_dir / "tom \x1b[2Jfil.txt").write_text("")  # skipped, and its name is printed
    monkeypatch.setattr("index.embed.Embedder", lambda model: fake_embedder)
    build = CliRunner().invoke(
        main,
        ["index", "build", "-v", "--corpus", str(tiny_settings.corpus_dir), "--index", str(tiny_settings.index_dir)],
        color=True,
    )
    assert build.exit_code == 0, build.output
    # The loader already shows the skipped file's name with a replacement character for the escape.
    assert "Elak titel" in build.output and "fil.txt: it is empty" in build.output and "\x1b" not in build.output
    for extra in ([], ["--json"]):
        result = CliRunner().invoke(
            main,
            ["ask", "Umeå röd text skärm", "--k", "3", "--index", str(tiny_settings.index_dir), *extra],
            env={"ASSISTANT_CORPUS": str(tiny_settings.corpus_dir), "ASSISTANT_NO_ANSWER": "0"},
            color=True,  # as on a terminal: click keeps escape codes
        )
        assert result.exit_code == 0, result.output
        for code in ("\x1b]", "\x07", "\x1b[31m", "\x1b[2J", "\x9b"):
            assert code not in result.output, (code, extra)
        if extra:  # JSON keeps the text exactly, escaped
            assert "\x1b[31m" in json.loads(result.output)["passages"][0]["text"]
        else:
            assert "Elak titel" in result.output and "röd text" in result.output
            assert "\x1b[32m" in result.output  # our own highlight colour stays
    queries = tiny_settings.corpus_dir.parent / "q.jsonl"
    queries.write_text(json.dumps({"id": "m", "query": "Umeå röd text skärm", "answer_contains": ["Eva Lind"]}))
    for extra in ([], ["--json"]):  # a miss lists the passage that came first, with its title
        args = ["eval", str(queries), "--mode", "bm25", "--k", "1", "--index", str(tiny_settings.index_dir), *extra]
        result = CliRunner().invoke(main, args, color=True)
        assert result.exit_code == 0 and "Elak" in result.output, result.output
        for code in ("\x1b]", "\x07", "\x1b[31m", "\x1b[2J", "\x9b"):
            assert code not in result.output, (code, extra)


def test_options_are_read_from_the_environment(tmp_path):
    result = run("index", "status", ASSISTANT_INDEX=str(tmp_path / "from-env"))
    assert result.exit_code == 2 and str(tmp_path / "from-env") in result.output


@pytest.mark.integration
def test_a_model_setting_that_names_no_model_is_said_so_not_another_model(real_index, tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty").mkdir()
    cases = {
        "/nonexistent/model": "does not exist",
        "afile": "is a file",
        "empty": "not a converted model (FileNotFoundError: no config.json)",
    }
    for model, message in cases.items():
        path = model if model.startswith("/") else str(tmp_path / model)
        result = run("ask", "Umeå?", "--index", str(real_index.index_dir), ASSISTANT_MODEL=path)
        assert result.exit_code == 2 and message in result.output and "another model" not in result.output, model
        assert len(result.output.strip().splitlines()) == 1


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
    embedded, total = map(int, second.stdout.split("Embedding ")[1].split(" sentence windows")[0].split(" of "))
    assert 1 <= embedded <= total // 5
