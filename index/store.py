"""The index on disk: a folder of fixed-name files, no pickle.

manifest.json   how it was built (model, chunking, corpus fingerprint, counts, format)
chunks.jsonl    one chunk per line, with the embedding key of each of its sentence windows
articles.jsonl  one article per line (title, language, source, span, paragraphs)
vectors.npy     float32 [windows, dim], L2-normalised, the windows of each chunk in chunk order
                (index/windows.py); also the embedding cache of the next build
faiss.index     inner-product search over the vectors (exact, or HNSW past a threshold)
bm25/           the bm25s keyword index over the same chunks (JSON + NumPy files)

The manifest records the size and checksum of every other file; a load checks them all.
"""

from __future__ import annotations

import io
import json
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from corpus.types import Article, Chunk, Paragraph
from index.bm25 import BM25Index, build_bm25
from index.bridge import Bridge
from index.errors import IndexMismatchError
from index.manifest import FILENAME, REBUILD, FileInfo, Manifest, read_manifest, write_manifest
from index.windows import Windows, window_count

# HNSW parameters measured with benchmarks/scale.py: recall@10 vs exact 0.995 at 60k passages.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 512
INDEX_FILES = ("chunks.jsonl", "articles.jsonl", "vectors.npy", "faiss.index")  # besides the manifest and bm25/
BM25_DIR = "bm25"
UNIT_TOLERANCE = 1e-3  # how far a stored vector's length may be from 1 (float32 rounding is ~1e-7)


@dataclass
class StoredIndex:
    path: Path
    manifest: Manifest
    chunks: list[Chunk]
    embed_keys: list[tuple[str, ...]]  # per chunk, one per window: its rows of `vectors`
    articles: dict[str, Article]
    vectors: np.ndarray  # one row per window
    faiss_index: object = field(repr=False)
    bm25: BM25Index = field(repr=False)

    def __post_init__(self):
        self.windows = Windows([len(keys) for keys in self.embed_keys])

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk position, cosine of its best window) of the k nearest chunks, nearest first."""
        k = min(k, len(self.chunks))
        if k <= 0:
            return []
        return self.windows.nearest(lambda rows: self.nearest_windows(vector, rows), k)

    def nearest_windows(self, vector: np.ndarray, rows: int):
        """(window ids, cosines) of the `rows` nearest windows, nearest first: the FAISS index of this folder."""
        scores, ids = self.faiss_index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), rows)
        return ids[0], scores[0]

    def chunk_scores(self, vectors: np.ndarray, mean_share: float = 0.0) -> np.ndarray:
        """Exact cosine of every chunk's best window (+ `mean_share` × its windows' mean) with a query vector
        ([chunks]) or several ([queries, chunks])."""
        return self.windows.chunk_scores(np.asarray(vectors, dtype=np.float32) @ self.vectors.T, mean_share)

    def cosines(self, vector: np.ndarray, positions, mean_share: float = 0.0) -> list[float]:
        """Cosine of the best window (+ `mean_share` × the windows' mean) of each chunk at `positions`."""
        return self.windows.chunk_cosines(self.vectors, vector, positions, mean_share)

    def refreshed(self) -> StoredIndex:
        """The index to answer the next question from: a folder index is reopened by whoever rebuilt it
        (a database store returns its newer generation here)."""
        return self


def make_faiss_index(vectors: np.ndarray, hnsw_threshold: int):
    """Inner-product search over `vectors`: exact below `hnsw_threshold` rows, HNSW from there on."""
    import faiss

    dim = vectors.shape[1]
    if len(vectors) >= hnsw_threshold:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def write_index(
    folder: Path,
    manifest: Manifest,
    chunks: list[Chunk],
    embed_keys: list[tuple[str, ...]],
    articles: list[Article],
    vectors: np.ndarray,
    faiss_index,
    bm25_texts: list[str],
    bridge: Bridge,
) -> Manifest:
    """Write a complete index into the new folder `folder`; returns the manifest as written (with checksums)."""
    import faiss

    folder.mkdir(parents=True)
    with (folder / "chunks.jsonl").open("w", encoding="utf-8") as fh:
        for chunk, key in zip(chunks, embed_keys):
            fh.write(chunk_line(chunk, key) + "\n")
    with (folder / "articles.jsonl").open("w", encoding="utf-8") as fh:
        for article in articles:
            fh.write(article_line(article) + "\n")
    np.save(folder / "vectors.npy", np.asarray(vectors, dtype=np.float32))
    # Through Python, so a full disk is an OSError like every other write here.
    (folder / "faiss.index").write_bytes(faiss.serialize_index(faiss_index).tobytes())
    build_bm25(bm25_texts, [c.language for c in chunks], folder / BM25_DIR)
    bridge.save(folder / BM25_DIR)
    files = {
        path.relative_to(folder).as_posix(): FileInfo.of(path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    manifest = replace(manifest, files=files)
    # The manifest is written last: a folder without one is an unfinished build.
    write_manifest(folder, manifest)
    return manifest


def chunk_line(chunk: Chunk, embed_keys: tuple[str, ...]) -> str:
    """One chunk as stored (a line of chunks.jsonl, a row of a database store)."""
    return json.dumps({**asdict(chunk), "embed_keys": embed_keys}, ensure_ascii=False)


def article_line(article: Article) -> str:
    """One article as stored (a line of articles.jsonl, a row of a database store)."""
    return json.dumps(asdict(article), ensure_ascii=False)


def parse_records(chunk_lines: list[str], article_lines: list[str]):
    """(chunks, their windows' embed keys, articles by id) from stored lines; TypeError/KeyError/ValueError on
    damage."""
    rows = [json.loads(line) for line in chunk_lines]
    keys = [tuple(_check(key, str) for key in _check(row.pop("embed_keys"), list)) for row in rows]
    chunks = [_record(Chunk, row) for row in rows]
    articles = {}
    for line in article_lines:
        row = json.loads(line)
        row["paragraphs"] = tuple(_record(Paragraph, p) for p in row["paragraphs"])
        article = _record(Article, row)
        articles[article.id] = article
    return chunks, keys, articles


def current_build(index_dir: Path) -> Path:
    """The build folder the index link points to now.

    Resolve it once and read every file from it, never through the link: a rebuild may switch the
    link midway, and the files of two builds must not mix.
    """
    return index_dir.resolve()


def load_index(index_dir: Path, model_fingerprint: str | None = None) -> StoredIndex:
    """Load and check an index; `model_fingerprint` is the configured model's, when known.

    Every file is checked against the size and checksum in the manifest before it is parsed, and the
    parts are checked against each other, so a damaged or mixed index is refused, never half-used.
    """
    import faiss

    folder = current_build(index_dir)
    manifest = read_manifest(folder, label=index_dir)
    built_with = manifest.model
    if model_fingerprint and built_with.fingerprint != model_fingerprint:
        raise IndexMismatchError(
            f"The index at {index_dir} was built with another model ({built_with.name}, fingerprint "
            f"{built_with.fingerprint}; configured: {model_fingerprint}): {REBUILD}."
        )
    data = _verified_files(folder, manifest, index_dir)
    try:
        chunks, keys, articles = parse_records(
            data["chunks.jsonl"].decode("utf-8").splitlines(), data["articles.jsonl"].decode("utf-8").splitlines()
        )
        vectors = np.load(io.BytesIO(data["vectors.npy"]), allow_pickle=False)
        faiss_index = faiss.deserialize_index(np.frombuffer(data["faiss.index"], dtype=np.uint8))
        if hasattr(faiss_index, "hnsw"):
            faiss_index.hnsw.efSearch = HNSW_EF_SEARCH
        bm25 = BM25Index(folder / BM25_DIR)
    except Exception as exc:  # noqa: BLE001 - files that passed their checksum yet do not parse: damaged all the same
        raise IndexMismatchError(f"The index at {index_dir} is damaged ({type(exc).__name__}): {REBUILD}.") from None
    problem = _inconsistency(manifest, chunks, keys, articles, vectors, faiss_index, bm25)
    if problem:
        raise IndexMismatchError(f"The index at {index_dir} is inconsistent ({problem}): {REBUILD}.")
    return StoredIndex(index_dir, manifest, chunks, keys, articles, vectors, faiss_index, bm25)


def _record(cls, row: dict):
    """`cls(**row)` with its str and int fields type-checked: a record of the wrong shape is damage."""
    for f in fields(cls):
        if f.type in _KINDS and (f.name in row or f.default is MISSING):  # a newer field has its default
            _check(row[f.name], _KINDS[f.type])
    return cls(**row)


def _check(value, kind: type):
    if type(value) is not kind:  # exact: True is not an int here
        raise TypeError(f"{kind.__name__} expected")
    return value


_KINDS = {"str": str, "int": int}  # the field annotations of our records, as strings (postponed annotations)


def _verified_files(folder: Path, manifest: Manifest, label: Path) -> dict[str, bytes]:
    """The bytes of every file the manifest lists, each checked against its recorded size and checksum."""
    names = set(manifest.files)
    unknown = sorted(n for n in names if n not in INDEX_FILES and not _is_bm25_file(n))
    missing = sorted(set(INDEX_FILES) - names) + ([] if any(map(_is_bm25_file, names)) else [f"{BM25_DIR}/"])
    if unknown or missing:
        raise IndexMismatchError(
            f"The index manifest at {label} lists the wrong files ({', '.join(unknown + missing)}): {REBUILD}."
        )
    data = {}
    for name, info in sorted(manifest.files.items()):
        try:
            data[name] = (folder / name).read_bytes()
        except OSError as exc:
            reason = "missing" if isinstance(exc, FileNotFoundError) else f"unreadable: {exc.strerror}"
            raise IndexMismatchError(f"The index at {label} is damaged ({name} is {reason}): {REBUILD}.") from None
        if FileInfo.of(data[name]) != info:
            raise IndexMismatchError(
                f"The index at {label} is damaged ({name} does not match its checksum): {REBUILD}."
            )
    return data


def _is_bm25_file(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and parts[0] == BM25_DIR and parts[1] not in ("", ".", "..")


def _inconsistency(manifest: Manifest, chunks, keys, articles, vectors, faiss_index, bm25) -> str | None:
    """What does not fit together in a loaded index, or None when everything does."""
    problem = records_problem(manifest, chunks, keys, articles, vectors, bm25)
    if problem:
        return problem
    if faiss_index.ntotal != len(vectors) or faiss_index.d != manifest.model.dimension:
        return "search index size differs"
    if type(faiss_index).__name__ != manifest.index_type:
        return "search index type differs"
    if manifest.languages != tuple(sorted({a.language for a in articles.values()})):
        return "languages differ"
    return None


def records_problem(manifest: Manifest, chunks, keys, articles, vectors: np.ndarray, bm25) -> str | None:
    """What does not fit together between the records, vectors and keyword index of any store, or None."""
    windows, dim = sum(map(len, keys)), manifest.model.dimension
    if vectors.dtype != np.float32 or vectors.shape != (windows, dim):
        return f"vectors are {vectors.dtype} {vectors.shape}, expected float32 ({windows}, {dim})"
    if not (manifest.counts.chunks == len(chunks) == bm25.num_docs):
        return "chunk counts differ"
    bridge = bm25.bridge.vectors
    if bm25.bridge.words and (bridge.shape[1] != dim or vector_problem(bridge)):
        return f"the word bridge's vectors are {bridge.shape[1]}-dimensional or not unit vectors"
    size = manifest.chunking.window_sentences
    if any(len(k) != window_count(c, size) for c, k in zip(chunks, keys)):
        return "a chunk's window count differs from its sentences"
    if manifest.counts.articles != len(articles):
        return "article counts differ"
    if any(c.article_id not in articles for c in chunks):
        return "chunks of articles it does not hold"
    return vector_problem(vectors)


def vector_problem(vectors: np.ndarray) -> str | None:
    """Why `vectors` cannot be searched by cosine (not finite, not unit length), or None."""
    if not np.isfinite(vectors).all():
        return "vectors that are not numbers"
    if len(vectors) and np.abs(np.linalg.norm(vectors, axis=1) - 1).max() > UNIT_TOLERANCE:
        return "vectors that are not of unit length"
    return None


def is_our_folder(folder: Path) -> bool:
    """True when `folder` holds an index we wrote and nothing else: a manifest and only our file names."""
    entries = {p.name: p for p in folder.iterdir()}
    if FILENAME not in entries or not set(entries) <= {FILENAME, *INDEX_FILES, BM25_DIR}:
        return False
    files = [p for name, p in entries.items() if name != BM25_DIR]
    bm25 = entries.get(BM25_DIR)
    if bm25 is not None:
        if bm25.is_symlink() or not bm25.is_dir():
            return False
        keyword_files = list(bm25.iterdir())
        if not all(p.suffix in (".json", ".npy") for p in keyword_files):
            return False
        files += keyword_files
    return all(p.is_file() and not p.is_symlink() for p in files)
