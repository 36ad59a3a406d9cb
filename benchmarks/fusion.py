"""Fit the learned fusion (assistant/retrieve.py FUSION_WEIGHTS) on the tuning questions of both benchmarks.

    python benchmarks/fusion.py [--split tune|heldout]

For each benchmark's answerable tuning questions it takes the first RERANK_DEPTH chunks of weighted
fusion and their FUSION_FEATURES, and fits a linear score by a listwise loss (softmax over a question's
chunks, its relevant ones the target; each benchmark weighted equally; L2 0.01; the loss is convex, so
the weights do not depend on where the search starts). It prints the weights to paste into
assistant/retrieve.py and R@1 / R@5 / MRR@10 of weighted and learned fusion: fitted on all tuning
questions, and cross-validated (5 folds x 3 shuffles: each question ranked by weights fitted without
it). `--split heldout` also prints the held-out parts with the tuning fit: for reporting, never for
choosing. Reuses the indexes under var/eval/ (built by benchmarks/calibrate.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.queries import Judge, load_queries  # noqa: E402
from assistant.retrieve import (  # noqa: E402
    FUSION_FEATURES,
    RERANK_DEPTH,
    find,
    fusion_features,
    keyword_text,
    rank,
)
from assistant.settings import Settings  # noqa: E402
from benchmarks.calibrate import BENCHMARKS, open_benchmark  # noqa: E402
from benchmarks.common import print_table  # noqa: E402
from index.embed import Embedder  # noqa: E402

L2 = 0.01


@dataclasses.dataclass
class Lists:
    """One benchmark's questions: each one's first chunks by weighted fusion, their features and relevance."""

    features: list[np.ndarray]
    relevant: list[np.ndarray]


def collect(name: str, embedder, split: str) -> Lists:
    """The benchmark's answerable questions of `split`, ranked by weighted fusion."""
    assistant = open_benchmark(name, embedder)
    index, settings = assistant.index, dataclasses.replace(assistant.settings, fusion="weighted")
    queries = [
        q for f in BENCHMARKS[name][1] for q in load_queries(ROOT / f) if q.split == split and not q.out_of_scope
    ]
    judge = Judge(index.chunks, index.articles.values())
    assistant.prefetch([q.query for q in queries])
    lists = Lists([], [])
    for q in queries:
        vector, keywords = assistant.query_vector(q.query), keyword_text(index, q.query, embedder)
        found = find(index, q.query, vector, min(len(index.chunks), settings.candidates), None, keywords)
        ranked = rank(index, q.query, vector, settings, "hybrid", RERANK_DEPTH, None, keywords)
        first = [h.position for h in ranked.hits]
        relevant = judge.relevant(q)
        lists.features.append(fusion_features(index, q.query, vector, first, found))
        lists.relevant.append(np.array([index.chunks[p].id in relevant for p in first]))
    return lists


def fit(parts: list[tuple[Lists, np.ndarray]]) -> np.ndarray:
    """Weights minimising the listwise loss over the chosen questions of each benchmark (equal weight each)."""
    from scipy.optimize import minimize  # installed with sentence-transformers; only fitting needs it

    chosen = []
    for lists, ids in parts:  # a question without a relevant chunk among its 30 has nothing to learn from
        usable = [(x, y / y.sum()) for x, y in _pairs(lists, ids) if y.any()]
        chosen += [(x, target, 1 / len(usable)) for x, target in usable]

    def loss(w):
        total, grad = 0.0, np.zeros_like(w)
        for x, target, weight in chosen:
            s = x @ w
            e = np.exp(s - s.max())  # softmax without overflow
            total += weight * (np.log(e.sum()) + s.max() - target @ s)
            grad += weight * x.T @ (e / e.sum() - target)
        return total / len(parts) + L2 / 2 * w @ w, grad / len(parts) + L2 * w

    return minimize(loss, np.zeros(len(FUSION_FEATURES)), jac=True, method="L-BFGS-B").x


def _pairs(lists: Lists, ids) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(lists.features[i], lists.relevant[i].astype(float)) for i in ids]


def firsts(lists: Lists, weights: np.ndarray | None) -> np.ndarray:
    """The rank of each question's first relevant chunk (0: none in the first RERANK_DEPTH); None: weighted."""
    out = []
    for x, y in zip(lists.features, lists.relevant):
        order = np.arange(len(y)) if weights is None else np.argsort(-(x @ weights), kind="stable")
        hits = np.flatnonzero(y[order])
        out.append(hits[0] + 1 if len(hits) else 0)
    return np.array(out)


def scores(first: np.ndarray) -> list[float]:
    """R@1, R@5, MRR@10 from first-relevant ranks."""
    return [
        float(np.mean(first == 1)),
        float(np.mean((first >= 1) & (first <= 5))),
        float(np.mean(np.where((first >= 1) & (first <= 10), 1 / np.maximum(first, 1), 0))),
    ]


def cross_validated(tune: dict[str, Lists], folds: int = 5, shuffles: int = 3) -> dict[str, np.ndarray]:
    """Each tuning question's first relevant rank under weights fitted without its fold (per shuffle)."""
    out = {name: [] for name in tune}
    for seed in range(shuffles):
        rng = np.random.default_rng(seed)
        fold = {name: rng.permutation(len(lists.relevant)) % folds for name, lists in tune.items()}
        ranks = {name: np.zeros(len(lists.relevant), dtype=int) for name, lists in tune.items()}
        for f in range(folds):
            weights = fit([(lists, np.flatnonzero(fold[name] != f)) for name, lists in tune.items()])
            for name, lists in tune.items():
                held = np.flatnonzero(fold[name] == f)
                part = Lists([lists.features[i] for i in held], [lists.relevant[i] for i in held])
                ranks[name][held] = firsts(part, weights)
        for name in tune:
            out[name].append(ranks[name])
    return {name: np.concatenate(r) for name, r in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="tune", choices=("tune", "heldout"))
    args = parser.parse_args()
    embedder = Embedder(Settings.from_env().model)
    tune = {name: collect(name, embedder, "tune") for name in BENCHMARKS}
    weights = fit([(lists, np.arange(len(lists.relevant))) for lists in tune.values()])
    print(f"FUSION_WEIGHTS = ({', '.join(f'{w:.3f}' for w in weights)})  # {', '.join(FUSION_FEATURES)}")
    cv = cross_validated(tune)
    rows = []
    for name, lists in tune.items():
        rows.append([name, "tune", "weighted", *scores(firsts(lists, None))])
        rows.append([name, "tune", "learned (fitted on all of tune)", *scores(firsts(lists, weights))])
        rows.append([name, "tune", "learned, cross-validated", *scores(cv[name])])
        if args.split == "heldout":
            held = collect(name, embedder, "heldout")
            rows.append([name, "heldout", "weighted", *scores(firsts(held, None))])
            rows.append([name, "heldout", "learned", *scores(firsts(held, weights))])
    print_table(["benchmark", "split", "fusion", "R@1", "R@5", "MRR@10"], rows)


if __name__ == "__main__":
    main()
