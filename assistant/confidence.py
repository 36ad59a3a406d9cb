"""How likely a passage answers the question: one calibrated number for labels and "nothing relevant".

Raw cosines of multilingual-e5 sit between 0.78 and 0.93 for almost any pair, and English questions
about Swedish text score lower across the board, so no cosine threshold separates answerable from
unanswerable questions. Instead four pieces of evidence per passage feed a small logistic model:

    cosine     the passage's cosine with the question
    margin     that cosine minus the mean cosine of the dense candidates (does it stand out?)
    coverage   idf-weighted share of the question's words found in the passage (index/bm25.py)
    agreement  whether the dense and the keyword retriever's best passages come from its article

The model is fitted by `python benchmarks/calibrate.py` on the tuning parts of the shipped
benchmarks (answerable and out-of-scope questions) and stored beside this file as
`calibration.json`; `refuse_below` is the probability under which the assistant answers "nothing
relevant", chosen there so that at most 1 % of the answerable tuning questions are refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.retrieve import Ranking
from index.store import StoredIndex

FEATURES = ("cosine", "margin", "coverage", "agreement")
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


@dataclass(frozen=True)
class Calibration:
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    refuse_below: float

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        """The shipped calibration (a JSON file written by benchmarks/calibrate.py)."""
        data = json.loads(path.read_text(encoding="utf-8"))
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"{path} was fitted on other features: run benchmarks/calibrate.py")
        return cls(*(tuple(data[k]) for k in ("mean", "scale", "weights")), data["bias"], data["refuse_below"])

    def probability(self, features: np.ndarray) -> np.ndarray:
        """The calibrated chance, per row of `features` (columns as FEATURES), that the passage answers."""
        z = (np.asarray(features, dtype=float) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights) + self.bias)))


def evidence(index: StoredIndex, query: str, ranking: Ranking, languages: list[str]) -> np.ndarray:
    """One row of FEATURES per hit of `ranking` (whose hits carry their cosines already)."""
    positions = [h.position for h in ranking.hits]
    if not positions:
        return np.zeros((0, len(FEATURES)))
    cosines = np.array([h.cosine for h in ranking.hits])
    mean = np.mean(list(ranking.dense.values())) if ranking.dense else cosines.mean()
    coverage = index.bm25.coverage(query, languages, positions)
    tops = [max(scores, key=scores.get) for scores in (ranking.dense, ranking.keyword) if scores]
    top_articles = [index.chunks[p].article_id for p in tops]
    agreement = [
        sum(a == index.chunks[p].article_id for a in top_articles) / max(1, len(top_articles)) for p in positions
    ]
    return np.column_stack([cosines, cosines - mean, coverage, agreement])
