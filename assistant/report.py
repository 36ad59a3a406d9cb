"""Evaluation output: the terminal table, the misses list, and a Markdown report with a plot."""

from __future__ import annotations

from pathlib import Path

from assistant.eval import CURVE, QueryResult

COLUMNS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10")


def table(all_metrics: dict[str, dict]) -> str:
    head = f"{'mode':8} {'lang':8} {'n':>3} " + " ".join(f"{c:>9}" for c in COLUMNS)
    rows = [head, "-" * len(head)]
    for mode, m in all_metrics.items():
        for lang, values in [("all", m["overall"]), *m["by_language"].items()]:
            cells = " ".join(f"{values.get(c, 0):9.3f}" for c in COLUMNS)
            rows.append(f"{mode:8} {lang:8} {values['queries']:3d} {cells}")
        if m["no_answer_accuracy"] is not None:
            rows.append(
                f"{mode:8} no-answer accuracy on {m['out_of_scope_queries']} out-of-scope: "
                f"{m['no_answer_accuracy']:.3f}; in-scope answered: {m['answered_in_scope']:.3f}"
            )
    return "\n".join(rows)


def misses(results: list[QueryResult], cutoff: int = 5) -> list[str]:
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


def write_report(folder: Path, all_metrics: dict[str, dict], all_results: dict[str, list[QueryResult]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, m in all_metrics.items():
        axes[0].plot(CURVE, [m["overall"][f"recall@{c}"] for c in CURVE], marker="o", label=mode)
        for lang, values in m["by_language"].items():
            axes[1].plot(CURVE, [values[f"recall@{c}"] for c in CURVE], marker=".", label=f"{mode} {lang}")
    for ax, title in zip(axes, ("Recall@k per mode", "Recall@k per mode and question language")):
        ax.set(
            title=title,
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
    lines = ["# Retrieval evaluation", "", "![recall@k](recall_at_k.png)", "", "```", table(all_metrics), "```", ""]
    for mode, results in all_results.items():
        lines += [f"## Misses ({mode}): first relevant passage not in the top 5", ""]
        lines += [f"- {line}" for line in misses(results)] or ["- none"]
        lines.append("")
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
