"""Build cost: full build vs raw encode of the same sentence windows, incremental rebuild vs full.

python benchmarks/build.py    # goals: full <= 1.15x raw encode; incremental <= 0.1x full
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from common import arguments, print_table, timed

from assistant.settings import Settings
from corpus.chunk import chunk_articles
from corpus.load import load_corpus
from index.build import build_index
from index.embed import Embedder
from index.windows import window_texts


def main() -> None:
    arguments(__doc__)
    base = Settings.from_env()
    embedder = Embedder(base.model)
    embedder.encode_query("warm up")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(base.corpus_dir, corpus)
        settings = replace(base, corpus_dir=corpus, index_dir=Path(tmp) / "index")
        articles = {a.id: a for a in load_corpus(corpus).articles}
        chunks = chunk_articles(articles.values(), settings.chunk_tokens, embedder.count_tokens, settings.chunk_overlap)
        texts = [text for c in chunks for text in window_texts(c)]  # what a build embeds
        raw, _ = timed(embedder.encode_documents, texts, settings.batch_size)
        full, report = timed(build_index, settings, embedder, say=lambda _: None, progress=False)
        edited = corpus / "003_6c20b7587ebfaa38.txt"
        edited.write_text(edited.read_text().replace("seks socialrådgivere", "syv socialrådgivere"))
        incremental, inc = timed(build_index, settings, embedder, say=lambda _: None, progress=False)
        unchanged, _ = timed(build_index, settings, embedder, say=lambda _: None, progress=False)
    print(f"{report.chunks} chunks, {report.windows} windows; the incremental build re-embedded {inc.embedded}")
    print_table(
        ["what", "seconds", "ratio"],
        [
            ["raw encode of all windows", raw, 1.0],
            ["full build (load, clean, chunk, embed, write)", full, full / raw],
            ["incremental: one article edited", incremental, incremental / full],
            ["rebuild with nothing changed", unchanged, unchanged / full],
        ],
    )
    print("ratios: full/raw encode, incremental/full, unchanged/full")


if __name__ == "__main__":
    main()
