"""The records that flow through the pipeline. Offsets always point into the original source file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paragraph:
    index: int  # 1-based, within its article
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    language: str
    source: str  # path relative to the corpus folder
    start: int
    end: int
    paragraphs: tuple[Paragraph, ...]

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
