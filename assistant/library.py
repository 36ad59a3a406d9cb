"""What the CLI and the UI do to the article library besides asking: rebuild the index, open a source,
add uploaded files.

Both front ends call these, so `ui/` needs nothing from `corpus/` or `index/`.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from assistant.answer import Assistant, Citation
from assistant.errors import CorpusError, QuestionError
from assistant.settings import Settings
from corpus.load import SUFFIXES, load_corpus, read_source, source_path
from corpus.options import LoadOptions
from corpus.types import Article

UPLOAD_SUFFIXES = SUFFIXES  # what "Add articles" takes: every format the loader reads
UPLOAD_FOLDER = "uploads"  # inside the corpus folder: added files stay apart from the shipped ones
MAX_NAME_CHARS = 100

STALE = "The file changed since the index was built; rebuild to update. Showing the text as it was indexed."
GONE = "The file is no longer readable in the corpus folder; rebuild to update. Showing the text as it was indexed."


def rebuild(settings: Settings, embedder=None, say=print, progress: bool = True):
    """Build the index from `settings` (re-embedding only what changed) and switch to it; returns the
    build report. The model is loaded here unless an `embedder` is given."""
    from index.embed import Embedder
    from index.pgworkers import spread

    store = settings.index_store()
    embedder = spread(store, embedder or Embedder(settings.model), settings.embed_workers)
    return store.build(settings.build_options(), embedder, say=say, progress=progress)


@dataclass(frozen=True)
class Source:
    """A cited article's text: `text[start:end]` is the passage, `window` the article's span."""

    text: str
    title: str
    source: str
    start: int
    end: int
    window: tuple[int, int]
    notice: str | None = None  # set when the file differs from the index: `text` is then the indexed text
    page: int = 0  # the PDF page the passage is on (open the original there); 0 if none
    original: Path | None = None  # the file itself, resolved inside the corpus folder; None when it is gone


def source(assistant: Assistant, citation: Citation) -> Source:
    """The source of `citation`, checked against the index: when the file changed since the build, the
    indexed text (at the same offsets) with a notice, never the new file with the wrong text marked."""
    article = assistant.index.articles.get(citation.article_id)
    if article is None or article.source != citation.source:
        raise QuestionError(f"{citation.source} is not a source in this index: ask the question again.")
    notice, original = None, None
    try:
        # The path comes from the index, and read_source still refuses paths outside the corpus folder.
        text = read_source(assistant.settings.corpus_dir, article.source)
        original = source_path(assistant.settings.corpus_dir, article.source)
        if any(text[start:end] != piece for start, end, piece in _pieces(article)):
            text, notice = _indexed_text(article), STALE
    except (CorpusError, OSError, UnicodeDecodeError):
        text, notice = _indexed_text(article), GONE
    return Source(
        text,
        article.title,
        article.source,
        citation.start,
        citation.end,
        (article.start, article.end),
        notice,
        citation.page,
        original,
    )


def _pieces(article: Article) -> list[tuple[int, int, str]]:
    """(start, end, text) of the article's title line and paragraphs, as indexed."""
    title = (article.start, article.start + len(article.title), article.title)
    return [title] + [(p.start, p.end, p.text) for p in article.paragraphs]


def _indexed_text(article: Article) -> str:
    """The article as indexed, each line at its original offsets (so citations still point into it);
    the gaps between lines become blank lines."""
    parts, cursor = [], 0
    for start, end, text in _pieces(article):
        gap = start - cursor
        parts.append(" " * max(0, gap - 2) + "\n" * min(gap, 2))
        parts.append(text)
        cursor = end
    return "".join(parts)


@dataclass
class AddReport:
    """What `add_files` did with each file: the names written, and the files not added with why."""

    added: list[str] = field(default_factory=list)  # paths relative to the corpus folder
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (uploaded name, corpus file with that content)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (uploaded name, reason)


def add_files(settings: Settings, files: list[tuple[str, Path]]) -> AddReport:
    """Copy uploaded files, given as (name the user gave, where the upload lies), into the corpus
    folder's `uploads/` under a sanitised name. A file is rejected (with a reason) when its type is not
    one the corpus reads, it is over `max_upload_mb`, or the loader finds no usable article in it; a file
    whose bytes are already in the corpus is reported, not added. Nothing is overwritten and nothing is
    written outside the corpus folder. Rebuild afterwards to index what was added."""
    report = AddReport()
    root = settings.corpus_dir.resolve()
    known = _corpus_hashes(root)
    for name, path in files:
        shown = _printable(name)
        try:
            data, safe = _checked_upload(settings, name, Path(path))
        except _Rejected as exc:
            report.rejected.append((shown, str(exc)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in known:
            report.duplicates.append((shown, known[digest]))
            continue
        try:
            written = _write_new(root, safe, data)
        except _Rejected as exc:
            report.rejected.append((shown, str(exc)))
            continue
        known[digest] = written
        report.added.append(written)
    return report


class _Rejected(Exception):
    pass


def _checked_upload(settings: Settings, name: str, path: Path) -> tuple[bytes, str]:
    """The upload's bytes and its sanitised file name, or _Rejected saying why it cannot be added."""
    safe = safe_name(name)
    if Path(safe).suffix.lower() not in SUFFIXES:
        raise _Rejected(f"only {', '.join(SUFFIXES)} files can be added")
    limit = int(settings.max_upload_mb * 1024 * 1024)
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise _Rejected(f"the upload cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise _Rejected(f"it is larger than {settings.max_upload_mb:g} MB (ASSISTANT_MAX_UPLOAD_MB)")
    _loader_accepts(settings, safe, data)
    return data, safe


def _loader_accepts(settings: Settings, name: str, data: bytes) -> None:
    """_Rejected with the loader's reason unless the corpus loader finds an article in the file."""
    with tempfile.TemporaryDirectory() as folder:
        # A one-line companion article keeps load_corpus from stopping at "no articles" so that it
        # reports this file's own reason (not UTF-8, binary, only markup, ...) in `skipped`.
        # Its name starts with a dot, which safe_name never produces.
        Path(folder, ".companion.txt").write_text("Companion\n\nA sentence.\n")
        Path(folder, name).write_bytes(data)
        loaded = load_corpus(Path(folder), LoadOptions(settings.max_file_mb))
    reason = next((s.reason for s in loaded.skipped if s.path == name), None)
    if reason or not any(a.source == name for a in loaded.articles):
        raise _Rejected(reason or "no article text was found in it")


def safe_name(name: str) -> str:
    """A file name that is safe to create: the last part of `name` only, letters, digits, spaces,
    dots, dashes and underscores kept (others become _), no leading dot, at most MAX_NAME_CHARS."""
    base = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[^\w .-]", "_", base, flags=re.UNICODE)
    base = re.sub(r"\s+", " ", base).strip(" .")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1].strip(" .") or "upload"
    return f"{stem}.{suffix.lower()}" if suffix else stem


def _write_new(root: Path, name: str, data: bytes) -> str:
    """Write `data` as a new file under root/UPLOAD_FOLDER (name-2.txt, name-3.txt, ... when taken);
    returns its path relative to `root`."""
    folder = root / UPLOAD_FOLDER
    stem, suffix = os.path.splitext(name)
    try:
        folder.mkdir(exist_ok=True)
        if not folder.resolve().is_relative_to(root) or folder.is_symlink():
            raise _Rejected(f"{UPLOAD_FOLDER}/ in the corpus folder is a link leaving it; nothing was written")
        for n in range(1, 1000):
            target = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
            try:
                with target.open("xb") as fh:  # x: never overwrite, never follow an existing link
                    fh.write(data)
            except FileExistsError:
                continue
            except OSError:
                target.unlink(missing_ok=True)  # no half-written article left behind (disk full)
                raise
            return target.relative_to(root).as_posix()
    except OSError as exc:
        raise _Rejected(f"it cannot be written to the corpus folder ({exc.strerror or exc})") from None
    raise _Rejected("too many files with this name in uploads/")


def _corpus_hashes(root: Path) -> dict[str, str]:
    """sha256 of the bytes of every corpus file -> its path relative to the corpus folder."""
    hashes = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            if path.suffix.lower() in SUFFIXES and not path.is_symlink():
                try:
                    hashes.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(root).as_posix())
                except OSError:
                    continue
    return hashes


def _printable(name: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in str(name))[: MAX_NAME_CHARS * 2]
