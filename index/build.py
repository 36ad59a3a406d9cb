"""Build or incrementally rebuild the index, atomically.

Each build is written to a fresh folder under `.<name>.builds/`, and `index_dir` is a symlink
that is switched to it with one `os.replace` once the folder is complete. A build killed at
any moment therefore leaves the previous index in place. Embeddings of unchanged chunks are
taken from the previous build (keyed by a hash of model + embedded text), so editing one
article re-embeds only that article's chunks.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from corpus.chunk import chunk_articles
from corpus.errors import AssistantError
from corpus.load import Skipped, load_corpus
from corpus.options import LoadOptions
from corpus.types import Article, Chunk
from index.errors import BuildError
from index.manifest import Chunking, Counts, Manifest, ModelInfo
from index.options import BuildOptions
from index.store import load_index, make_faiss_index, write_index


@dataclass
class BuildReport:
    added: list[str] = field(default_factory=list)  # article titles
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks: int = 0
    embedded: int = 0  # chunks that went through the model
    seconds: float = 0.0
    manifest: Manifest | None = None


def embed_texts(chunks: list[Chunk], articles: dict[str, Article], context_words: int) -> list[str]:
    """What the model and BM25 see for each chunk: the chunk behind its article's title and lead.

    A question usually names the article's subject ("the HR specialist in Hässleholm") as well as
    what it asks; later passages rarely repeat the subject, so without this context the article's
    first passage wins questions answered further down. 0 words: the chunk text alone.
    """
    if context_words <= 0:
        return [c.text for c in chunks]
    # Once per article, not per chunk: a huge article has thousands of chunks.
    headers = {aid: _header(articles[aid], context_words) for aid in {c.article_id for c in chunks}}
    return [headers[c.article_id] + c.text for c in chunks]


def _header(article: Article, words: int) -> str:
    lead: list[str] = []
    for paragraph in article.paragraphs:
        lead += paragraph.text.split()
        if len(lead) >= words:
            break
    return f"{article.title}. {' '.join(lead[:words])}\n"


def builds_dir(index_dir: Path) -> Path:
    return index_dir.parent / f".{index_dir.name}.builds"


def build_index(options: BuildOptions, embedder, say=print, progress: bool = True) -> BuildReport:
    """Build the index described by `options` (re-embedding only what changed) and switch to it."""
    with _build_lock(options.index_dir):
        return _build(options, embedder, say, progress)


def _build(options: BuildOptions, embedder, say, progress: bool) -> BuildReport:
    started = time.perf_counter()
    corpus = load_corpus(options.corpus_dir, LoadOptions(options.max_file_mb))
    for skip in corpus.skipped:
        say(f"Skipped {skip.path}: {skip.reason}.")
    chunks = chunk_articles(corpus.articles, options.chunk_tokens, embedder.count_tokens, options.chunk_overlap)
    texts = embed_texts(chunks, {a.id: a for a in corpus.articles}, options.context_words)
    keys = [hashlib.sha256(f"{embedder.fingerprint}\n{t}".encode()).hexdigest()[:24] for t in texts]
    previous = _previous(options.index_dir)

    report = BuildReport(skipped=corpus.skipped, chunks=len(chunks))
    _compare_articles(report, previous, corpus.articles, chunks, keys)

    cache = {}
    if previous is not None:
        cache = {key: previous.vectors[i] for i, key in enumerate(previous.embed_keys)}
    todo = [i for i, key in enumerate(keys) if key not in cache]
    report.embedded = len(todo)
    say(f"Embedding {len(todo)} of {len(chunks)} chunks ({len(chunks) - len(todo)} reused).")
    fresh = embedder.encode_documents([texts[i] for i in todo], options.batch_size, progress=progress)
    vectors = np.zeros((len(chunks), embedder.dimension), dtype=np.float32)
    for row, i in enumerate(todo):
        vectors[i] = fresh[row]
    for i, key in enumerate(keys):
        if key in cache:
            vectors[i] = cache[key]

    faiss_index = make_faiss_index(vectors, options.hnsw_threshold)
    manifest = Manifest(
        model=ModelInfo(Path(options.model).name, str(options.model), embedder.dimension, embedder.fingerprint),
        chunking=Chunking(options.chunk_tokens, options.chunk_overlap, options.context_words),
        index_type=type(faiss_index).__name__,
        corpus_path=str(options.corpus_dir),
        corpus_fingerprint=corpus.fingerprint,
        counts=Counts(len(corpus.files), len(corpus.skipped), len(corpus.articles), len(chunks)),
        languages=tuple(sorted({a.language for a in corpus.articles})),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 2),
    )
    folder = builds_dir(options.index_dir) / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    write_index(folder, manifest, chunks, keys, corpus.articles, vectors, faiss_index, texts)
    _swap(options.index_dir, folder)
    report.seconds = time.perf_counter() - started
    report.manifest = manifest
    return report


def _previous(index_dir: Path):
    """The current index, if it is usable as an embedding cache."""
    try:
        return load_index(index_dir)
    except AssistantError:
        return None


def _compare_articles(report: BuildReport, previous, articles, chunks: list[Chunk], keys: list[str]) -> None:
    new: dict[str, list[str]] = {}
    for chunk, key in zip(chunks, keys):
        new.setdefault(chunk.article_id, []).append(key)
    old: dict[str, list[str]] = {}
    if previous is not None:
        for chunk, key in zip(previous.chunks, previous.embed_keys):
            old.setdefault(chunk.article_id, []).append(key)
    for article in articles:
        if article.id not in old:
            report.added.append(article.title)
        elif sorted(old[article.id]) != sorted(new.get(article.id, [])):
            report.changed.append(article.title)
        else:
            report.reused.append(article.title)
    if previous is not None:
        current = {a.id for a in articles}
        report.removed = [a.title for a in previous.articles.values() if a.id not in current]


class _build_lock:
    """One build at a time per index: a second one fails fast instead of racing the swap."""

    def __init__(self, index_dir: Path):
        self.path = builds_dir(index_dir) / ".lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = self.path.open("w")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise BuildError("Another index build is running; wait for it to finish.") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _swap(index_dir: Path, folder: Path) -> None:
    link = index_dir.with_name(f".{index_dir.name}.swap")
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(os.path.relpath(folder, index_dir.parent))
    if index_dir.exists() and not index_dir.is_symlink():
        shutil.rmtree(index_dir)  # a plain folder from elsewhere: replaced once, links from now on
    os.replace(link, index_dir)  # atomic: readers see the old build or the new one
    for old in builds_dir(index_dir).iterdir():
        if old.is_dir() and old != folder:
            shutil.rmtree(old, ignore_errors=True)
