"""A word bridge from English questions to the words of Swedish and Danish passages.

Keyword search cannot match "meeting" to "möte": an English question about a Swedish article only
finds its names. The embedding model places a lone word near its translations ("help" → hjälp,
hjälpa; "employees" → anställda, medarbejdere; "regardless" → oavsett), so the index keeps the vector
of every word its non-English passages use, and an English question's keyword search also looks for
the corpus words nearest each of its own (at most NEAREST, each at cosine ≥ MIN_COSINE).

Measured on the tuning questions of our articles (benchmarks/fusion.py, learned fusion refitted,
cross-validated MRR@10): 0.807 without the bridge, 0.822 with it; SweQUAD (Swedish questions) is
untouched. The same bridge for Danish and Swedish questions (into each other's words) cost 0.03 there:
the two languages already share stems and 4-grams, and near neighbours only add noise.

Stored beside the keyword index (`bm25/bridge.json`: the words; `bm25/bridge.npy`: their vectors as
float16), so every store carries it with the keyword files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.bm25 import STEMMERS, content_words
from index.embed import embed_queries

WORDS_FILE, VECTORS_FILE = "bridge.json", "bridge.npy"
NEAREST, MIN_COSINE = 3, 0.90  # chosen on our tuning questions (0.88: 0.815, 0.91: 0.803, 0.92 x2: 0.810)
MAX_WORDS = 50_000  # the most frequent: bounds the build's cost (200-400 words a second on two cores)
BRIDGED = "en"  # the question language the bridge is for


def bridge_words(texts: list[str], languages: list[str]) -> list[str]:
    """The words (three letters or more, no stopword of any language searched: "since" found "från", "dessa")
    of the texts not in English, the most frequent MAX_WORDS of them."""
    counts: dict[str, int] = {}
    for text, language in zip(texts, languages):
        if language != BRIDGED:
            for word in content_words(text, list(STEMMERS)):
                if len(word) >= 3 and word.isalpha():
                    counts[word] = counts.get(word, 0) + 1
    return sorted(sorted(counts, key=lambda w: -counts[w])[:MAX_WORDS])


@dataclass(frozen=True, eq=False)  # holds an array: compared by identity
class Bridge:
    words: tuple[str, ...]
    vectors: np.ndarray  # [words, dimension]; stored as float16

    @classmethod
    def build(cls, words: list[str], embedder, previous: Bridge | None = None) -> Bridge:
        """The bridge of `words` (bridge_words); vectors of words `previous` holds are reused (same model only)."""
        known = dict(zip(previous.words, previous.vectors)) if previous is not None else {}
        todo = [w for w in words if w not in known]
        # Single words embedded as queries, as a question's words are (assistant/retrieve.py keyword_text).
        known.update(zip(todo, embed_queries(embedder, todo, 256)))
        vectors = np.array([known[w] for w in words], dtype=np.float32).reshape(len(words), embedder.dimension)
        return cls(tuple(words), vectors)

    def save(self, folder: Path) -> None:
        """Write the bridge's two files into the keyword index folder."""
        (folder / WORDS_FILE).write_text(json.dumps(list(self.words), ensure_ascii=False), encoding="utf-8")
        np.save(folder / VECTORS_FILE, self.vectors.astype(np.float16), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> Bridge:
        """The bridge saved in `folder` (neither file: an empty one); OSError or ValueError when it is damaged."""
        if not (folder / WORDS_FILE).exists() and not (folder / VECTORS_FILE).exists():
            return cls((), np.zeros((0, 0), dtype=np.float32))  # a keyword index written on its own
        words = json.loads((folder / WORDS_FILE).read_text(encoding="utf-8"))
        vectors = np.load(folder / VECTORS_FILE, allow_pickle=False).astype(np.float32)  # once, not per question
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError(f"{WORDS_FILE} is not a list of words")
        if vectors.ndim != 2 or len(words) != len(vectors):
            raise ValueError(f"{WORDS_FILE} and {VECTORS_FILE} do not match")
        return cls(tuple(words), vectors)

    def translations(self, words: list[str], vectors: np.ndarray) -> list[str]:
        """The corpus words nearest each of `words` (given with their unit vectors), other than the word itself."""
        if not self.words or not words:
            return []
        similarity = np.asarray(vectors, dtype=np.float32) @ self.vectors.T
        found = []
        for word, row in zip(words, similarity):
            best = np.argsort(-row)[:NEAREST]
            found += [self.words[i] for i in best if row[i] >= MIN_COSINE and self.words[i] != word]
        return found
