"""A peer side by side: txtai (Embeddings, hybrid=True, content) on the same chunks, the same
converted model and the same test queries, next to our hybrid retrieval. txtai runs twice: on
the chunk text alone, and on the text we index (title and lead before each chunk), so the table
separates what the indexed text buys from what our fusion buys.

    python benchmarks/peer_txtai.py
"""

from __future__ import annotations

import numpy as np
from common import arguments, percentiles, print_table, timed

from assistant.answer import Assistant
from assistant.eval import metrics, run_queries
from assistant.queries import is_relevant, load_queries
from assistant.settings import PROJECT_ROOT
from index.build import keyword_texts


def txtai_scores(assistant: Assistant, queries, context_words: int) -> tuple[float, float, list[float]]:
    from txtai import Embeddings

    index = assistant.index
    embeddings = Embeddings(
        {
            "path": assistant.settings.model,
            "hybrid": True,
            "content": True,
            "instructions": {"query": "query: ", "data": "passage: "},
        }
    )
    texts = keyword_texts(index.chunks, index.articles, context_words)
    embeddings.index([(c.id, text, None) for c, text in zip(index.chunks, texts)])
    by_id = {c.id: c for c in index.chunks}
    hits5, rr, times = [], [], []
    for q in queries:
        seconds, results = timed(embeddings.search, q.query, 10)
        times.append(seconds)
        relevant = [is_relevant(q, r["id"], by_id[r["id"]].article_id, by_id[r["id"]].text) for r in results]
        first = next((i + 1 for i, r in enumerate(relevant) if r), None)
        hits5.append(bool(first and first <= 5))
        rr.append(1 / first if first else 0.0)
    return float(np.mean(hits5)), float(np.mean(rr)), times


def main() -> None:
    arguments(__doc__)
    assistant = Assistant.open()
    queries = [q for q in load_queries(PROJECT_ROOT / "eval" / "queries.jsonl") if not q.out_of_scope]
    for q in queries[:5]:
        assistant.ask(q.query)
    ours = metrics(run_queries(assistant, queries, "hybrid"))["overall"]
    our_times = [timed(assistant.ask, q.query, 5)[0] for q in queries]
    context = assistant.settings.context_words
    peers = {words: txtai_scores(assistant, queries, words) for words in (0, context)}
    print(f"{len(queries)} in-scope queries, {len(assistant.index.chunks)} chunks, same converted model")
    print_table(
        ["system", "recall@5", "MRR@10", "p50 ms", "p95 ms"],
        [
            ["ours (hybrid, learned fusion)", ours["recall@5"], ours["mrr@10"], *percentiles(our_times)],
            *(
                [f"txtai Embeddings(hybrid=True), context {words} words", r5, mrr, *percentiles(times)]
                for words, (r5, mrr, times) in peers.items()
            ),
        ],
    )


if __name__ == "__main__":
    main()
