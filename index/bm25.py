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
from functools import cache
from pathlib import Path

import numpy as np

STEMMERS = {"sv": "swedish", "da": "danish", "en": "english", "nb": "norwegian"}
_WORD = re.compile(r"\w+", re.UNICODE)
NGRAM = 4
K1, B = 1.2, 0.5


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
        "en": stopwords.STOPWORDS_EN,
        "nb": stopwords.STOPWORDS_NORWEGIAN,
    }
    return frozenset(lists.get(language, ()))


def _is_stopword(word: str, languages: list[str]) -> bool:
    return any(word in _stopwords(lang) for lang in languages)


def content_words(text: str, languages: list[str]) -> list[str]:
    """The lower-cased words of `text` that are not a stopword of any of `languages`, in order."""
    return [w for w in _WORD.findall(text.lower()) if not _is_stopword(w, languages)]


def tokenize(text: str, language: str, ngrams: bool = True) -> list[str]:
    """Lower-cased words without stopwords, stemmed in `language`, then (optionally) their n-grams."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _stopwords(language)]
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

        self._retriever = bm25s.BM25.load(str(folder), show_progress=False)
        self._vocab = self._retriever.vocab_dict

    @property
    def num_docs(self) -> int:
        """How many chunks the keyword index holds."""
        return int(self._retriever.scores["num_docs"])

    def coverage(self, text: str, languages: list[str], docs: list[int]) -> np.ndarray:
        """For each chunk in `docs`: the idf-weighted share of the query's content words it contains.

        A word counts whole when one of its stems occurs in the chunk, else by the share of its
        n-grams that do (a compound's parts). A word the index has never seen weighs most: a question
        about "boligstøtte" is not covered by a corpus that never says it. Evidence for the
        calibrated "nothing relevant" decision.
        """
        words = list(dict.fromkeys(content_words(text, languages)))
        if not words or not docs:
            return np.zeros(len(docs))
        weights, stems, grams = [], [], []
        for word in words:
            ids = [self._vocab[s] for s in {_stemmer(lang).stemWord(word) for lang in languages} if s in self._vocab]
            weights.append(max((self._idf(i) for i in ids), default=self._idf(None)))
            stems.append(ids)
            grams.append([self._vocab.get(g) for g in _ngrams(word)])
        weights = np.array(weights)
        shares = np.array([[self._share(s, g, doc) for s, g in zip(stems, grams)] for doc in docs])
        return shares @ weights / weights.sum()

    def _share(self, stems: list[int], grams: list[int | None], doc: int) -> float:
        if any(self._holds(t, doc) for t in stems):
            return 1.0
        return sum(g is not None and self._holds(g, doc) for g in grams) / len(grams)

    def _holds(self, token: int, doc: int) -> bool:
        # bm25s keeps one column of the sparse score matrix per token: its rows are the chunks holding it.
        postings = self._postings(token)
        at = np.searchsorted(postings, doc)
        return bool(at < len(postings) and postings[at] == doc)

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
