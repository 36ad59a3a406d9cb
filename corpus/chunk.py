"""Sentence-aware chunking: consecutive paragraphs of an article packed up to a token budget.

A sentence is never cut. A paragraph longer than the budget is split between sentences;
`overlap` repeats the last sentences of a chunk at the start of the next one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from corpus.types import Article, Chunk

# A sentence ends at . ! ? … (optionally closed by a quote or bracket) before whitespace and
# an upper-case letter, digit, dash or opening quote. Abbreviations are followed by lower case
# ("t.ex. från", "exkl. moms"), so they rarely end a sentence by this rule.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[»«\"”’)]*\s+(?=[\"“”»«(–\-A-ZÅÄÖÆØÉ0-9])")


@dataclass(frozen=True)
class Sentence:
    paragraph: int
    start: int
    end: int
    text: str


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences of `text`, shifted by `offset`."""
    spans, begin = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((offset + begin, offset + match.start()))
        begin = match.end()
    if begin < len(text):
        spans.append((offset + begin, offset + len(text.rstrip())))
    return spans


def article_sentences(article: Article) -> list[Sentence]:
    return [
        Sentence(p.index, start, end, p.text[start - p.start : end - p.start])
        for p in article.paragraphs
        for start, end in split_sentences(p.text, p.start)
    ]


def word_count(text: str) -> int:
    """A model-free token estimate for tests and tools without the model."""
    return len(text.split())


def chunk_article(
    article: Article, max_tokens: int, count_tokens: Callable[[str], int] = word_count, overlap: int = 0
) -> list[Chunk]:
    sentences = article_sentences(article)
    groups: list[list[Sentence]] = []
    current: list[Sentence] = []
    size = 0
    for sentence in sentences:
        n = count_tokens(sentence.text)
        if current and size + n > max_tokens:
            groups.append(current)
            current = current[-overlap:] if overlap else []
            size = sum(count_tokens(s.text) for s in current)
        current.append(sentence)
        size += n
    if current and (not groups or current != groups[-1][-len(current) :]):
        groups.append(current)
    return [_make_chunk(article, group, position) for position, group in enumerate(groups)]


def _make_chunk(article: Article, group: list[Sentence], position: int) -> Chunk:
    parts = []
    for i, sentence in enumerate(group):
        if i:
            parts.append("\n" if sentence.paragraph != group[i - 1].paragraph else " ")
        parts.append(sentence.text)
    text = "".join(parts)
    start, end = group[0].start, group[-1].end
    key = f"{article.id}|{group[0].paragraph}|{start}|{end}|{text}"
    chunk_id = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    return Chunk(
        chunk_id,
        article.id,
        article.title,
        article.language,
        article.source,
        group[0].paragraph,
        start,
        end,
        text,
        position,
    )


def chunk_articles(
    articles: Iterable[Article], max_tokens: int, count_tokens: Callable[[str], int] = word_count, overlap: int = 0
) -> list[Chunk]:
    return [c for a in articles for c in chunk_article(a, max_tokens, count_tokens, overlap)]
