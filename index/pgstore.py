"""The index in PostgreSQL with the vector extension: several servers on one database.

Tables (created by the first build):

assistant_generation      one row per build: id, the manifest (JSON text, as manifest.json)
assistant_current         one row: the generation every server answers from
assistant_article         (generation, id, line): an article as a line of articles.jsonl
assistant_keyword_file    (generation, name, data): the bm25s keyword index files, checked by the manifest
assistant_chunk_<gen>     (position, line): a chunk as a line of chunks.jsonl
assistant_window_<gen>    (position, embedding vector(dim)): the sentence windows of the chunks in chunk
                          order (index/windows.py), with an HNSW index for inner product: the vectors
                          are unit length, so -(a <#> b) is their cosine

A build writes a whole generation and switches `assistant_current` to it in ONE transaction: a build
killed at any moment rolls back and leaves the previous generation serving. Builds hold an advisory
lock, so a second concurrent build is refused. Each server keeps the keyword index and the chunk
records in memory (so keyword scores and the calibrated confidence are exactly the folder store's)
and asks the database for the nearest vectors; before each question it reads the current generation
id (one cheap query) and reloads when another server rebuilt. The current and the previous
generation are kept; older ones are dropped after a build.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from corpus.errors import AssistantError
from index.bm25 import BM25Index, build_bm25
from index.errors import BuildError, IndexMismatchError, IndexMissingError
from index.manifest import REBUILD, FileInfo, Manifest
from index.options import BuildOptions
from index.store import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    StoredIndex,
    article_line,
    chunk_line,
    parse_records,
    records_problem,
)

INDEX_TYPE = "pgvector-hnsw"
KEYWORD_DIR = "bm25"
BUILD_LOCK = 0x61737369  # pg_try_advisory_lock key: one build at a time per database
KEEP_GENERATIONS = 2  # the current one and the one before it (servers that have not reloaded yet)
BUILD_MEMORY = "256MB"  # least maintenance_work_mem for the HNSW build (raise_build_memory)
BAD_URL = (
    "ASSISTANT_STORE is not a valid postgresql:// URL: percent-encode special characters in the user name and "
    "password (@ as %40, / as %2F, % as %25, : as %3A)."
)

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS assistant_generation (
    id bigserial PRIMARY KEY, manifest text NOT NULL, created timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS assistant_current (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    generation bigint NOT NULL REFERENCES assistant_generation (id));
CREATE TABLE IF NOT EXISTS assistant_article (
    generation bigint NOT NULL REFERENCES assistant_generation (id) ON DELETE CASCADE,
    id text NOT NULL, line text NOT NULL, PRIMARY KEY (generation, id));
CREATE TABLE IF NOT EXISTS assistant_keyword_file (
    generation bigint NOT NULL REFERENCES assistant_generation (id) ON DELETE CASCADE,
    name text NOT NULL, data bytea NOT NULL, PRIMARY KEY (generation, name));
"""


def vector_text(vector: np.ndarray) -> str:
    """pgvector's text form; float32 -> shortest decimal -> float32 is exact, so stored vectors equal ours."""
    return "[" + ",".join(map(repr, np.asarray(vector, dtype=np.float32).tolist())) + "]"


def chunk_table(generation: int):
    """The table holding a generation's chunks."""
    from psycopg import sql

    return sql.Identifier(f"assistant_chunk_{int(generation)}")


def window_table(generation: int):
    """The table holding a generation's window vectors."""
    from psycopg import sql

    return sql.Identifier(f"assistant_window_{int(generation)}")


@dataclass
class PgIndex(StoredIndex):
    """A generation loaded from the database; nearest-vector search runs in PostgreSQL."""

    store: PgStore | None = field(default=None, repr=False)
    generation: int = 0
    model_fingerprint: str | None = None

    def nearest_windows(self, vector: np.ndarray, rows: int):
        """(window ids, cosines) of the `rows` nearest windows, nearest first: the HNSW index of this generation."""
        found = self.store.search(self.generation, vector, rows)
        return [r for r, _ in found], [s for _, s in found]

    def refreshed(self) -> StoredIndex:
        """This index, or the newer generation another server switched to."""
        if self.store.current_generation() == self.generation:
            return self
        return self.store.load(self.model_fingerprint)


class PgStore:
    """The index in a PostgreSQL database (see the module docstring)."""

    def __init__(self, url: str, ef_search: int = 200):
        self.url, self.ef_search = url, ef_search
        self._conn, self._session_ef = None, None
        self._lock = threading.Lock()  # one statement at a time on the shared reader connection

    @property
    def label(self) -> str:
        """The database as named in messages: host and database, never the password (nor any part of it: a URL
        that does not parse unambiguously is named without its details)."""
        parts = url_parts(self.url)
        if parts is None:
            return "the database in ASSISTANT_STORE"
        label = f"postgresql://{parts.get('host') or 'localhost'}/{parts.get('dbname') or ''}"
        password = parts.get("password") or ""
        return "the database in ASSISTANT_STORE" if password and password in label else label

    # --- connections -------------------------------------------------------------------------
    def connect(self):
        """A new autocommit connection with the vector type readable as NumPy (binary)."""
        import psycopg

        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise IndexMissingError(self._unreachable(exc)) from None
        _register_vector(conn)
        return conn

    def _unreachable(self, exc) -> str:
        parts = url_parts(self.url)
        if parts is None:  # libpq's own words would quote the URL, password included
            return BAD_URL
        reason = _first_line(exc)
        if parts.get("password") and parts["password"] in reason:
            reason = type(exc).__name__
        return f"Cannot use the index database {self.label} ({reason}): check ASSISTANT_STORE and that the server runs."

    def _denied(self, exc, writing: bool) -> str:
        """One line for a privilege the database user lacks, naming it and the object when PostgreSQL does."""
        text = _first_line(exc)
        if "extension" in text:
            return (
                f"The database user may not create the vector extension in {self.label} ({text}): ask the database "
                "owner to run `CREATE EXTENSION vector;` in that database."
            )
        found = re.match(r"permission denied for (\w+) (.+)", text)
        if not found:
            return f"The database user lacks a privilege in {self.label} ({text}): ask the database owner to grant it."
        kind, name = found.groups()
        if kind == "schema":
            privilege = "CREATE" if writing else "USAGE"
        elif kind in ("table", "relation", "view", "sequence"):
            privilege = "SELECT, INSERT, UPDATE and DELETE" if writing else "SELECT"
        else:
            privilege = "the needed privilege"
        return (
            f"The database user lacks {privilege} on {kind} {name} in {self.label}: ask the database owner to grant it."
        )

    def database_error(self, exc, generation: int | None = None, writing: bool = False) -> AssistantError:
        """One-line error for a database error: unreachable, a missing privilege, a damaged (or meanwhile
        replaced) generation, or whatever else the server refused."""
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            return IndexMissingError(self._unreachable(exc))
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return (BuildError if writing else IndexMissingError)(self._denied(exc, writing))
        if not writing and isinstance(exc, (psycopg.ProgrammingError, psycopg.DataError)):
            # A table or column of the generation is missing or changed: replaced by a build meanwhile, or damaged.
            if generation is not None:
                try:
                    current = self.current_generation()
                except AssistantError:
                    current = generation
                if current != generation:
                    return IndexMissingError(f"The index in {self.label} was replaced meanwhile: ask again.")
            return IndexMismatchError(f"The index in {self.label} is damaged ({_first_line(exc)}): {REBUILD}.")
        return (BuildError if writing else IndexMissingError)(
            f"The database {self.label} refused the request ({_first_line(exc)}): check the server's log."
        )

    def _reader(self):
        if self._conn is None or self._conn.closed:
            self._conn, self._session_ef = self.connect(), None
        return self._conn

    def _query(self, statement, params=(), ef_search: int | None = None, generation: int | None = None) -> list[tuple]:
        """Rows of one read on the shared connection (with `hnsw.ef_search` set first when given);
        a lost connection is reopened once. `generation`: the one read, told apart when it fails."""
        import psycopg

        failure = None
        with self._lock:
            for attempt in (1, 2):
                try:
                    conn = self._reader()
                    if ef_search is not None and self._session_ef != ef_search:
                        conn.execute(sql_format("SET hnsw.ef_search = {}", ef_search))
                        self._session_ef = ef_search
                    return conn.execute(statement, params).fetchall()
                except psycopg.OperationalError as exc:
                    self._conn = None
                    if attempt == 2:
                        raise IndexMissingError(self._unreachable(exc)) from None
                except psycopg.Error as exc:
                    failure = exc
                    break
        raise self.database_error(failure, generation) from None  # outside the lock: it may read the current one

    # --- reading -----------------------------------------------------------------------------
    def current_generation(self) -> int | None:
        """The generation servers answer from, or None before the first build."""
        if self._query("SELECT to_regclass('assistant_current') IS NOT NULL")[0][0] is False:
            return None
        rows = self._query("SELECT generation FROM assistant_current")
        return int(rows[0][0]) if rows else None

    def exists(self) -> bool:
        """True when the database holds a built index."""
        return self.current_generation() is not None

    def manifest(self) -> Manifest:
        """The manifest of the current generation."""
        generation = self._require_generation()
        rows = self._query("SELECT manifest FROM assistant_generation WHERE id = %s", (generation,))
        return _manifest_of(rows[0][0], self.label)

    def _require_generation(self) -> int:
        generation = self.current_generation()
        if generation is None:
            raise IndexMissingError(f"No index in the database {self.label} yet: run `assistant index build`.")
        return generation

    def load(self, model_fingerprint: str | None = None) -> PgIndex:
        """The current generation, read in one snapshot and checked like a folder index."""
        import psycopg

        self._require_generation()
        conn, generation = self.connect(), None
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():  # one snapshot: a build switching meanwhile cannot mix generations
                generation, text = conn.execute(
                    "SELECT g.id, g.manifest FROM assistant_current c "
                    "JOIN assistant_generation g ON g.id = c.generation"
                ).fetchone()
                manifest = _manifest_of(text, self.label)
                _check_model(manifest, model_fingerprint, self.label)
                lines = conn.execute(sql_format("SELECT line FROM {} ORDER BY position", chunk_table(generation)))
                chunk_lines = [r[0] for r in lines]
                vectors = [
                    r[0]
                    for r in conn.cursor(binary=True).execute(
                        sql_format("SELECT embedding FROM {} ORDER BY position", window_table(generation))
                    )
                ]
                article_lines = [
                    r[0]
                    for r in conn.execute(
                        "SELECT line FROM assistant_article WHERE generation = %s ORDER BY id", (generation,)
                    )
                ]
                files = dict(
                    conn.execute("SELECT name, data FROM assistant_keyword_file WHERE generation = %s", (generation,))
                )
        except psycopg.Error as exc:
            raise self.database_error(exc, generation) from None
        finally:
            conn.close()
        dim = manifest.model.dimension
        vectors = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
        chunks, keys, articles, bm25 = _parsed(self.label, manifest, chunk_lines, article_lines, files)
        problem = records_problem(manifest, chunks, keys, articles, vectors, bm25)
        if problem:
            raise IndexMismatchError(f"The index in {self.label} is inconsistent ({problem}): {REBUILD}.")
        return PgIndex(
            Path(self.label), manifest, chunks, keys, articles, vectors, None, bm25, self, generation, model_fingerprint
        )

    def search(self, generation: int, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(position, cosine) of the k nearest windows of `generation` (HNSW, `ef_search` candidates)."""
        from psycopg import sql

        # HNSW returns at most ef_search rows: at least k are examined (pgvector's ceiling is 1000).
        statement = sql.SQL(
            "SELECT position, -(embedding <#> %(v)s::vector) FROM {} ORDER BY embedding <#> %(v)s::vector LIMIT %(k)s"
        ).format(window_table(generation))
        ef_search = min(1000, max(self.ef_search, k))
        rows = self._query(statement, {"v": vector_text(vector), "k": k}, ef_search, generation)
        return [(int(p), float(s)) for p, s in rows]

    # --- building ----------------------------------------------------------------------------
    def build(self, options: BuildOptions, embedder, say=print, progress: bool = True):
        """Build a new generation (re-embedding only changed windows) and switch to it in one transaction."""
        import psycopg

        from index.build import prepare_build, previous_index

        try:
            conn = self.connect()
        except IndexMissingError as exc:
            raise BuildError(str(exc)) from None
        try:
            try:
                if not conn.execute("SELECT pg_try_advisory_lock(%s)", (BUILD_LOCK,)).fetchone()[0]:
                    raise BuildError(f"Another index build is running on {self.label}; wait for it to finish.")
                with conn.transaction():
                    conn.execute(SCHEMA)
                _register_vector(conn)
                previous = previous_index(self.load, say)
                built = prepare_build(options, embedder, previous, say, progress)
                manifest = built.manifest(options, embedder, INDEX_TYPE)
                built.report.manifest = self._publish(conn, manifest, built)
            except psycopg.errors.InsufficientPrivilege as exc:
                raise BuildError(f"{self._denied(exc, writing=True)} The previous index is unchanged.") from None
            except psycopg.Error as exc:
                stopped = f"The database {self.label} stopped the build ({_first_line(exc)})"
                raise BuildError(f"{stopped}; the previous index is unchanged.") from None
            self._retire(conn, say)  # published: what happens to old generations no longer fails the build
        finally:
            conn.close()  # also releases the build lock
        built.report.seconds = time.perf_counter() - built.started
        return built.report

    def _publish(self, conn, manifest: Manifest, built) -> Manifest:
        """Write the generation and make it current, all in one transaction; returns the manifest as stored."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / KEYWORD_DIR
            build_bm25(built.texts, [c.language for c in built.chunks], folder)
            built.bridge.save(folder)
            files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
        manifest = replace(manifest, files={f"{KEYWORD_DIR}/{n}": FileInfo.of(d) for n, d in files.items()})
        with conn.transaction():
            generation = conn.execute(
                "INSERT INTO assistant_generation (manifest) VALUES (%s) RETURNING id", (manifest.to_json(),)
            ).fetchone()[0]
            chunks, windows = chunk_table(generation), window_table(generation)
            conn.execute(sql_format("CREATE TABLE {} (position integer PRIMARY KEY, line text NOT NULL)", chunks))
            with conn.cursor().copy(sql_format("COPY {} (position, line) FROM STDIN", chunks)) as cp:
                for i, (chunk, keys) in enumerate(zip(built.chunks, built.keys)):
                    cp.write_row((i, chunk_line(chunk, keys)))
            conn.execute(
                sql_format(
                    "CREATE TABLE {} (position integer PRIMARY KEY, embedding vector({}) NOT NULL)",
                    windows,
                    int(manifest.model.dimension),
                )
            )
            with conn.cursor().copy(sql_format("COPY {} (position, embedding) FROM STDIN", windows)) as cp:
                for i, vector in enumerate(built.vectors):
                    cp.write_row((i, vector_text(vector)))
            raise_build_memory(conn)
            conn.execute(
                sql_format(
                    "CREATE INDEX ON {} USING hnsw (embedding vector_ip_ops) WITH (m = {}, ef_construction = {})",
                    windows,
                    HNSW_M,
                    HNSW_EF_CONSTRUCTION,
                )
            )
            with conn.cursor().copy("COPY assistant_article (generation, id, line) FROM STDIN") as cp:
                for article in built.corpus.articles:
                    cp.write_row((generation, article.id, article_line(article)))
            for name, data in files.items():
                conn.execute(
                    "INSERT INTO assistant_keyword_file (generation, name, data) VALUES (%s, %s, %s)",
                    (generation, name, data),
                )
            conn.execute(
                "INSERT INTO assistant_current (one, generation) VALUES (true, %s) "
                "ON CONFLICT (one) DO UPDATE SET generation = excluded.generation",
                (generation,),
            )
        return manifest

    def _retire(self, conn, say=print) -> None:
        """Drop generations older than the KEEP_GENERATIONS newest (the current one is the newest), each on its
        own; one that cannot go (a view of the user's depends on it, say) is kept and named, never CASCADEd."""
        import psycopg

        try:
            ids = [r[0] for r in conn.execute("SELECT id FROM assistant_generation ORDER BY id DESC")]
        except psycopg.Error as exc:
            say(f"The new index is published; old generations were not removed ({_first_line(exc)}).")
            return
        for old in ids[KEEP_GENERATIONS:]:
            try:
                with conn.transaction():
                    conn.execute(sql_format("DROP TABLE IF EXISTS {}, {}", chunk_table(old), window_table(old)))
                    conn.execute("DELETE FROM assistant_generation WHERE id = %s", (old,))
            except psycopg.errors.DependentObjectsStillExist as exc:
                detail = "; ".join((exc.diag.message_detail or "").strip().splitlines()[:3]) or _first_line(exc)
                say(
                    f"Kept old generation {old} in {self.label}: it cannot be removed because something depends on "
                    f"it ({detail[:300]}); drop or change that and the next build removes it."
                )
            except psycopg.Error as exc:
                say(f"The new index is published; old generation {old} was not removed ({_first_line(exc)}).")
                if isinstance(exc, psycopg.OperationalError):
                    return

    def generations(self) -> list[int]:
        """The generations stored, oldest first (for tests and `index status`)."""
        if self.current_generation() is None:
            return []
        return [int(r[0]) for r in self._query("SELECT id FROM assistant_generation ORDER BY id")]


def raise_build_memory(conn) -> None:
    """Give this transaction's HNSW build at least BUILD_MEMORY of `maintenance_work_mem`, never less than the
    server's own setting: past a few hundred thousand vectors an operator sets several GB (`ALTER DATABASE ...
    SET maintenance_work_mem`), and a graph that does not fit is built on disk, hours slower."""
    conn.execute(
        "SELECT set_config('maintenance_work_mem', greatest(pg_size_bytes(current_setting('maintenance_work_mem')), "
        "pg_size_bytes(%s)) / 1024 || 'kB', true)",
        (BUILD_MEMORY,),
    )


def sql_format(template: str, *parts):
    """A statement with identifiers and numbers put in safely (psycopg.sql)."""
    from psycopg import sql

    return sql.SQL(template).format(*(p if isinstance(p, sql.Composable) else sql.Literal(p) for p in parts))


def _first_line(exc) -> str:
    """The first line of an error's text (psycopg adds `LINE 1: ... ^` lines), at most 200 characters."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def url_parts(url: str) -> dict | None:
    """libpq's reading of a store URL, or None unless it parses and reads unambiguously: an unencoded `@`, `/`
    or `%` in the password makes libpq read part of it as the host, port or database (or fail quoting it), so
    such a URL is never shown, nor anything read from it."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - libpq's parse error quotes the URL: the caller says it is not valid
        return None
    _, sep, rest = url.partition("://")
    if not sep:  # a `key=value` conninfo string: unambiguous once parsed
        return parts
    authority, _, path = rest.split("?", 1)[0].partition("/")
    userinfo, _, hosts = authority.rpartition("@")
    if "@" in path or "@" in userinfo:
        return None
    for host in hosts.split(","):
        if host.startswith("["):  # [IPv6]:port
            close = host.find("]")
            if close < 0:
                return None
            host, port = "", host[close + 1 :].removeprefix(":")
        else:
            host, _, port = host.partition(":")
        if port and not port.isdigit():
            return None
    return parts


def _register_vector(conn) -> None:
    """Read pgvector's binary `vector` as a float32 NumPy array (no float lists, no extra package)."""
    from psycopg.adapt import Loader
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(conn, "vector")
    if info is None:
        return

    class VectorLoader(Loader):
        format = Format.BINARY

        def load(self, data):
            dim = int.from_bytes(bytes(data[:2]), "big")  # int16 dim, int16 unused, then dim float4 big-endian
            return np.frombuffer(bytes(data), dtype=">f4", count=dim, offset=4).astype(np.float32)

    conn.adapters.register_loader(info.oid, VectorLoader)


def _manifest_of(text: str, label: str) -> Manifest:
    try:
        return Manifest.from_dict(json.loads(text))
    except (ValueError, TypeError, KeyError):
        raise IndexMismatchError(f"The index manifest in {label} is damaged: {REBUILD}.") from None


def _check_model(manifest: Manifest, model_fingerprint: str | None, label: str) -> None:
    built_with = manifest.model
    if model_fingerprint and built_with.fingerprint != model_fingerprint:
        raise IndexMismatchError(
            f"The index in {label} was built with another model ({built_with.name}, fingerprint "
            f"{built_with.fingerprint}; configured: {model_fingerprint}): {REBUILD}."
        )


def _parsed(label: str, manifest: Manifest, chunk_lines, article_lines, files: dict[str, bytes]):
    """(chunks, keys, articles, keyword index) from stored rows, each keyword file checked against the manifest."""
    expected = {name.split("/", 1)[1]: info for name, info in manifest.files.items()}
    if set(expected) != set(files) or any(FileInfo.of(bytes(files[n])) != info for n, info in expected.items()):
        raise IndexMismatchError(f"The index in {label} is damaged (keyword index files differ): {REBUILD}.")
    try:
        chunks, keys, articles = parse_records(chunk_lines, article_lines)
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(bytes(data))
            bm25 = BM25Index(Path(tmp))  # read into memory: the folder may go
    except Exception as exc:  # noqa: BLE001 - rows that passed their checks yet do not parse: damaged all the same
        raise IndexMismatchError(f"The index in {label} is damaged ({type(exc).__name__}): {REBUILD}.") from None
    return chunks, keys, articles, bm25
