"""Scale: synthetic corpora of ~1k, 10k and 100k passages made by reshuffling the real articles'
sentences (real language, generated here, never committed).

    python benchmarks/scale.py [--sizes 1000,10000,100000]

Embedding 100k passages with the model would take hours on 2 cores, so each synthetic passage
gets the normalised mean of its sentences' real embeddings (every real sentence is embedded
once). Everything else runs for real: loading, cleaning, language detection, chunking, FAISS
(exact below the HNSW threshold, HNSW above), BM25, and `Assistant.ask` with the real query
encoder. Build time is reported without and with the model's measured throughput on sentence windows.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import percentiles, print_table, rss_mb, timed

from assistant.answer import Assistant
from assistant.queries import load_queries
from assistant.settings import PROJECT_ROOT, Settings
from corpus.chunk import article_sentences, split_sentences
from corpus.load import load_corpus
from index.build import build_index
from index.embed import Embedder
from index.windows import window_texts

SENTENCES_PER_PASSAGE = 6


class SentenceMeanEmbedder:
    """The real model's sentence vectors, averaged per passage: cheap and close to the real thing."""

    def __init__(self, real: Embedder, sentences: list[str]):
        self.real = real
        self.fingerprint, self.dimension = real.fingerprint, real.dimension
        vectors = real.encode_documents(sentences, 32)
        self.table = dict(zip(sentences, vectors))

    def count_tokens(self, text: str) -> int:
        return 1  # the chunker counts sentences: with chunk_tokens = SENTENCES_PER_PASSAGE a paragraph is a passage

    def encode_documents(self, texts, batch_size=16, progress=False):
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            parts = [
                self.table[text[a:b]] for a, b in split_sentences(text.replace("\n", " ")) if text[a:b] in self.table
            ]
            v = np.mean(parts, axis=0) if parts else self.table[next(iter(self.table))]
            out[i] = v / np.linalg.norm(v)
        return out

    def encode_query(self, text):
        return self.real.encode_query(text)


def synthesise(folder: Path, sentences: list[str], passages: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    per_article = 10
    for a in range(max(1, passages // per_article)):
        paragraphs = [" ".join(rng.sample(sentences, SENTENCES_PER_PASSAGE)) for _ in range(per_article)]
        (folder / f"syn_{a:06d}.txt").write_text(f"Artikel {a}\n\n" + "\n\n".join(paragraphs) + "\n")


def synthetic_setup(base: Settings):
    """(real model, the corpus's sentences, SentenceMeanEmbedder, shipped queries, their vectors)."""
    real = Embedder(base.model)
    articles = load_corpus(base.corpus_dir).articles
    sentences = sorted({s.text for a in articles for s in article_sentences(a) if len(s.text.split()) >= 4})
    embedder = SentenceMeanEmbedder(real, sentences)
    queries = [q.query for q in load_queries(PROJECT_ROOT / "eval" / "queries.jsonl")]
    query_vectors = np.stack([real.encode_query(q) for q in queries])
    return real, sentences, embedder, queries, query_vectors


def hnsw_recall(index, queries: np.ndarray, k: int = 10) -> float:
    """Share of the k chunks the index's `search` returns that belong to the exact k nearest (best window,
    exact cosine). Ties count as found: pages repeat sentences, so different chunks can hold the same
    window and tie exactly, and which of them an exact search lists tenth is arbitrary."""
    scores = index.chunk_scores(queries)
    kth = np.sort(scores, axis=1)[:, -k]
    found = [[p for p, _ in index.search(q, k)] for q in queries]
    return float(np.mean([np.sum(row[f] >= t - 1e-6) / k for row, f, t in zip(scores, found, kth)]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    base = Settings.from_env()
    real, sentences, embedder, queries, query_vectors = synthetic_setup(base)

    # Baseline latency and the model's passage throughput, on the shipped corpus.
    shipped = Assistant.open(settings=base, embedder=real)
    for q in queries[:5]:
        shipped.ask(q)
    base_p50, _ = percentiles([timed(shipped.ask, q, 5)[0] for q in queries])
    sample = [text for c in shipped.index.chunks for text in window_texts(c)]  # what a build embeds
    encode_s, _ = timed(real.encode_documents, sample, base.batch_size)
    per_window = encode_s / len(sample)

    rows = []
    for size in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus"
            synthesise(corpus, sentences, size)
            settings = replace(base, corpus_dir=corpus, index_dir=Path(tmp) / "index")
            # Below the settings' range on purpose (a "token" is a sentence here), so straight to the build.
            options = replace(settings.build_options(), chunk_tokens=SENTENCES_PER_PASSAGE)
            build_s, report = timed(build_index, options, embedder, say=lambda _: None, progress=False)
            assistant = Assistant.open(settings=settings, embedder=embedder)
            for q in queries[:5]:
                assistant.ask(q)
            p50, p95 = percentiles([timed(assistant.ask, q, 5)[0] for q in queries])
            disk = sum(f.stat().st_size for f in settings.index_dir.resolve().rglob("*") if f.is_file()) / 1e6
            recall = hnsw_recall(assistant.index, query_vectors)
            rows.append(
                [
                    report.chunks,
                    assistant.index.manifest.index_type,
                    build_s,
                    build_s + report.windows * per_window,
                    disk,
                    rss_mb(),
                    p50,
                    p95,
                    p50 / base_p50,
                    recall,
                ]
            )
            shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"shipped corpus: {len(shipped.index.chunks)} chunks, p50 ask {base_p50:.1f} ms; "
        f"model throughput {1 / per_window:.1f} sentence windows/s"
    )
    print_table(
        [
            "passages",
            "index",
            "build s (no model)",
            "build s (+model est.)",
            "disk MB",
            "peak RSS MB",
            "p50 ms",
            "p95 ms",
            "p50 / shipped p50",
            "ANN recall@10 vs exact",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
