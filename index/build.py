"""Build or incrementally rebuild the index, atomically, without touching anything that is not ours.

Each build is written to a fresh folder under `.<name>.builds/`, and `index_dir` is a symlink
that is switched to it with one `os.replace` once the folder is complete. A build killed at
any moment therefore leaves the previous index in place; a failed one removes its folder. The
build the link pointed to before stays for GRACE_SECONDS after the switch, so a reader that
resolved the link a moment earlier can finish loading it. Embeddings of unchanged sentence windows
are taken from the previous build (keyed by a hash of model + embedded text), so editing one
article re-embeds only that article's windows.

The steps of `build_index`: check the location, load, chunk, compare with the previous build,
embed, write, swap, retire old builds.
"""

from __future__ import annotations

import errno
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
from corpus.load import LoadResult, Skipped, load_corpus
from corpus.options import LoadOptions
from corpus.types import Article, Chunk
from index.bridge import Bridge, bridge_words
from index.errors import BuildError, IndexMissingError
from index.manifest import FILENAME, Chunking, Counts, Manifest, ModelInfo
from index.options import BuildOptions
from index.store import StoredIndex, is_our_folder, load_index, make_faiss_index, vector_problem, write_index
from index.windows import WINDOW_SENTENCES, window_texts

GRACE_SECONDS = 60  # how long a replaced build stays for readers that resolved the link just before the swap
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BuildReport:
    added: list[str] = field(default_factory=list)  # article titles
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks: int = 0
    windows: int = 0  # sentence windows embedded or reused (index/windows.py)
    embedded: int = 0  # windows that went through the model
    seconds: float = 0.0
    manifest: Manifest | None = None


def keyword_texts(chunks: list[Chunk], articles: dict[str, Article], context_words: int) -> list[str]:
    """What keyword search sees for each chunk: the chunk behind its article's title and lead.

    A question usually names the article's subject ("the HR specialist in Hässleholm") as well as
    what it asks; later passages rarely repeat the subject, so without this context the article's
    first passage wins questions answered further down. The model sees the chunk alone: measured on
    the tuning questions of both benchmarks, the header helps keyword search on both but dilutes
    the chunk's vector on pages whose lead is generic (benchmarks/tune.py). 0 words: chunk text alone.
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
    """The folder beside the index link that holds its builds (and the build lock)."""
    return index_dir.parent / f".{index_dir.name}.builds"


def build_index(options: BuildOptions, embedder, say=print, progress: bool = True) -> BuildReport:
    """Build the index described by `options` (re-embedding only what changed) and switch to it."""
    index_dir = check_location(options.index_dir, options.corpus_dir)
    with _build_lock(index_dir):
        _clear_unfinished(index_dir)
        return _build(options, index_dir, embedder, say, progress)


def check_location(index_dir: Path, corpus_dir: Path) -> Path:
    """The index location as an absolute path; BuildError when building there could harm anything.

    The location must be new, empty, or an index this code built (a link into our builds folder,
    or a plain folder holding only our files): never a user's folder, file, the corpus or the project.
    """
    index_dir = Path(os.path.abspath(index_dir))
    where = Path(os.path.realpath(index_dir.parent)) / index_dir.name  # the link itself, its parents resolved
    corpus = Path(os.path.realpath(corpus_dir))
    holds = [Path.cwd().resolve(), PROJECT_ROOT, Path.home().resolve()]
    if any(folder.is_relative_to(where) for folder in holds):
        raise BuildError(
            f"--index {index_dir} is the current folder, the project or a folder holding them: "
            "choose a folder of its own, such as var/index."
        )
    if where == corpus or where.is_relative_to(corpus) or corpus.is_relative_to(where):
        raise BuildError(
            f"--index {index_dir} overlaps the corpus folder {corpus_dir}: keep the index outside the corpus."
        )
    try:
        _check_existing(index_dir)
    except OSError as exc:
        raise BuildError(f"Cannot use {index_dir} as the index location ({exc.strerror or exc}).") from None
    return index_dir


def _check_existing(index_dir: Path) -> None:
    if index_dir.is_symlink():
        target = Path(os.path.realpath(index_dir))
        if not target.is_relative_to(Path(os.path.realpath(builds_dir(index_dir)))):
            raise BuildError(
                f"--index {index_dir} is a link to {target}, not an index built here: "
                "remove the link or choose another --index."
            )
    elif index_dir.exists() and not index_dir.is_dir():
        raise BuildError(f"--index {index_dir} is a file, not an index folder: choose another --index.")
    elif index_dir.exists() and any(index_dir.iterdir()) and not is_our_folder(index_dir):
        raise BuildError(
            f"--index {index_dir} is a folder that holds other things than an index built here; nothing was "
            "changed: choose a new or empty folder."
        )


@dataclass
class Prepared:
    """A build's content before a store writes it: the same for every store."""

    corpus: LoadResult
    chunks: list[Chunk]
    keys: list[tuple[str, ...]]  # each chunk's windows' embedding keys
    vectors: np.ndarray  # one per window
    texts: list[str]  # what keyword search sees (keyword_texts)
    bridge: Bridge  # English words to the corpus's (index/bridge.py)
    report: BuildReport
    started: float

    def manifest(self, options: BuildOptions, embedder, index_type: str) -> Manifest:
        """The manifest of this build, stored as `index_type`."""
        return _manifest(options, embedder, self.corpus, self.chunks, index_type, self.started)


def prepare_build(options: BuildOptions, embedder, previous: StoredIndex | None, say, progress: bool) -> Prepared:
    """Load, chunk, compare with `previous` and embed (vectors of unchanged windows are taken from it)."""
    started = time.perf_counter()
    corpus = _load(options, say, progress)
    chunks, windows, keys = _chunk(corpus.articles, options, embedder)
    report = _compare(previous, corpus, chunks, keys)
    vectors, report.embedded = _embed(windows, keys, previous, embedder, options, say, progress)
    report.windows = len(vectors)
    texts = keyword_texts(chunks, {a.id: a for a in corpus.articles}, options.context_words)
    bridge = _bridge(chunks, previous, embedder, say)
    return Prepared(corpus, chunks, keys, vectors, texts, bridge, report, started)


def _bridge(chunks: list[Chunk], previous: StoredIndex | None, embedder, say) -> Bridge:
    """The word bridge (index/bridge.py) of the chunks, reusing the previous build's word vectors (same model)."""
    words = bridge_words([c.text for c in chunks], [c.language for c in chunks])
    same_model = previous is not None and previous.manifest.model.fingerprint == embedder.fingerprint
    reused = previous.bm25.bridge if same_model else None
    known = set(reused.words) if reused else set()
    say(f"Embedding {sum(w not in known for w in words)} of {len(words)} corpus words for the word bridge.")
    bridge = Bridge.build(words, embedder, reused)
    problem = vector_problem(bridge.vectors) if bridge.words else None
    if problem:
        raise BuildError(f"The model returned {problem} for corpus words: check the model folder.")
    return bridge


def _build(options: BuildOptions, index_dir: Path, embedder, say, progress: bool) -> BuildReport:
    built = prepare_build(options, embedder, previous_index(lambda: load_index(index_dir), say), say, progress)
    faiss_index = make_faiss_index(built.vectors, options.hnsw_threshold)
    manifest = built.manifest(options, embedder, type(faiss_index).__name__)
    # Builds replaced long ago go before this one is written too: on a full disk they hold the space it needs.
    _retire_old_builds(index_dir, Path(os.path.realpath(index_dir)), None)
    folder, built.report.manifest, previous = _publish(
        index_dir,
        manifest,
        built.chunks,
        built.keys,
        built.corpus.articles,
        built.vectors,
        faiss_index,
        built.texts,
        built.bridge,
    )
    _retire_old_builds(index_dir, folder, previous)
    built.report.seconds = time.perf_counter() - built.started
    return built.report


def _load(options: BuildOptions, say, progress: bool = False) -> LoadResult:
    from tqdm import tqdm

    # disable=None: a bar only on a terminal, so logs and captured output keep one line per message.
    with tqdm(desc="Reading files", unit="file", disable=None if progress else True, leave=False) as bar:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        corpus = load_corpus(options.corpus_dir, LoadOptions(options.max_file_mb), advance)
    for skip in corpus.skipped:
        say(f"Skipped {skip.path}: {skip.reason}.")
    for copy in corpus.duplicates:
        say(f"Left out of {copy.path}: {copy.reason}.")
    return corpus


def _chunk(articles: list[Article], options: BuildOptions, embedder):
    """The chunks, the texts of all their windows in order, and each chunk's windows' embedding keys
    (model + the text embedded)."""
    chunks = chunk_articles(articles, options.chunk_tokens, embedder.count_tokens, options.chunk_overlap)
    texts, keys = [], []
    for chunk in chunks:
        windows = window_texts(chunk)
        texts += windows
        keys.append(tuple(hashlib.sha256(f"{embedder.fingerprint}\n{t}".encode()).hexdigest()[:24] for t in windows))
    return chunks, texts, keys


def previous_index(load, say) -> StoredIndex | None:
    """The current index (`load()`), if it is usable as an embedding cache; a damaged one is simply not reused."""
    try:
        return load()
    except IndexMissingError:
        return None
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with it, this build replaces it
        say(f"Not reusing the previous index ({exc}); embedding every chunk.")
        return None


def _compare(previous: StoredIndex | None, corpus: LoadResult, chunks: list[Chunk], keys) -> BuildReport:
    """Which articles are added, changed, removed or reused since the previous build."""
    report = BuildReport(skipped=corpus.skipped, chunks=len(chunks))
    new: dict[str, list[str]] = {}
    for chunk, chunk_keys in zip(chunks, keys):
        new.setdefault(chunk.article_id, []).extend(chunk_keys)
    old: dict[str, list[str]] = {}
    if previous is not None:
        for chunk, chunk_keys in zip(previous.chunks, previous.embed_keys):
            old.setdefault(chunk.article_id, []).extend(chunk_keys)
    for article in corpus.articles:
        if article.id not in old:
            report.added.append(article.title)
        elif sorted(old[article.id]) != sorted(new.get(article.id, [])):
            report.changed.append(article.title)
        else:
            report.reused.append(article.title)
    if previous is not None:
        current = {a.id for a in corpus.articles}
        report.removed = [a.title for a in previous.articles.values() if a.id not in current]
    return report


def _embed(texts, keys, previous, embedder, options: BuildOptions, say, progress: bool) -> tuple[np.ndarray, int]:
    """Every window's vector (`texts`, `keys` per chunk): reused from the previous build by key, the rest
    from the model."""
    keys = [key for chunk_keys in keys for key in chunk_keys]
    cache = {}
    if previous is not None:
        cache = dict(zip((key for chunk_keys in previous.embed_keys for key in chunk_keys), previous.vectors))
    todo = [i for i, key in enumerate(keys) if key not in cache]
    say(f"Embedding {len(todo)} of {len(texts)} sentence windows ({len(texts) - len(todo)} reused).")
    fresh = embedder.encode_documents([texts[i] for i in todo], options.batch_size, progress=progress)
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    for row, i in enumerate(todo):
        vectors[i] = fresh[row]
    for i, key in enumerate(keys):
        if key in cache:
            vectors[i] = cache[key]
    problem = vector_problem(vectors)
    if problem:
        raise BuildError(f"The model {options.model} returned {problem}: check the model folder.")
    return vectors, len(todo)


def _manifest(options, embedder, corpus: LoadResult, chunks, index_type: str, started: float) -> Manifest:
    return Manifest(
        model=ModelInfo(Path(options.model).name, str(options.model), embedder.dimension, embedder.fingerprint),
        chunking=Chunking(options.chunk_tokens, options.chunk_overlap, options.context_words, WINDOW_SENTENCES),
        index_type=index_type,
        corpus_path=str(options.corpus_dir),
        corpus_fingerprint=corpus.fingerprint,
        counts=Counts(len(corpus.files), len(corpus.skipped), len(corpus.articles), len(chunks)),
        languages=tuple(sorted({a.language for a in corpus.articles})),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.perf_counter() - started, 2),
    )


def _publish(index_dir: Path, manifest: Manifest, *parts) -> tuple[Path, Manifest, Path | None]:
    """Write the build into a new folder and swap the link to it: (folder, manifest written, build replaced).

    On any failure the new folder is removed again and an OSError (disk full, read-only) becomes one line.
    """
    folder = builds_dir(index_dir) / f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    try:
        manifest = write_index(folder, manifest, *parts)
        return folder, manifest, _swap(index_dir, folder)
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)  # never leave a half-written build behind
        if isinstance(exc, OSError):
            raise BuildError(_write_failure(folder.parent, exc)) from None
        raise


def _write_failure(where: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return f"No space left on the disk holding {where}: free some space, then run `assistant index build` again."
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"Cannot write the index under {where} ({exc.strerror}): choose a writable --index."
    return f"Cannot write the index under {where} ({exc.strerror or exc}); the previous index is unchanged."


class _build_lock:
    """One build at a time per index: a second one fails fast instead of racing the swap."""

    def __init__(self, index_dir: Path):
        self.path = builds_dir(index_dir) / ".lock"

    def __enter__(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = self.path.open("w")
        except OSError as exc:
            raise BuildError(_write_failure(self.path.parent, exc)) from None
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise BuildError("Another index build is running; wait for it to finish.") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def _clear_unfinished(index_dir: Path) -> None:
    """Remove build folders without a manifest: left by a build that was killed (we hold the lock)."""
    for folder in builds_dir(index_dir).iterdir():
        if folder.is_dir() and not folder.is_symlink() and not (folder / FILENAME).is_file():
            shutil.rmtree(folder, ignore_errors=True)


def _swap(index_dir: Path, folder: Path) -> Path | None:
    """Point the index link at `folder` in one atomic step; return the build it pointed to before.

    A plain index folder of ours (checked by `check_location`) is moved into the builds folder, not deleted.
    """
    link = index_dir.with_name(f".{index_dir.name}.swap")
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(os.path.relpath(folder, index_dir.parent))
    moved = None
    if index_dir.is_symlink():
        previous = Path(os.path.realpath(index_dir))
    elif index_dir.exists():
        previous = moved = folder.with_name(f"{folder.name}-replaced")
        index_dir.rename(moved)
    else:
        previous = None
    try:
        os.replace(link, index_dir)  # atomic: readers see the old build or the new one
    except BaseException:
        if moved:
            moved.rename(index_dir)
        raise
    return previous


def _retire_old_builds(index_dir: Path, current: Path, previous: Path | None) -> None:
    """Delete builds replaced more than GRACE_SECONDS ago; the one replaced just now is kept (and timed).

    Best effort: the new index is already in place, and the next build tries again.
    """
    keep = {current.name, previous.name if previous else None}
    try:
        if previous is not None and previous.is_dir():
            os.utime(previous)  # its mtime now says when it stopped being current
        for old in builds_dir(index_dir).iterdir():
            if old.is_dir() and not old.is_symlink() and old.name not in keep:
                if time.time() - old.stat().st_mtime > GRACE_SECONDS:
                    shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass
