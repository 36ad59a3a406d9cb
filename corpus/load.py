"""Read a corpus folder into `Article`s: .txt, .md and .html files, UTF-8 only.

Files that cannot be used (not UTF-8, empty, binary, links leaving the folder) are skipped
and reported with a reason; they never stop the build.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from corpus.clean import clean_lines
from corpus.errors import CorpusError
from corpus.lang import detect_language
from corpus.split import split_articles
from corpus.types import Article, Paragraph

SUFFIXES = (".txt", ".md", ".html", ".htm")


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # source path -> sha256 of its bytes

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(f"{k}:{v}" for k, v in sorted(self.files.items())).encode()).hexdigest()


def read_source(corpus_dir: Path, relative: str) -> str:
    """The text of one corpus file as the index saw it (HTML tags blanked, offsets kept).

    `relative` comes from outside (the UI), so it must resolve to a file inside the corpus folder.
    """
    root = corpus_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise CorpusError(f"{relative} is not a file in the corpus folder.")
    return _decode(path, path.read_bytes())


def load_corpus(corpus_dir: Path) -> LoadResult:
    if not corpus_dir.is_dir():
        raise CorpusError(f"Corpus folder {corpus_dir} does not exist: create it or pass --corpus DIR.")
    root = corpus_dir.resolve()
    result = LoadResult()
    for path in sorted(p for p in corpus_dir.rglob("*") if p.suffix.lower() in SUFFIXES):
        relative = path.relative_to(corpus_dir).as_posix()
        try:
            text = _read(path, root)
        except _Unusable as exc:
            result.skipped.append(Skipped(relative, str(exc)))
            continue
        result.files[relative] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        result.articles.extend(articles_from_text(text, relative))
    if not result.articles:
        detail = f" ({len(result.skipped)} unusable files skipped)" if result.skipped else ""
        raise CorpusError(f"No articles found in {corpus_dir}{detail}: add .txt, .md or .html files.")
    return result


class _Unusable(Exception):
    pass


def _read(path: Path, root: Path) -> str:
    if not path.resolve().is_relative_to(root):
        raise _Unusable("it is a link that points outside the corpus folder")
    if not path.is_file():
        raise _Unusable("it is not a regular file")
    data = path.read_bytes()
    if not data.strip():
        raise _Unusable("it is empty")
    if b"\x00" in data[:8192]:
        raise _Unusable("it looks binary (contains NUL bytes)")
    try:
        return _decode(path, data)
    except UnicodeDecodeError as exc:
        raise _Unusable(f"it is not valid UTF-8 (byte {exc.start}): convert it with iconv") from None


def _decode(path: Path, data: bytes) -> str:
    text = data.decode("utf-8")
    return blank_html(text) if path.suffix.lower() in (".html", ".htm") else text


_BLOCK_TAGS = re.compile(r"</?(p|div|h[1-6]|li|ul|ol|br|tr|td|section|article|header|footer|title|blockquote)\b", re.I)


def blank_html(html: str) -> str:
    """Replace markup by whitespace of the same length, so offsets still point into the file.

    Block tags become a newline (paragraph break), scripts and styles vanish, entities are
    decoded and padded with spaces.
    """
    import html as htmllib

    def blank(match: re.Match) -> str:
        tag = match.group(0)
        return ("\n" if _BLOCK_TAGS.match(tag) else " ") + " " * (len(tag) - 1)

    text = re.sub(r"<(script|style)\b.*?</\1\s*>", lambda m: " " * len(m.group(0)), html, flags=re.S | re.I)
    text = re.sub(r"<!--.*?-->", lambda m: " " * len(m.group(0)), text, flags=re.S)
    text = re.sub(r"<[^>]*>", blank, text)
    return re.sub(r"&#?\w+;", lambda m: htmllib.unescape(m.group(0)).ljust(len(m.group(0))), text)


def articles_from_text(text: str, source: str) -> list[Article]:
    articles, seen = [], set()
    for block in split_articles(clean_lines(text)):
        title, body = block[0], block[1:]
        if not body:
            continue
        paragraphs = tuple(Paragraph(i + 1, ln.start, ln.end, ln.text) for i, ln in enumerate(body))
        article_id = _article_id(source, title.text, seen)
        language = detect_language(" ".join(p.text for p in paragraphs))
        articles.append(Article(article_id, title.text, language, source, title.start, body[-1].end, paragraphs))
    return articles


def _article_id(source: str, title: str, seen: set[str]) -> str:
    """Derived from file and title, so it survives edits to the article body."""
    base = hashlib.sha1(f"{source}\n{title}".encode()).hexdigest()[:12]
    article_id, n = base, 1
    while article_id in seen:
        n += 1
        article_id = f"{base}-{n}"
    seen.add(article_id)
    return article_id
