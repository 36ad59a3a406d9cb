"""How likely a passage answers the question: one calibrated number for labels and "nothing relevant".

Raw cosines of multilingual-e5 sit between 0.78 and 0.93 for almost any pair, and English questions
about Swedish text score lower across the board, so no cosine threshold separates answerable from
unanswerable questions. Instead six pieces of evidence per passage feed a small logistic model:

    cosine          the passage's cosine with the question
    margin          that cosine minus the mean cosine of the dense candidates (does it stand out?)
    coverage        idf-weighted share of the question's words found in the passage (index/bm25.py)
    agreement       whether the dense and the keyword retriever's best passages come from its article
    other_language  whether the question is in another language than the passage (then the words
                    cannot match, and coverage and missing say little)
    missing         how rare the rarest question word the passage lacks is (index/bm25.py), counted
                    only when question and passage share a language: a near-domain question finds the
                    right town's article but not the word it asks about ("öppettider")

The answer model also reads the product of every two pieces: what one piece means depends on another
(a cosine of 0.85 is high for an English question about Swedish text and low for a Swedish one; a
full coverage means less from a passage that barely stands out).

The model is fitted by `python benchmarks/calibrate.py` on the tuning parts of the shipped
benchmarks (answerable and out-of-scope questions) and stored beside this file as
`calibration.json`; `refuse_below` is the probability under which the assistant answers "nothing
relevant", chosen there so that at most 1 % of the answerable tuning questions are refused.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.errors import CalibrationError
from assistant.retrieve import Ranking
from corpus.lang import question_language
from index.store import StoredIndex

FEATURES = ("cosine", "margin", "coverage", "agreement", "other_language", "missing")
# What a search found, without the question's own traits: which reading of a possible follow-up to keep.
READING_FEATURES = FEATURES[:4]
CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


def model_inputs(features: np.ndarray, columns: int, pairs: bool) -> np.ndarray:
    """The first `columns` of `features`, and with `pairs` after them the product of every two of those."""
    x = np.asarray(features, dtype=float)[:, :columns]
    if not pairs:
        return x
    first, second = np.triu_indices(columns, k=1)
    return np.hstack([x, x[:, first] * x[:, second]])


@dataclass(frozen=True)
class Logistic:
    """A logistic model over the first columns of FEATURES (with `pairs`, also over their pairwise products),
    each input standardised by mean and scale."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    pairs: bool = False

    def __post_init__(self):
        inputs = self.columns * (self.columns + 1) // 2 if self.pairs else self.columns
        if len({len(self.mean), len(self.scale), len(self.weights), inputs}) > 1:
            raise ValueError("its model's sizes do not fit its inputs")

    @classmethod
    def of(cls, data: dict) -> Logistic:
        """The model stored as `data` (as dataclasses.asdict writes it)."""
        return cls(
            tuple(data["mean"]), tuple(data["scale"]), tuple(data["weights"]), data["bias"], data.get("pairs", False)
        )

    @property
    def columns(self) -> int:
        """How many FEATURES columns the model reads: n of them give n + n(n-1)/2 = n(n+1)/2 inputs with pairs."""
        inputs = len(self.weights)
        return round((math.sqrt(8 * inputs + 1) - 1) / 2) if self.pairs else inputs

    def probability(self, features: np.ndarray) -> np.ndarray:
        """The model's probability per row of `features` (columns as FEATURES)."""
        z = (model_inputs(features, self.columns, self.pairs) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights) + self.bias)))


@dataclass(frozen=True)
class Calibration:
    answer: Logistic  # over FEATURES: the labels and "nothing relevant"
    # Over READING_FEATURES: whether a question reads better joined with the previous one. The question's own
    # traits would decide that comparison wrongly: "missing" grows with every word searched, so it favours the
    # short reading (tuning conversations, follow-ups: 0.717 with the answer model, 0.821 with this one).
    reading: Logistic
    refuse_below: float

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        """The shipped calibration (a JSON file written by benchmarks/calibrate.py)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if tuple(data["features"]) != FEATURES:
                raise ValueError("it was fitted on other features")
            answer, reading = (Logistic.of(data[m]) for m in ("answer", "reading"))
            return cls(answer, reading, float(data["refuse_below"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # json's errors are ValueErrors
            raise CalibrationError(
                f"Cannot use the calibration {path} ({exc}): restore it from the repository, "
                "or refit it with `python benchmarks/calibrate.py --write`."
            ) from exc

    def probability(self, features: np.ndarray) -> np.ndarray:
        """The calibrated chance, per row of `features` (columns as FEATURES), that the passage answers."""
        return self.answer.probability(features)


def evidence(index: StoredIndex, query: str, ranking: Ranking, languages: list[str], hits=None) -> np.ndarray:
    """One row of FEATURES per hit of `ranking`, or per one of `hits` (Ranked, with their cosines)."""
    hits = ranking.hits if hits is None else hits
    positions = [h.position for h in hits]
    if not positions:
        return np.zeros((0, len(FEATURES)))
    cosines = np.array([h.cosine for h in hits])
    mean = np.mean(list(ranking.dense.values())) if ranking.dense else cosines.mean()
    coverage, missing = index.bm25.word_evidence(query, languages, positions)
    # A question the detector cannot place counts as written in each passage's language.
    asked_in = question_language(query)
    other = np.array([float(asked_in not in ("", index.chunks[p].language)) for p in positions])
    tops = [max(scores, key=scores.get) for scores in (ranking.dense, ranking.keyword) if scores]
    top_articles = [index.chunks[p].article_id for p in tops]
    agreement = [
        sum(a == index.chunks[p].article_id for a in top_articles) / max(1, len(top_articles)) for p in positions
    ]
    return np.column_stack([cosines, cosines - mean, coverage, agreement, other, missing * (1 - other)])
