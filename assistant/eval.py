"""Score retrieval on test queries: recall@k (a relevant passage in the top k), MRR@10 and
nDCG@10 computed by ranx, per language, plus no-answer accuracy on out-of-scope queries."""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.answer import Answer, Assistant
from assistant.queries import EvalQuery, is_relevant

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


def run_queries(assistant: Assistant, queries: list[EvalQuery], mode: str, k: int = 10) -> list[QueryResult]:
    chunks = assistant.index.chunks
    results = []
    for query in queries:
        answer = assistant.ask(query.query, k=k, mode=mode, highlight=False)  # ranking only
        relevant = [is_relevant(query, h.chunk_id, h.citation.article_id, h.text) for h in answer.hits]
        every = {c.id for c in chunks if not query.out_of_scope and is_relevant(query, c.id, c.article_id, c.text)}
        results.append(QueryResult(query, answer, relevant, every))
    return results


def metrics(results: list[QueryResult]) -> dict:
    """Overall and per-language metrics for in-scope queries; no-answer rates."""
    in_scope = [r for r in results if not r.query.out_of_scope]
    out_scope = [r for r in results if r.query.out_of_scope]
    report = {"overall": _ir_metrics(in_scope), "by_language": {}}
    for lang in sorted({r.query.lang for r in in_scope}):
        report["by_language"][lang] = _ir_metrics([r for r in in_scope if r.query.lang == lang])
    report["no_answer_accuracy"] = _share(out_scope, lambda r: r.answer.no_answer)
    report["answered_in_scope"] = _share(in_scope, lambda r: not r.answer.no_answer)
    report["out_of_scope_queries"] = len(out_scope)
    return report


def _share(results, predicate) -> float | None:
    return round(sum(map(predicate, results)) / len(results), 4) if results else None


def _ir_metrics(results: list[QueryResult]) -> dict:
    from ranx import Qrels, Run, evaluate

    if not results:
        return {"queries": 0}
    qrels = {r.query.id: {cid: 1 for cid in r.all_relevant | _retrieved_relevant(r)} for r in results}
    run = {}
    for r in results:
        # Scores by rank keep the order exactly as returned (fused scores can tie).
        ranking = {h.chunk_id: 1.0 / h.rank for h in r.answer.hits}
        run[r.query.id] = ranking or {"\u2205": 0.0}
    names = [f"hit_rate@{c}" for c in CURVE] + ["mrr@10", "ndcg@10"]
    values = evaluate(Qrels(qrels), Run(run), names, make_comparable=True)
    out = {"queries": len(results)}
    out.update({f"recall@{c}": round(float(values[f"hit_rate@{c}"]), 4) for c in CURVE})
    out["mrr@10"] = round(float(values["mrr@10"]), 4)
    out["ndcg@10"] = round(float(values["ndcg@10"]), 4)
    return out


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
