"""What the store costs per question: `ask` (query vectors precomputed, no highlight) and `search(k=100)`
on the folder store and the PostgreSQL store holding the same corpus.

    python benchmarks/store_latency.py FOLDER_INDEX POSTGRES_URL [QUERIES]
"""

from __future__ import annotations

import time

from common import arguments, percentiles

from assistant.answer import Assistant
from assistant.queries import load_queries
from assistant.settings import PROJECT_ROOT, Settings
from index.embed import Embedder


def main() -> None:
    """Print p50/p95 of ask and search per store."""
    args = arguments(
        __doc__,
        ("folder_index", "a folder index of the corpus"),
        ("postgres_url", "ASSISTANT_STORE URL of the same corpus"),
        ("?queries", "test-query file (default: eval/swequad/queries.jsonl)"),
    )
    folder, url = args.folder_index, args.postgres_url
    queries = args.queries or PROJECT_ROOT / "eval" / "swequad" / "queries.jsonl"
    embedder = Embedder(Settings().model)
    questions = [q.query for q in load_queries(queries)][:150]
    for label, settings in (("folder", Settings(index_dir=folder)), ("postgres", Settings(store=url))):
        assistant = Assistant.open(settings=settings, embedder=embedder)
        assistant.prefetch(questions)
        for q in questions[:5]:
            assistant.ask(q)
        asks, searches = [], []
        for q in questions:
            start = time.perf_counter()
            assistant.ask(q, highlight=False)
            asks.append(time.perf_counter() - start)
            start = time.perf_counter()
            assistant.index.search(assistant.query_vector(q), 100)
            searches.append(time.perf_counter() - start)
        (a50, a95), (s50, s95) = percentiles(asks), percentiles(searches)
        print(f"{label}: ask p50/p95 ms {a50:.1f}/{a95:.1f}, search p50/p95 ms {s50:.2f}/{s95:.2f}")


if __name__ == "__main__":
    main()
