"""The short answer shown above the passages: the one to three sentences that best answer the question,
taken verbatim from the top passages, each with the citation number of its passage.

No generation: every word comes from an article, so the reader can check it against the cited passage.
The sentences are the passages' highlights (the sentence(s) sharing most words or meaning with the
question), in rank order, one per passage, without repeats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SENTENCES = 3
FROM_PASSAGES = 3  # only the top passages speak in the short answer
MAX_CHARS = 320  # a longer "sentence" (a list, a table row) is cut at a word with an ellipsis
MIN_CHARS = 12  # shorter pieces ("Ja.", a heading) say nothing on their own
# A passage less than half as likely to answer (calibrated confidence) as the best one adds no sentence.
RELATIVE_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Sentence:
    """One sentence of the short answer and the rank of the passage ([n]) it comes from."""

    text: str
    rank: int


def short_answer(hits, max_sentences: int = MAX_SENTENCES) -> tuple[Sentence, ...]:
    """Up to `max_sentences` verbatim sentences from the top hits' highlights, best passage first; a
    sentence already taken (same words, ignoring case and spacing) is skipped, so repeated article
    leads or quoted lines appear once; a passage far less likely to answer than the best one is left out."""
    chosen, seen = [], set()
    hits = list(hits)[:FROM_PASSAGES]
    best = max((hit.confidence for hit in hits), default=0.0)
    for hit in hits:
        if hit.confidence < RELATIVE_CONFIDENCE * best:
            continue
        for start, end in hit.highlight:
            text = " ".join(hit.text[start:end].split())
            key = _key(text)
            if len(text) < MIN_CHARS or not key or key in seen:  # no key: no word ("| --- | --- |")
                continue
            seen.add(key)
            chosen.append(Sentence(_cut(text), hit.rank))
            break  # one sentence per passage: three passages say more than one passage thrice
        if len(chosen) == max_sentences:
            break
    return tuple(chosen)


def as_text(sentences) -> str:
    """The short answer as one line of text with its markers: 'First sentence. [1] Second one. [2]'."""
    return " ".join(f"{s.text} [{s.rank}]" for s in sentences)


def _key(text: str) -> str:
    return re.sub(r"\W+", " ", text.casefold()).strip()


def _cut(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    head = text[:MAX_CHARS].rsplit(" ", 1)[0]
    return head.rstrip(",;:") + " …"
