"""Files whose text is extracted by a library (web pages, PDF, Word): blocks in, articles out.

The index cites (paragraph, char span) in the text it stores. For these formats that text is the
extraction laid out as blocks separated by blank lines, so `layout` is the one place that decides
it: loading and "open source" (`corpus.load.read_source`) both call it on the same extraction.
"""

from __future__ import annotations

from dataclasses import dataclass

from corpus.lang import detect_language
from corpus.types import Article, Paragraph

SEPARATOR = "\n\n"


class Unreadable(Exception):
    """A file a library cannot read (damaged, encrypted, no text layer); the message is the one-line reason."""


@dataclass(frozen=True)
class Block:
    text: str  # one paragraph or heading, on one line
    page: int = 0  # 1-based page in a PDF; 0 where a format has no pages
    heading: bool = False


@dataclass(frozen=True)
class Extracted:
    blocks: tuple[Block, ...]
    title: str = ""  # the first block, from the file's metadata or title style; "" when it has none
    date: str = ""  # ISO date (YYYY-MM-DD) from the file's metadata; "" when unknown
    author: str = ""


def titled(blocks: list[Block], title: str, date: str = "", author: str = "") -> Extracted:
    """An extraction whose first block is its title: the title from metadata is put in front when the
    text does not start with it, so the stored text shows it and the article starts at it."""
    title = " ".join(title.split())
    if _junk_title(title):
        title = ""
    if title and blocks and not _same(blocks[0].text, title):
        blocks = [Block(title, page=blocks[0].page, heading=True), *blocks]
    return Extracted(tuple(blocks), title or (blocks[0].text if blocks and blocks[0].heading else ""), date, author)


def _junk_title(title: str) -> bool:
    """Metadata titles that name the file or the program, not the document."""
    low = title.casefold()
    return (
        low in ("untitled", "(unspecified)", "unknown")
        or low.startswith("microsoft word")
        or low.endswith((".doc", ".docx", ".pdf", ".odt", ".indd"))
    )


def layout(extracted: Extracted) -> str:
    """The text the index stores for an extracted file: its blocks, one per paragraph."""
    return SEPARATOR.join(b.text for b in extracted.blocks)


def articles_from_extracted(extracted: Extracted, source: str, article_id) -> list[Article]:
    """One article per file, offsets into `layout(extracted)`.

    The title is the first block when the file has one (see `titled`), else the first words of
    the text. Section headings stay paragraphs, so a passage can be found by its section name.
    """
    from corpus.meta import find_author, find_date

    spans, cursor = [], 0
    for block in extracted.blocks:
        spans.append((cursor, cursor + len(block.text)))
        cursor += len(block.text) + len(SEPARATOR)
    blocks = list(zip(extracted.blocks, spans))
    if not blocks:
        return []
    if extracted.title:  # `titled` put it first
        title, blocks = extracted.title, blocks[1:]
    else:
        title = _prefix(blocks[0][0].text)
    start = 0
    if not blocks:
        return []
    paragraphs = tuple(Paragraph(i + 1, a, b, blk.text, blk.page) for i, (blk, (a, b)) in enumerate(blocks))
    texts = [p.text for p in paragraphs]
    date = extracted.date or find_date(texts)
    author = extracted.author.strip() or find_author(texts)
    language = detect_language(" ".join(texts))
    identity = article_id(source, title, set())
    return [Article(identity, title, language, source, start, paragraphs[-1].end, paragraphs, date, author)]


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _prefix(text: str, limit: int = 80) -> str:
    cut = text.rfind(" ", 0, limit + 1)
    return text if len(text) <= limit else text[: cut if cut > 0 else limit].rstrip()
