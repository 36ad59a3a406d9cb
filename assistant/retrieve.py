"""Rank chunks for a query: dense (FAISS), BM25, or both fused.

Fusion is a weighted sum of min-max normalised scores by default (dense weight 0.4, chosen on the
tuning parts of both shipped benchmarks: benchmarks/tune.py); reciprocal-rank fusion is the
alternative. Both retrievers always run when a query vector is given, whatever the mode: their
candidates are the evidence the calibrated confidence (assistant/confidence.py) is computed from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.settings import Settings
from index.bm25 import query_tokens
from index.store import StoredIndex

# In hybrid fusion a dense candidate counts with its best sentence window's cosine plus this share of its
# windows' mean: a chunk that answers in one window and stays on topic in the others wins near-ties. Chosen
# on the tuning parts of both benchmarks (benchmarks/tune.py): the one pooling that gained on both (0.5 cost
# SweQUAD); dense-only ranking stays on the best window, which the same tuning parts prefer.
WINDOW_MEAN_SHARE = 0.2


@dataclass(frozen=True)
class Ranked:
    position: int  # chunk position in the index
    score: float  # fused score, used for ordering only
    cosine: float  # dense similarity to the query (NaN without a query vector)


@dataclass(frozen=True)
class Ranking:
    hits: list[Ranked]
    dense: dict[int, float]  # the dense candidates: chunk position -> cosine of its best window
    keyword: dict[int, float]  # the BM25 candidates: chunk position -> score


def rank(
    index: StoredIndex,
    query: str,
    query_vector: np.ndarray | None,
    settings: Settings,
    mode: str,
    k: int,
    allowed: np.ndarray | None = None,
) -> Ranking:
    """The top k chunks in `mode`, with both retrievers' candidates; `allowed` is an optional boolean mask
    over chunks (filters)."""
    n = len(index.chunks)
    want = min(n, max(settings.candidates, k))
    dense = _dense(index, query_vector, want, allowed) if query_vector is not None else {}
    bm25 = _bm25(index, query, want, allowed)
    if mode == "dense":
        fused = dense
    elif mode == "bm25":
        fused = bm25
    else:
        pooled = dict(zip(dense, index.cosines(query_vector, list(dense), WINDOW_MEAN_SHARE))) if dense else {}
        if settings.fusion == "weighted":
            fused = _weighted(pooled, bm25, settings.dense_weight)
        else:
            fused = _rrf([pooled, bm25], settings.rrf_k)
    order = sorted(fused, key=lambda p: -fused[p])[:k]
    cosines = cosines_of(index, query_vector, order)
    return Ranking([Ranked(p, float(fused[p]), c) for p, c in zip(order, cosines)], dense, bm25)


def _dense(index: StoredIndex, vector, want: int, allowed) -> dict[int, float]:
    if allowed is None:
        return dict(index.search(vector, want))
    # With filters, score the allowed chunks exactly: the nearest overall may all be filtered out.
    positions = np.flatnonzero(allowed)
    scores = index.chunk_scores(vector)[positions]
    top = np.argsort(-scores)[:want]
    return {int(positions[i]): float(scores[i]) for i in top}


def _bm25(index: StoredIndex, query: str, want: int, allowed) -> dict[int, float]:
    scores = index.bm25.scores(query_tokens(query, [*index.manifest.languages, "en"]))
    if allowed is not None:
        scores = np.where(allowed, scores, 0.0)
    top = np.argsort(-scores)[:want]
    return {int(i): float(scores[i]) for i in top if scores[i] > 0}


def _rrf(rankings: list[dict[int, float]], k: int) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for r, position in enumerate(sorted(ranking, key=lambda p: -ranking[p])):
            fused[position] = fused.get(position, 0.0) + 1.0 / (k + r + 1)
    return fused


def _weighted(dense: dict[int, float], bm25: dict[int, float], weight: float) -> dict[int, float]:
    def normalised(scores):
        if not scores:
            return {}
        low, high = min(scores.values()), max(scores.values())
        return {p: (s - low) / (high - low) if high > low else 1.0 for p, s in scores.items()}

    d, b = normalised(dense), normalised(bm25)
    return {p: weight * d.get(p, 0.0) + (1 - weight) * b.get(p, 0.0) for p in set(d) | set(b)}


def cosines_of(index: StoredIndex, vector, positions: list[int]) -> list[float]:
    """Cosine of the query vector with each chunk at `positions` (its best window; NaN without a vector)."""
    if vector is None or not positions:
        return [float("nan")] * len(positions)
    return index.cosines(vector, positions)
