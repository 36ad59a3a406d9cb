"""The records that flow through the pipeline.

Offsets point into the text the index stores for a source: the file itself for .txt and .md (with
the line breaks inside hard-wrapped paragraphs and a Markdown front matter blanked to spaces of the
same length), the file with its markup blanked for a web page read without extraction, and the
extracted text (`corpus.document.layout`) for web pages, PDF and Word files read by a library.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paragraph:
    index: int  # 1-based, within its article
    start: int
    end: int
    text: str
    page: int = 0  # 1-based PDF page the paragraph starts on; 0 for formats without pages


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    language: str
    source: str  # path relative to the corpus folder
    start: int
    end: int
    paragraphs: tuple[Paragraph, ...]
    date: str = ""  # ISO date (YYYY-MM-DD) the article was published or written; "" when unknown
    author: str = ""  # "" when unknown

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.paragraphs)


@dataclass(frozen=True)
class Chunk:
    id: str
    article_id: str
    title: str
    language: str
    source: str
    paragraph: int  # first paragraph the chunk covers (1-based)
    start: int
    end: int
    text: str
    position: int  # order of the chunk inside its article, for "show more" context
    # (start, end) in `text` of each sentence (or piece of an over-long one); () in indexes built
    # before sentences were kept.
    sentences: tuple[tuple[int, int], ...] = ()

    def __post_init__(self):
        # Read back from JSON, the spans are lists; a frozen record holds tuples (and stays hashable).
        if not isinstance(self.sentences, tuple) or any(not isinstance(s, tuple) for s in self.sentences):
            object.__setattr__(self, "sentences", tuple((int(a), int(b)) for a, b in self.sentences))
