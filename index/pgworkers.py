"""Embedding spread over worker processes through the database (PostgreSQL store only).

A build with N workers puts the texts to embed into `assistant_embed_batch` as batches and starts
N - 1 local worker processes (`assistant index worker`); it works on batches itself too, and
workers on other machines that reach the database may join with the same command. A worker
claims a batch with `SELECT ... FOR UPDATE SKIP LOCKED` and writes its vectors in the same
transaction: a worker killed midway rolls back, its batch becomes claimable again and another
worker (or the build itself) embeds it. Only batches made with the worker's own model are claimed.

The build that made the batches holds an advisory lock (BATCH_LOCK, hashtext(build)) on its connection while
they are worked on: when it is gone (killed, its machine down), so is the lock, and the next worker or build
that meets its batches deletes them instead of embedding them. A helper started by a build exits when that
build's process does.
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
BATCH_LOCK = 0x62617463  # first key of the advisory lock a build holds on its batches (second: hashtext(build))
PARENT_ENV = "ASSISTANT_WORKER_PARENT"  # the pid of the build that started a helper worker
TABLE = """
CREATE TABLE IF NOT EXISTS assistant_embed_batch (
    build text NOT NULL, batch integer NOT NULL, fingerprint text NOT NULL, texts jsonb NOT NULL,
    vectors bytea, worker text, PRIMARY KEY (build, batch))
"""


# The rows of one build no other worker holds (our own claimed one included): deleted without waiting on theirs.
DELETE_FREE = (
    "DELETE FROM assistant_embed_batch WHERE build = %s AND batch IN "
    "(SELECT batch FROM assistant_embed_batch WHERE build = %s FOR UPDATE SKIP LOCKED)"
)


def _owner_gone(conn, build: str) -> bool:
    """True when the build that made these batches no longer holds its lock (inside a transaction: the probe
    lock goes with it)."""
    return conn.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", (BATCH_LOCK, build)).fetchone()[0]


def drop_dead_batches(conn) -> None:
    """Delete the batches of builds that are gone (killed before they could clean up)."""
    for (build,) in conn.execute("SELECT DISTINCT build FROM assistant_embed_batch").fetchall():
        with conn.transaction():
            if _owner_gone(conn, build):
                conn.execute(DELETE_FREE, (build, build))


def claim_and_embed(conn, embedder, batch_size: int, worker: str, own_build: str | None = None) -> bool:
    """Embed one unclaimed batch made with `embedder`'s model; False when none is left to claim. A batch of a
    build that is gone is not embedded: its batches are deleted. `own_build`: the caller's own (alive) build."""
    with conn.transaction():
        row = conn.execute(
            "SELECT build, batch, texts FROM assistant_embed_batch WHERE vectors IS NULL AND fingerprint = %s "
            "ORDER BY build, batch LIMIT 1 FOR UPDATE SKIP LOCKED",
            (embedder.fingerprint,),
        ).fetchone()
        if row is None:
            return False
        build, batch, texts = row
        if build != own_build and _owner_gone(conn, build):
            conn.execute(DELETE_FREE, (build, build))
            return True
        vectors = np.asarray(embedder.encode_documents(texts, batch_size), dtype="<f4")
        conn.execute(
            "UPDATE assistant_embed_batch SET vectors = %s, worker = %s WHERE build = %s AND batch = %s",
            (vectors.tobytes(), worker, build, batch),
        )
    return True


def run_worker(store, embedder, batch_size: int = 16, wait_seconds: float = 0.0, say=print) -> int:
    """Embed batches until none is left (waiting up to `wait_seconds` for new ones); returns how many. A database
    error ends it with the store's one-line error; a helper whose build process died stops."""
    import psycopg

    conn = store.connect()
    worker, done, idle_since = f"{_host()}:{_pid()}", 0, time.monotonic()
    try:
        if conn.execute("SELECT to_regclass('assistant_embed_batch')").fetchone()[0] is None:
            with conn.transaction():  # a worker whose role may not create tables joins an existing queue
                conn.execute(TABLE)
        while not _orphaned():
            if claim_and_embed(conn, embedder, batch_size, worker):
                done, idle_since = done + 1, time.monotonic()
            elif time.monotonic() - idle_since >= wait_seconds:
                return done
            else:
                time.sleep(0.2)
        say(f"Worker {worker} stops: the build that started it has ended.")
        return done
    except psycopg.Error as exc:
        raise store.database_error(exc, writing=True) from None
    finally:
        conn.close()
        if done:
            say(f"Worker {worker} embedded {done} batches.")


def _orphaned() -> bool:
    """True in a helper whose build process has died (it was then re-parented)."""
    parent = os.environ.get(PARENT_ENV, "")
    return parent.isdigit() and os.getppid() != int(parent)


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
        import psycopg

        build = uuid.uuid4().hex
        batches = range(0, len(texts), BATCH_TEXTS)
        conn = self.store.connect()
        try:
            with conn.transaction():
                conn.execute(TABLE)
            drop_dead_batches(conn)  # left by builds killed before they could clean up
            # Held until this connection closes: workers tell this build's batches from a dead build's.
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (BATCH_LOCK, build))
            with conn.transaction():
                with conn.cursor().copy(
                    "COPY assistant_embed_batch (build, batch, fingerprint, texts) FROM STDIN"
                ) as copy:
                    for n, start in enumerate(batches):
                        copy.write_row((build, n, self.fingerprint, _json(texts[start : start + BATCH_TEXTS])))
            # The URL (and its password) goes by environment, never on a command line others can list.
            env = {**os.environ, "ASSISTANT_STORE": self.store.url, PARENT_ENV: str(os.getpid())}
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
            if len(rows) != len(batches) or any(v is None for (v,) in rows):
                raise BuildError(
                    f"Batches of this build vanished from assistant_embed_batch in {self.store.label} (deleted by "
                    "hand, or by an older worker version): run the build again."
                )
            vectors = np.concatenate([np.frombuffer(v, dtype="<f4") for (v,) in rows])
            return vectors.reshape(len(texts), self.dimension).astype(np.float32)
        finally:
            try:
                conn.execute("DELETE FROM assistant_embed_batch WHERE build = %s", (build,))
            except psycopg.Error:
                pass  # the database is gone: the error that ended the build says so; workers drop the rows later
            conn.close()

    def _work_until_done(self, conn, build: str, batch_size: int) -> None:
        """Embed batches here too; then wait for those other workers hold, taking over any a dead one left."""
        while True:
            if claim_and_embed(conn, self.embedder, batch_size, f"{_host()}:{_pid()}", own_build=build):
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
