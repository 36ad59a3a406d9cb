"""Where an in-process folder build's memory goes: resident memory after, and peak during, each build step.

    python benchmarks/build_memory.py --passages 30000

A synthetic corpus as in benchmarks/scale.py (real sentences, sentence-mean vectors, so no model time),
then the steps of `index.build` one after another in this process: load, chunk, embed, keyword texts,
FAISS, the bm25s keyword index alone, and writing the folder (chunks, vectors, FAISS, the keyword
index again, checksums). A thread
samples this process's resident memory every 20 ms, so each step's peak is what it added on top of
what the earlier steps still hold.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import psutil
from common import print_table
from scale import SENTENCES_PER_PASSAGE, synthesise, synthetic_setup

from assistant.settings import Settings
from index import build
from index.bm25 import build_bm25
from index.store import make_faiss_index, write_index

MB = 1e6


class RssSampler:
    """Resident memory of this process: now, and the highest seen since the last `reset`."""

    def __init__(self, every_s: float = 0.02):
        self.process, self.every_s = psutil.Process(), every_s
        self.peak, self.running = 0, True
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.every_s)

    def reset(self) -> int:
        """Start a new step: its peak starts at the resident memory now (returned)."""
        self.peak = now = self.process.memory_info().rss
        return now


def main() -> None:
    """Print one row per build step: seconds, resident MB before and after, peak MB during."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=30000)
    args = parser.parse_args()
    base = Settings.from_env()
    _real, sentences, embedder, _queries, _vectors = synthetic_setup(base)
    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    try:
        synthesise(tmp / "corpus", sentences, args.passages)
        settings = replace(base, corpus_dir=tmp / "corpus", index_dir=tmp / "index")
        options = replace(settings.build_options(), chunk_tokens=SENTENCES_PER_PASSAGE)
        sampler, rows, held = RssSampler(), [], {}

        def step(name, fn):
            before = sampler.reset()
            start = time.perf_counter()
            result = fn()
            seconds = time.perf_counter() - start
            time.sleep(2 * sampler.every_s)
            rows.append([name, f"{seconds:.1f}", f"{before / MB:.0f}", f"{sampler.peak / MB:.0f}"])
            rows[-1].append(f"{sampler.process.memory_info().rss / MB:.0f}")
            return result

        corpus = step("load corpus", lambda: build._load(options, lambda _: None))
        chunks, windows, keys = step("chunk", lambda: build._chunk(corpus.articles, options, embedder))
        held["vectors"], _ = step("embed", lambda: build._embed(windows, keys, None, embedder, options, print, False))
        by_id = {a.id: a for a in corpus.articles}
        texts = step("keyword texts", lambda: build.keyword_texts(chunks, by_id, options.context_words))
        faiss_index = step("FAISS index", lambda: make_faiss_index(held["vectors"], options.hnsw_threshold))
        manifest = build._manifest(options, embedder, corpus, chunks, type(faiss_index).__name__, time.perf_counter())
        languages = [c.language for c in chunks]
        step("keyword index alone (build_bm25)", lambda: build_bm25(texts, languages, tmp / "bm25-alone"))
        bridge = step("word bridge", lambda: build._bridge(chunks, None, embedder, print))
        parts = (chunks, keys, corpus.articles, held["vectors"], faiss_index, texts, bridge)
        step("write folder (incl. keyword index)", lambda: write_index(tmp / "index", manifest, *parts))
        sampler.running = False
        print(f"{len(chunks)} passages, {faiss_index.ntotal} vectors ({type(faiss_index).__name__})")
        print_table(["step", "seconds", "RSS before MB", "peak during MB", "RSS after MB"], rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
