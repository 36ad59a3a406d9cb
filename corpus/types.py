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
    # (start, end) in `text` of each sentence (or piece of an over-long one); () in indexes built
    # before sentences were kept.
    sentences: tuple[tuple[int, int], ...] = ()

    def __post_init__(self):
        # Read back from JSON, the spans are lists; a frozen record holds tuples (and stays hashable).
        if not isinstance(self.sentences, tuple) or any(not isinstance(s, tuple) for s in self.sentences):
            object.__setattr__(self, "sentences", tuple((int(a), int(b)) for a, b in self.sentences))
