"""The PostgreSQL store against a real server (the pg_url fixture): the folder store's retrieval tests run
on it unchanged, both stores answer alike, and builds are generations switched in one transaction."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import psycopg
import pytest

from assistant.answer import Assistant
from assistant.errors import BuildError, IndexMismatchError, IndexMissingError
from assistant.library import rebuild
from assistant.retrieve import rank
from assistant.settings import PROJECT_ROOT, Settings
from index.pgstore import PgStore
from index.windows import window_texts

# The folder store's retrieval tests, collected here again: with `tiny_settings` below they build, load and
# search through PostgreSQL.
from tests.test_answer import (  # noqa: F401
    test_a_follow_up_retrieves_differently_from_the_same_text_cold,
    test_a_topic_switch_is_not_glued_onto_the_previous_question,
    test_context_returns_neighbours_of_the_same_article,
    test_every_mode_answers,
    test_filters_by_language_and_article,
    test_hits_carry_precise_citations,
    test_k_is_honoured_up_to_the_limit,
    test_long_and_odd_questions_still_answer,
)
from tests.test_index import assert_one_line_error, cli

QUESTIONS = [
    "Hur många medarbetare omfattar arbetet i Umeå?",
    "Kursavgiften är per deltagare på en konferens",
    "medarbejderne ledelse",
    "aktivt medborgerskab i Holstebro",
    "hemtjänst Kiruna",
    "sekreterarna",
]


def quiet(_):
    pass


@pytest.fixture
def tiny_settings(tmp_path, tiny_corpus, pg_url) -> Settings:
    """The fixture corpus, indexed in a fresh PostgreSQL database (overrides the folder one in conftest)."""
    return Settings(corpus_dir=tiny_corpus, index_dir=tmp_path / "index", model="fake", chunk_tokens=40, store=pg_url)


def test_both_stores_answer_alike(tiny_settings, fake_embedder, coverage_calibration):
    folder = replace(tiny_settings, store="")
    rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert not tiny_settings.index_dir.exists()  # the database store writes no index folder
    rebuild(folder, fake_embedder, say=quiet, progress=False)
    on_disk, in_db = (
        Assistant.open(settings=folder, embedder=fake_embedder),
        Assistant.open(settings=tiny_settings, embedder=fake_embedder),
    )
    assert in_db.index.manifest.index_type == "pgvector-hnsw"
    compared = 0
    for question in QUESTIONS:
        vector = fake_embedder.encode_query(question)
        for mode in ("hybrid", "dense", "bm25"):
            a, b = (rank(x.index, question, vector, x.settings, mode, 5) for x in (on_disk, in_db))
            assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits], abs=1e-5)
            scores = [round(h.score, 4) for h in a.hits]
            for x, y in zip(a.hits, b.hits):
                # Tied passages may come in either order, and a tie may straddle the cut at the last one.
                if scores.count(round(x.score, 4)) == 1 and round(x.score, 4) != scores[-1]:
                    assert on_disk.index.chunks[x.position] == in_db.index.chunks[y.position]
                    assert x.cosine == pytest.approx(y.cosine, abs=1e-6)
                    compared += 1
            answers = on_disk.ask(question, k=5, mode=mode), in_db.ask(question, k=5, mode=mode)
            if scores[:2] != [scores[0]] * 2:  # a clear best passage: the same, equally confident
                assert answers[0].no_answer == answers[1].no_answer
                assert answers[0].hits[0].chunk_id == answers[1].hits[0].chunk_id
                assert answers[0].hits[0].confidence == pytest.approx(answers[1].hits[0].confidence, abs=1e-6)
    assert compared >= 30


def test_a_rebuild_embeds_only_changed_chunks_and_reads_back_exact_vectors(tiny_settings, fake_embedder):
    rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    fake_embedder.encoded.clear()
    holstebro = tiny_settings.corpus_dir / "holstebro.txt"
    holstebro.write_text(holstebro.read_text().replace("medborgerskab", "lokalt medborgerskab"))
    report = rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert (report.changed, len(report.reused)) == (["Velfærd i Holstebro"], 4)
    assert 0 < report.embedded == len(fake_embedder.encoded) < report.windows
    assert all("Holstebro" in text for text in fake_embedder.encoded)
    index = tiny_settings.index_store().load(fake_embedder.fingerprint)
    # Vectors read back from the database are exactly the model's, the reused ones included.
    windows = [text for c in index.chunks for text in window_texts(c)]
    assert (index.vectors == fake_embedder.encode_documents(windows)).all()


def test_only_the_current_and_the_previous_generation_are_kept(tiny_settings, fake_embedder, pg_url):
    store = tiny_settings.index_store()
    for _ in range(4):
        rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    kept = store.generations()
    assert len(kept) == 2 and store.current_generation() == kept[-1]
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables "
            "WHERE tablename LIKE 'assistant_chunk_%' OR tablename LIKE 'assistant_window_%'"
        ).fetchall()
    assert sorted(t for (t,) in tables) == sorted(f"assistant_{kind}_{g}" for g in kept for kind in ("chunk", "window"))


def test_concurrent_builds_are_refused(tiny_settings, fake_embedder, pg_url):
    from index.pgstore import BUILD_LOCK

    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (BUILD_LOCK,))  # a build running elsewhere
        with pytest.raises(BuildError, match="Another index build is running"):
            rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)  # the lock went with its connection


KILL_SCRIPT = """
import pathlib, sys, time
from assistant.library import rebuild
from assistant.retrieve import rank
from assistant.settings import Settings
from tests.conftest import FakeEmbedder
import index.pgstore as pgstore

flag = pathlib.Path(sys.argv[2])
target = getattr(pgstore, sys.argv[3])
def stall(*args, **kwargs):
    flag.write_text("here")
    time.sleep(120)
setattr(pgstore, sys.argv[3], stall)
settings = Settings(corpus_dir=sys.argv[1], model="fake", chunk_tokens=40, store=sys.argv[4])
rebuild(settings, FakeEmbedder(), say=lambda _: None, progress=False)
"""


@pytest.mark.parametrize(
    "moment",
    ["build_bm25", "chunk_line", "article_line"],
    ids=["before-the-transaction", "writing-chunks", "after-the-hnsw-index"],
)
def test_a_killed_build_leaves_the_previous_generation(moment, tiny_settings, fake_embedder, tmp_path):
    rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    store = tiny_settings.index_store()
    before = store.current_generation()
    (tiny_settings.corpus_dir / "new.txt").write_text("Ny artikel\n\nEn helt ny text om Malmö och dess skolor.\n")
    flag = tmp_path / "stalled"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    args = [sys.executable, "-c", KILL_SCRIPT, str(tiny_settings.corpus_dir), str(flag), moment, tiny_settings.store]
    build = subprocess.Popen(args, env=env, cwd=PROJECT_ROOT, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not flag.exists():
        assert build.poll() is None, build.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.05)
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert store.current_generation() == before
    index = store.load(fake_embedder.fingerprint)
    assert len(index.articles) == 5
    report = rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)  # the lock died with the build
    assert len(report.added) == 1 and len(store.load().articles) == 6


def test_two_servers_answer_from_a_new_generation_without_restart(tiny_settings, fake_embedder, coverage_calibration):
    rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    first, second = (
        Assistant.open(settings=tiny_settings, embedder=fake_embedder),
        Assistant.open(settings=tiny_settings, embedder=fake_embedder),
    )
    question = "Malmö skolor läxhjälp"
    assert all(h.citation.title != "Skolor i Malmö" for h in second.ask(question, mode="bm25").hits)
    (tiny_settings.corpus_dir / "malmo.txt").write_text("Skolor i Malmö\n\nMalmö skolor erbjuder läxhjälp.\n")
    rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)  # through the first server's settings
    for server in (first, second):
        answer = server.ask(question, mode="hybrid")
        assert answer.hits[0].citation.title == "Skolor i Malmö"
        assert len(server.index.articles) == 6


def test_an_empty_database_says_to_build(tiny_settings, fake_embedder):
    with pytest.raises(IndexMissingError, match="assistant index build"):
        Assistant.open(settings=tiny_settings, embedder=fake_embedder)


def test_an_unreachable_database_is_one_line_without_the_password(tiny_settings, fake_embedder, tmp_path):
    settings = replace(tiny_settings, store=f"postgresql://me:s3cret@/nowhere?host={tmp_path}")
    with pytest.raises(IndexMissingError, match="Cannot use the index database") as caught:
        Assistant.open(settings=settings, embedder=fake_embedder)
    assert "s3cret" not in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(BuildError, match="Cannot use the index database"):
        rebuild(settings, fake_embedder, say=quiet, progress=False)


def test_another_model_or_damaged_rows_say_to_rebuild(tiny_settings, fake_embedder, pg_url):
    rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    store = tiny_settings.index_store()
    with pytest.raises(IndexMismatchError, match="another model.*rebuild"):
        store.load("some-other-model")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE assistant_keyword_file SET data = 'x'::bytea WHERE name LIKE '%%.npy'")
    with pytest.raises(IndexMismatchError, match="damaged.*rebuild"):
        store.load()


def test_cli_builds_and_reports_the_database_store(tiny_settings, fake_embedder, monkeypatch):
    url = tiny_settings.store
    built = cli(monkeypatch, fake_embedder, "index", "build", "--corpus", str(tiny_settings.corpus_dir), "--store", url)
    assert built.exit_code == 0, built.output
    status = cli(monkeypatch, fake_embedder, "index", "status", "--store", url, "--json")
    assert status.exit_code == 0 and '"index_type": "pgvector-hnsw"' in status.output
    assert "postgres:@" not in status.output  # the URL is shown without credentials
    bad = cli(monkeypatch, fake_embedder, "index", "status", "--store", "mysql://x")
    assert_one_line_error(bad, "ASSISTANT_STORE", "postgresql://")


def test_store_is_chosen_by_the_setting(tmp_path):
    from index.stores import FolderStore

    assert isinstance(Settings(index_dir=tmp_path).index_store(), FolderStore)
    store = Settings(store="postgresql://u:pw@db.example:5432/archive", ef_search=64).index_store()
    assert isinstance(store, PgStore) and store.ef_search == 64
    assert store.label == "postgresql://db.example/archive"


def test_search_examines_at_least_k_candidates(tiny_settings, fake_embedder):
    rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    index = replace(tiny_settings, ef_search=1).index_store().load()
    query = fake_embedder.encode_query("Umeå")
    everything = index.search(query, len(index.chunks))
    assert sorted(p for p, _ in everything) == list(range(len(index.chunks)))
    # Each chunk scores as its best window, as in the folder store.
    assert [c for _, c in everything] == pytest.approx(list(index.chunk_scores(query)[[p for p, _ in everything]]))


# --- embedding spread over workers --------------------------------------------------------------------

WORKER = """
import pathlib, sys, time
from index.pgstore import PgStore
from index.pgworkers import run_worker
from tests.conftest import FakeEmbedder

flag = pathlib.Path(sys.argv[1])
class Stalling(FakeEmbedder):
    def encode_documents(self, texts, batch_size=16, progress=False):
        flag.write_text("claimed")
        time.sleep(120)
flag.with_suffix(".ready").write_text("ready")
run_worker(PgStore(sys.argv[2]), Stalling(), wait_seconds=60)
"""


class SlowEmbedder:
    """The fake embedder, a little slow per batch: other workers get their turn."""

    def __init__(self, embedder):
        self.embedder, self.fingerprint, self.dimension = embedder, embedder.fingerprint, embedder.dimension

    def encode_documents(self, texts, batch_size=16, progress=False):
        time.sleep(0.2)
        return self.embedder.encode_documents(texts, batch_size)


def test_a_killed_workers_batch_is_embedded_by_another(tiny_settings, fake_embedder, tmp_path):
    import threading

    from index.pgworkers import QueueEmbedder

    store = tiny_settings.index_store()
    flag = tmp_path / "claimed"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(flag), store.url], env=env, cwd=PROJECT_ROOT)
    deadline = time.time() + 60
    while not flag.with_suffix(".ready").exists():
        assert worker.poll() is None and time.time() < deadline
        time.sleep(0.05)
    texts = [f"passage {i} om Malmö och skolor nummer {i % 7}" for i in range(64 * 12)]
    result = {}
    build = threading.Thread(
        target=lambda: result.update(v=QueueEmbedder(store, SlowEmbedder(fake_embedder), 1).encode_documents(texts))
    )
    build.start()
    while not flag.exists():
        assert worker.poll() is None and time.time() < deadline
        time.sleep(0.05)
    worker.kill()  # holding a batch
    worker.wait()
    build.join(60)
    assert not build.is_alive()
    assert (result["v"] == fake_embedder.encode_documents(texts)).all()
    with psycopg.connect(store.url) as conn:  # the queue is emptied after the build
        assert conn.execute("SELECT count(*) FROM assistant_embed_batch").fetchone()[0] == 0


def test_workers_need_the_database_store(tiny_settings, fake_embedder):
    settings = replace(tiny_settings, store="", embed_workers=2)
    with pytest.raises(BuildError, match="ASSISTANT_STORE"):
        rebuild(settings, fake_embedder, say=quiet, progress=False)


# --- two real servers, one database (real model) -----------------------------------------------------

NEW_ARTICLE = (
    "Vattentornet i Sölvesborg\n\nVattentornet i Sölvesborg renoverades 2024 av byggföretaget Tornbygg AB. "
    "Arbetet med vattentornet tog åtta månader och kostade tolv miljoner kronor.\n"
)


def test_two_serve_processes_answer_from_one_database_and_see_a_rebuild(pg_url, tmp_path, real_embedder, monkeypatch):
    from gradio_client import Client

    from tests.conftest import REAL_CORPUS, REAL_MODEL, serving

    corpus = tmp_path / "corpus"
    shutil.copytree(REAL_CORPUS, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "unused", model=str(REAL_MODEL), store=pg_url)
    rebuild(settings, real_embedder, say=quiet, progress=False)
    monkeypatch.setenv("ASSISTANT_STORE", pg_url)
    question = "Vem renoverade vattentornet i Sölvesborg?"
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with serving(settings, tmp_path / "a") as (first, _), serving(settings, tmp_path / "b") as (second, _):
        clients = [Client(url, verbose=False) for url in (first, second)]
        before = [c.predict(question, 5, api_name="/ask")["passages"][0]["citation"]["title"] for c in clients]
        assert "Vattentornet i Sölvesborg" not in before
        (corpus / "solvesborg.txt").write_text(NEW_ARTICLE)
        rebuild(settings, real_embedder, say=quiet, progress=False)  # as `assistant index build` anywhere does
        after = [c.predict(question, 5, api_name="/ask")["passages"][0]["citation"]["title"] for c in clients]
        assert after == ["Vattentornet i Sölvesborg"] * 2


@pytest.mark.parametrize("server_setting, during_build", [("64MB", "256MB"), ("1GB", "1GB")])
def test_the_build_never_lowers_the_servers_build_memory(pg_url, server_setting, during_build):
    from index.pgstore import raise_build_memory

    with psycopg.connect(pg_url) as conn:  # not autocommit: one transaction, as the build's
        conn.execute(f"SET maintenance_work_mem = '{server_setting}'")  # as the server's configuration says
        conn.commit()
        raise_build_memory(conn)
        assert conn.execute("SHOW maintenance_work_mem").fetchone()[0] == during_build
        conn.rollback()  # SET LOCAL ends with the transaction: the session keeps the server's value
        assert conn.execute("SHOW maintenance_work_mem").fetchone()[0] == server_setting


# --- environment failures: one line, never the password, never a traceback ----------------------------


@pytest.mark.parametrize(
    "url, secrets",
    [
        ("postgresql://bob:S3cret%PW@x/db", ["S3cret"]),
        ("postgresql://bob@x/db?password=S3cret%ZZ", ["S3cret"]),
        ("postgres://bob:S3cretPW@[bad/db", ["S3cret"]),
        ("postgresql://bob:Sec@ret@127.0.0.1/db", ["Sec", "ret@"]),
        ("postgresql://bob:Sec/ret@127.0.0.1/db", ["Sec", "/ret"]),
    ],
    ids=["percent", "percent-in-query", "bracket", "at-sign", "slash"],
)
def test_a_store_url_that_does_not_parse_never_shows_the_password(url, secrets, fake_embedder, monkeypatch):
    store = PgStore(url)
    assert not any(s in store.label for s in secrets), store.label
    status = cli(monkeypatch, fake_embedder, "index", "status", "--store", url)
    line = assert_one_line_error(status, "not a valid postgresql:// URL", "percent-encode")
    assert not any(s in status.output for s in secrets), line


def test_a_parsable_url_is_named_by_host_and_database(tmp_path):
    assert PgStore("postgresql://bob:Sec%40ret@db.example:5432/archive").label == "postgresql://db.example/archive"
    assert PgStore("postgresql://bob:pw@[::1]:5432/archive").label == "postgresql://::1/archive"
    with pytest.raises(IndexMissingError, match="Cannot use the index database postgresql://") as caught:
        PgStore(f"postgresql://bob:Sec%40ret@/nowhere?host={tmp_path}").connect()
    assert "Sec" not in str(caught.value)


def test_a_damaged_generation_says_to_rebuild_and_a_replaced_one_to_ask_again(
    tiny_settings, fake_embedder, pg_url, monkeypatch
):
    rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    store = tiny_settings.index_store()
    serving = Assistant.open(settings=tiny_settings, embedder=fake_embedder)
    generation = store.current_generation()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE assistant_window_{generation} RENAME COLUMN embedding TO renamed")
    with pytest.raises(IndexMismatchError, match=r"damaged \(column \"embedding\" does not exist\).*index build"):
        store.load()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE assistant_window_{generation}")
    for _ in range(2):  # not "replaced while answering: ask again" forever
        with pytest.raises(IndexMismatchError, match="damaged.*assistant index build"):
            serving.ask("hemtjänst Kiruna", mode="dense")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE assistant_chunk_{generation}")
    asked = cli(monkeypatch, fake_embedder, "ask", "hemtjänst Kiruna", "--store", pg_url)
    assert_one_line_error(asked, "is damaged", "assistant_chunk_", "assistant index build")
    said = []
    rebuild(tiny_settings, fake_embedder, say=said.append, progress=False)  # the damaged one is not reused
    assert [line for line in said if "Not reusing" in line and "\n" not in line]
    # A generation that really was replaced (and dropped) meanwhile: ask again.
    old = store.load()
    for _ in range(2):
        rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    with pytest.raises(IndexMissingError, match="replaced meanwhile: ask again"):
        old.search(fake_embedder.encode_query("Kiruna"), 3)


@pytest.fixture
def role_url(pg_url):
    """A URL for a fresh login role with no privileges on the test database's tables nor CREATE on its schema."""
    import uuid

    role = f"r_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    yield pg_url.replace("postgres:@", f"{role}:@", 1)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def test_missing_privileges_are_one_line_naming_them(tiny_settings, fake_embedder, role_url, monkeypatch):
    rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    status = cli(monkeypatch, fake_embedder, "index", "status", "--store", role_url)
    assert_one_line_error(status, "lacks SELECT on table assistant_current", "ask the database owner")
    asked = cli(monkeypatch, fake_embedder, "ask", "hemtjänst Kiruna", "--store", role_url)
    assert_one_line_error(asked, "lacks SELECT", "ask the database owner")
    worker = cli(monkeypatch, fake_embedder, "index", "worker", "--store", role_url)
    assert_one_line_error(worker, "lacks CREATE on schema public", "ask the database owner")
    corpus = str(tiny_settings.corpus_dir)
    built = cli(monkeypatch, fake_embedder, "index", "build", "--corpus", corpus, "--store", role_url)
    assert_one_line_error(built, "lacks CREATE on schema public", "previous index is unchanged")


def test_a_build_keeps_an_old_generation_something_depends_on(tiny_settings, fake_embedder, pg_url):
    for _ in range(2):
        rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    store = tiny_settings.index_store()
    first, second = store.generations()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE VIEW analyst_report AS SELECT count(*) FROM assistant_chunk_{first}")
    for _ in range(2):  # the build publishes, says why the old one stays, and later builds still succeed
        said = []
        report = rebuild(tiny_settings, fake_embedder, say=said.append, progress=False)
        assert report.manifest is not None and store.current_generation() == store.generations()[-1]
        kept = [line for line in said if f"Kept old generation {first}" in line]
        assert len(kept) == 1 and "analyst_report" in kept[0] and "\n" not in kept[0]
    assert first in store.generations() and second not in store.generations() and len(store.generations()) == 3
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT * FROM analyst_report").fetchone()[0] > 0  # never CASCADEd away
        conn.execute("DROP VIEW analyst_report")
    rebuild(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert len(store.generations()) == 2 and first not in store.generations()


def _queue(store, build: str, texts: list[str], fingerprint: str) -> None:
    from index.pgworkers import TABLE

    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute(TABLE)
        with conn.cursor().copy("COPY assistant_embed_batch (build, batch, fingerprint, texts) FROM STDIN") as copy:
            for n, text in enumerate(texts):
                copy.write_row((build, n, fingerprint, f'["{text}"]'))


def test_a_worker_losing_the_database_says_so_in_one_line(tiny_settings, fake_embedder, monkeypatch):
    from index.pgworkers import BATCH_LOCK

    store = tiny_settings.index_store()
    _queue(store, "alive", ["ett", "två"], fake_embedder.fingerprint)

    class Disconnecting(type(fake_embedder)):
        def encode_documents(self, texts, batch_size=16, progress=False):  # the server goes down meanwhile
            with psycopg.connect(store.url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            return super().encode_documents(texts, batch_size)

    with psycopg.connect(store.url, autocommit=True) as owner:
        owner.execute("SELECT pg_advisory_lock(%s, hashtext('alive'))", (BATCH_LOCK,))  # a live build's batches
        worker = cli(monkeypatch, Disconnecting(), "index", "worker", "--store", store.url)
    assert_one_line_error(worker, "Cannot use the index database", "check ASSISTANT_STORE")


def test_batches_of_a_dead_build_are_dropped_not_embedded(tiny_settings, fake_embedder):
    from index.pgworkers import BATCH_LOCK, QueueEmbedder, run_worker

    store = tiny_settings.index_store()
    _queue(store, "dead", ["gammal", "text"], fake_embedder.fingerprint)  # a killed build's: nobody holds its lock
    _queue(store, "alive", ["ny", "text"], fake_embedder.fingerprint)
    with psycopg.connect(store.url, autocommit=True) as owner:
        owner.execute("SELECT pg_advisory_lock(%s, hashtext('alive'))", (BATCH_LOCK,))
        run_worker(store, fake_embedder, say=quiet)
        rows = owner.execute("SELECT build, vectors IS NOT NULL FROM assistant_embed_batch").fetchall()
    assert sorted(rows) == [("alive", True), ("alive", True)] and fake_embedder.encoded == ["ny", "text"]
    _queue(store, "dead", ["gammal"], fake_embedder.fingerprint)
    QueueEmbedder(store, fake_embedder, 1).encode_documents(["a", "b"])  # a build drops what killed ones left
    with psycopg.connect(store.url) as conn:
        assert conn.execute("SELECT DISTINCT build FROM assistant_embed_batch").fetchall() == []  # alive's owner left


PARENT = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]],
                         env={**os.environ, "ASSISTANT_WORKER_PARENT": str(os.getpid())})
print(child.pid, flush=True)
time.sleep(120)
"""
HELPER = """
import sys
from index.pgstore import PgStore
from index.pgworkers import run_worker
from tests.conftest import FakeEmbedder
run_worker(PgStore(sys.argv[1]), FakeEmbedder(), wait_seconds=120)
"""


def test_a_helper_worker_stops_when_its_build_dies(tiny_settings):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    args = [sys.executable, "-c", PARENT, HELPER, tiny_settings.store]
    parent = subprocess.Popen(args, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    helper = int(parent.stdout.readline())
    time.sleep(3)  # the helper is up and waiting for batches
    assert _running(helper)
    parent.kill()
    parent.wait()
    deadline = time.time() + 30
    while _running(helper):
        assert time.time() < deadline, "the helper outlived its build"
        time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line for line in status)
    except FileNotFoundError:
        return False
