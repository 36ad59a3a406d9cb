"""Rank chunks for a query: dense (FAISS), BM25, or both fused.

Hybrid ranking is learned by default: a weighted sum of min-max normalised scores (dense weight 0.4,
chosen on the tuning parts of both shipped benchmarks: benchmarks/tune.py) picks the first
RERANK_DEPTH chunks, and a linear model over six features of each (FUSION_FEATURES, fitted on the same
tuning questions by benchmarks/fusion.py) orders them. `weighted` stops after the first step;
reciprocal-rank fusion is the other alternative. Both retrievers always run when a query vector is
given, whatever the mode: their candidates are the evidence the calibrated confidence
(assistant/confidence.py) is computed from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.settings import Settings
from corpus.lang import question_language
from index.bm25 import content_words, query_token_parts
from index.bridge import BRIDGED
from index.embed import embed_queries
from index.store import StoredIndex

# In hybrid fusion a dense candidate counts with its best sentence window's cosine plus this share of its
# windows' mean: a chunk that answers in one window and stays on topic in the others wins near-ties. Chosen
# on the tuning parts of both benchmarks (benchmarks/tune.py): the one pooling that gained on both (0.5 cost
# SweQUAD); dense-only ranking stays on the best window, which the same tuning parts prefer.
WINDOW_MEAN_SHARE = 0.2

# Learned fusion: what each of the first RERANK_DEPTH chunks of weighted fusion is re-scored by, and the
# weights (benchmarks/fusion.py fits them on the tuning questions of both benchmarks and prints this line;
# README "Learned fusion"). Coverage and missing are the words' evidence of index/bm25.py (the share of
# the question's words the chunk holds, the idf of the rarest it lacks). Weighted fusion adds the
# question's stems and their 4-grams as one keyword score and never asks whether the chunk holds the
# question's rare words; these features let a model weigh both.
FUSION_FEATURES = ("dense_pooled", "dense_best", "bm25_stems", "bm25_ngrams", "coverage", "missing")
FUSION_WEIGHTS = (1.709, 1.825, 2.255, 2.529, 1.673, -1.230)
RERANK_DEPTH = 30


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
    # The chunk weighted fusion ranks first (hits[0] unless learned fusion re-ordered them): its evidence
    # decides "nothing relevant", as the calibration was fitted on it. Learned fusion puts the chunk that
    # holds the question's words on top, which out-of-scope questions sharing those words find too.
    lead: Ranked | None  # None: no hits


@dataclass(frozen=True)
class KeywordScores:
    stems: np.ndarray  # BM25 score of every chunk for the question's stems
    ngrams: np.ndarray  # ... and for its other 4-grams (a compound's parts); their sum is the keyword score


@dataclass(frozen=True)
class Found:
    """What the two retrievers found for a question: the candidates every fusion works from."""

    dense: dict[int, float]  # chunk position -> cosine of its best window
    pooled: dict[int, float]  # the same chunks -> best window + WINDOW_MEAN_SHARE x their windows' mean
    keyword: KeywordScores
    bm25: dict[int, float]  # chunk position -> keyword score (stems + 4-grams)


def query_languages(index: StoredIndex) -> list[str]:
    """The languages a question is tokenised in: the index's, and English (questions may be English)."""
    return [*index.manifest.languages, "en"]


def find(
    index: StoredIndex, query: str, query_vector: np.ndarray | None, want: int, allowed=None, keywords: str = ""
) -> Found:
    """Both retrievers' `want` best candidates (no dense ones without a query vector); `allowed` is an
    optional boolean mask over chunks (filters); `keywords`: what keyword search looks for, if not the query
    (keyword_text)."""
    dense = _dense(index, query_vector, want, allowed) if query_vector is not None else {}
    pooled = dict(zip(dense, index.cosines(query_vector, list(dense), WINDOW_MEAN_SHARE))) if dense else {}
    parts = [index.bm25.scores(t) for t in query_token_parts(keywords or query, query_languages(index))]
    if allowed is not None:
        parts = [np.where(allowed, p, 0.0) for p in parts]
    scores = parts[0] + parts[1]
    top = np.argsort(-scores)[:want]
    return Found(dense, pooled, KeywordScores(*parts), {int(i): float(scores[i]) for i in top if scores[i] > 0})


def rank(
    index: StoredIndex,
    query: str,
    query_vector: np.ndarray | None,
    settings: Settings,
    mode: str,
    k: int,
    allowed: np.ndarray | None = None,
    keywords: str = "",
) -> Ranking:
    """The top k chunks in `mode`, with both retrievers' candidates; `allowed` is an optional boolean mask
    over chunks (filters); `keywords` as for `find`."""
    found = find(index, query, query_vector, min(len(index.chunks), max(settings.candidates, k)), allowed, keywords)
    if mode == "dense":
        fused = found.dense
    elif mode == "bm25":
        fused = found.bm25
    elif settings.fusion == "rrf":
        fused = _rrf([found.pooled, found.bm25], settings.rrf_k)
    else:
        fused = _weighted(found.pooled, found.bm25, settings.dense_weight)
    lead = max(fused, key=fused.get, default=None)
    if mode == "hybrid" and settings.fusion == "learned" and found.dense:
        first = sorted(fused, key=lambda p: -fused[p])[:RERANK_DEPTH]
        learned = fusion_features(index, query, query_vector, first, found) @ np.array(FUSION_WEIGHTS)
        # The re-scored chunks stay above the rest, whose weighted scores are at most 1.
        fused = fused | dict(zip(first, (2.0 + learned - learned.min()).tolist()))
    order = sorted(fused, key=lambda p: -fused[p])[:k]
    if lead is not None and lead not in order:
        order.append(lead)  # for its cosine; cut off below
    hits = [Ranked(p, float(fused[p]), c) for p, c in zip(order, cosines_of(index, query_vector, order))]
    return Ranking(hits[:k], found.dense, found.bm25, next((h for h in hits if h.position == lead), None))


def keyword_text(index: StoredIndex, query: str, embedder) -> str:
    """What keyword search looks for: an English question's words and, after them, the words of the corpus
    nearest each (index/bridge.py); any other question as it is."""
    bridge = index.bm25.bridge
    if not bridge.words or question_language(query) != BRIDGED:
        return query
    words = [w for w in dict.fromkeys(content_words(query, [BRIDGED])) if not w.isdigit()]
    return " ".join([query, *bridge.translations(words, embed_queries(embedder, words))])


def fusion_features(index: StoredIndex, query: str, vector: np.ndarray, positions: list[int], found: Found):
    """FUSION_FEATURES of the chunks at `positions` ([chunks, features]). A score is min-max normalised over
    its retriever's candidates and these chunks, so a chunk only one retriever found is still placed on the
    other's scale (its exact cosine or keyword score, not a 0 for "not a candidate")."""
    keyword = list(found.bm25)
    scales = [list(found.pooled.values()), list(found.dense.values())]
    scales += [found.keyword.stems[keyword], found.keyword.ngrams[keyword]]
    values = [index.cosines(vector, positions, share) for share in (WINDOW_MEAN_SHARE, 0.0)]
    values += [found.keyword.stems[positions], found.keyword.ngrams[positions]]
    coverage, missing = index.bm25.word_evidence(query, query_languages(index), positions)
    return np.column_stack([*(_min_max(v, scale) for v, scale in zip(values, scales)), coverage, missing])


def _min_max(values, scale) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    every = np.concatenate([np.asarray(scale, dtype=float), values])
    low, high = every.min(), every.max()
    return (values - low) / (high - low) if high > low else np.ones_like(values)


def _dense(index: StoredIndex, vector, want: int, allowed) -> dict[int, float]:
    if allowed is None:
        return dict(index.search(vector, want))
    # With filters, score the allowed chunks exactly: the nearest overall may all be filtered out.
    positions = np.flatnonzero(allowed)
    scores = index.chunk_scores(vector)[positions]
    top = np.argsort(-scores)[:want]
    return {int(positions[i]): float(scores[i]) for i in top}


def _rrf(rankings: list[dict[int, float]], k: int) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for r, position in enumerate(sorted(ranking, key=lambda p: -ranking[p])):
            fused[position] = fused.get(position, 0.0) + 1.0 / (k + r + 1)
    return fused


def _weighted(dense: dict[int, float], bm25: dict[int, float], weight: float) -> dict[int, float]:
    def normalised(scores):
        return dict(zip(scores, _min_max(list(scores.values()), []).tolist())) if scores else {}

    d, b = normalised(dense), normalised(bm25)
    return {p: weight * d.get(p, 0.0) + (1 - weight) * b.get(p, 0.0) for p in set(d) | set(b)}


def cosines_of(index: StoredIndex, vector, positions: list[int]) -> list[float]:
    """Cosine of the query vector with each chunk at `positions` (its best window; NaN without a vector)."""
    if vector is None or not positions:
        return [float("nan")] * len(positions)
    return index.cosines(vector, positions)
