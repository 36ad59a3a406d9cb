"""Reliability: killed rebuilds, damaged indexes, hostile corpora and questions, and load."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from assistant.answer import Assistant
from assistant.cli import main
from index.build import build_index
from index.store import load_index
from tests.conftest import REAL_CORPUS

# --- damaged or mismatched indexes: one line, exit 2, and the same message in the UI -------------


def _damage_faiss(index_dir: Path):
    path = index_dir / "faiss.index"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _damage_chunks(index_dir: Path):
    (index_dir / "chunks.jsonl").write_text('{"id": "broken"\nnot json at all\n')


def _other_model(index_dir: Path):
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["model"]["fingerprint"] = "0000000000000000"
    (index_dir / "manifest.json").write_text(json.dumps(manifest))


def _other_format(index_dir: Path):
    manifest = json.loads((index_dir / "manifest.json").read_text())
    (index_dir / "manifest.json").write_text(json.dumps({**manifest, "format_version": 0}))


def _damage_vectors(index_dir: Path):
    (index_dir / "vectors.npy").write_bytes(b"\x93NUMPY garbage")


@pytest.mark.parametrize("damage", [_damage_faiss, _damage_chunks, _other_model, _other_format, _damage_vectors])
def test_damaged_index_gives_one_line_and_exit_2(tiny_settings, fake_embedder, damage, monkeypatch):
    from ui.app import Handlers

    build_index(tiny_settings, fake_embedder, say=lambda _: None, progress=False)
    damage(tiny_settings.index_dir)
    # The CLI with the fake model, so the check is about the index, not about loading a model.
    monkeypatch.setattr("index.embed.Embedder", lambda model: fake_embedder)
    result = CliRunner().invoke(
        main,
        ["ask", "Umeå?", "--index", str(tiny_settings.index_dir)],
        env={"ASSISTANT_CORPUS": str(tiny_settings.corpus_dir)},
    )
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line and "rebuild" in line
    assert line.removeprefix("Error: ") in Handlers(tiny_settings, embedder=fake_embedder).status()


# --- hostile corpora and questions ---------------------------------------------------------------


def test_hostile_corpus_builds_everything_else(tiny_settings, fake_embedder, tmp_path):
    corpus = tiny_settings.corpus_dir
    (corpus / "zero.txt").write_bytes(b"")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 100)
    (corpus / "latin1.md").write_bytes("Räksmörgås på latin-1".encode("latin-1"))
    outside = tmp_path / "outside.txt"
    outside.write_text("Utanför korpusen\n\nDetta får aldrig indexeras.\n")
    (corpus / "escape.txt").symlink_to(outside)
    sentence = "Detta är en lång mening om socialtjänsten i Sverige och dess medarbetare. "
    (corpus / "huge.txt").write_text("Stor fil\n\n" + (sentence * 12 + "\n\n") * 22_000)  # ~20 MB
    assert (corpus / "huge.txt").stat().st_size > 19_000_000
    messages = []
    report = build_index(tiny_settings, fake_embedder, say=messages.append, progress=False)
    skipped = {s.path for s in report.skipped}
    assert skipped == {"zero.txt", "binary.txt", "latin1.md", "escape.txt"}
    assert sum("Skipped" in m for m in messages) == 4
    index = load_index(tiny_settings.index_dir)
    titles = {a.title for a in index.articles.values()}
    assert {"Stor fil", "Nya rutiner i Umeå", "Velfærd i Holstebro"} <= titles and "Utanför korpusen" not in titles


def test_hostile_questions(tiny_assistant):
    for question in [
        "",
        "   \n\t ",
        "x" * 100_000,
        "\x00\x01\x02 Umeå \x7f",
        "مرحبا بالعالم שלום עולם",
        "😀🎉 Umeå 🚀",
        "<script>alert(1)</script>",
        "' OR 1=1; DROP TABLE chunks; --",
    ]:
        try:
            answer = tiny_assistant.ask(question)
        except Exception as exc:  # only the library's own, clear error is allowed
            assert type(exc).__name__ == "QuestionError" and not question.strip(" \n\t\x00\x01\x02\x7f")
            continue
        assert len(answer.question) <= 1000
        json.dumps(answer.to_dict())


# --- kill -9 at any moment of a rebuild (real model, subprocess) ----------------------------------


@pytest.mark.integration
def test_kill_9_at_any_moment_of_a_rebuild_leaves_a_serving_index(tmp_path, real_embedder):
    from dataclasses import replace

    from assistant.settings import Settings
    from index.build import builds_dir

    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(REAL_CORPUS, corpus)
    env = {**os.environ, "ASSISTANT_CORPUS": str(corpus), "ASSISTANT_INDEX": str(index)}
    command = [sys.executable, "-m", "assistant.cli", "index", "build"]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    edited = corpus / "002_34d656ff215fe69f.txt"
    original = edited.read_text()
    # Time one incremental rebuild here, then kill others at moments spread over all its steps
    # (start-up, loading, chunking, embedding, writing, swapping).
    edited.write_text(original.replace("Holstebro", "HolstebroTimed", 1))
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    duration = time.perf_counter() - started
    moments = [duration * share for share in (0.05, 0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)]
    settings = replace(Settings(), corpus_dir=corpus, index_dir=index)
    survived = 0
    for trial, moment in enumerate(moments):
        edited.write_text(original.replace("Holstebro", f"Holstebro{trial}", 1))
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(moment)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assistant = Assistant.open(settings=settings, embedder=real_embedder)
        assert len(assistant.index.articles) == 10, f"killed at {moment:.1f} s"
        assert assistant.ask("Hvem er direktør i Holstebro?").hits, f"killed at {moment:.1f} s"
        survived += 1
    spread = f"{moments[0]:.1f}-{moments[-1]:.1f} s into a {duration:.1f} s rebuild"
    print(f"\nkills survived: {survived} of {len(moments)} (killed {spread})")
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    assert any("Holstebro9" in c.text for c in load_index(index).chunks)
    unfinished = [p for p in builds_dir(index).iterdir() if p.is_dir() and not (p / "manifest.json").is_file()]
    assert unfinished == []  # what the killed builds left was cleared by the next one


# --- load: 50 concurrent clients x 20 questions while a rebuild runs ------------------------------

P50_LIMIT_S, P95_LIMIT_S = 20.0, 75.0  # about 3.5x and 3x the measured figures


@pytest.mark.integration
def test_fifty_clients_while_rebuilding(server, real_index, tmp_path):
    from gradio_client import Client

    url, _ = server
    questions = [q for q in (Path(__file__).parents[1] / "eval" / "queries.jsonl").read_text().splitlines()]
    questions = [json.loads(q)["query"] for q in questions][:20]
    # A full rebuild of a copy competes for the same two cores; the server keeps answering from memory.
    corpus = tmp_path / "corpus"
    shutil.copytree(real_index.corpus_dir, corpus)
    (corpus / "extra.txt").write_text("Extra artikel om Malmö\n\nMalmö stad anställer tio nya socionomer.\n")
    env = {**os.environ, "ASSISTANT_CORPUS": str(corpus), "ASSISTANT_INDEX": str(tmp_path / "index")}
    rebuild = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "index", "build"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    latencies, errors, lock = [], [], threading.Lock()

    def client_run():
        try:
            client = Client(url, verbose=False)
        except Exception as exc:  # noqa: BLE001 - counted, not raised, so every client reports
            with lock:
                errors.append(repr(exc))
            return
        for question in questions:
            start = time.perf_counter()
            try:
                data = client.predict(question, 5, api_name="/ask")
                assert len(data["passages"]) == 5 and data["passages"][0]["citation"]["title"]
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors.append(repr(exc))
                continue
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client_run) for _ in range(50)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 900
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not [t for t in threads if t.is_alive()], "clients still waiting after 15 minutes"
    assert rebuild.wait(timeout=300) == 0, rebuild.stderr.read()
    assert errors == [] and len(latencies) == 1000
    p50, p95 = np.percentile(latencies, [50, 95])
    print(f"\n50 clients x 20 questions during a rebuild: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    # Measured p50 5.6 s, p95 23.1 s (README): 50 clients queue for two workers. The bounds leave room for a
    # slower machine but catch a server that stalls (e.g. a rebuild blocking questions) or stops answering.
    assert p50 < P50_LIMIT_S and p95 < P95_LIMIT_S, (p50, p95)
