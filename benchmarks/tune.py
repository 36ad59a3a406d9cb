"""How the retrieval defaults were chosen: keyword tokens, header and fusion weight on tuning questions.

    python benchmarks/tune.py [--split tune|heldout]

For each shipped benchmark (our articles; SweQUAD-MC) it reuses the index under var/eval/ (built
by benchmarks/calibrate.py), asks the answerable questions of the split, and prints R@1 / R@5 /
MRR@10 for dense only, keyword only and weighted fusion, with keyword search over stems alone or
stems + character 4-grams (the 4-grams' scores weighted 0.25 to 1), on the chunk alone or behind its
article's title + 60-word lead, and a chunk's dense score its best sentence window's cosine plus 0,
0.2 or 0.5 × its windows' mean. This is the weighted fusion that picks the chunks learned fusion then
re-orders (benchmarks/fusion.py fits that step on top of the weighted defaults chosen here).
Defaults are chosen on `--split tune` (the default); `heldout` is for reporting, never for choosing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.queries import Judge, load_queries  # noqa: E402
from assistant.retrieve import keyword_text, query_languages  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from benchmarks.calibrate import BENCHMARKS, open_benchmark  # noqa: E402
from benchmarks.common import print_table  # noqa: E402
from index.bm25 import query_token_parts, tokenize  # noqa: E402
from index.build import keyword_texts  # noqa: E402
from index.embed import Embedder  # noqa: E402

WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)  # dense weight; 0: keyword only, 1: dense only
# The weight of a question's 4-grams beside its stems (index/bm25.py); 0: stems only.
NGRAM_WEIGHTS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0)
MEAN_SHARES = (0.0, 0.2, 0.5)  # a chunk's dense score: best window + share × mean window (assistant/retrieve.py)


def keyword_scores(index, queries, context_words: int, ngram_weight: float, k1: float = 1.2, b: float = 0.5):
    """BM25 scores [queries, chunks] of the texts given (the shipped search: assistant/retrieve.py keyword_text):
    stems + ngram_weight x 4-grams (0: stems alone, an index without n-grams)."""
    import bm25s

    ngrams = ngram_weight > 0
    texts = keyword_texts(index.chunks, index.articles, context_words)
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(
        [tokenize(t, c.language, ngrams) or ["\u2205"] for t, c in zip(texts, index.chunks)], show_progress=False
    )
    vocab, languages = retriever.vocab_dict, query_languages(index)
    out = np.zeros((len(queries), len(index.chunks)), dtype=np.float32)
    for i, text in enumerate(queries):
        stems, grams = ([t for t in part if t in vocab] for part in query_token_parts(text, languages))
        if stems:
            out[i] += retriever.get_scores(stems)
        if grams:
            out[i] += ngram_weight * retriever.get_scores(grams)
    return out


def normalised(scores: np.ndarray, top: int = 100) -> np.ndarray:
    """Min-max over each query's top candidates, as assistant/retrieve.py fuses them."""
    out = np.zeros_like(scores)
    for i, row in enumerate(scores):
        best = np.argsort(-row)[:top]
        low, high = row[best].min(), row[best].max()
        out[i, best] = (row[best] - low) / (high - low) if high > low else 1.0
    return out


def scores_at(scores: np.ndarray, relevant: np.ndarray) -> tuple[float, float, float]:
    """R@1, R@5, MRR@10 of a [queries, chunks] score matrix."""
    order = np.argsort(-scores, axis=1)[:, :10]
    hits = np.take_along_axis(relevant, order, axis=1)
    first = np.where(hits.any(1), hits.argmax(1) + 1, 0)
    return (
        float(np.mean(first == 1)),
        float(np.mean((first >= 1) & (first <= 5))),
        float(np.mean(np.where(first > 0, 1 / np.maximum(first, 1), 0))),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="tune", choices=("tune", "heldout"))
    args = parser.parse_args()
    embedder = Embedder(Settings.from_env().model)
    for name, (_, files) in BENCHMARKS.items():
        assistant = open_benchmark(name, embedder)
        index = assistant.index
        queries = [q for f in files for q in load_queries(ROOT / f) if q.split == args.split and not q.out_of_scope]
        judge = Judge(index.chunks, index.articles.values())
        ids = [c.id for c in index.chunks]
        relevant = np.array([[cid in rel for cid in ids] for rel in (judge.relevant(q) for q in queries)])
        assistant.prefetch([q.query for q in queries])
        vectors = np.stack([assistant.query_vector(q.query) for q in queries])
        keywords = [keyword_text(index, q.query, embedder) for q in queries]
        rows = []
        for words in (0, 60):
            for ngram_weight in NGRAM_WEIGHTS:
                keyword = keyword_scores(index, keywords, words, ngram_weight)
                for share in MEAN_SHARES:
                    dense = index.chunk_scores(vectors, share)
                    for w in WEIGHTS:
                        fused = w * normalised(dense) + (1 - w) * normalised(keyword)
                        tokens = f"stems + {ngram_weight} x 4-grams" if ngram_weight else "stems"
                        rows.append([words, tokens, share, w, *(f"{v:.3f}" for v in scores_at(fused, relevant))])
        print(f"\n{name}, {args.split} split, {len(queries)} answerable questions")
        headers = ["header words", "keyword tokens", "window mean share", "dense weight", "R@1", "R@5", "MRR@10"]
        print_table(headers, rows)


if __name__ == "__main__":
    main()
