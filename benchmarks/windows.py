"""Sentence windows for dense search: a chunk scored by its best window of W sentences. Not shipped yet.

    python benchmarks/windows.py [--sentences 3] [--stride 1]

Embeds windows of W consecutive sentences of each chunk, one starting every `stride` sentences (a chunk
with fewer sentences is one window; a larger stride means fewer windows to embed), scores a chunk by a mix
of its own cosine and its best window's, `(1 - a) * chunk + a * best window`, and fuses that with the
shipped keyword scores as assistant/retrieve.py does. Prints R@1 / R@5 / MRR@10 on the tuning and
held-out parts of both shipped benchmarks for a few mixes and dense weights; choose on the tuning columns
(summed MRR@10), then read the held-out ones. Indexes are built (incrementally) under var/eval/ as
benchmarks/calibrate.py does; ~10 minutes on 2 cores with stride 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from assistant.queries import Judge, load_queries  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from benchmarks.calibrate import BENCHMARKS, ROOT, open_benchmark  # noqa: E402
from benchmarks.common import print_table  # noqa: E402
from benchmarks.tune import keyword_scores, normalised, scores_at  # noqa: E402
from index.embed import Embedder  # noqa: E402

MIXES = (0.0, 0.5, 0.7, 1.0)  # share of the best window in a chunk's dense score; 0: today's chunk vector
WEIGHTS = (0.3, 0.4, 0.5)  # dense weight in the fusion


def windows(chunks, size: int, stride: int) -> tuple[list[str], np.ndarray]:
    """Texts of the windows of `size` sentences of each chunk, and the chunk position each belongs to."""
    texts, owner = [], []
    for position, chunk in enumerate(chunks):
        spans = chunk.sentences or ((0, len(chunk.text)),)
        starts = list(range(0, max(1, len(spans) - size + 1), stride))
        if starts[-1] + size < len(spans):  # the last sentences get a window of their own
            starts.append(len(spans) - size)
        for first in starts:
            last = min(len(spans), first + size) - 1
            texts.append(chunk.text[spans[first][0] : spans[last][1]])
            owner.append(position)
    return texts, np.array(owner)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=3, help="sentences per window")
    parser.add_argument("--stride", type=int, default=1, help="sentences from one window's start to the next")
    args = parser.parse_args()
    embedder = Embedder(Settings.from_env().model)
    results: dict[tuple[float, float], dict[str, tuple]] = {}
    for name, (_, files) in BENCHMARKS.items():
        index = open_benchmark(name, embedder).index
        judge = Judge(index.chunks, index.articles.values())
        ids = [c.id for c in index.chunks]
        texts, owner = windows(index.chunks, args.sentences, args.stride)
        print(f"{name}: {len(index.chunks)} chunks, {len(texts)} windows", file=sys.stderr)
        window_vectors = embedder.encode_documents(texts, 32)
        for split in ("tune", "heldout"):
            queries = [q for f in files for q in load_queries(ROOT / f) if q.split == split and not q.out_of_scope]
            relevant = np.array([[i in rel for i in ids] for rel in map(judge.relevant, queries)])
            vectors = embedder.encode_queries([q.query for q in queries])
            chunk = vectors @ index.vectors.T
            best = np.full_like(chunk, -1.0)
            np.maximum.at(best.T, owner, (vectors @ window_vectors.T).T)
            keyword = normalised(keyword_scores(index, queries, 60, True))
            for a in MIXES:
                dense = normalised((1 - a) * chunk + a * best)
                for w in (*WEIGHTS, 1.0):  # 1.0: dense only
                    fused = w * dense + (1 - w) * keyword
                    results.setdefault((a, w), {})[f"{name} {split}"] = scores_at(fused, relevant)
    columns = [f"{n} {s}" for s in ("tune", "heldout") for n in BENCHMARKS]
    chosen = max((k for k in results if k[1] < 1), key=lambda k: sum(results[k][c][2] for c in columns[:2]))
    rows = [
        [a, "dense only" if w == 1 else w, *(" / ".join(f"{v:.3f}" for v in by[c]) for c in columns)]
        + ["← best on tune" if (a, w) == chosen else ""]
        for (a, w), by in sorted(results.items())
    ]
    print(f"\n{args.sentences}-sentence windows, stride {args.stride}; R@1 / R@5 / MRR@10; window share a, weight w")
    print_table(["a", "w", *columns, ""], rows)


if __name__ == "__main__":
    main()
