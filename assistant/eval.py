"""Score retrieval on test queries: recall@k (a relevant passage in the top k), MRR@10 and nDCG@10, per language
and per conversation kind, plus how often "nothing relevant" is answered in and out of scope.

Built for benchmark size: every query's relevant passages are looked up once (`Judge`), query vectors are
encoded in batches and shared by the modes, and no highlights are computed.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass, field

from assistant.answer import Answer, Assistant
from assistant.errors import SettingsError
from assistant.queries import EvalQuery, Judge

CUTOFFS = (1, 5, 10)
CURVE = tuple(range(1, 11))


@dataclass
class QueryResult:
    query: EvalQuery
    answer: Answer
    relevant: list[bool]  # per returned passage
    all_relevant: set[str] = field(default_factory=set)  # every chunk id in the index that is relevant

    @property
    def first_relevant_rank(self) -> int | None:
        return next((i + 1 for i, r in enumerate(self.relevant) if r), None)


class Evaluation:
    """One query set against one index; relevant passages and query vectors are computed once for all modes."""

    def __init__(self, assistant: Assistant, queries: list[EvalQuery], k: int = 10, judge: Judge | None = None):
        self.assistant, self.queries, self.k = assistant, queries, k
        self.judge = judge or Judge(assistant.index.chunks, assistant.index.articles.values())
        self.relevant = {q.id: self.judge.relevant(q) for q in queries}

    def run(self, mode: str, cold: bool = False) -> list[QueryResult]:
        """Ask every query with its conversation history and judge the passages; `cold`: ask only the queries
        that have a history, without it (to compare with)."""
        queries = self.conversations() if cold else self.queries
        histories = [[] if cold else list(q.history) for q in queries]
        searches = [t for q, h in zip(queries, histories) for t in self.assistant.search_texts(q.query, h)]
        self.assistant.prefetch(searches)  # one batched model call instead of one per question
        results = []
        for query, history in zip(queries, histories):
            answer = self.assistant.ask(query.query, k=self.k, history=history, mode=mode, highlight=False)
            every = self.relevant[query.id]
            results.append(QueryResult(query, answer, [h.chunk_id in every for h in answer.hits], every))
        return results

    def conversations(self) -> list[EvalQuery]:
        """The queries that are the last turn of a conversation."""
        return [q for q in self.queries if q.history]


def run_queries(assistant: Assistant, queries: list[EvalQuery], mode: str, k: int = 10) -> list[QueryResult]:
    """Ask and judge every query in one mode (see `Evaluation` to share the work between modes)."""
    return Evaluation(assistant, queries, k).run(mode)


def metrics(results: list[QueryResult], cold: list[QueryResult] | None = None) -> dict:
    """Overall and per-language metrics of the in-scope queries, refusal rates in and out of scope, and, given
    the same queries asked `cold` (without history), per conversation kind the metrics with history and cold."""
    in_scope = [r for r in results if not r.query.out_of_scope]
    out_scope = [r for r in results if r.query.out_of_scope]
    report = {"overall": _group(results), "by_language": {}}
    for lang in sorted({r.query.lang for r in results}):
        report["by_language"][lang] = _group([r for r in results if r.query.lang == lang])
    report["in_scope_refused"] = _share(in_scope, lambda r: r.answer.no_answer)
    report["out_of_scope_refused"] = _share(out_scope, lambda r: r.answer.no_answer)
    report["out_of_scope_queries"] = len(out_scope)
    # The names of earlier versions, kept for scripts that read them.
    report["no_answer_accuracy"] = report["out_of_scope_refused"]
    report["answered_in_scope"] = _share(in_scope, lambda r: not r.answer.no_answer)
    if cold is not None:
        report["by_kind"] = by_kind(results, cold)
    return report


def by_kind(with_history: list[QueryResult], cold: list[QueryResult]) -> dict:
    """Per conversation kind (follow_up, switch): metrics of the last turn asked with its history and cold."""
    cold_by_id = {r.query.id: r for r in cold}
    kinds: dict[str, dict] = {}
    for kind in sorted({r.query.kind or "history" for r in with_history if r.query.history}):
        chosen = [r for r in with_history if r.query.history and (r.query.kind or "history") == kind]
        kinds[kind] = {"history": _group(chosen), "cold": _group([cold_by_id[r.query.id] for r in chosen])}
    return kinds


def _group(results: list[QueryResult]) -> dict:
    """Ranking metrics over the group's in-scope queries, and its refusal rates."""
    in_scope = [r for r in results if not r.query.out_of_scope]
    out = _ir_metrics(in_scope)
    out["in_scope_refused"] = _share(in_scope, lambda r: r.answer.no_answer)
    out["out_of_scope"] = len(results) - len(in_scope)
    out["out_of_scope_refused"] = _share([r for r in results if r.query.out_of_scope], lambda r: r.answer.no_answer)
    return out


def _share(results, predicate) -> float | None:
    return round(sum(map(predicate, results)) / len(results), 4) if results else None


def _ir_metrics(results: list[QueryResult]) -> dict:
    """recall@k (hit rate), MRR@10 and nDCG@10 with binary relevance, averaged over queries.

    Computed here rather than by ranx: its just-in-time compilation cost seconds in every process, more than
    scoring a thousand queries. nDCG's ideal ranking counts every relevant passage in the index.
    """
    if not results:
        return {"queries": 0}
    sums = dict.fromkeys([*(f"recall@{c}" for c in CURVE), "mrr@10", "ndcg@10"], 0.0)
    for r in results:
        ranks = [i + 1 for i, rel in enumerate(r.relevant[:10]) if rel]
        for c in CURVE:
            sums[f"recall@{c}"] += bool(ranks and ranks[0] <= c)
        sums["mrr@10"] += 1 / ranks[0] if ranks else 0.0
        ideal = sum(1 / math.log2(i + 1) for i in range(1, min(10, len(r.all_relevant | _retrieved_relevant(r))) + 1))
        sums["ndcg@10"] += sum(1 / math.log2(rank + 1) for rank in ranks) / ideal if ideal else 0.0
    return {"queries": len(results), **{name: round(total / len(results), 4) for name, total in sums.items()}}


def _retrieved_relevant(r: QueryResult) -> set[str]:
    return {h.chunk_id for h, rel in zip(r.answer.hits, r.relevant) if rel}


def best_threshold(results: list[QueryResult]) -> tuple[float, float, float]:
    """The no-answer threshold that best separates in-scope from out-of-scope top scores.

    Returns (threshold, no-answer accuracy, in-scope answered rate) maximising their sum,
    preferring the lowest such threshold (it keeps the most in-scope answers).
    """
    tops = [(r.answer.hits[0].score if r.answer.hits else 0.0, r.query.out_of_scope) for r in results]
    best = (0.0, 0.0, 1.0)
    for threshold in sorted({round(s, 3) for s, _ in tops}):
        oos = [s < threshold for s, o in tops if o]
        ins = [s >= threshold for s, o in tops if not o]
        score = (sum(oos) / max(1, len(oos)), sum(ins) / max(1, len(ins)))
        if sum(score) > best[1] + best[2]:
            best = (threshold, *score)
    return best


# --- requirements (the CI guard) ------------------------------------------------------------------------

_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
REQUIRABLE = (*(f"recall@{c}" for c in CURVE), "mrr@10", "ndcg@10", "in_scope_refused", "out_of_scope_refused")


@dataclass(frozen=True)
class Requirement:
    metric: str
    op: str
    value: float
    origin: str  # how the user said it, for the message

    def failure(self, report: dict) -> str | None:
        """None when `report` (the output of `metrics`) meets the requirement, else one line saying why not."""
        actual = report["overall"].get(self.metric)
        if actual is None:
            return f"{self.metric} was not measured (no such queries in the set): {self.origin} cannot be checked"
        if _OPERATORS[self.op](actual, self.value):
            return None
        side = "below" if self.op in (">=", ">") else "above"
        return f"{self.metric} {actual:.3f} is {side} {self.origin}"


def parse_requirement(text: str) -> Requirement:
    """`recall@5>=0.97` -> Requirement; a bad one is a SettingsError naming what is allowed."""
    match = re.fullmatch(r"\s*([\w@]+)\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+)\s*", text)
    if not match or match[1].lower() not in REQUIRABLE:
        raise SettingsError(
            f"--require {text!r} is not understood: write METRIC>=NUMBER (or <=), "
            f"METRIC one of {', '.join(REQUIRABLE)}."
        )
    return Requirement(match[1].lower(), match[2], float(match[3]), f"--require {text.strip()}")
