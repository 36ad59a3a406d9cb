"""Index build, storage, manifest checks, incremental and atomic rebuilds (fake embedder)."""

from __future__ import annotations

import json

import pytest

from assistant.errors import AssistantError, IndexMismatchError, IndexMissingError
from index import build as build_module
from index.build import build_index
from index.manifest import Chunking
from index.store import load_index


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
    assert manifest.chunking == Chunking(chunk_tokens=40, chunk_overlap=0, context_words=60)
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
    assert first.embedded == first.chunks and len(first.added) == 5
    fake_embedder.encoded.clear()
    path = tiny_settings.corpus_dir / "holstebro.txt"
    path.write_text(path.read_text().replace("aktivt medborgerskab", "aktivt og lokalt medborgerskab"))
    (tiny_settings.corpus_dir / "page.html").unlink()
    second = build_index(tiny_settings, fake_embedder, say=quiet, progress=False)
    assert second.changed == ["Velfærd i Holstebro"]
    assert second.removed == ["Hemtjänst i Kiruna"]
    assert len(second.reused) == 3 and not second.added
    assert 0 < second.embedded < second.chunks
    assert all("Holstebro" in text for text in fake_embedder.encoded)
    index = load_index(tiny_settings.index_dir)
    assert "Hemtjänst i Kiruna" not in {a.title for a in index.articles.values()}
    # Reused vectors are exactly the ones the model would give.
    texts = build_module.embed_texts(index.chunks, index.articles, tiny_settings.context_words)
    assert index.vectors == pytest.approx(fake_embedder.encode_documents(texts), abs=1e-6)


@pytest.mark.parametrize("context_words, matches", [(60, 2), (0, 1)])
def test_chunks_are_indexed_behind_their_articles_title_and_lead(tiny_settings, fake_embedder, context_words, matches):
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
    assert build_module.embed_texts([second], index.articles, context_words) == [expected]
    # BM25 indexes the same text: a word of the lead finds the article's later passage too.
    scores = index.bm25.scores(query_tokens("socialsekreterare", ["sv"]))
    assert int((scores > 0).sum()) == matches


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
