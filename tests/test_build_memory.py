"""The keyword index build holds token ids, not every chunk's token strings, at once (#14: 8.6 GB at 95k)."""

from __future__ import annotations

import random
import tracemalloc

import numpy as np

from index.bm25 import K1, B, BM25Index, build_bm25, query_tokens, tokenize
from tests.conftest import REAL_CORPUS

# Measured with these 1500 chunks of 100 words: 99 bytes per token when bm25s got the token strings, 42 with ids.
PEAK_BYTES_PER_TOKEN = 60


def _texts(count: int) -> list[str]:
    words = " ".join(p.read_text(encoding="utf-8") for p in sorted(REAL_CORPUS.glob("*.txt"))).split()
    rng = random.Random(3)
    return [" ".join(rng.choices(words, k=100)) for _ in range(count)]


def test_keyword_index_build_peak_memory_per_token(tmp_path):
    texts = _texts(1500)
    tokens = sum(len(tokenize(t, "sv")) for t in texts)
    tracemalloc.start()
    try:
        build_bm25(texts, ["sv"] * len(texts), tmp_path / "bm25")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / tokens < PEAK_BYTES_PER_TOKEN, f"{peak / tokens:.0f} bytes per token"


def test_keyword_scores_equal_bm25s_over_token_strings(tmp_path):
    import bm25s

    texts = _texts(300) + [""]  # an empty chunk too
    build_bm25(texts, ["sv"] * len(texts), tmp_path / "ours")
    reference = bm25s.BM25(k1=K1, b=B)
    reference.index([tokenize(t, "sv") or ["\u2205"] for t in texts], show_progress=False)
    ours = BM25Index(tmp_path / "ours")
    for question in ("Hur många medarbetare bjöds in till dialogen?", "socialförvaltningen Hässleholm"):
        tokens = query_tokens(question, ["sv"])
        expected = reference.get_scores([t for t in tokens if t in reference.vocab_dict])
        assert np.allclose(ours.scores(tokens), expected) and expected.max() > 0
