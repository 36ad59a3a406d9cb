"""Read a corpus folder into `Article`s: .txt and .md (UTF-8), web pages, PDF and Word files.

Web pages go through main-text extraction (`corpus.html`), falling back to the page with its markup
blanked when the extractor finds no article; PDF and Word files are read by `corpus.pdf` and
`corpus.word`. The same article saved twice (same text) is indexed once, the copy reported.
Files that cannot be used (not UTF-8, UTF-16, empty, binary, too large, unreadable, links leaving
the folder or going round in a loop, pipes, folders with a text-file name, names that are not
UTF-8) are skipped and reported with a one-line reason; they never stop the build.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from corpus.clean import clean_lines, unwrap
from corpus.document import Extracted, Unreadable, articles_from_extracted, layout
from corpus.errors import CorpusError
from corpus.html import extract_html
from corpus.lang import detect_language
from corpus.markdown import FrontMatter, front_matter
from corpus.meta import find_author, find_date
from corpus.options import LoadOptions
from corpus.pdf import extract_pdf
from corpus.split import split_articles
from corpus.types import Article, Paragraph
from corpus.word import extract_docx

TEXT_SUFFIXES = (".txt", ".md")
HTML_SUFFIXES = (".html", ".htm")
BINARY_SUFFIXES = (".pdf", ".docx")
SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + BINARY_SUFFIXES
LONG_TITLE_CHARS = 300  # a first line this long is text, not a title (a file that is one long line)
TITLE_PREFIX_CHARS = 80  # such an article is titled by the first words of that line
_GONE = "it disappeared while the corpus was being read"
_OUTSIDE = "it is a link that points outside the corpus folder"
_NO_TEXT = "it has no article text (only markup, scripts or boilerplate)"
_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "UTF-32", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32", "UTF-32"),
    (b"\xff\xfe", "UTF-16", "UTF-16"),
    (b"\xfe\xff", "UTF-16", "UTF-16"),
)


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # source path -> sha256 of its bytes
    duplicates: list[Skipped] = field(default_factory=list)  # articles left out as copies of one indexed

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(f"{k}:{v}" for k, v in sorted(self.files.items())).encode()).hexdigest()


def read_source(corpus_dir: Path, relative: str) -> str:
    """The text of one corpus file as the index saw it, the text citation offsets point into.

    That is the file itself (.txt, .md; wrapped lines joined and front matter blanked by spaces of the
    same length), the extracted text (web pages, PDF, Word; extraction is deterministic, so it is the
    same text the build saw), or a web page with its tags blanked.

    `relative` comes from outside (the UI), so it must resolve to a file inside the corpus folder.
    """
    path = source_path(corpus_dir, relative)
    try:
        return _document(path, path.read_bytes())[0]
    except OSError as exc:
        raise CorpusError(f"{relative} can no longer be read ({_why(exc)}): rebuild the index.") from None
    except (UnicodeDecodeError, Unreadable, _Unusable) as exc:
        raise CorpusError(f"{relative} can no longer be read ({exc}): rebuild the index.") from None


def source_path(corpus_dir: Path, relative: str) -> Path:
    """The original file of a source, to offer for download or open (a PDF at its page).

    `relative` comes from outside (the UI), so it must resolve to a file inside the corpus folder;
    CorpusError otherwise.
    """
    root = corpus_dir.resolve()
    try:
        path = (root / relative).resolve()
        usable = path.is_relative_to(root) and path.is_file()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte in the name
        usable = False
    if not usable:
        raise CorpusError(f"{relative} is not a file in the corpus folder.")
    return path


def load_corpus(corpus_dir: Path, options: LoadOptions | None = None, progress=None) -> LoadResult:
    """Every usable article under `corpus_dir`; unusable files are listed in `skipped` with a reason.

    Files are read one at a time and only their articles are kept, so memory grows with the text,
    not with the files' size. `progress(done, total)` is called after each file when given.
    """
    options = options or LoadOptions()
    if corpus_dir.exists() and not corpus_dir.is_dir():
        raise CorpusError(
            f"The corpus {corpus_dir} is a file, not a folder: pass the folder that holds it (--corpus DIR)."
        )
    if not corpus_dir.is_dir():
        raise CorpusError(f"Corpus folder {corpus_dir} does not exist: create it or pass --corpus DIR.")
    root = corpus_dir.resolve()
    result, first_seen = LoadResult(), {}
    candidates = _candidates(corpus_dir, result.skipped)
    for done, path in enumerate(candidates, start=1):
        relative = path.relative_to(corpus_dir).as_posix()
        try:
            data = _read(path, relative, root, options)
            text, articles = _document(path, data, relative)
            if not articles:
                raise _Unusable(_no_articles_reason(text))
            articles = _drop_copies(articles, relative, first_seen, result)
        except _Unusable as exc:
            result.skipped.append(Skipped(_printable(relative), str(exc)))
        else:
            result.files[relative] = hashlib.sha256(data).hexdigest()
            result.articles.extend(articles)
        if progress:
            progress(done, len(candidates))
    if not result.articles:
        # The build stops here, before it lists what it skipped: say why in the one line.
        shown = "; ".join(f"{s.path}: {s.reason}" for s in result.skipped[:3])
        more = ", ..." if len(result.skipped) > 3 else ""
        detail = f" ({len(result.skipped)} unusable files skipped: {shown}{more})" if result.skipped else ""
        raise CorpusError(f"No articles found in {corpus_dir}{detail}: add .txt, .md, .html, .pdf or .docx files.")
    return result


def _document(path: Path, data: bytes, relative: str = "") -> tuple[str, list[Article]]:
    """The stored text of one file and its articles (offsets into that text)."""
    suffix = path.suffix.lower()
    if suffix in BINARY_SUFFIXES:
        try:
            extracted = extract_pdf(data) if suffix == ".pdf" else extract_docx(data)
        except Unreadable as exc:
            raise _Unusable(str(exc)) from None
        return layout(extracted), articles_from_extracted(extracted, relative, _article_id)
    text = _decoded(path, data)
    if suffix in HTML_SUFFIXES:
        extracted = extract_html(text)
        if extracted is not None:
            return layout(extracted), _page_articles(extracted, relative)
        text = blank_html(text)
    if not text.strip():
        raise _Unusable(_NO_TEXT if suffix in HTML_SUFFIXES else "it is empty")
    markdown, meta = suffix == ".md", FrontMatter()
    if markdown:  # the front matter is metadata, not text: blanked, only its title stays (see corpus.markdown)
        text, meta = front_matter(text)
    if suffix in TEXT_SUFFIXES:
        text = unwrap(text)
    return text, _with_file_meta(articles_from_text(text, relative, markdown), meta.date, meta.author)


def _page_articles(extracted: Extracted, relative: str) -> list[Article]:
    """A web page's articles: its main text goes through the same cleaning and splitting as plain
    text, so a saved tag-archive page still splits into its articles."""
    return _with_file_meta(articles_from_text(layout(extracted), relative), extracted.date, extracted.author)


def _with_file_meta(articles: list[Article], date: str, author: str) -> list[Article]:
    """A file of one article gets the file's own date and author (a web page's metadata, a Markdown
    file's front matter); in a file of several each article keeps its own dateline, if any."""
    if len(articles) == 1 and (date or author):
        article = articles[0]
        articles = [replace(article, date=date or article.date, author=author or article.author)]
    return articles


def _drop_copies(articles: list[Article], relative: str, first_seen: dict, result: LoadResult) -> list[Article]:
    """`articles` without those whose text an earlier file already brought (compared with
    whitespace and case ignored). A file of nothing but copies is skipped with the reason; a file
    with some copies lists them in `result.duplicates`."""
    kept, copies = [], []
    for article in articles:
        key = hashlib.sha256(" ".join(article.text.split()).casefold().encode()).hexdigest()
        original = first_seen.setdefault(key, relative)
        if original == relative:
            kept.append(article)
        else:
            copies.append((article.title, original))
    if not kept:
        originals = ", ".join(sorted({original for _, original in copies}))
        raise _Unusable(f"it is a copy of {originals} (same text): indexed once")
    result.duplicates += [Skipped(_printable(relative), f"'{t}' is a copy of {o}") for t, o in copies]
    return kept


class _Unusable(Exception):
    pass


def _candidates(corpus_dir: Path, skipped: list[Skipped]) -> list[Path]:
    """Paths with a corpus suffix, sorted. Linked folders are not entered (no loops, no file read
    twice: one linking inside the corpus holds files read where they are); one linking outside it
    is reported like a file link leaving it, and a folder that cannot be listed is reported too,
    instead of silently missing."""

    def unreadable(exc: OSError) -> None:
        relative = Path(exc.filename).relative_to(corpus_dir).as_posix() if exc.filename else str(corpus_dir)
        skipped.append(Skipped(_printable(relative) + "/", f"the folder cannot be read ({_why(exc)})"))

    root, found, linked_out = corpus_dir.resolve(), [], []
    for folder, dirnames, filenames in os.walk(corpus_dir, onerror=unreadable):
        found += [Path(folder, n) for n in dirnames + filenames if os.path.splitext(n)[1].lower() in SUFFIXES]
        # A linked folder with a corpus suffix is a candidate above and reported by _read.
        linked_out += [
            Path(folder, n)
            for n in dirnames
            if os.path.splitext(n)[1].lower() not in SUFFIXES and _links_outside(Path(folder, n), root)
        ]
    for path in sorted(linked_out):
        skipped.append(Skipped(_printable(path.relative_to(corpus_dir).as_posix()) + "/", _OUTSIDE))
    return sorted(found)


def _links_outside(path: Path, root: Path) -> bool:
    """Whether `path` is a symbolic link to somewhere outside the corpus folder."""
    try:
        return path.is_symlink() and not path.resolve(strict=True).is_relative_to(root)
    except (OSError, RuntimeError):  # gone or looping since os.walk listed it: nothing to read there
        return False


def _read(path: Path, relative: str, root: Path, options: LoadOptions) -> bytes:
    """The bytes of a usable file, or _Unusable with the reason."""
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        raise _Unusable("its name is not valid UTF-8: rename it (e.g. convmv -f latin1 -t utf8)") from None
    try:
        inside = path.resolve(strict=True).is_relative_to(root)
    except RuntimeError:  # Python 3.11 reports a symlink loop this way
        raise _Unusable("it is a symbolic link that loops back on itself") from None
    except FileNotFoundError:
        raise _Unusable("it is a link to a file that does not exist" if path.is_symlink() else _GONE) from None
    except OSError as exc:
        raise _Unusable(_why(exc)) from None
    if not inside:
        raise _Unusable(_OUTSIDE)
    data = _read_bytes(path, options.max_file_bytes, options.max_file_mb)
    if not data.strip():
        raise _Unusable("it is empty")
    return data


def _decoded(path: Path, data: bytes) -> str:
    """A text file's bytes as text: UTF-8 (a web page also in the charset it declares), with a reason for
    every other encoding."""
    for mark, name, codec in _BOMS:
        if data.startswith(mark):
            raise _Unusable(f"it is {name}: convert it to UTF-8 (iconv -f {codec} -t UTF-8)")
    if b"\x00" in data[:8192]:
        raise _Unusable(_nul_reason(data[:8192]))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = _declared(data) if path.suffix.lower() in HTML_SUFFIXES else None
        if text is None:
            raise _Unusable(f"it is not valid UTF-8 (byte {exc.start}): convert it with iconv") from None
    if text.startswith("\ufeff"):
        # A UTF-8 byte-order mark is not whitespace to str.strip(), so it would stay glued to the
        # title; a space of the same length keeps every offset pointing at the same character.
        text = " " + text[1:]
    return text


_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)


# As browsers read them (the WHATWG encoding standard): these labels mean windows-1252 (Latin-1 for the five
# bytes it leaves undefined), and a <meta> that says UTF-16 cannot be true of a page whose <meta> could be read
# as ASCII: it means UTF-8, which the page already failed.
_LATIN = ("cp1252", "latin-1")
_AS_BROWSERS_READ = {"iso-8859-1": _LATIN, "latin1": _LATIN, "ascii": _LATIN, "us-ascii": _LATIN}
_AS_BROWSERS_READ |= {"utf-16": (), "utf-16le": (), "utf-16be": ()}


def _declared(data: bytes) -> str | None:
    """A web page decoded by the charset its <meta> declares (saved pages in ISO-8859-1 or windows-1252),
    or None when it declares none we know or its bytes do not fit it. UTF-8 is always tried first:
    pages that declare one charset and are saved in UTF-8 are common."""
    match = _CHARSET.search(data[:8192])
    if not match:
        return None
    label = match.group(1).decode("ascii").lower()
    for codec in _AS_BROWSERS_READ.get(label, (label,)):
        try:
            return data.decode(codec)
        except (LookupError, UnicodeDecodeError):
            continue
    return None


def _read_bytes(path: Path, limit: int | None, limit_mb: float) -> bytes:
    """The file's bytes, checked on the open file itself so nothing can change between check and read."""
    try:
        # O_NONBLOCK: a pipe (FIFO) opens at once instead of waiting forever for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise _Unusable(_why(exc)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise _Unusable("it is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise _Unusable("it is not a regular file (a pipe, socket or device)")
        if limit is not None and info.st_size > limit:
            raise _Unusable(_too_large(info.st_size, limit_mb))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(-1 if limit is None else limit + 1)
    except OSError as exc:
        raise _Unusable(_why(exc)) from None
    finally:
        os.close(fd)
    if limit is not None and len(data) > limit:  # it grew while being read
        raise _Unusable(_too_large(len(data), limit_mb))
    return data


def _too_large(size: int, limit_mb: float) -> str:
    mb = size / 1024 / 1024
    shown = f"{mb:.1f}" if mb >= 1 else f"{mb:.2g}"  # 10 KB over a 0.01 MB limit read "0.0 MB, larger than 0.01"
    return f"it is {shown} MB, larger than {limit_mb:g} MB (ASSISTANT_MAX_FILE_MB): split it or raise the limit"


def _why(exc: OSError) -> str:
    """One line for an operating-system error met while reading a corpus file."""
    if isinstance(exc, FileNotFoundError):
        return _GONE
    if isinstance(exc, PermissionError):
        return "it cannot be read (permission denied): check its permissions"
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link that loops back on itself"
    return f"it cannot be read ({exc.strerror or type(exc).__name__})"


def _nul_reason(head: bytes) -> str:
    """NUL bytes mean binary, unless they sit at every other byte: UTF-16 without a byte-order mark."""
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if max(even, odd) > len(head) // 4 and min(even, odd) * 10 < max(even, odd):
        codec = "UTF-16LE" if odd > even else "UTF-16BE"
        return f"it looks like UTF-16 without a byte-order mark: convert it to UTF-8 (iconv -f {codec} -t UTF-8)"
    return "it looks binary (contains NUL bytes)"


def _no_articles_reason(text: str) -> str:
    if clean_lines(text):
        return "it has only a title line and no article text under it"
    return _NO_TEXT


def _printable(relative: str) -> str:
    """The path as it can be printed and stored: bytes that are not UTF-8 and control characters shown as �."""
    name = relative.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in name)


_BLOCK_TAGS = re.compile(r"</?(p|div|h[1-6]|li|ul|ol|br|tr|td|section|article|header|footer|title|blockquote)\b", re.I)
_HIDDEN_START = re.compile(r"<!--|<(script|style)\b", re.I)
_HIDDEN_END = {name: re.compile(rf"</{name}\s*>", re.I) for name in ("script", "style")}
_TAG = re.compile(r"<[^>]*>")
_OPEN_TAG = re.compile(r"<[A-Za-z/!?]")
_ENTITY = re.compile(r"&#?\w+;")


def blank_html(html: str) -> str:
    """Replace markup by whitespace of the same length, so offsets still point into the file.

    Block tags become a newline (paragraph break), scripts, styles and comments vanish, entities
    are decoded and padded with spaces. Linear in the page's length, whatever its markup.
    """
    import html as htmllib

    def blank(match: re.Match) -> str:
        tag = match.group(0)
        return ("\n" if _BLOCK_TAGS.match(tag) else " ") + " " * (len(tag) - 1)

    text = _blank_hidden(html)
    # Tags only up to the last ">": the search for the ">" of each "<" after it would run to the
    # end of the page every time (quadratic on a page of unclosed tags). A tag still open there
    # runs to the end of the page, as a browser reads it; a "<" that starts no tag ("a < b") stays.
    last = text.rfind(">") + 1
    tail = _OPEN_TAG.search(text, last)
    cut = tail.start() if tail else len(text)
    text = _TAG.sub(blank, text[:last]) + text[last:cut] + " " * (len(text) - cut)
    return _ENTITY.sub(lambda m: htmllib.unescape(m.group(0)).ljust(len(m.group(0))), text)


def _blank_hidden(html: str) -> str:
    """`html` with scripts, styles and comments blanked, in one left-to-right scan. One left
    open runs to the end of the page, as a browser reads it."""
    parts, pos = [], 0
    while start := _HIDDEN_START.search(html, pos):
        if start.group(1):
            close = _HIDDEN_END[start.group(1).lower()].search(html, start.end())
            end = close.end() if close else len(html)
        else:
            close = html.find("-->", start.end())
            end = close + 3 if close >= 0 else len(html)
        parts += [html[pos : start.start()], " " * (end - start.start())]
        pos = end
    parts.append(html[pos:])
    return "".join(parts)


def articles_from_text(text: str, source: str, markdown: bool = False) -> list[Article]:
    """The articles of one file's text; offsets point into `text` (`markdown`: see `clean_lines`)."""
    articles, seen = [], set()
    for block in split_articles(clean_lines(text, markdown)):
        title, body = block[0].text, block[1:]
        if len(title) > LONG_TITLE_CHARS:
            # One long line is text, not a title: keep it as the first paragraph and title the
            # article by its first words (a prefix, so the title still starts at `start`).
            title, body = _title_prefix(title), block
        if not body:
            continue
        paragraphs = tuple(Paragraph(i + 1, ln.start, ln.end, ln.text) for i, ln in enumerate(body))
        article_id = _article_id(source, title, seen)
        texts = [p.text for p in paragraphs]
        language = detect_language(" ".join(texts))
        meta = find_date(texts), find_author(texts)
        articles.append(Article(article_id, title, language, source, block[0].start, body[-1].end, paragraphs, *meta))
    return articles


def _title_prefix(line: str) -> str:
    cut = line.rfind(" ", 0, TITLE_PREFIX_CHARS + 1)
    return line[: cut if cut > 0 else TITLE_PREFIX_CHARS].rstrip()


def _article_id(source: str, title: str, seen: set[str]) -> str:
    """Derived from file and title, so it survives edits to the article body."""
    base = hashlib.sha1(f"{source}\n{title}".encode()).hexdigest()[:12]
    article_id, n = base, 1
    while article_id in seen:
        n += 1
        article_id = f"{base}-{n}"
    seen.add(article_id)
    return article_id
