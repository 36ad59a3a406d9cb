"""Embedding spread over worker processes through the database (PostgreSQL store only).

A build with N workers puts the texts to embed into `assistant_embed_batch` as batches and starts
N - 1 local worker processes (`assistant index worker`); it works on batches itself too, and
workers on other machines that reach the database may join with the same command. A worker
claims a batch with `SELECT ... FOR UPDATE SKIP LOCKED` and writes its vectors in the same
transaction: a worker killed midway rolls back, its batch becomes claimable again and another
worker (or the build itself) embeds it. Only batches made with the worker's own model are claimed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import numpy as np

from index.errors import BuildError

BATCH_TEXTS = 64  # texts per claimed batch: small enough to spread, large enough to keep the model busy
TABLE = """
CREATE TABLE IF NOT EXISTS assistant_embed_batch (
    build text NOT NULL, batch integer NOT NULL, fingerprint text NOT NULL, texts jsonb NOT NULL,
    vectors bytea, worker text, PRIMARY KEY (build, batch))
"""


def claim_and_embed(conn, embedder, batch_size: int, worker: str) -> bool:
    """Embed one unclaimed batch made with `embedder`'s model; False when none is left to claim."""
    with conn.transaction():
        row = conn.execute(
            "SELECT build, batch, texts FROM assistant_embed_batch WHERE vectors IS NULL AND fingerprint = %s "
            "ORDER BY build, batch LIMIT 1 FOR UPDATE SKIP LOCKED",
            (embedder.fingerprint,),
        ).fetchone()
        if row is None:
            return False
        build, batch, texts = row
        vectors = np.asarray(embedder.encode_documents(texts, batch_size), dtype="<f4")
        conn.execute(
            "UPDATE assistant_embed_batch SET vectors = %s, worker = %s WHERE build = %s AND batch = %s",
            (vectors.tobytes(), worker, build, batch),
        )
    return True


def run_worker(store, embedder, batch_size: int = 16, wait_seconds: float = 0.0, say=print) -> int:
    """Embed batches until none is left (waiting up to `wait_seconds` for new ones); returns how many."""
    conn = store.connect()
    worker, done, idle_since = f"{_host()}:{_pid()}", 0, time.monotonic()
    try:
        with conn.transaction():
            conn.execute(TABLE)
        while True:
            if claim_and_embed(conn, embedder, batch_size, worker):
                done, idle_since = done + 1, time.monotonic()
            elif time.monotonic() - idle_since >= wait_seconds:
                return done
            else:
                time.sleep(0.2)
    finally:
        conn.close()
        if done:
            say(f"Worker {worker} embedded {done} batches.")


class QueueEmbedder:
    """An embedder whose `encode_documents` hands the texts to workers through the database."""

    def __init__(self, store, embedder, workers: int, command: list[str] | None = None):
        self.store, self.embedder, self.workers = store, embedder, workers
        self.command = command or [sys.executable, "-m", "assistant.cli", "index", "worker"]
        self.fingerprint, self.dimension = embedder.fingerprint, embedder.dimension

    def count_tokens(self, text: str) -> int:
        """As the model counts (chunking needs it locally)."""
        return self.embedder.count_tokens(text)

    def encode_query(self, text: str) -> np.ndarray:
        """Queries are embedded locally."""
        return self.embedder.encode_query(text)

    def encode_documents(self, texts, batch_size: int = 16, progress: bool = False) -> np.ndarray:
        """The texts' vectors, embedded by this process and N - 1 worker processes."""
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        build = uuid.uuid4().hex
        conn = self.store.connect()
        try:
            with conn.transaction():
                conn.execute(TABLE)
                with conn.cursor().copy(
                    "COPY assistant_embed_batch (build, batch, fingerprint, texts) FROM STDIN"
                ) as copy:
                    for n, start in enumerate(range(0, len(texts), BATCH_TEXTS)):
                        copy.write_row((build, n, self.fingerprint, _json(texts[start : start + BATCH_TEXTS])))
            # The URL (and its password) goes by environment, never on a command line others can list.
            env = {**os.environ, "ASSISTANT_STORE": self.store.url}
            helpers = [subprocess.Popen(self.command, env=env) for _ in range(self.workers - 1)]
            try:
                self._work_until_done(conn, build, batch_size)
            finally:
                for helper in helpers:
                    helper.terminate()
                    helper.wait()
            rows = conn.execute(
                "SELECT vectors FROM assistant_embed_batch WHERE build = %s ORDER BY batch", (build,)
            ).fetchall()
            vectors = np.concatenate([np.frombuffer(v, dtype="<f4") for (v,) in rows])
            return vectors.reshape(len(texts), self.dimension).astype(np.float32)
        finally:
            conn.execute("DELETE FROM assistant_embed_batch WHERE build = %s", (build,))
            conn.close()

    def _work_until_done(self, conn, build: str, batch_size: int) -> None:
        """Embed batches here too; then wait for those other workers hold, taking over any a dead one left."""
        while True:
            if claim_and_embed(conn, self.embedder, batch_size, f"{_host()}:{_pid()}"):
                continue
            left = conn.execute(
                "SELECT count(*) FROM assistant_embed_batch WHERE build = %s AND vectors IS NULL", (build,)
            ).fetchone()[0]
            if not left:
                return
            time.sleep(0.2)


def _json(texts: list[str]) -> str:
    import json

    return json.dumps(texts, ensure_ascii=False)


def _host() -> str:
    import socket

    return socket.gethostname()


def _pid() -> int:
    return os.getpid()


def spread(store, embedder, workers: int):
    """`embedder`, or with several workers one that hands its batches to them (database store only)."""
    if workers <= 1:
        return embedder
    if not hasattr(store, "connect"):
        raise BuildError("Embedding workers need the PostgreSQL store: set ASSISTANT_STORE=postgresql://...")
    return QueueEmbedder(store, embedder, workers)
