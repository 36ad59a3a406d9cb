"""Fit the calibrated confidence (assistant/calibration.json) and the follow-up rule on tuning questions.

    python benchmarks/calibrate.py            # fit on the tuning parts, print tables (tuning and held-out)
    python benchmarks/calibrate.py --write    # ... and write assistant/calibration.json
    python benchmarks/calibrate.py --cv       # ... and cross-validate the model's form on the tuning parts

Uses the tuning parts (`"split": "tune"`) of both shipped benchmarks, answerable and out-of-scope
questions alike: our articles (eval/queries.jsonl against corpus/articles) and SweQUAD-MC
(eval/swequad/ against its own corpus). Each question's best passage gives one row of evidence
(assistant/confidence.py); a logistic regression over them and their pairwise products, each
benchmark and class weighted equally, maps it to a probability; the refusal threshold is the highest
that refuses at most 1 % of the answerable tuning questions of each benchmark. The held-out rows are
printed for the record only. Last, the follow-up rule (assistant/answer.py: FOLLOW_UP_WORDS,
FOLLOW_UP_GAIN) is swept on the tuning conversations (eval/conversations.jsonl) with the shipped
calibration. Indexes are built (incrementally) under var/eval/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.answer import Assistant, last_question  # noqa: E402
from assistant.confidence import (  # noqa: E402
    CALIBRATION_FILE,
    FEATURES,
    READING_FEATURES,
    Calibration,
    Logistic,
    model_inputs,
)
from assistant.library import rebuild  # noqa: E402
from assistant.queries import Judge, load_queries  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from index.bm25 import content_words  # noqa: E402
from index.embed import Embedder  # noqa: E402

BENCHMARKS = {
    "ours": ("corpus/articles", ["eval/queries.jsonl"]),
    "swequad": ("eval/swequad/corpus", ["eval/swequad/queries.jsonl", "eval/swequad/out_of_scope.jsonl"]),
}
MAX_REFUSED = 0.01
GAINS = (0.0, 0.05, 0.1, 0.2, 0.3, 1.0)  # 1.0: never read as a follow-up
WORD_LIMITS = (1, 2, 3, 4, 99)  # content words of a follow-up; 99: any question


def open_benchmark(name: str, embedder, calibration: Calibration | None = None) -> Assistant:
    """The benchmark's assistant over its own index (built incrementally); without `calibration` its
    confidences are meaningless (the evidence rows are not), so a calibration can be fitted from scratch."""
    corpus, _ = BENCHMARKS[name]
    settings = Settings.from_env(corpus_dir=ROOT / corpus, index_dir=ROOT / "var" / "eval" / name / "index")
    rebuild(settings, embedder, say=lambda _: None, progress=False)
    n = len(FEATURES)
    blank = Logistic((0.0,) * n, (1.0,) * n, (0.0,) * n, 0.0)
    calibration = calibration or Calibration(blank, blank, 0.0)
    return Assistant(settings.index_store().load(embedder.fingerprint), embedder, settings, calibration)


def rows(assistant: Assistant, queries) -> np.ndarray:
    """The evidence of each question's lead passage (hybrid ranking; see assistant/retrieve.py Ranking.lead)."""
    assistant.prefetch([q.query for q in queries])
    # Through the assistant's own search (private, deliberately): the rows must be what `ask` decides on.
    return np.array([assistant._search(q.query, "hybrid", 1, None).evidence for q in queries])


def fit(
    features: np.ndarray, y: np.ndarray, weight: np.ndarray, pairs: bool = False, l2: float = 1.0, steps: int = 5000
) -> Logistic:
    """Weighted logistic regression on standardised inputs (plain gradient descent; a few dozen numbers)."""
    x = model_inputs(features, features.shape[1], pairs)
    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / scale
    w, b = np.zeros(x.shape[1]), 0.0
    weight = weight / weight.sum()
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.1 * (z.T @ (weight * (p - y)) + l2 * w / len(y))
        b -= 0.1 * float(weight @ (p - y))
    return Logistic(tuple(mean.tolist()), tuple(scale.tolist()), tuple(w.tolist()), b, pairs)


def highest_threshold(answerable: np.ndarray) -> float:
    """The highest threshold that refuses at most MAX_REFUSED of these answerable questions' probabilities."""
    return float(np.sort(answerable)[int(MAX_REFUSED * len(answerable))])


def fit_answer(parts: dict, pairs: bool = True) -> tuple[Logistic, float]:
    """A model fitted on `parts` (benchmark -> (evidence rows, answerable flags)), each benchmark and class
    weighted equally, and its threshold: the highest refusing at most MAX_REFUSED of each one's answerable."""
    x = np.vstack([x for x, _ in parts.values()])
    y = np.concatenate([y for _, y in parts.values()]).astype(float)
    groups = [(name, answerable) for name, (_, flags) in parts.items() for answerable in flags]
    sizes = Counter(groups)
    weight = np.array([1.0 / sizes[g] for g in groups])
    model = fit(x, y, weight, pairs=pairs)
    return model, min(highest_threshold(model.probability(x_)[y_]) for x_, y_ in parts.values())


def cross_validate(tune: dict, folds: int = 5, shuffles: int = 12) -> None:
    """Refusal on tuning rows the model was not fitted on, without and with pairwise products: a richer model
    fits its own rows better by construction, so the choice between them is checked out of fold too."""
    print(f"\ncross-validated on the tuning parts ({folds} folds x {shuffles} shuffles, threshold per training part)")
    for pairs in (False, True):
        counts = {name: np.zeros(4) for name in tune}
        aucs: dict[str, list[float]] = {name: [] for name in tune}
        for seed in range(shuffles):
            rng = np.random.default_rng(seed)
            fold = {name: rng.permutation(len(y)) % folds for name, (_, y) in tune.items()}
            p = {name: np.zeros(len(y)) for name, (_, y) in tune.items()}
            for f in range(folds):
                model, threshold = fit_answer(
                    {n: (x[fold[n] != f], y[fold[n] != f]) for n, (x, y) in tune.items()}, pairs
                )
                for name, (x, y) in tune.items():
                    out, answerable = fold[name] == f, y[fold[name] == f]
                    p[name][out] = model.probability(x[out])
                    refused = p[name][out] < threshold
                    counts[name] += [
                        refused[answerable].sum(),
                        answerable.sum(),
                        refused[~answerable].sum(),
                        (~answerable).sum(),
                    ]
            for name, (_, y) in tune.items():  # how often an answerable question outranks an out-of-scope one
                outside, answerable = p[name][~y][:, None], p[name][y][None, :]
                aucs[name].append(float(np.mean((outside < answerable) + 0.5 * (outside == answerable))))
        line = "; ".join(
            f"{name} in-scope refused {c[0] / c[1]:.3f}, out-of-scope {c[2] / c[3]:.3f}, AUC {np.mean(aucs[name]):.3f}"
            for name, c in counts.items()
        )
        print(f"  {'with' if pairs else 'without'} pairwise products: {line}")


def follow_up_gains(assistant: Assistant) -> None:
    """MRR@10 of the tuning conversations' last turns per kind, for each follow-up rule that could be used."""
    queries = [q for q in load_queries(ROOT / "eval" / "conversations.jsonl") if q.split == "tune"]
    judge = Judge(assistant.index.chunks, assistant.index.articles.values())
    turns = []
    for q in queries:
        relevant = judge.relevant(q)
        tries = []
        for text in (q.query, f"{last_question(q.history)} {q.query}"):
            search = assistant._search(text, "hybrid", 10, None)
            rank = next((i + 1 for i, h in enumerate(search.hits) if h.chunk_id in relevant), None)
            tries.append((1 / rank if rank else 0.0, search.reading))
        turns.append((q.kind, len(content_words(q.query, assistant._languages)), tries))
    print("\nfollow-up rule (tuning conversations, MRR@10 of the last turn; cold = asked alone)")
    for words in WORD_LIMITS:
        for gain in GAINS:
            scores: dict[str, list[float]] = {}
            for kind, count, ((alone, p_alone), (joined, p_joined)) in turns:
                follow_up = count <= words and p_joined > p_alone + gain
                scores.setdefault(kind, []).append(joined if follow_up else alone)
            line = ", ".join(f"{k} {np.mean(v):.3f}" for k, v in sorted(scores.items()))
            print(f"  at most {words:2d} content words, gain {gain:4.2f}: {line}")
    cold = {k: np.mean([t[2][0][0] for t in turns if t[0] == k]) for k, _, _ in turns}
    print("  cold: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(cold.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write assistant/calibration.json")
    parser.add_argument("--cv", action="store_true", help="also cross-validate on the tuning parts (about a minute)")
    args = parser.parse_args()
    embedder = Embedder(Settings.from_env().model)
    data = {}
    for name, (_, files) in BENCHMARKS.items():
        assistant = open_benchmark(name, embedder)
        queries = [q for f in files for q in load_queries(ROOT / f)]
        for split in ("tune", "heldout"):
            chosen = [q for q in queries if q.split == split and not q.history]
            data[name, split] = (rows(assistant, chosen), np.array([not q.out_of_scope for q in chosen]))
    tune = {name: data[name, "tune"] for name in BENCHMARKS}
    model, threshold = fit_answer(tune)
    reading, _ = fit_answer({n: (x[:, : len(READING_FEATURES)], y) for n, (x, y) in tune.items()}, pairs=False)
    print(f"features {FEATURES} and their pairwise products: refuse below {threshold:.3f}")
    print(f"reading {READING_FEATURES}: weights {np.round(reading.weights, 3).tolist()}")
    print(f"{'benchmark':10} {'split':8} {'threshold':>9} {'in-scope refused':>18} {'out-of-scope refused':>22}")
    for (name, split), (x_, y_) in data.items():
        p = model.probability(x_)
        for t in sorted({threshold, 0.2, 0.4}):
            ins, oos = p[y_] < t, p[~y_] < t
            print(
                f"{name:10} {split:8} {t:9.3f} {ins.mean():8.3f} ({ins.sum():3d}/{len(ins):4d}) "
                f"{oos.mean():12.3f} ({oos.sum():3d}/{len(oos):3d})"
            )
    if args.write:
        record = {
            "features": list(FEATURES),
            "answer": asdict(model),
            "reading": asdict(reading),
            # Rounded down: rounding up could refuse the very question the threshold was set below.
            "refuse_below": math.floor(threshold * 1e4) / 1e4,
            "fitted_on": "tuning parts of eval/queries.jsonl and eval/swequad/ (benchmarks/calibrate.py)",
        }
        CALIBRATION_FILE.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"written {CALIBRATION_FILE}")
    if args.cv:
        cross_validate(tune)
    fitted = Calibration(model, reading, threshold)
    follow_up_gains(open_benchmark("ours", embedder, fitted))


if __name__ == "__main__":
    main()
