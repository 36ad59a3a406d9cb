"""Index build, storage, manifest checks, incremental and atomic rebuilds (fake embedder)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from assistant.errors import AssistantError, IndexMismatchError, IndexMissingError
from assistant.settings import PROJECT_ROOT as PROJECT
from assistant.settings import Settings
from index import build as build_module
from index.bridge import Bridge, bridge_words
from index.build import build_index
from index.embed import embed_queries
from index.errors import BuildError
from index.manifest import Chunking
from index.store import load_index
from index.windows import window_count, window_texts
from tests.conftest import FakeEmbedder


def quiet(_):
    pass


def test_build_writes_a_loadable_index(tiny_settings, fake_embedder):
    report = build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    index = load_index(tiny_settings.index_dir, fake_embedder.fingerprint)
    manifest = index.manifest
    assert manifest.counts.articles == 5 == len(index.articles)
    assert manifest.counts.chunks == len(index.chunks) == report.chunks
    assert manifest.model.dimension == 256 and manifest.index_type == "IndexFlatIP"
    assert set(manifest.languages) == {"sv", "da"}
    assert manifest.chunking == Chunking(chunk_tokens=40, chunk_overlap=0, context_words=60, window_sentences=3)
    hits = index.search(fake_embedder.encode_query("Kursavgiften per deltagare för en konferens"), 3)
    assert index.chunks[hits[0][0]].title == "Konferens om äldreomsorg"
    # No pickle anywhere: every file is JSON, NumPy or FAISS.
    assert sorted(p.name for p in tiny_settings.index_dir.iterdir()) == [
        "articles.jsonl",
        "bm25",
        "chunks.jsonl",
        "faiss.index",
        "manifest.json",
        "vectors.npy",
    ]
    assert all(p.suffix in (".json", ".npy") for p in (tiny_settings.index_dir / "bm25").iterdir())


def test_hnsw_past_the_threshold(tiny_settings, fake_embedder):
    from dataclasses import replace

    build_index(replace(tiny_settings, hnsw_threshold=3), fake_embedder, say=quiet, progress=False)
    assert load_index(tiny_settings.index_dir).manifest.index_type == "IndexHNSWFlat"


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexMissingError, match="assistant index build"):
        load_index(tmp_path / "none")


def test_manifest_mismatch_says_to_rebuild(tiny_settings, fake_embedder):
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    with pytest.raises(IndexMismatchError, match="another model.*rebuild"):
        load_index(tiny_settings.index_dir, "some-other-model")
    manifest_path = tiny_settings.index_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "format_version": 999}))
    with pytest.raises(IndexMismatchError, match="format 999.*rebuild"):
        load_index(tiny_settings.index_dir)


def test_damaged_files_say_to_rebuild(tiny_settings, fake_embedder):
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    faiss_file = tiny_settings.index_dir / "faiss.index"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    with pytest.raises(IndexMismatchError, match="damaged.*rebuild"):
        load_index(tiny_settings.index_dir)


def test_incremental_rebuild_embeds_only_what_changed(tiny_settings, fake_embedder):
    first = build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert first.embedded == first.windows > first.chunks and len(first.added) == 5
    fake_embedder.encoded.clear()
    path = tiny_settings.corpus_dir / "holstebro.txt"
    path.write_text(path.read_text().replace("aktivt medborgerskab", "aktivt og lokalt medborgerskab"))
    (tiny_settings.corpus_dir / "page.html").unlink()
    second = build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert second.changed == ["Velfærd i Holstebro"]
    assert second.removed == ["Hemtjänst i Kiruna"]
    assert len(second.reused) == 3 and not second.added
    assert 0 < second.embedded < second.windows
    assert all("Holstebro" in text for text in fake_embedder.encoded)
    index = load_index(tiny_settings.index_dir)
    assert "Hemtjänst i Kiruna" not in {a.title for a in index.articles.values()}
    # Reused vectors are exactly the ones the model would give.
    texts = [text for c in index.chunks for text in window_texts(c)]
    assert index.vectors == pytest.approx(fake_embedder.encode_documents(texts), abs=1e-6)


def test_a_chunk_is_embedded_as_windows_of_three_sentences():
    from dataclasses import replace

    from corpus.types import Chunk

    sentences = [f"Mening {i} om ämne {i}." for i in range(7)]
    text = " ".join(sentences)
    starts = [text.index(s) for s in sentences]
    spans = tuple((start, start + len(s)) for start, s in zip(starts, sentences))
    chunk = Chunk("c", "a", "T", "sv", "a.txt", 1, 0, len(text), text, 0, spans)
    # Non-overlapping, except the last window, which ends at the chunk's end.
    assert window_texts(chunk) == [" ".join(sentences[0:3]), " ".join(sentences[3:6]), " ".join(sentences[4:7])]
    assert window_texts(replace(chunk, sentences=spans[:6])) == [" ".join(sentences[0:3]), " ".join(sentences[3:6])]
    assert window_texts(replace(chunk, sentences=spans[:2])) == [" ".join(sentences[:2])]
    assert window_texts(replace(chunk, sentences=())) == [text]
    for n in range(8):  # the load's count check agrees with what a build embeds
        variant = replace(chunk, sentences=spans[:n])
        assert window_count(variant) == len(window_texts(variant))


def test_search_widens_until_it_has_k_chunks():
    from index.windows import Windows

    # Chunk 0 has 24 windows nearer than anything else: the first 4k windows hold one chunk only.
    scores = np.array([0.99] * 24 + [0.5, 0.4], dtype=np.float32)
    asked = []

    def nearest_windows(rows):
        asked.append(rows)
        order = np.argsort(-scores)[:rows]
        return order, scores[order]

    assert Windows([24, 1, 1]).nearest(nearest_windows, 2) == [(0, pytest.approx(0.99)), (1, pytest.approx(0.5))]
    assert asked == [8, 16, 26]
    # A store that can give no more rows than it gave (pgvector's ef_search ceiling) ends the widening.
    assert Windows([24, 1, 1]).nearest(lambda rows: nearest_windows(min(rows, 5)), 2) == [(0, pytest.approx(0.99))]


def test_a_chunk_scores_as_its_best_window(tiny_settings, fake_embedder):
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    index = load_index(tiny_settings.index_dir)
    query = fake_embedder.encode_query("Kursavgiften per deltagare för en konferens om äldreomsorg")
    scores = index.chunk_scores(query)
    windows = index.windows
    assert (windows.counts > 1).any() and len(index.vectors) == windows.counts.sum()
    for p in range(len(index.chunks)):
        rows = index.vectors[windows.starts[p] : windows.starts[p] + windows.counts[p]]
        assert scores[p] == pytest.approx(float((rows @ query).max()), abs=1e-6)
        pooled = float((rows @ query).max() + 0.5 * (rows @ query).mean())
        assert index.chunk_scores(query, 0.5)[p] == pytest.approx(pooled, abs=1e-6)
        assert index.cosines(query, [p], 0.5) == pytest.approx([pooled], abs=1e-6)
    hits = index.search(query, 5)  # exact search below the HNSW threshold: the same order
    assert [p for p, _ in hits] == [int(p) for p in np.argsort(-scores, kind="stable")[:5]]
    assert [c for _, c in hits] == pytest.approx(list(np.sort(scores)[::-1][:5]), abs=1e-6)
    assert index.cosines(query, [p for p, _ in hits]) == pytest.approx([c for _, c in hits], abs=1e-6)
    assert index.chunk_scores(np.stack([query, query])).shape == (2, len(index.chunks))


@pytest.mark.parametrize("context_words, matches", [(60, 2), (0, 1)])
def test_chunks_are_keyword_indexed_behind_title_and_lead(tiny_settings, fake_embedder, context_words, matches):
    from dataclasses import replace

    from index.bm25 import query_tokens

    settings = replace(tiny_settings, context_words=context_words)
    build_index(settings, fake_embedder, say=quiet, progress=False)
    index = load_index(settings.index_dir)
    second = index.chunks[1]  # "Nya rutiner i Umeå", paragraph 4: says nothing of social workers
    article = index.articles[second.article_id]
    assert "socialsekreterare" not in second.text and "socialsekreterare" in article.paragraphs[0].text
    lead = " ".join(article.text.split()[:context_words])
    expected = f"{article.title}. {lead}\n{second.text}" if context_words else second.text
    assert build_module.keyword_texts([second], index.articles, context_words) == [expected]
    # A word of the lead finds the article's later passage too; the model embeds the chunk alone.
    scores = index.bm25.scores(query_tokens("socialsekreterare", ["sv"], ngrams=False))
    assert int((scores > 0).sum()) == matches
    first_window = index.vectors[index.windows.starts[1]]
    assert first_window == pytest.approx(fake_embedder.encode_documents(window_texts(second)[:1])[0], abs=1e-6)


def test_a_failed_build_leaves_the_previous_index(tiny_settings, fake_embedder, monkeypatch):
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    before = load_index(tiny_settings.index_dir).manifest.built_at
    (tiny_settings.corpus_dir / "new.txt").write_text("Ny artikel\n\nEn helt ny text om Malmö och dess skolor.\n")

    def crash(folder, manifest, *args):
        folder.mkdir(parents=True)
        (folder / "chunks.jsonl").write_text("half written")
        raise KeyboardInterrupt  # as if killed while writing

    monkeypatch.setattr(build_module, "write_index", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    index = load_index(tiny_settings.index_dir)
    assert index.manifest.built_at == before and len(index.articles) == 5
    monkeypatch.undo()
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert len(load_index(tiny_settings.index_dir).articles) == 6
    leftovers = [p for p in build_module.builds_dir(tiny_settings.index_dir).iterdir() if p.is_dir()]
    # The unfinished build is gone; the current one and the one it replaced (kept for readers) remain.
    assert len(leftovers) == 2 and all((p / "manifest.json").is_file() for p in leftovers)


def test_concurrent_builds_are_refused(tiny_settings, fake_embedder):
    with build_module._build_lock(tiny_settings.index_dir):
        with pytest.raises(AssistantError, match="Another index build"):
            build_index(tiny_settings, fake_embedder, say=quiet, progress=False)


# --- the CLI with the fake model --------------------------------------------------------------------


def cli(monkeypatch, embedder, *args: str):
    """`assistant ARGS` in-process, with `embedder` standing in for the model."""
    from click.testing import CliRunner

    from assistant.cli import main

    monkeypatch.setattr("index.embed.Embedder", lambda model: embedder)
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, *words: str) -> str:
    """Exit 2 with a single `Error: ...` line on stderr containing `words`; returns the line."""
    line = result.stderr.strip()
    assert result.exit_code == 2, result.output
    assert len(line.splitlines()) == 1 and line.startswith("Error: ") and "Traceback" not in result.output, line
    assert all(word in line for word in words), line
    return line


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for folders and links)."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(folder.rglob("*"))
    }


# --- 1. a build never deletes anything that is not ours ---------------------------------------------


def _plain_index(tmp_path, settings, embedder) -> Path:
    """An index of ours as a plain folder (as older versions wrote it), at the settings' location."""
    build_index(settings, embedder, say=quiet, progress=False)
    built = settings.index_dir.resolve()
    settings.index_dir.unlink()
    shutil.move(built, settings.index_dir)
    shutil.rmtree(build_module.builds_dir(settings.index_dir))
    return settings.index_dir


LOCATIONS = {
    "a user's folder": lambda tmp, corpus: tmp / "thesis",
    "the corpus": lambda tmp, corpus: corpus,
    "inside the corpus": lambda tmp, corpus: corpus / "index",
    "holding the corpus": lambda tmp, corpus: corpus.parent,
    "a file": lambda tmp, corpus: tmp / "notes.txt",
    "the current folder": lambda tmp, corpus: Path("."),
    "a link to a user's folder": lambda tmp, corpus: tmp / "link",
    "our index plus a user's file": lambda tmp, corpus: tmp / "ours",
}


@pytest.mark.parametrize("location", LOCATIONS)
def test_build_never_touches_what_is_not_ours(location, tmp_path, tiny_corpus, fake_embedder, monkeypatch):
    corpus = tmp_path / "archive" / "articles"
    shutil.move(tiny_corpus, corpus)
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "thesis.docx").write_text("hi")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "thesis")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "ours", model="fake", chunk_tokens=40)
    _plain_index(tmp_path, settings, fake_embedder)
    (tmp_path / "ours" / "thesis.docx").write_text("hi")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "draft.txt").write_text("mine too")
    monkeypatch.chdir(tmp_path / "work")
    before = snapshot(tmp_path)
    index = LOCATIONS[location](tmp_path, corpus)
    result = cli(monkeypatch, fake_embedder, "index", "build", "--corpus", str(corpus), "--index", str(index))
    assert_one_line_error(result, "--index")
    assert snapshot(tmp_path) == before


def test_build_refuses_the_project_folder(tmp_path, tiny_corpus, fake_embedder, monkeypatch):
    # A stand-in project, so that code without the check (which would delete it) cannot harm the real one.
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "app.py").write_text("print('mine')")
    monkeypatch.setattr(build_module, "PROJECT_ROOT", project)
    before = snapshot(tmp_path)
    for index in (project, project.parent):
        result = cli(monkeypatch, fake_embedder, "index", "build", "--corpus", str(tiny_corpus), "--index", str(index))
        assert_one_line_error(result, "the project")
    assert snapshot(tmp_path) == before


def test_a_plain_folder_index_of_ours_is_moved_aside_not_deleted(tmp_path, tiny_settings, fake_embedder):
    index_dir = _plain_index(tmp_path, tiny_settings, fake_embedder)
    old = snapshot(index_dir)
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert index_dir.is_symlink() and len(load_index(index_dir).articles) == 5
    moved = [p for p in build_module.builds_dir(index_dir).iterdir() if p.name.endswith("-replaced")]
    assert len(moved) == 1 and snapshot(moved[0]) == old


def test_an_empty_folder_is_a_fine_index_location(tiny_settings, fake_embedder):
    tiny_settings.index_dir.mkdir()
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert len(load_index(tiny_settings.index_dir).articles) == 5


# --- 3. loads never race a rebuild ------------------------------------------------------------------

READER = """
import json, sys
from pathlib import Path
from index.store import load_index
failures = []
for _ in range(int(sys.argv[2])):
    try:
        load_index(Path(sys.argv[1]))
    except Exception as exc:
        failures.append(str(exc))
print(json.dumps({"failed": len(failures), "examples": failures[:3]}))
"""


def test_loads_never_fail_while_rebuilds_swap_the_index(tiny_settings, fake_embedder):
    loads = 10_000
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(tiny_settings.index_dir), str(loads)],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        text=True,
    )
    extra, rebuilds = tiny_settings.corpus_dir / "extra.txt", 0
    while reader.poll() is None:  # alternate between two corpora, so consecutive builds differ
        if extra.exists():
            extra.unlink()
        else:
            extra.write_text("Extra artikel\n\nMalmö stad anställer tio nya socionomer.\n")
        build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
        rebuilds += 1
    result = json.loads(reader.stdout.read())
    print(f"\n{result['failed']} of {loads} loads failed during {rebuilds} rebuilds")
    assert reader.returncode == 0 and rebuilds >= 10
    assert result["failed"] == 0, result["examples"]


def test_the_replaced_build_stays_for_readers_and_older_ones_go(tiny_settings, fake_embedder, monkeypatch):
    folders = []
    for _ in range(3):
        build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
        folders.append(tiny_settings.index_dir.resolve())
    assert all(f.is_dir() for f in folders)  # all replaced within the grace period
    monkeypatch.setattr(build_module, "GRACE_SECONDS", 0)
    time.sleep(0.01)
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert [f.is_dir() for f in folders] == [False, False, True]  # the one replaced just now stays


# --- 6. unwritable locations and full disks: one line, no half-written build ------------------------


@pytest.mark.parametrize(
    "code, words", [(errno.ENOSPC, "No space left"), (errno.EROFS, "writable"), (errno.EIO, "unchanged")]
)
def test_write_failures_say_one_line_and_leave_no_half_build(code, words, tiny_settings, fake_embedder, monkeypatch):
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    builds = build_module.builds_dir(tiny_settings.index_dir)
    before = sorted(builds.iterdir())
    (tiny_settings.corpus_dir / "new.txt").write_text("Ny artikel\n\nEn helt ny text om Malmö och dess skolor.\n")

    def fail(*args):  # the keyword index is written after the chunks, articles, vectors and FAISS files
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("index.store.build_bm25", fail)
    args = ("index", "build", "--corpus", str(tiny_settings.corpus_dir), "--index", str(tiny_settings.index_dir))
    assert_one_line_error(cli(monkeypatch, fake_embedder, *args), words)
    assert sorted(builds.iterdir()) == before
    assert len(load_index(tiny_settings.index_dir).articles) == 5


def test_a_full_disk_is_freed_of_long_replaced_builds_before_the_next_write(tiny_settings, fake_embedder, monkeypatch):
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    replaced = tiny_settings.index_dir.resolve()
    (tiny_settings.corpus_dir / "new.txt").write_text("Ny artikel\n\nEn helt ny text om Malmö och dess skolor.\n")
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    current = tiny_settings.index_dir.resolve()
    long_ago = time.time() - 2 * build_module.GRACE_SECONDS
    os.utime(replaced, (long_ago, long_ago))  # replaced long ago, but only a successful build would retire it

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("index.store.build_bm25", full)
    (tiny_settings.corpus_dir / "new.txt").write_text("Ny artikel\n\nEn annan text om Malmö och dess skolor.\n")
    with pytest.raises(BuildError, match="No space left"):
        build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert not replaced.exists() and current.is_dir()  # the retry finds that space free
    assert tiny_settings.index_dir.resolve() == current


def test_an_index_under_a_file_is_one_line(tmp_path, tiny_corpus, fake_embedder, monkeypatch):
    (tmp_path / "notes.txt").write_text("mine")
    index = tmp_path / "notes.txt" / "index"
    result = cli(monkeypatch, fake_embedder, "index", "build", "--corpus", str(tiny_corpus), "--index", str(index))
    assert_one_line_error(result, "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_unfinished_builds_left_by_a_killed_build_are_cleared(tiny_settings, fake_embedder):
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    dead = build_module.builds_dir(tiny_settings.index_dir) / "20200101T000000-deadbeef"
    (dead / "bm25").mkdir(parents=True)
    (dead / "chunks.jsonl").write_text("half written")
    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert not dead.exists()


# --- 11. two `model prepare` at once take turns -------------------------------------------------------


def test_two_model_prepares_at_once_take_turns(tmp_path, monkeypatch):
    from index import convert

    source = tmp_path / "e5.bin"
    source.write_bytes(b"E5S1 fake model")
    model = {"pieces": ["a", "b"]}

    def slow_weights(_model):  # the long dequantising step, while the other run starts
        time.sleep(0.5)
        return {"w": np.ones(4, dtype=np.float32)}

    monkeypatch.setattr(convert, "read_e5_file", lambda path: model)
    monkeypatch.setattr(convert, "_bert_state_dict", slow_weights)
    monkeypatch.setattr(convert, "tokenizer_json", lambda m: {"model": "fake"})
    monkeypatch.setattr(convert, "_sentence_transformers_files", lambda m: {"1_Pooling/config.json": {}})
    dest, said, errors = tmp_path / "models" / "e5", [], []

    def prepare():
        try:
            convert.prepare_model(dest, source, say=said.append)
        except Exception as exc:  # noqa: BLE001 - collected: the test fails on any
            errors.append(repr(exc))

    threads = [threading.Thread(target=prepare) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    assert errors == []
    assert any("waiting" in s for s in said) and any("already converted" in s for s in said)
    assert sorted(p.name for p in dest.iterdir()) == [
        "1_Pooling",
        "2_Normalize",
        "conversion.json",
        "model.safetensors",
        "tokenizer.json",
    ]


# --- 17. the build summary stays short on a large corpus ----------------------------------------------


def test_build_summary_shows_counts_and_a_few_titles(tmp_path, tiny_settings, fake_embedder, monkeypatch):
    for i in range(20):
        (tiny_settings.corpus_dir / f"extra{i:02}.txt").write_text(f"Artikel nummer {i}\n\nText om Malmö {i}.\n")
    args = ["index", "build", "--corpus", str(tiny_settings.corpus_dir), "--index", str(tiny_settings.index_dir)]
    result = cli(monkeypatch, fake_embedder, *args)
    assert result.exit_code == 0, result.output
    added = next(line for line in result.output.splitlines() if line.startswith("Added"))
    assert added.startswith("Added     25 articles: ") and added.endswith("and 22 more (--verbose lists all)")
    assert added.count(";") == 2
    (tiny_settings.corpus_dir / "extra00.txt").write_text("Artikel nummer 0\n\nNy text om Lund.\n")
    verbose = cli(monkeypatch, fake_embedder, *args, "--verbose")
    reused = next(line for line in verbose.output.splitlines() if line.startswith("Reused"))
    assert reused.count(";") == 23 and "Changed    1 articles: Artikel nummer 0" in verbose.output
    as_json = cli(monkeypatch, fake_embedder, *args, "--json")
    report = json.loads(as_json.stdout)
    assert len(report["reused"]) == 25 and report["articles"] == 25 and report["embedded"] == 0
    assert "Embedding 0 of" in as_json.stderr


def test_keyword_search_matches_the_parts_of_a_compound(tiny_settings, fake_embedder):
    """A Swedish compound shares no stem with its parts; its character n-grams find the passage."""
    from index.bm25 import query_tokens

    build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    index = load_index(tiny_settings.index_dir)
    target = next(i for i, c in enumerate(index.chunks) if "socialsekreterare" in c.text)
    for ngrams, found in ((False, False), (True, True)):
        scores = index.bm25.scores(query_tokens("sekreterarna", ["sv"], ngrams=ngrams))
        assert (int(scores.argmax()) == target and scores.max() > 0) == found


# --- the word bridge (index/bridge.py) -------------------------------------------------------------


class CountingEmbedder(FakeEmbedder):
    def encode_query(self, text):
        self.encoded.append(text)
        return super().encode_query(text)


def test_the_bridge_holds_the_words_of_passages_not_in_english_and_reuses_their_vectors():
    texts, languages = ["Mötet hölls under en promenad.", "The meeting was held on a walk."], ["sv", "en"]
    embedder = CountingEmbedder()
    bridge = Bridge.build(bridge_words(texts, languages), embedder)
    # Words of three letters or more, no stopword ("en", "under"), only the Swedish passage's: English needs none.
    assert set(bridge.words) == {"mötet", "hölls", "promenad"}
    assert sorted(embedder.encoded) == sorted(bridge.words)
    embedder.encoded.clear()
    again = Bridge.build(bridge_words([*texts, "Promenaden var lång."], [*languages, "sv"]), embedder, bridge)
    assert sorted(embedder.encoded) == ["lång", "promenaden"]  # only the new words went through the model
    assert np.array_equal(again.vectors[again.words.index("mötet")], bridge.vectors[bridge.words.index("mötet")])


def test_the_bridge_adds_the_nearest_corpus_words_but_not_the_word_itself(tmp_path):
    embedder = FakeEmbedder()
    # The fake model gives "möte" the vector of "meeting": the nearest corpus word of that question word.
    words = ("möte", "meeting", "promenad")
    vectors = np.stack([embedder.encode_query(w) for w in ("meeting", "meeting", "walk")])
    Bridge(words, vectors).save(tmp_path)
    bridge = Bridge.load(tmp_path)
    asked = ["meeting", "weather"]
    assert bridge.translations(asked, embed_queries(embedder, asked)) == ["möte"]


def test_a_keyword_index_written_without_a_bridge_reads_as_an_empty_one(tmp_path):
    assert Bridge.load(tmp_path).words == ()
    (tmp_path / "bridge.json").write_text("[]")
    with pytest.raises(FileNotFoundError):
        Bridge.load(tmp_path)  # one of its two files alone is damage, not "no bridge"
