"""The damage matrix: every index file broken in every way we could think of.

For each case `assistant ask` either says one line and exits 2, or gives exactly the answer of the
undamaged index (never a silently different one, never a traceback), and then `assistant index build`
repairs the index without any help. "Re-signed" cases also rewrite the manifest's checksums, as a
buggy writer would, so the checks behind the checksums are tested too.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from assistant.settings import Settings
from index.build import build_index
from index.manifest import FileInfo
from tests.conftest import FIXTURES, FakeEmbedder
from tests.test_index import assert_one_line_error, cli

QUESTION = "Kursavgiften per deltagare för en konferens"
FILES = [
    "manifest.json",
    "chunks.jsonl",
    "articles.jsonl",
    "vectors.npy",
    "faiss.index",
    "bm25/data.csc.index.npy",
    "bm25/indices.csc.index.npy",
    "bm25/indptr.csc.index.npy",
    "bm25/params.index.json",
    "bm25/vocab.index.json",
    "bm25/bridge.json",
    "bm25/bridge.npy",
]


# --- ways to break one file (folder: the build the index link points to; other: another index's build) ---


def missing(folder, other, name):
    (folder / name).unlink()


def empty(folder, other, name):
    (folder / name).write_bytes(b"")


def truncated(folder, other, name):
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])


def random_bytes(folder, other, name):
    size = (folder / name).stat().st_size
    (folder / name).write_bytes(random.Random(name).randbytes(size))


def from_another_index(folder, other, name):
    shutil.copyfile(other / name, folder / name)


# --- helpers for the specific cases ----------------------------------------------------------------


def resign(folder: Path) -> None:
    """Record the files' current sizes and checksums in the manifest, as a buggy writer would."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {
        p.relative_to(folder).as_posix(): asdict(FileInfo.of(p.read_bytes()))
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def edit_manifest(change):
    def damage(folder, other):
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps(change(manifest)))

    return damage


def edit_lines(name, change, signed=True):
    def damage(folder, other):
        lines = (folder / name).read_text(encoding="utf-8").splitlines()
        (folder / name).write_text("".join(line + "\n" for line in change(lines)), encoding="utf-8")
        if signed:
            resign(folder)

    return damage


def edit_rows(name, change, signed=True):
    return edit_lines(name, lambda lines: [json.dumps(change(json.loads(line))) for line in lines], signed)


def edit_vectors(change):
    def damage(folder, other):
        vectors = np.load(folder / "vectors.npy")
        np.save(folder / "vectors.npy", change(vectors), allow_pickle=True)
        resign(folder)

    return damage


def set_key(section, key, value):
    def change(manifest):
        if section:
            manifest[section][key] = value
        else:
            manifest[key] = value
        return manifest

    return change


def drop_key(key):
    return lambda manifest: {k: v for k, v in manifest.items() if k != key}


def written(name, data: bytes):
    def damage(folder, other):
        (folder / name).write_bytes(data)

    return damage


def signed(damage):
    def both(folder, other):
        damage(folder, other)
        resign(folder)

    return both


def other_file_signed(name):
    return signed(lambda folder, other: shutil.copyfile(other / name, folder / name))


def other_bm25(folder, other):
    shutil.rmtree(folder / "bm25")
    shutil.copytree(other / "bm25", folder / "bm25")


def no_bm25(folder, other):
    shutil.rmtree(folder / "bm25")


def hnsw_search_index(folder, other):
    import faiss

    from index.store import make_faiss_index

    faiss.write_index(make_faiss_index(np.load(folder / "vectors.npy"), 1), str(folder / "faiss.index"))
    resign(folder)


def move_a_window_key(lines):
    """The first chunk's last window key given to the second chunk: same totals, windows scored for the wrong chunk."""
    first, second = json.loads(lines[0]), json.loads(lines[1])
    assert len(first["embed_keys"]) > 1
    second["embed_keys"].insert(0, first["embed_keys"].pop())
    return [json.dumps(first), json.dumps(second), *lines[2:]]


def first_row_nan(vectors):
    vectors[0] = np.nan
    return vectors


def one_inf(vectors):
    vectors[1, 3] = np.inf
    return vectors


def _article(row, **changes):
    return {**row, **changes}


SPECIFIC = {
    # the manifest
    "manifest is []": written("manifest.json", b"[]"),
    "manifest is {}": written("manifest.json", b"{}"),
    "manifest is null": written("manifest.json", b"null"),
    "manifest is not UTF-8": written("manifest.json", b'{"model": "\xff\xfe"}'),
    'manifest "model": null': edit_manifest(set_key(None, "model", None)),
    "manifest without languages": edit_manifest(drop_key("languages")),
    "manifest languages a string": edit_manifest(set_key(None, "languages", "sv")),
    "manifest languages other": edit_manifest(set_key(None, "languages", ["en"])),
    "manifest without files": edit_manifest(drop_key("files")),
    "manifest files {}": edit_manifest(set_key(None, "files", {})),
    "manifest files without vectors": edit_manifest(lambda m: {**m, "files": {**m["files"], "vectors.npy": None}}),
    "manifest files list a path outside": edit_manifest(
        lambda m: {**m, "files": {**m["files"], "../outside": {"size": 1, "blake2b": "00"}}}
    ),
    "manifest counts a string": edit_manifest(set_key("counts", "chunks", "many")),
    "manifest counts one chunk more": edit_manifest(
        lambda m: set_key("counts", "chunks", m["counts"]["chunks"] + 1)(m)
    ),
    "manifest counts one article fewer": edit_manifest(
        lambda m: set_key("counts", "articles", m["counts"]["articles"] - 1)(m)
    ),
    "manifest dimension 128": edit_manifest(set_key("model", "dimension", 128)),
    "manifest dimension true": edit_manifest(set_key("model", "dimension", True)),
    "manifest another model": edit_manifest(set_key("model", "fingerprint", "0000000000000000")),
    "manifest format 2": edit_manifest(set_key(None, "format_version", 2)),
    "manifest format 999": edit_manifest(set_key(None, "format_version", 999)),
    "manifest index type HNSW": edit_manifest(set_key(None, "index_type", "IndexHNSWFlat")),
    "manifest built_at changed (harmless)": edit_manifest(set_key(None, "built_at", "1999-01-01T00:00:00+00:00")),
    # chunks.jsonl
    "chunks line not JSON": edit_lines("chunks.jsonl", lambda ls: ls[:1] + ["not json"] + ls[2:], signed=False),
    "chunks line not JSON, re-signed": edit_lines("chunks.jsonl", lambda ls: ls[:1] + ["not json"] + ls[2:]),
    "chunks line missing, re-signed": edit_lines("chunks.jsonl", lambda ls: ls[1:]),
    "chunks line doubled, re-signed": edit_lines("chunks.jsonl", lambda ls: ls + ls[-1:]),
    "chunks line a list, re-signed": edit_lines("chunks.jsonl", lambda ls: ["[1, 2]"] + ls[1:]),
    "chunks start a string, re-signed": edit_rows("chunks.jsonl", lambda r: {**r, "start": "0"}),
    "chunks text a number, re-signed": edit_rows("chunks.jsonl", lambda r: {**r, "text": 7}),
    "chunks without embed keys, re-signed": edit_rows("chunks.jsonl", lambda r: {**r, "embed_keys": None}),
    "chunks with a number for a key, re-signed": edit_rows("chunks.jsonl", lambda r: {**r, "embed_keys": [7]}),
    "chunks with no window, re-signed": edit_rows("chunks.jsonl", lambda r: {**r, "embed_keys": []}),
    "chunks with a window too many, re-signed": edit_rows(
        "chunks.jsonl", lambda r: {**r, "embed_keys": [*r["embed_keys"], "extra"]}
    ),
    "a window key moved to the next chunk, re-signed": edit_lines("chunks.jsonl", move_a_window_key),
    "chunks of an unknown article, re-signed": edit_rows("chunks.jsonl", lambda r: {**r, "article_id": "nope"}),
    "chunks with an unknown field, re-signed": edit_rows("chunks.jsonl", lambda r: {**r, "colour": "red"}),
    # articles.jsonl
    "articles empty, re-signed": edit_lines("articles.jsonl", lambda ls: []),
    "articles missing a line": edit_lines("articles.jsonl", lambda ls: ls[1:], signed=False),
    "articles missing a line, re-signed": edit_lines("articles.jsonl", lambda ls: ls[1:]),
    "articles line not JSON, re-signed": edit_lines("articles.jsonl", lambda ls: ls[:-1] + ["{"]),
    "articles paragraphs not a list, re-signed": edit_rows("articles.jsonl", lambda r: _article(r, paragraphs=3)),
    "articles paragraph start a string, re-signed": edit_rows(
        "articles.jsonl", lambda r: _article(r, paragraphs=[{**p, "start": "1"} for p in r["paragraphs"]])
    ),
    "articles in another language, re-signed": edit_rows("articles.jsonl", lambda r: _article(r, language="en")),
    # vectors.npy
    "vectors all NaN, re-signed": edit_vectors(lambda v: np.full_like(v, np.nan)),
    "vectors one row NaN, re-signed": edit_vectors(first_row_nan),
    "vectors one inf, re-signed": edit_vectors(one_inf),
    "vectors all zero, re-signed": edit_vectors(np.zeros_like),
    "vectors doubled, re-signed": edit_vectors(lambda v: v * 2),
    "vectors float64, re-signed": edit_vectors(lambda v: v.astype(np.float64)),
    "vectors transposed, re-signed": edit_vectors(lambda v: np.ascontiguousarray(v.T)),
    "vectors one row fewer, re-signed": edit_vectors(lambda v: v[1:]),
    "vectors a pickled object array, re-signed": edit_vectors(lambda v: np.array([{"evil": 1}], dtype=object)),
    "vectors from another index, re-signed": other_file_signed("vectors.npy"),
    # faiss.index
    "faiss from another index, re-signed": other_file_signed("faiss.index"),
    "faiss HNSW instead of exact, re-signed": hnsw_search_index,
    # bm25/
    "bm25 folder from another index": other_bm25,
    "bm25 folder from another index, re-signed": signed(other_bm25),
    "bm25 folder missing": no_bm25,
    "bm25 folder missing, re-signed": signed(no_bm25),
    "bm25 params from another index, re-signed": other_file_signed("bm25/params.index.json"),
    "bm25 with an extra file (harmless)": written("bm25/notes.json", b"{}"),
    "bridge words from another index, re-signed": other_file_signed("bm25/bridge.json"),
    "bridge words an object, re-signed": signed(written("bm25/bridge.json", b'{"a": 1}')),
    "bridge vectors of another dimension, re-signed": signed(
        lambda folder, other: np.save(folder / "bm25/bridge.npy", np.load(folder / "bm25/bridge.npy")[:, :8])
    ),
    "bridge vectors not finite, re-signed": signed(
        lambda folder, other: np.save(folder / "bm25/bridge.npy", np.load(folder / "bm25/bridge.npy") + np.nan)
    ),
    "bridge missing, re-signed": signed(
        lambda folder, other: [(folder / f"bm25/bridge.{ext}").unlink() for ext in ("json", "npy")]
    ),
    # the build folder and the link
    "build folder deleted (dangling link)": lambda folder, other: shutil.rmtree(folder),
    "build folder emptied": lambda folder, other: [shutil.rmtree(folder), folder.mkdir()],
    "extra file in the build (harmless)": written("notes.txt", b"mine"),
    "stray manifest.json.tmp (harmless)": written("manifest.json.tmp", b"{"),
}

CASES = {
    **{
        f"{name} {how.__name__.replace('_', ' ')}": (how, name)
        for name in FILES
        for how in (missing, empty, truncated, random_bytes, from_another_index)
    },
    **{name: (damage, None) for name, damage in SPECIFIC.items()},
}


@pytest.fixture(scope="module")
def other_build(tmp_path_factory) -> Path:
    """A valid index of a slightly different corpus and chunking (other counts of articles, chunks and
    windows): where swapped-in files come from."""
    root = tmp_path_factory.mktemp("other")
    shutil.copytree(FIXTURES / "corpus", root / "corpus")
    (root / "corpus" / "page.html").unlink()
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", model="fake", chunk_tokens=20)
    build_index(settings, FakeEmbedder(), say=lambda _: None, progress=False)
    return (root / "index").resolve()


def test_the_matrix_is_complete():
    assert len(CASES) >= 78


@pytest.mark.parametrize("case", CASES)
def test_damage_is_refused_in_one_line_or_harmless_and_a_build_repairs_it(
    case, tiny_settings, fake_embedder, other_build, monkeypatch
):
    settings = replace(tiny_settings, no_answer_threshold=0.2)
    index = str(settings.index_dir)

    def ask():
        return cli(monkeypatch, fake_embedder, "ask", QUESTION, "--json", "--index", index)

    build = ("index", "build", "--corpus", str(settings.corpus_dir), "--index", index)
    assert cli(monkeypatch, fake_embedder, *build).exit_code == 0
    expected = ask()
    assert expected.exit_code == 0 and json.loads(expected.stdout)["passages"], expected.output

    damage, name = CASES[case]
    folder = settings.index_dir.resolve()
    damage(folder, other_build) if name is None else damage(folder, other_build, name)
    damaged = ask()
    print(f"\n{case}: {damaged.stderr.strip() or 'the same answer'}")
    if damaged.exit_code == 2:
        assert_one_line_error(damaged, "assistant index build")
    else:  # accepted: then it must be the very same answer
        assert damaged.exit_code == 0 and damaged.stdout == expected.stdout, damaged.output
    # `index status` says the same (it once showed a damaged index as fine); it does not compare the model.
    status = cli(monkeypatch, fake_embedder, "index", "status", "--index", index)
    if "another model" not in damaged.stderr:
        assert status.exit_code == damaged.exit_code, (case, status.output)

    repaired = cli(monkeypatch, fake_embedder, *build)
    assert repaired.exit_code == 0, repaired.output
    assert ask().stdout == expected.stdout
    assert os.path.isdir(index)
