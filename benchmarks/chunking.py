"""Which chunking retrieves best? Rebuilds the shipped corpus with each setting and scores it.

    python benchmarks/chunking.py [--sizes 60,100,160,250] [--context 0,30,60] [--overlap 0]

Prints recall@5 / MRR@10 of the dense and hybrid modes per chunk size and article context
(words of the article's title and lead indexed with each chunk).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from assistant.answer import Assistant
from assistant.eval import metrics, run_queries
from assistant.queries import load_queries
from assistant.settings import Settings
from index.build import build_index
from index.embed import Embedder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="60,100,160,250")
    parser.add_argument("--queries", type=Path, default=Path("eval/queries.jsonl"))
    parser.add_argument("--context", default="0,30,60")
    parser.add_argument("--overlap", type=int, default=0)
    args = parser.parse_args()
    base = Settings.from_env()
    embedder = Embedder(base.model)
    print(
        f"{'tokens':>6} {'context':>7} {'chunks':>6}  {'dense R@5':>9} {'dense MRR':>9}  "
        f"{'hybrid R@5':>10} {'hybrid MRR':>10} {'en R@5':>7}"
    )
    for size in map(int, args.sizes.split(",")):
        for context in map(int, args.context.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                settings = replace(
                    base,
                    index_dir=Path(tmp) / "index",
                    chunk_tokens=size,
                    context_words=context,
                    chunk_overlap=args.overlap,
                )
                report = build_index(settings, embedder, say=lambda _: None, progress=False)
                assistant = Assistant.open(settings=settings, embedder=embedder)
                queries = load_queries(args.queries)
                d = metrics(run_queries(assistant, queries, "dense"))["overall"]
                hm = metrics(run_queries(assistant, queries, "hybrid"))
                h = hm["overall"]
                en = hm["by_language"].get("en", {}).get("recall@5", float("nan"))
                print(
                    f"{size:6d} {context:7d} {report.chunks:6d}  {d['recall@5']:9.3f} {d['mrr@10']:9.3f}  "
                    f"{h['recall@5']:10.3f} {h['mrr@10']:10.3f} {en:7.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
