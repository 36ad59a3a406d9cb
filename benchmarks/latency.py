"""Query latency: `Assistant.ask` (hybrid, k=5) vs encoding the same queries with the model alone.

python benchmarks/latency.py            # uses var/index; goal: p50 ask <= 1.3x p50 raw encode
"""

from __future__ import annotations

from common import arguments, percentiles, print_table, timed

from assistant.answer import Assistant
from assistant.queries import load_queries
from assistant.settings import PROJECT_ROOT


def main() -> None:
    arguments(__doc__)
    assistant = Assistant.open()
    queries = [q.query for q in load_queries(PROJECT_ROOT / "eval" / "queries.jsonl")]
    for q in queries[:5]:  # warm up: first calls pay for lazy initialisation
        assistant.ask(q)
    encode = [timed(assistant.embedder.encode_query, q)[0] for q in queries]
    assistant._vectors.clear()  # ask keeps recent query vectors: every pass must encode its questions
    ask = [timed(assistant.ask, q, 5)[0] for q in queries]
    assistant._vectors.clear()
    ask_plain = [timed(assistant.ask, q, 5, highlight=False)[0] for q in queries]
    e50, e95 = percentiles(encode)
    rows = [["raw query encode", e50, e95, 1.0]]
    for name, times in (("ask hybrid k=5", ask), ("ask hybrid k=5, no highlight", ask_plain)):
        p50, p95 = percentiles(times)
        rows.append([name, p50, p95, p50 / e50])
    print(f"{len(queries)} queries, {len(assistant.index.chunks)} chunks")
    print_table(["what", "p50 ms", "p95 ms", "p50 / encode p50"], rows)


if __name__ == "__main__":
    main()
