"""BM25 over the same chunks as the dense index (bm25s): Snowball stems plus character n-grams.

A chunk is stemmed in its own language. A query's language is not trusted (it may be English
about a Swedish article), so it is stemmed with every language in the index and the stems are
pooled. Beside its stem, every word also contributes its character 4-grams (with word-boundary
marks): Swedish and Danish compounds ("uppehållstillståndskortet") share n-grams with their parts
("uppehållstillstånd", "kortet") but no stem. Measured on the tuning questions of both shipped
benchmarks (benchmarks/tune.py), n-grams lifted keyword MRR@10 from 0.765 to 0.796 on SweQUAD and
from 0.747 to 0.804 on our articles; k1 1.2 and b 0.5 were chosen there too.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

import numpy as np

STEMMERS = {"sv": "swedish", "da": "danish", "en": "english", "nb": "norwegian"}
_WORD = re.compile(r"\w+", re.UNICODE)
NGRAM = 4
K1, B = 1.2, 0.5

# bm25s's English list is Lucene's 33 words, without "what", "who", "how", "does": an English question about a
# Swedish article then counted its question words as content its passages lack. The Snowball list instead, like
# the Swedish and Danish ones bm25s ships (snowballstem.org/algorithms/english/stop.txt), plus NLTK's last line.
# Our tokens are `\w+`, so "I'm" reaches the list as "i" and "m": each contraction enters as the pieces it splits into,
# except pieces that are words of their own in a language we search ("haven": Danish for the garden; "won", "let").
SNOWBALL_ENGLISH = frozenset(
    piece
    for word in """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
    her hers herself it its itself they them their theirs themselves what which who whom this that these those am is are
    was were be been being have has had having do does did doing would should could ought i'm you're he's she's
    it's we're they're i've you've we've they've i'd you'd he'd she'd we'd they'd i'll you'll he'll she'll
    we'll they'll isn't aren't wasn't weren't hasn't haven't hadn't doesn't don't didn't won't wouldn't shan't
    shouldn't can't cannot couldn't mustn't let's that's who's what's here's there's when's where's why's how's
    a an the and but if or because as until while of at by for with about against between into through during
    before after above below to from up down in out on off over under again further then once here there when
    where why how all any both each few more most other some such no nor not only own same so than too very
    s t can will just don should now""".split()
    for piece in word.split("'")
    if piece not in ("haven", "won", "let")
)


@cache
def _stemmer(language: str):
    import Stemmer

    return Stemmer.Stemmer(STEMMERS.get(language, "swedish"))


@cache
def _stopwords(language: str) -> frozenset[str]:
    from bm25s import stopwords

    lists = {
        "sv": stopwords.STOPWORDS_SWEDISH,
        "da": stopwords.STOPWORDS_DANISH,
        "en": SNOWBALL_ENGLISH,
        "nb": stopwords.STOPWORDS_NORWEGIAN,
    }
    return frozenset(lists.get(language, ()))


def _is_stopword(word: str, languages: list[str]) -> bool:
    return any(word in _stopwords(lang) for lang in languages)


def _words(text: str) -> list[str]:
    # NFKC: a letter typed decomposed (macOS, "o" + combining diaeresis) and a PDF's ligatures ("ﬁ") are the
    # same words as their usual forms, on both the question's and the chunk's side.
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def content_words(text: str, languages: list[str]) -> list[str]:
    """The lower-cased words of `text` that are not a stopword of any of `languages`, in order."""
    return [w for w in _words(text) if not _is_stopword(w, languages)]


def tokenize(text: str, language: str, ngrams: bool = True) -> list[str]:
    """Lower-cased words without stopwords, stemmed in `language`, then (optionally) their n-grams."""
    words = [w for w in _words(text) if w not in _stopwords(language)]
    stems = _stemmer(language).stemWords(words)
    return stems + [g for w in words for g in _ngrams(w)] if ngrams else stems


def _ngrams(word: str) -> list[str]:
    marked = f"#{word}#"
    if len(marked) <= NGRAM:
        return [marked]
    return [marked[i : i + NGRAM] for i in range(len(marked) - NGRAM + 1)]


def query_tokens(text: str, languages: list[str], ngrams: bool = True) -> list[str]:
    """Tokens of the query in every language, each once; `ngrams=False`: stems only."""
    return list(dict.fromkeys(t for lang in languages for t in tokenize(text, lang, ngrams)))


def query_token_parts(text: str, languages: list[str]) -> tuple[list[str], list[str]]:
    """query_tokens split in two: the stems, and the n-grams (a compound's parts), so each can be weighed."""
    stems = query_tokens(text, languages, ngrams=False)
    known = set(stems)
    return stems, [t for t in query_tokens(text, languages) if t not in known]


def build_bm25(texts: list[str], languages: list[str], folder: Path) -> None:
    """Write the keyword index of `texts` (each stemmed in its own language) into `folder`."""
    import bm25s

    # Token ids per chunk as soon as it is tokenised: handing bm25s every chunk's token strings (each
    # n-gram its own ~60-byte object) held ~95 bytes per token at its peak, 6+ GB at 95k passages; an id
    # list costs 8 bytes per token (the ints are the vocabulary's own). Scores are the same.
    vocab: dict[str, int] = {}
    ids = [
        [vocab.setdefault(token, len(vocab)) for token in tokenize(t, lang) or ["\u2205"]]
        for t, lang in zip(texts, languages)
    ]
    retriever = bm25s.BM25(k1=K1, b=B)
    retriever.index((ids, vocab), show_progress=False)
    retriever.save(str(folder), show_progress=False)


class BM25Index:
    def __init__(self, folder: Path):
        import bm25s

        from index.bridge import Bridge  # not at the top: index/bridge.py imports this module

        self._retriever = bm25s.BM25.load(str(folder), show_progress=False)
        self._vocab = self._retriever.vocab_dict
        self.bridge = Bridge.load(folder)

    @property
    def num_docs(self) -> int:
        """How many chunks the keyword index holds."""
        return int(self._retriever.scores["num_docs"])

    def word_evidence(self, text: str, languages: list[str], docs: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """For each chunk in `docs`: (coverage, missing) of the query's content words.

        coverage is the idf-weighted share of the words the chunk contains: a word counts whole when
        one of its stems occurs in the chunk, else by the share of its n-grams that do (a compound's
        parts). missing is the idf of the rarest word the chunk lacks, as a share of the idf of a word
        the corpus never says (so it reads the same on a small and a large corpus): "Vilka öppettider
        har socialtjänsten i Hässleholm?" finds Hässleholm's social services but not "öppettider".
        A word the index has never seen weighs most: a question about "boligstøtte" is not covered by
        a corpus that never says it. Evidence for the calibrated "nothing relevant" decision.
        """
        words = list(dict.fromkeys(content_words(text, languages)))
        if not words or not docs:
            return np.zeros(len(docs)), np.zeros(len(docs))
        weights, stems, grams = [], [], []
        for word in words:
            ids = [self._vocab[s] for s in {_stemmer(lang).stemWord(word) for lang in languages} if s in self._vocab]
            weights.append(max((self._idf(i) for i in ids), default=self._idf(None)))
            stems.append(ids)
            grams.append([self._vocab.get(g) for g in _ngrams(word)])
        weights, docs = np.array(weights), np.asarray(docs)
        shares = np.column_stack([self._shares(s, g, docs) for s, g in zip(stems, grams)])
        return shares @ weights / weights.sum(), (weights * (1 - shares)).max(axis=1) / self._idf(None)

    def _shares(self, stems: list[int], grams: list[int | None], docs: np.ndarray) -> np.ndarray:
        """How much of one word each doc holds: 1 with one of its stems, else the share of its n-grams."""
        whole = np.zeros(len(docs), dtype=bool)
        for token in stems:
            whole |= self._holds(token, docs)
        if whole.all():
            return whole.astype(float)
        parts = sum(self._holds(g, docs) for g in grams if g is not None) / len(grams)
        return np.where(whole, 1.0, parts)

    def _holds(self, token: int, docs: np.ndarray) -> np.ndarray:
        # bm25s keeps one column of the sparse score matrix per token: its rows (sorted) are the chunks holding it.
        postings = self._postings(token)
        if not len(postings):
            return np.zeros(len(docs), dtype=bool)
        at = np.minimum(np.searchsorted(postings, docs), len(postings) - 1)
        return postings[at] == docs

    def _postings(self, token: int) -> np.ndarray:
        s = self._retriever.scores
        return s["indices"][s["indptr"][token] : s["indptr"][token + 1]]

    def _idf(self, token: int | None) -> float:
        df = 0 if token is None else len(self._postings(token))
        return float(np.log(1 + (self.num_docs - df + 0.5) / (df + 0.5)))

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every chunk (in index order) for already tokenised query terms."""
        known = [t for t in tokens if t in self._vocab]
        if not known:
            return np.zeros(self.num_docs, dtype=np.float32)
        return self._retriever.get_scores(known)
