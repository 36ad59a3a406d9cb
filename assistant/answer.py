"""The Python API the CLI and the UI share: `Assistant.open(index_dir).ask(question, k, history)`.

An answer is a ranked list of passages, each with its best sentence(s) marked and a citation
precise enough to open the source at the passage. The model and index load once per process.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import NamedTuple

import numpy as np

from assistant.confidence import FEATURES, Calibration, evidence
from assistant.errors import QuestionError
from assistant.retrieve import keyword_text, query_languages, rank
from assistant.settings import MAX_PASSAGES, MODES, Settings
from assistant.summary import MAX_CHARS, Sentence, as_text, short_answer
from corpus.chunk import article_sentences
from corpus.types import Chunk
from index.bm25 import content_words, query_tokens
from index.embed import embed_queries
from index.store import StoredIndex


@dataclass(frozen=True)
class Citation:
    article_id: str
    title: str
    language: str
    source: str
    paragraph: int
    start: int
    end: int
    page: int = 0  # PDF page the passage starts on; 0 for formats without pages
    date: str = ""  # the article's ISO date; "" when unknown
    author: str = ""


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float  # cosine similarity to the question (BM25 share of the best in bm25 mode)
    text: str
    highlight: tuple[tuple[int, int], ...]  # spans in `text` of the best-matching sentence(s)
    citation: Citation
    chunk_id: str
    # Calibrated chance (0-1) that this passage answers the question: the same number that decides
    # "nothing relevant"; shown to people as `label`, never as a raw cosine.
    confidence: float = 0.0

    @property
    def highlight_text(self) -> str:
        return " … ".join(self.text[a:b] for a, b in self.highlight)

    @property
    def label(self) -> str:
        """'strong', 'partial' or 'weak': how likely the passage answers the question."""
        return relevance_label(self.confidence)


LABEL_THRESHOLDS = (("strong", 0.7), ("partial", 0.4))


def relevance_label(confidence: float) -> str:
    """The word shown for a calibrated confidence (see `Hit.confidence`)."""
    return next((name for name, low in LABEL_THRESHOLDS if confidence >= low), "weak")


@dataclass(frozen=True)
class Answer:
    question: str
    hits: tuple[Hit, ...]
    no_answer: bool
    search_query: str  # what was searched: the question, or the question joined with the previous one
    notices: tuple[str, ...] = field(default=())
    # The 1-3 sentences on top, verbatim from the top passages (see assistant/summary.py); () when no_answer.
    short_answer: tuple[Sentence, ...] = field(default=())

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "no_answer": self.no_answer,
            "search_query": self.search_query,
            "notices": list(self.notices),
            "short_answer": as_text(self.short_answer),
            "short_answer_sentences": [asdict(s) for s in self.short_answer],
            "passages": [
                {
                    "rank": h.rank,
                    "chunk_id": h.chunk_id,
                    "score": round(h.score, 4),
                    "confidence": round(h.confidence, 4),
                    "label": h.label,
                    "text": h.text,
                    "highlight": h.highlight_text,
                    "citation": asdict(h.citation),
                }
                for h in self.hits
            ],
        }


# A question is read as a follow-up (searched joined with the previous one) only when it is elliptical,
# at most FOLLOW_UP_WORDS words that are stopwords in none of the corpus languages ("Och
# biståndshandläggare?", "Who gives it?"), and joining makes the best passage more likely to answer it
# (calibrated confidence, by more than FOLLOW_UP_GAIN). With the confidence alone, held-out topic switches
# ("Hvor mange medarbejdere inviterede Hässleholm?") were glued onto the previous question whenever that
# found a passage of the previous article; the values are chosen on the conversation set's tuning part
# (`python benchmarks/calibrate.py` prints the sweep; README "Follow-ups" says how the limit came about).
FOLLOW_UP_WORDS = 2
FOLLOW_UP_GAIN = 0.0
VECTOR_CACHE = 4096  # query vectors kept, so evaluation can encode its questions in batches first
SEMANTIC_HIGHLIGHTS = 3  # passages that may get a meaning-based highlight (costs one model call)


def clean_question(question: str, max_chars: int) -> tuple[str, tuple[str, ...]]:
    """Strip control characters and extra whitespace; truncate very long input with a notice."""
    if question is not None and not isinstance(question, str):
        raise QuestionError(f"The question must be text, not {type(question).__name__}.")
    text = _plain(question or "")
    if not text:
        raise QuestionError("The question is empty: type a question, e.g. 'Vem leder arbetet i Hässleholm?'.")
    notices = ()
    if len(text) > max_chars:
        notices = (f"Your question was {len(text):,} characters long; only the first {max_chars:,} were used.",)
        text = text[:max_chars]
    return text, notices


def _plain(text: str) -> str:
    """`text` on one line: control characters dropped, runs of whitespace one space."""
    text = "".join(" " if ch in "\t\n\r" else ch for ch in text)
    return " ".join("".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Cs")).split())


def checked_k(k) -> int:
    """The number of passages asked for, if it is a whole number from 1 to MAX_PASSAGES."""
    whole = isinstance(k, int) or (isinstance(k, float) and k.is_integer())
    if isinstance(k, bool) or not whole or not 1 <= k <= MAX_PASSAGES:
        raise QuestionError(f"k must be a whole number from 1 to {MAX_PASSAGES} (passages to return); got {k!r:.40}.")
    return int(k)


_DATE_BOUND = re.compile(r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?")


def checked_date(value, name: str) -> str | None:
    """A date bound as given (YYYY, YYYY-MM or YYYY-MM-DD), or None when not set."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _DATE_BOUND.fullmatch(value.strip()) or not _real_date(value.strip()):
        raise QuestionError(f"{name} must be a date like 2019, 2019-09 or 2019-09-30; got {value!r:.40}.")
    return value.strip()


def _real_date(bound: str) -> bool:
    try:  # 2019-02-30 and year 0000 have the right form but name no day
        date.fromisoformat((bound + "-01-01")[:10])
    except ValueError:
        return False
    return True


def last_question(history) -> str | None:
    """The previous user question, cleaned like a new one (`_plain`), from a list of strings or of {"role",
    "content"} messages; a content may be a list of parts ({"type": "text", "text": ...}), as Gradio's chat hands
    its history back. Blank turns are skipped."""
    for turn in reversed(history or []):
        if isinstance(turn, dict) and turn.get("role") == "user":
            turn = turn.get("content")
            if isinstance(turn, list):
                turn = " ".join(p["text"] for p in turn if isinstance(p, dict) and isinstance(p.get("text"), str))
        if isinstance(turn, str) and (text := _plain(turn)):
            return text
    return None


def search_texts(question: str, history, languages: list[str], max_chars: int) -> list[str]:
    """What may be searched for: the question alone, and joined with the previous one if it may be a follow-up
    (the previous question cleaned and cut to `max_chars` like a new one)."""
    previous = (last_question(history) or "")[:max_chars]
    if not previous or len(content_words(question, languages)) > FOLLOW_UP_WORDS:
        return [question]
    return [question, f"{previous} {question}"]


class Search(NamedTuple):
    text: str  # what was searched: the question, or it joined with the previous one
    vector: np.ndarray
    hits: list[Hit]
    top: float  # the best hit's calibrated confidence
    reading: float  # how well this reading of the question was answered (Calibration.reading)
    evidence: np.ndarray  # the lead's row of FEATURES (assistant/confidence.py), which `top` and `reading` read


class Assistant:
    def __init__(self, index: StoredIndex, embedder, settings: Settings, calibration: Calibration | None = None):
        self.index, self.embedder, self.settings = index, embedder, settings
        self.calibration = calibration or Calibration.load()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._use(index)

    @classmethod
    def open(cls, index_dir: Path | None = None, settings: Settings | None = None, embedder=None) -> Assistant:
        from index.embed import Embedder

        settings = settings or Settings.from_env()
        if index_dir is not None:
            settings = replace(settings, index_dir=Path(index_dir))
        embedder = embedder or Embedder(settings.model)
        return cls(settings.index_store().load(embedder.fingerprint), embedder, settings)

    def ask(
        self,
        question: str,
        k: int = 5,
        history=None,
        mode: str | None = None,
        languages: list[str] | None = None,
        article_ids: list[str] | None = None,
        highlight: bool = True,
        since: str | None = None,
        until: str | None = None,
        author: str | None = None,
    ) -> Answer:
        """Cited passages for `question`; QuestionError for an empty question, a bad k, mode or date.

        With a `history` (earlier user questions, or chat messages), the question is also searched
        joined with the previous one, and read as a follow-up when that finds a clearly better answer.
        `since`/`until` (YYYY, YYYY-MM or YYYY-MM-DD, inclusive) keep articles dated in that range
        (undated ones drop out); `author` keeps articles whose author contains it (any case).
        """
        k = checked_k(k)
        if history is not None and not isinstance(history, list | tuple):
            raise QuestionError("history must be a list of earlier questions or chat messages, oldest first.")
        self._refresh()
        dates = checked_date(since, "since"), checked_date(until, "until")
        if author is not None and not isinstance(author, str):
            raise QuestionError(f"author must be text (part of a name); got {author!r:.40}.")
        author = unicodedata.normalize("NFC", author or "").strip()  # a blank author is no filter
        mode = mode or self.settings.mode
        if mode not in MODES:
            raise QuestionError(f"Unknown mode {mode!r}: use one of {', '.join(MODES)}.")
        question, notices = clean_question(question, self.settings.max_question_chars)
        if all(dates) and dates[1] < dates[0][: len(dates[1])]:
            raise QuestionError(f"until ({dates[1]}) is before since ({dates[0]}): swap them.")
        mask = self._mask(languages, article_ids, *dates, author)
        if mask is not None and not mask.any():
            raise QuestionError("No article matches these filters (language, articles, dates, author): widen them.")
        tries = [
            self._search(text, mode, k, mask)
            for text in search_texts(question, history, self._languages, self.settings.max_question_chars)
        ]
        best = tries[0]
        if len(tries) > 1 and tries[1].reading > best.reading + FOLLOW_UP_GAIN:
            best = tries[1]
        hits = best.hits
        # A question of stopwords and punctuation only ("???", "the") asks nothing the corpus could answer.
        no_answer = not hits or best.top < self.refuse_below or not content_words(best.text, self._languages)
        if highlight:
            hits = self._highlights(hits, best.text, best.vector)
        return Answer(question, tuple(hits), no_answer, best.text, notices, () if no_answer else short_answer(hits))

    def _refresh(self) -> None:
        """Answer from the index's newest generation when another server rebuilt it (database store)."""
        index = self.index.refreshed()
        if index is not self.index:
            self._use(index)

    def _use(self, index: StoredIndex) -> None:
        """Answer from `index`, with the lookups derived from it."""
        self.index = index
        self._by_id = {c.id: i for i, c in enumerate(index.chunks)}
        self._languages = query_languages(index)

    def _search(self, text: str, mode: str, k: int, mask) -> Search:
        """One search for `text`: its hits with calibrated confidence."""
        vector = self.query_vector(text)
        keywords = text if mode == "dense" else keyword_text(self.index, text, self.embedder)
        ranking = rank(self.index, text, vector, self.settings, mode, k, mask, keywords)
        if not ranking.hits:
            return Search(text, vector, [], 0.0, 0.0, np.zeros(len(FEATURES)))
        # How well the lead stands out (margin, agreement) is read against a search of the whole corpus without the
        # word bridge (index/bridge.py). A filter only narrows what may be shown: a filter that leaves one article
        # would make its weakest passage look like the answer ("Vem vann fotbolls-VM 2018?" --until 2014 was
        # answered). The bridge only helps find: as background, its translated words made out-of-scope English
        # questions look answered ("recipe" -> receptet). The lead itself is the shown search's, so the passage
        # judged is the one the answer leads with ("Is it acceptable to hold a meeting while taking a walk?" was
        # refused while its first passage held the answer).
        plain = keywords == text and mask is None
        background = ranking if plain else rank(self.index, text, vector, self.settings, mode, k)
        # The last row is the lead's: its evidence decides "nothing relevant" (assistant/retrieve.py Ranking.lead).
        rows = evidence(self.index, text, background, self._languages, [*ranking.hits, ranking.lead])
        confidence = self.calibration.probability(rows)
        if mode == "bm25":  # shown score: share of the best BM25 score
            best = max(r.score for r in ranking.hits) or 1.0
            scores = [r.score / best for r in ranking.hits]
        else:
            scores = [r.cosine for r in ranking.hits]
        hits = [
            self._hit(i + 1, r.position, s, float(c))
            for i, (r, s, c) in enumerate(zip(ranking.hits, scores, confidence))
        ]
        reading = self.calibration.reading.probability(rows[-1:])[0]
        return Search(text, vector, hits, float(confidence[-1]), float(reading), rows[-1])

    @property
    def refuse_below(self) -> float:
        """The calibrated confidence under which the answer is 'nothing relevant'."""
        threshold = self.settings.no_answer_threshold
        return threshold if threshold >= 0 else self.calibration.refuse_below

    def query_vector(self, text: str) -> np.ndarray:
        """The question's embedding (kept for a while: a conversation searches the same text again)."""
        if text not in self._vectors:
            self.prefetch([text])
        self._vectors.move_to_end(text)
        return self._vectors[text]

    def prefetch(self, texts: list[str], batch_size: int = 64) -> None:
        """Embed many search texts in batches ahead of `ask` (evaluation asks a thousand questions)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if not missing:
            return
        self._vectors.update(zip(missing, embed_queries(self.embedder, missing, batch_size)))
        while len(self._vectors) > max(VECTOR_CACHE, len(missing)):
            self._vectors.popitem(last=False)

    def search_texts(self, question: str, history=None) -> list[str]:
        """Every text `ask(question, history=history)` may search for (see `prefetch`)."""
        limit = self.settings.max_question_chars
        return search_texts(clean_question(question, limit)[0], history, self._languages, limit)

    def _mask(self, languages, article_ids, since=None, until=None, author=None) -> np.ndarray | None:
        if not languages and not article_ids and not since and not until and not author:
            return None
        wanted = {
            a.id
            for a in self.index.articles.values()
            if (not since or (a.date and a.date[: len(since)] >= since))
            and (not until or (a.date and a.date[: len(until)] <= until))
            and (not author or author.casefold() in unicodedata.normalize("NFC", a.author).casefold())
        }
        return np.array(
            [
                (not languages or c.language in languages)
                and (not article_ids or c.article_id in article_ids)
                and c.article_id in wanted
                for c in self.index.chunks
            ]
        )

    def _hit(self, rank_: int, position: int, score: float, confidence: float) -> Hit:
        chunk = self.index.chunks[position]
        article = self.index.articles[chunk.article_id]
        page = next((p.page for p in article.paragraphs if p.index == chunk.paragraph), 0)
        citation = Citation(
            chunk.article_id,
            chunk.title,
            chunk.language,
            chunk.source,
            chunk.paragraph,
            chunk.start,
            chunk.end,
            page,
            article.date,
            article.author,
        )
        return Hit(rank_, 0.0 if math.isnan(score) else score, chunk.text, (), citation, chunk.id, confidence)

    def _highlights(self, hits: list[Hit], query: str, vector: np.ndarray | None) -> list[Hit]:
        """Mark the sentence(s) sharing the most query stems. Where none shares a word (a
        cross-lingual question), the top passages get the sentence closest in meaning, all
        embedded in one batch to keep latency down."""
        languages = self._languages
        wanted = set(query_tokens(query, languages, ngrams=False))
        marked, semantic = [], []
        for hit in hits:
            spans = sentence_spans(self.index.chunks[self._by_id[hit.chunk_id]], self.index.articles)
            overlaps = [len(wanted & set(query_tokens(hit.text[a:b], languages, ngrams=False))) for a, b in spans]
            best = max(overlaps, default=0)
            chosen = tuple(span for span, n in zip(spans, overlaps) if n == best)[:2] if best else ()
            marked.append(tuple(_around_words(hit.text, span, wanted, languages) for span in chosen))
            if not best and spans and hit.rank <= SEMANTIC_HIGHLIGHTS:
                semantic.append((len(marked) - 1, spans))
        if semantic:
            texts = [hits[i].text[a:b] for i, spans in semantic for a, b in spans]
            scores = self.embedder.encode_documents(texts) @ (
                vector if vector is not None else self.embedder.encode_query(query)
            )
            offset = 0
            for i, spans in semantic:
                marked[i] = (spans[int(np.argmax(scores[offset : offset + len(spans)]))],)
                offset += len(spans)
        return [replace(hit, highlight=m) for hit, m in zip(hits, marked)]

    def holds(self, chunk_id: str) -> bool:
        """Whether the index in use holds passage `chunk_id` (an answer from before a rebuild may name one it lost)."""
        return chunk_id in self._by_id

    def context(self, chunk_id: str, before: int = 1, after: int = 1) -> list[Chunk]:
        """The chunk with its neighbours in the same article ("show more"): `before` and `after` passages."""
        if not self.holds(chunk_id):
            raise QuestionError(f"No passage {chunk_id!r:.60} in this index: ask the question again.")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (before, after)):
            raise QuestionError("before and after must be whole numbers of passages, 0 or more.")
        chunk = self.index.chunks[self._by_id[chunk_id]]
        siblings = [c for c in self.index.chunks if c.article_id == chunk.article_id]
        return [c for c in siblings if chunk.position - before <= c.position <= chunk.position + after]


def _around_words(text: str, span: tuple[int, int], wanted: set[str], languages: list[str]) -> tuple[int, int]:
    """`span`, or for a "sentence" longer than the short answer shows (a list, a table, text without full
    stops) the MAX_CHARS of it from a little before its first word of the question, so that word is shown."""
    start, end = span
    if end - start <= MAX_CHARS:
        return span
    words = list(re.finditer(r"\w+", text[start:end]))
    hit = next((w for w in words if wanted & set(query_tokens(w.group(), languages, ngrams=False))), None)
    if hit is None:
        return span
    # Begin at a word some way before the match (context), and end at a word boundary within MAX_CHARS.
    begin = start + next(w.start() for w in words if w.end() >= hit.start() - MAX_CHARS // 4)
    stop = max((start + w.end() for w in words if start + w.end() <= begin + MAX_CHARS), default=end)
    return begin, stop


def sentence_spans(chunk: Chunk, articles: dict) -> tuple[tuple[int, int], ...]:
    """Spans in `chunk.text` of the chunk's sentences: kept from chunking, so a hit in a huge
    article costs nothing. Only an index built before chunks kept them re-splits the article."""
    if chunk.sentences:
        return chunk.sentences
    spans, cursor = [], 0
    for sentence in article_sentences(articles[chunk.article_id]):
        if chunk.start <= sentence.start and sentence.end <= chunk.end:
            at = chunk.text.find(sentence.text, cursor)
            if at >= 0:
                spans.append((at, at + len(sentence.text)))
                cursor = at + len(sentence.text)
    return tuple(spans)
