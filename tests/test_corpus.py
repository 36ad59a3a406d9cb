"""Loading, cleaning, article splitting and chunking on a tiny fixture corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import CorpusError
from corpus.chunk import article_sentences, chunk_articles, split_sentences
from corpus.clean import clean_lines
from corpus.load import load_corpus, read_source


def by_title(result):
    return {a.title: a for a in result.articles}


def test_archive_page_is_split_into_articles_with_titles(tiny_corpus):
    articles = [a for a in load_corpus(tiny_corpus).articles if a.source == "archive.txt"]
    assert [a.title for a in articles] == ["Nya rutiner i Umeå", "Konferens om äldreomsorg", "Studenter i Luleå trivs"]
    assert len({a.id for a in articles}) == 3


def test_offsets_point_back_into_the_source_file(tiny_corpus):
    for article in load_corpus(tiny_corpus).articles:
        source = read_source(tiny_corpus, article.source)
        assert source[article.start :].startswith(article.title)
        for p in article.paragraphs:
            assert source[p.start : p.end] == p.text


def test_boilerplate_is_removed_and_article_text_kept(tiny_corpus):
    text = "\n".join(a.text for a in load_corpus(tiny_corpus).articles)
    for junk in (
        "Etikettarkiv",
        "ansök här",
        "Prenumerera",
        "nyhetsbrevet",
        "Ditt namn",
        "Viser resultat",
        "Vis flere resultater",
        "Facebook",
        "konferens_bild_123_edit",
        "alert(",
        "color: red",
    ):
        assert junk not in text
    for kept in (
        "Umeå kommun har infört nya rutiner",
        "Fler handledare behövs",
        "Kursavgiften är 2 000 kr",
        "Direktøren Helle Bro",
        "Eva Lind",
    ):
        assert kept in text


def test_repeated_caption_kept_once():
    lines = clean_lines("T\n\nA B, Foto: X\nA B, Foto: X\n\nText här.\n")
    assert [ln.text for ln in lines].count("A B, Foto: X") == 1
    assert [ln.kind for ln in lines] == ["text", "caption", "text"]


def test_languages_detected(tiny_corpus):
    articles = by_title(load_corpus(tiny_corpus))
    assert articles["Velfærd i Holstebro"].language == "da"
    assert articles["Nya rutiner i Umeå"].language == "sv"


def test_html_is_read_as_text_with_exact_offsets(tiny_corpus):
    article = by_title(load_corpus(tiny_corpus))["Hemtjänst i Kiruna"]
    assert "40 anställda &" in article.text and "<b>" not in article.text


def test_bad_files_are_skipped_with_reasons(tiny_corpus, tmp_path):
    (tiny_corpus / "latin1.txt").write_bytes("Hej på dig, här är ett fel".encode("latin-1"))
    (tiny_corpus / "empty.txt").write_bytes(b"")
    (tiny_corpus / "blob.txt").write_bytes(b"abc\x00def" * 10)
    outside = tmp_path / "secret.txt"
    outside.write_text("Hemligt dokument som ligger utanför.\n")
    (tiny_corpus / "link.txt").symlink_to(outside)
    result = load_corpus(tiny_corpus)
    reasons = {s.path: s.reason for s in result.skipped}
    assert "UTF-8" in reasons["latin1.txt"]
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["blob.txt"]
    assert "outside" in reasons["link.txt"]
    assert len(result.articles) == 5  # everything else still loads


def test_missing_or_empty_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="No articles"):
        load_corpus(tmp_path / "empty")


def test_read_source_never_leaves_the_corpus(tiny_corpus):
    with pytest.raises(CorpusError):
        read_source(tiny_corpus, "../../etc/passwd")
    with pytest.raises(CorpusError):
        read_source(tiny_corpus, "/etc/passwd")


def test_sentences_respect_abbreviations_and_numbers():
    text = "Det kräver ledelse, f.eks. fra frontlederne. Kursen kostar 3 500 kr. exkl. moms. Nästa mening!"
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == [
        "Det kräver ledelse, f.eks. fra frontlederne.",
        "Kursen kostar 3 500 kr. exkl. moms.",
        "Nästa mening!",
    ]


def test_chunks_never_cut_sentences_and_respect_the_budget(tiny_corpus):
    articles = load_corpus(tiny_corpus).articles
    chunks = chunk_articles(articles, max_tokens=12)
    sentences = {s.text for a in articles for s in article_sentences(a)}
    for chunk in chunks:
        pieces = chunk.text.replace("\n", " ")
        assert any(pieces.startswith(s) for s in sentences)
        assert any(pieces.endswith(s) for s in sentences)
        # Only a single sentence longer than the budget may exceed it.
        assert len(chunk.text.split()) <= 12 or len(split_sentences(pieces)) == 1
    assert len(chunks) > len(articles)


def test_chunk_spans_and_paragraphs_are_precise(tiny_corpus):
    for chunk in chunk_articles(load_corpus(tiny_corpus).articles, max_tokens=20):
        source = read_source(tiny_corpus, chunk.source)
        first_line = chunk.text.split("\n")[0]
        assert source[chunk.start :].startswith(first_line)
        assert source[: chunk.end].endswith(chunk.text.split("\n")[-1])
        assert chunk.paragraph >= 1


def test_ids_are_stable_across_runs_and_change_with_content(tiny_corpus):
    first = chunk_articles(load_corpus(tiny_corpus).articles, 20)
    second = chunk_articles(load_corpus(tiny_corpus).articles, 20)
    assert [c.id for c in first] == [c.id for c in second]
    path = Path(tiny_corpus) / "holstebro.txt"
    path.write_text(path.read_text().replace("social kapital", "socialt kapital"))
    third = chunk_articles(load_corpus(tiny_corpus).articles, 20)
    assert {c.article_id for c in first} == {c.article_id for c in third}  # titles unchanged: same articles
    assert len({c.id for c in first} - {c.id for c in third}) == 1


def test_overlap_repeats_the_last_sentence(tiny_corpus):
    article = next(a for a in load_corpus(tiny_corpus).articles if a.title == "Velfærd i Holstebro")
    chunks = chunk_articles([article], max_tokens=12, overlap=1)
    assert len(chunks) >= 2
    last_sentence = split_sentences(chunks[0].text.replace("\n", " "))[-1]
    assert chunks[1].text.replace("\n", " ").startswith(chunks[0].text.replace("\n", " ")[last_sentence[0] :])
