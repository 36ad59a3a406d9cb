"""Sentence windows: what the model embeds of each chunk, and how a chunk's dense score comes from them.

Each chunk is embedded as consecutive windows of WINDOW_SENTENCES sentences, not as one vector; a
chunk's cosine with a question is its best window's. A 220-token chunk's single vector averages a few
topics, and a question asks about one: on the tuning parts of both shipped benchmarks the best window
beat the whole-chunk vector in the fused ranking, and held out it was the first method to lift both
(README, "Sentence windows"). Windows do not overlap, except that the last one ends at the chunk's end,
so a build embeds each chunk's text about once (~15 % more model time than whole chunks); overlapping
windows scored slightly higher on the tuning parts at twice that. The vectors of an index are its
windows, in chunk order; each chunk records one embedding key per window.
"""

from __future__ import annotations

import numpy as np

from corpus.types import Chunk

WINDOW_SENTENCES = 3
SEARCH_FANOUT = 4  # windows fetched per chunk wanted: ~3 windows per chunk, so k chunks need ~3k windows


def _first_sentences(sentences: int, size: int) -> list[int]:
    """The first sentence of each window of `size` over `sentences` sentences (fewer make one window)."""
    firsts = list(range(0, max(1, sentences - size + 1), size))
    if firsts[-1] + size < sentences:  # the last sentences get a window ending at the chunk's end
        firsts.append(sentences - size)
    return firsts


def window_texts(chunk: Chunk, size: int = WINDOW_SENTENCES) -> list[str]:
    """The texts of `chunk`'s windows of `size` sentences (a chunk of fewer sentences is one window)."""
    spans = chunk.sentences or ((0, len(chunk.text)),)
    firsts = _first_sentences(len(spans), size)
    return [chunk.text[spans[first][0] : spans[min(len(spans), first + size) - 1][1]] for first in firsts]


def window_count(chunk: Chunk, size: int = WINDOW_SENTENCES) -> int:
    """How many windows `chunk` has (len(window_texts(chunk, size)), without cutting the texts)."""
    return len(_first_sentences(len(chunk.sentences) or 1, size))


class Windows:
    """Which vector rows belong to which chunk: chunk i owns rows starts[i] .. starts[i] + counts[i] - 1."""

    def __init__(self, counts: list[int]):
        self.counts = np.asarray(counts, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        self.owner = np.repeat(np.arange(len(self.counts)), self.counts)

    def chunk_scores(self, row_scores: np.ndarray, mean_share: float = 0.0) -> np.ndarray:
        """Each chunk's best window score (+ `mean_share` × the mean of its windows' scores), from scores over
        all rows (last axis; one query or several)."""
        if not len(self.counts):
            return row_scores[..., :0]
        best = np.maximum.reduceat(row_scores, self.starts, axis=-1)
        if not mean_share:
            return best
        return best + mean_share * np.add.reduceat(row_scores, self.starts, axis=-1) / self.counts

    def chunk_cosines(self, vectors: np.ndarray, vector: np.ndarray, positions, mean_share: float = 0.0):
        """The best window cosine (+ `mean_share` × the windows' mean cosine) of each chunk at `positions`:
        chunk_scores over just those chunks' rows."""
        chosen = Windows(self.counts[positions])
        rows = np.repeat(self.starts[positions] - chosen.starts, chosen.counts) + np.arange(len(chosen.owner))
        return chosen.chunk_scores(vectors[rows] @ vector, mean_share).tolist()

    def nearest(self, search, k: int) -> list[tuple[int, float]]:
        """(chunk position, best score) of the k nearest chunks, nearest first. `search(rows)` returns the ids
        and scores of the nearest `rows` windows, nearest first (fewer when the store can give no more).
        SEARCH_FANOUT windows per chunk wanted usually suffice; chunks with many near windows (lists of
        short sentences) can leave fewer than k, so the search widens until it has k or has everything."""
        total = len(self.owner)
        rows = min(total, k * SEARCH_FANOUT)
        while True:
            ids, scores = search(rows)
            best: dict[int, float] = {}
            for row, score in zip(ids, scores):
                if row >= 0:  # FAISS pads with -1
                    best.setdefault(int(self.owner[row]), float(score))  # a chunk's first row is its best
                    if len(best) == k:
                        return list(best.items())
            if rows >= total or len(ids) < rows:
                return list(best.items())
            rows = min(total, rows * 2)
