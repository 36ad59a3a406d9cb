"""Evaluation output: the terminal tables, the misses list, and a Markdown report with a plot."""

from __future__ import annotations

from pathlib import Path

from assistant.eval import CURVE, QueryResult

COLUMNS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")
HEADS = ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10")


def table(all_metrics: dict[str, dict], title: str = "") -> str:
    """One row per mode and language: ranking metrics of the in-scope queries, then the refusal rates
    ("nothing relevant" answered to in-scope and to out-of-scope queries, with their counts)."""
    head = (
        f"{'mode':8} {'lang':5} {'n':>5} "
        + " ".join(f"{h:>7}" for h in HEADS)
        + f"  {'in-scope refused':>16}  {'out-of-scope refused':>20}"
    )
    rows = [title, head, "-" * len(head)] if title else [head, "-" * len(head)]
    for mode, m in all_metrics.items():
        for lang, values in [("all", m["overall"]), *m["by_language"].items()]:
            rows.append(f"{mode:8} {lang:5} {_row(values)}")
    kinds = [(mode, m["by_kind"]) for mode, m in all_metrics.items() if m.get("by_kind")]
    if kinds:
        rows += ["", "Conversations: the last turn asked with its history, and cold (alone)"]
        rows.append(f"{'mode':8} {'kind':9} {'asked':7} {'n':>5} " + " ".join(f"{h:>7}" for h in HEADS))
        for mode, by_kind in kinds:
            for kind, pair in by_kind.items():
                for how in ("history", "cold"):
                    rows.append(f"{mode:8} {kind:9} {how:7} {_row(pair[how], refusals=False)}")
                gain = pair["history"].get("mrr@10", 0) - pair["cold"].get("mrr@10", 0)
                rows.append(f"{mode:8} {kind:9} MRR@10 with history minus cold: {gain:+.3f}")
    return "\n".join(rows)


def _row(values: dict, refusals: bool = True) -> str:
    cells = " ".join(f"{values[c]:7.3f}" if c in values else f"{'-':>7}" for c in COLUMNS)
    if not refusals:
        return f"{values.get('queries', 0):5d} {cells}"
    n_oos = values.get("out_of_scope", 0)
    refused_in = _rate(values.get("in_scope_refused"), values.get("queries", 0))
    refused_out = _rate(values.get("out_of_scope_refused"), n_oos)
    return f"{values.get('queries', 0):5d} {cells}  {refused_in:>16}  {refused_out:>20}"


def _rate(share: float | None, n: int) -> str:
    return "-" if share is None else f"{share:.3f} of {n}"


def misses(results: list[QueryResult], cutoff: int = 5) -> list[str]:
    """One line per in-scope query without a relevant passage in the top `cutoff`."""
    lines = []
    for r in results:
        if r.query.out_of_scope:
            continue
        rank = r.first_relevant_rank
        if rank is None or rank > cutoff:
            first = r.answer.hits[0] if r.answer.hits else None
            came = f"{first.citation.title} ¶{first.citation.paragraph}: {first.text[:90]!r}" if first else "nothing"
            lines.append(
                f"{r.query.id} [{r.query.lang}] {r.query.query!r} -> first relevant at "
                f"{rank or '>' + str(len(r.answer.hits))}; first came {came}"
            )
    return lines


def write_report(
    folder: Path, all_metrics: dict[str, dict], all_results: dict[str, list[QueryResult]], title: str = ""
) -> Path:
    """report.md (the table and the misses) and recall_at_k.png (recall@k per mode and language)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, m in all_metrics.items():
        if m["overall"].get("queries"):
            axes[0].plot(CURVE, [m["overall"][f"recall@{c}"] for c in CURVE], marker="o", label=mode)
        for lang, values in m["by_language"].items():
            if values.get("queries"):
                axes[1].plot(CURVE, [values[f"recall@{c}"] for c in CURVE], marker=".", label=f"{mode} {lang}")
    for ax, heading in zip(axes, ("Recall@k per mode", "Recall@k per mode and question language")):
        ax.set(
            title=heading,
            xlabel="k",
            ylabel="share of questions with a relevant passage in the top k",
            ylim=(0, 1.02),
            xticks=CURVE,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "recall_at_k.png", dpi=110)
    plt.close(fig)
    heading = f"# Retrieval evaluation: {title}" if title else "# Retrieval evaluation"
    lines = [heading, "", "![recall@k](recall_at_k.png)", "", "```", table(all_metrics), "```", ""]
    for mode, results in all_results.items():
        lines += [f"## Misses ({mode}): first relevant passage not in the top 5", ""]
        lines += [f"- {line}" for line in misses(results)] or ["- none"]
        lines.append("")
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
