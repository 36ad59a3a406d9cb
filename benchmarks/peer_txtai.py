"""A peer side by side: txtai (Embeddings, hybrid=True, content) on the same chunks, the same
converted model and the same test queries, next to our hybrid retrieval.

    python benchmarks/peer_txtai.py
"""

from __future__ import annotations

import numpy as np
from common import percentiles, print_table, timed

from assistant.answer import Assistant
from assistant.eval import metrics, run_queries
from assistant.queries import is_relevant, load_queries
from assistant.settings import PROJECT_ROOT


def txtai_scores(assistant: Assistant, queries) -> tuple[float, float, list[float]]:
    from txtai import Embeddings

    chunks = assistant.index.chunks
    embeddings = Embeddings({"path": assistant.settings.model, "hybrid": True, "content": True,
                             "instructions": {"query": "query: ", "data": "passage: "}})
    embeddings.index([(c.id, c.text, None) for c in chunks])
    by_id = {c.id: c for c in chunks}
    hits5, rr, times = [], [], []
    for q in queries:
        seconds, results = timed(embeddings.search, q.query, 10)
        times.append(seconds)
        relevant = [is_relevant(q, r["id"], by_id[r["id"]].article_id, r["text"]) for r in results]
        first = next((i + 1 for i, r in enumerate(relevant) if r), None)
        hits5.append(bool(first and first <= 5))
        rr.append(1 / first if first else 0.0)
    return float(np.mean(hits5)), float(np.mean(rr)), times


def main() -> None:
    assistant = Assistant.open()
    queries = [q for q in load_queries(PROJECT_ROOT / "eval" / "queries.jsonl") if not q.out_of_scope]
    for q in queries[:5]:
        assistant.ask(q.query)
    ours = metrics(run_queries(assistant, queries, "hybrid"))["overall"]
    our_times = [timed(assistant.ask, q.query, 5)[0] for q in queries]
    r5, mrr, peer_times = txtai_scores(assistant, queries)
    print(f"{len(queries)} in-scope queries, {len(assistant.index.chunks)} chunks, same converted model")
    print_table(["system", "recall@5", "MRR@10", "p50 ms", "p95 ms"], [
        ["ours (hybrid, weighted fusion)", ours["recall@5"], ours["mrr@10"], *percentiles(our_times)],
        ["txtai Embeddings(hybrid=True)", r5, mrr, *percentiles(peer_times)],
    ])


if __name__ == "__main__":
    main()
