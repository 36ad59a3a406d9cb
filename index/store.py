"""The index on disk: a folder of fixed-name files, no pickle.

manifest.json   how it was built (model, chunking, corpus fingerprint, counts, format)
chunks.jsonl    one chunk per line, in vector order, with the key of its embedding
articles.jsonl  one article per line (title, language, source, span, paragraphs)
vectors.npy     float32 [n, dim], L2-normalised; also the embedding cache of the next build
faiss.index     inner-product search over the vectors (exact, or HNSW past a threshold)
bm25/           the bm25s keyword index over the same chunks (JSON + NumPy files)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from corpus.types import Article, Chunk, Paragraph
from index.bm25 import BM25Index, build_bm25
from index.errors import IndexMismatchError
from index.manifest import REBUILD, Manifest, read_manifest, write_manifest

# HNSW parameters measured with benchmarks/scale.py: recall@10 vs exact 0.995 at 60k passages.
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 512


@dataclass
class StoredIndex:
    path: Path
    manifest: Manifest
    chunks: list[Chunk]
    embed_keys: list[str]
    articles: dict[str, Article]
    vectors: np.ndarray
    faiss_index: object = field(repr=False)
    bm25: BM25Index = field(repr=False)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk position, cosine) of the k nearest chunks."""
        k = min(k, len(self.chunks))
        if k <= 0:
            return []
        scores, ids = self.faiss_index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


def make_faiss_index(vectors: np.ndarray, hnsw_threshold: int):
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
    embed_keys: list[str],
    articles: list[Article],
    vectors: np.ndarray,
    faiss_index,
    bm25_texts: list[str],
) -> None:
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "chunks.jsonl").open("w", encoding="utf-8") as fh:
        for chunk, key in zip(chunks, embed_keys):
            fh.write(json.dumps({**asdict(chunk), "embed_key": key}, ensure_ascii=False) + "\n")
    with (folder / "articles.jsonl").open("w", encoding="utf-8") as fh:
        for article in articles:
            fh.write(json.dumps(asdict(article), ensure_ascii=False) + "\n")
    np.save(folder / "vectors.npy", np.asarray(vectors, dtype=np.float32))
    faiss.write_index(faiss_index, str(folder / "faiss.index"))
    build_bm25(bm25_texts, [c.language for c in chunks], folder / "bm25")
    # The manifest is written last: a folder without one is an unfinished build.
    write_manifest(folder, manifest)


def load_index(index_dir: Path, model_fingerprint: str | None = None) -> StoredIndex:
    """Load and check an index; `model_fingerprint` is the configured model's, when known."""
    import faiss

    manifest = read_manifest(index_dir)
    built_with = manifest.model
    if model_fingerprint and built_with.fingerprint != model_fingerprint:
        raise IndexMismatchError(
            f"The index at {index_dir} was built with another model ({built_with.name}, fingerprint "
            f"{built_with.fingerprint}; configured: {model_fingerprint}): {REBUILD}."
        )
    try:
        rows = [json.loads(line) for line in (index_dir / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
        keys = [row.pop("embed_key") for row in rows]
        chunks = [Chunk(**row) for row in rows]
        articles = {}
        for line in (index_dir / "articles.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            row["paragraphs"] = tuple(Paragraph(**p) for p in row["paragraphs"])
            articles[row["id"]] = Article(**row)
        vectors = np.load(index_dir / "vectors.npy", allow_pickle=False)
        faiss_index = faiss.read_index(str(index_dir / "faiss.index"))
        if hasattr(faiss_index, "hnsw"):
            faiss_index.hnsw.efSearch = HNSW_EF_SEARCH
        bm25 = BM25Index(index_dir / "bm25")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexMismatchError(f"The index at {index_dir} is damaged ({type(exc).__name__}): {REBUILD}.") from None
    if not (len(chunks) == len(vectors) == faiss_index.ntotal) or vectors.shape[1] != built_with.dimension:
        raise IndexMismatchError(f"The index at {index_dir} is inconsistent (counts differ): {REBUILD}.")
    return StoredIndex(index_dir, manifest, chunks, keys, articles, vectors, faiss_index, bm25)
