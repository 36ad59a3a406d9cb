"""Sentence-aware chunking: consecutive paragraphs of an article packed up to a token budget.

A chunk holds the paragraphs of one PDF page at most (formats without pages have no such limit).

A paragraph longer than the budget is split between sentences; a single sentence longer than
the budget (a line without punctuation) is cut into pieces at spaces, so no chunk exceeds it.
`overlap` repeats the last sentences of a chunk at the start of the next one. Each chunk keeps
the spans of its sentences, so highlighting never has to split the article again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from corpus.types import Article, Chunk

# A sentence ends at . ! ? … (optionally closed by a quote or bracket) before whitespace and
# an upper-case letter, digit, dash or opening quote. Abbreviations are mostly followed by lower
# case ("t.ex. från", "exkl. moms"), so they rarely end a sentence by this rule; the lists below
# catch the common ones followed by a number or a name.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[»«\"”’)]*\s+(?=[\"“”»«(–\-A-ZÅÄÖÆØÉ0-9])")
# Common Swedish, Danish and English abbreviations (compared case-folded). No sentence ends after
# one of them before a digit ("börjar kl. 18", "kosta ca. 240 miljoner", "nr. 5"); a sentence
# that ends in "20 kr." and a next one starting with a year are rarer. Those that only ever lead
# into what follows do not end one before a capital either ("till bl.a. Fritidsförvaltningen",
# "Dr. Karl Nyberg"). "m.m.", "osv.", "etc." and "kr." often end a sentence: before a capital they do.
_ABBREVIATIONS = frozenset(
    "kl. ca. bl.a. t.ex. d.v.s. dvs. s.k. fr.o.m. t.o.m. nr. st. resp. f.d. m.m. osv. f.eks. kr. mio. mia. "
    "jf. pga. e.g. i.e. etc. dr. mr. mrs. no.".split()
)
_LEADING = frozenset("bl.a. t.ex. d.v.s. dvs. s.k. fr.o.m. t.o.m. f.d. f.eks. jf. pga. e.g. i.e. dr. mr. mrs.".split())
_LAST_WORD = re.compile(r"[(\"“”»«']*(\S*)$")


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
        if _abbreviation_goes_on(text, match):
            continue
        spans.append((offset + begin, offset + match.start()))
        begin = match.end()
    if begin < len(text):
        spans.append((offset + begin, offset + len(text.rstrip())))
    return spans


def _abbreviation_goes_on(text: str, end: re.Match) -> bool:
    """Whether the sentence end `end` follows an abbreviation that does not end a sentence there."""
    # Only the few characters before the full stop: the longest abbreviation is 7 ("fr.o.m."), and
    # a look further back would make a paragraph of many sentences quadratic.
    word = _LAST_WORD.search(text, max(0, end.start() - 10), end.start()).group(1).casefold()
    return word in _LEADING or (word in _ABBREVIATIONS and text[end.end()].isdigit())


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
    """The article's chunks, in order, none over `max_tokens` (an over-long sentence is cut into pieces)."""
    groups: list[list[Sentence]] = []
    current: list[Sentence] = []
    sizes: list[int] = []  # token count of each sentence in `current`
    # A chunk never crosses a PDF page, so its citation opens at the one page that holds it.
    page = {p.index: p.page for p in article.paragraphs}
    for sentence in article_sentences(article):
        n = count_tokens(sentence.text)
        pieces = [(sentence, n)] if n <= max_tokens else _split_long(sentence, n, max_tokens, count_tokens)
        for piece, n in pieces:
            new_page = bool(current) and page[piece.paragraph] != page[current[-1].paragraph]
            if current and (new_page or sum(sizes) + n > max_tokens):
                groups.append(current)
                keep = 0 if new_page else min(overlap, len(current))
                current, sizes = (current[-keep:], sizes[-keep:]) if keep else ([], [])
                while current and sum(sizes) + n > max_tokens:  # the repeated sentences must leave room
                    current, sizes = current[1:], sizes[1:]
            current.append(piece)
            sizes.append(n)
    if current and (not groups or current != groups[-1][-len(current) :]):
        groups.append(current)
    return [_make_chunk(article, group, position) for position, group in enumerate(groups)]


def _split_long(sentence: Sentence, tokens: int, max_tokens: int, count_tokens) -> list[tuple[Sentence, int]]:
    """Pieces of a sentence longer than the budget, each within it, with their token counts.

    A piece ends at the last space that fits, or between two characters where there is none
    (a URL, text without spaces).
    """
    text, pieces, begin = sentence.text, [], 0
    guess = max(1, int(max_tokens * len(text) / max(1, tokens)))  # characters per piece, on average
    while begin < len(text):
        end, n = _fit(text, begin, max_tokens, count_tokens, guess)
        start = sentence.start + begin
        pieces.append((Sentence(sentence.paragraph, start, start + end - begin, text[begin:end]), n))
        begin = end
        while begin < len(text) and text[begin].isspace():
            begin += 1
    return pieces


def _fit(text: str, begin: int, max_tokens: int, count_tokens, size: int) -> tuple[int, int]:
    """End and token count of a piece from `begin` that fits the budget and fills most of it.

    Each try rescales the length by how far its count was from the budget, so a piece costs a
    few tokenizer calls even in a 2 MB line.
    """
    best, grow = None, 2  # the longest piece that fitted; tries left to lengthen a short one
    while True:
        end = _cut(text, begin, begin + size)
        n = count_tokens(text[begin:end])
        if n <= max_tokens or end - begin == 1:  # one character is as short as a piece gets
            if best is None or end > best[0]:
                best = (end, n)
            if end == len(text) or n >= 0.9 * max_tokens or grow == 0:
                return best
            grow -= 1
            size = int(size * max_tokens / max(n, 1))
        elif best is not None:
            return best
        else:
            size = max(1, min(size - 1, int(size * max_tokens / n)))


def _cut(text: str, begin: int, limit: int) -> int:
    """End of a piece starting at `begin` and ending at or before `limit`: at a space if there is one."""
    if limit >= len(text):
        return len(text)
    space = max(text.rfind(" ", begin + 1, limit + 1), text.rfind("\t", begin + 1, limit + 1))
    end = space if space > begin else limit
    return begin + len(text[begin:end].rstrip())


def _make_chunk(article: Article, group: list[Sentence], position: int) -> Chunk:
    parts, spans, at = [], [], 0
    for i, sentence in enumerate(group):
        if i:
            previous = group[i - 1]
            # Sentences of one paragraph are joined by a space, paragraphs by a newline; pieces of
            # a sentence cut where there was no space are joined by nothing, as in the source.
            gap = "\n" if sentence.paragraph != previous.paragraph else "" if sentence.start == previous.end else " "
            parts.append(gap)
            at += len(gap)
        parts.append(sentence.text)
        spans.append((at, at + len(sentence.text)))
        at += len(sentence.text)
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
        tuple(spans),
    )


def chunk_articles(
    articles: Iterable[Article], max_tokens: int, count_tokens: Callable[[str], int] = word_count, overlap: int = 0
) -> list[Chunk]:
    return [c for a in articles for c in chunk_article(a, max_tokens, count_tokens, overlap)]
