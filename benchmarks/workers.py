"""Embedding over 1 vs N worker processes (PostgreSQL store), with the real model.

    python benchmarks/workers.py [--passages 800] [--workers 1,2] [--url postgresql://...]

A synthetic corpus (benchmarks/scale.py) is built into a fresh database once per worker count; the
time includes starting the extra workers (each loads the model).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from common import print_table, timed
from scale import SENTENCES_PER_PASSAGE, synthesise
from stores import fresh_database

from assistant.library import rebuild
from assistant.settings import Settings
from corpus.chunk import article_sentences
from corpus.load import load_corpus
from index.embed import Embedder


def main() -> None:
    """Print build seconds and speed-up per worker count."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=800)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--url", default="")
    args = parser.parse_args()
    server = None
    if not args.url:
        import pgserver

        server = pgserver.get_server(tempfile.mkdtemp(prefix="bench-pg-"), cleanup_mode="delete")
        args.url = server.get_uri()
    base = Settings.from_env()
    articles = load_corpus(base.corpus_dir).articles
    sentences = sorted({s.text for a in articles for s in article_sentences(a) if len(s.text.split()) >= 4})
    embedder = Embedder(base.model)
    rows, first = [], None
    with tempfile.TemporaryDirectory() as tmp:
        synthesise(Path(tmp) / "corpus", sentences, args.passages)
        for workers in map(int, args.workers.split(",")):
            settings = replace(
                base,
                corpus_dir=Path(tmp) / "corpus",
                chunk_tokens=SENTENCES_PER_PASSAGE * 40,
                store=fresh_database(args.url),
                embed_workers=workers,
            )
            seconds, report = timed(rebuild, settings, embedder, say=lambda _: None, progress=False)
            first = first or seconds
            rows.append([workers, report.embedded, seconds, report.embedded / seconds, first / seconds])
    print_table(["workers", "passages embedded", "build s", "passages/s", "speed-up"], rows)
    if server is not None:
        server.cleanup()


if __name__ == "__main__":
    main()
