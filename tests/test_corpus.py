"""Loading, cleaning, article splitting and chunking on a tiny fixture corpus."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from assistant.errors import CorpusError
from corpus.chunk import article_sentences, chunk_articles, split_sentences
from corpus.clean import clean_lines
from corpus.load import load_corpus, read_source
from corpus.options import LoadOptions
from corpus.types import Chunk

SHIPPED_CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "articles"


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


def test_sign_up_lines_dropped_but_article_sentences_about_subscribers_kept():
    sentence = (
        "Tidningsbudets arbete börjar normalt mellan klockan två och fyra på natten för att utdelningen till "
        "prenumeranterna skall vara klar senast klockan sex på vardagar."
    )
    lines = clean_lines(f"T\n\nPrenumerera på nyhetsbrevet\n{sentence}\nLäs mer och ansök här!\n")
    assert [ln.text for ln in lines] == ["T", sentence]


def test_teasers_and_feedback_prompts_dropped_but_sentences_that_start_alike_kept():
    prompts = ["Läs även: Utegymmet vid sjön invigs på lördag", "Was this page helpful?", "Dela på Facebook"]
    sentence = (
        "Läs även: den som vill veta mer om planen kan ladda ned hela rapporten, som omfattar 212 sidor, "
        "från kommunens webbplats."
    )
    kept = ["Var sidan till hjälp frågar kommunen i en enkät.", "Dela på bilen – så gör du", "dela på kostnaden för"]
    lines = clean_lines("\n".join(["T", "", *prompts, *kept, sentence]))
    assert [ln.text for ln in lines] == ["T", *kept, sentence]


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


def test_a_linked_folder_leaving_the_corpus_is_reported_and_one_inside_read_once(tiny_corpus, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text("Hemlig artikel\n\nEtt dokument i en mapp utanför korpusen.\n")
    (tiny_corpus / "sub").mkdir()
    (tiny_corpus / "sub" / "linked").symlink_to(elsewhere)
    (tiny_corpus / "again").symlink_to(".")  # stays inside: its files are read where they are, once
    result = load_corpus(tiny_corpus)
    assert [(s.path, s.reason) for s in result.skipped] == [
        ("sub/linked/", "it is a link that points outside the corpus folder")
    ]
    assert "Hemlig artikel" not in by_title(result)
    assert len(result.articles) == 5 and sorted(result.files) == ["archive.txt", "holstebro.txt", "page.html"]


def test_missing_or_empty_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    (tmp_path / "a.txt").write_text("Titel\n\nText.")
    with pytest.raises(CorpusError, match="is a file, not a folder"):
        load_corpus(tmp_path / "a.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="No articles"):
        load_corpus(tmp_path / "empty")
    (tmp_path / "empty" / "u16.txt").write_bytes("Rubrik\n\nText.\n".encode("utf-16"))
    with pytest.raises(CorpusError, match=r"1 unusable files skipped: u16.txt: it is UTF-16: convert it"):
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
        assert len(chunk.text.split()) <= 12
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
    chunks = chunk_articles([article], max_tokens=14, overlap=1)
    assert len(chunks) >= 2
    last_sentence = split_sentences(chunks[0].text.replace("\n", " "))[-1]
    assert chunks[1].text.replace("\n", " ").startswith(chunks[0].text.replace("\n", " ")[last_sentence[0] :])


def test_overlap_never_pushes_a_chunk_over_the_budget(tiny_corpus):
    # At 12 words the repeated sentence (8 words) and the next one (5) do not fit together.
    article = next(a for a in load_corpus(tiny_corpus).articles if a.title == "Velfærd i Holstebro")
    chunks = chunk_articles([article], max_tokens=12, overlap=1)
    assert max(len(c.text.split()) for c in chunks) <= 12
    assert chunks[-1].text.endswith("Vi lykkes kun med fokus på social kapital.")


def _one_line_article(tmp_path, line: str):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "long.txt").write_text(f"En lång rad\n\n{line}\n", encoding="utf-8")
    return load_corpus(tmp_path / "c").articles[0]


def test_a_long_line_without_punctuation_is_cut_at_spaces_within_the_budget(tmp_path):
    words = [f"ord{i}" for i in range(20_000)]
    article = _one_line_article(tmp_path, " ".join(words))
    chunks = chunk_articles([article], max_tokens=50)
    assert max(len(c.text.split()) for c in chunks) <= 50
    assert len(chunks) <= 20_000 // 45  # pieces fill most of the budget
    assert " ".join(c.text for c in chunks).split() == words  # nothing lost, nothing repeated, in order
    source = read_source(tmp_path / "c", "long.txt")
    assert all(source[c.start : c.end] == c.text for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_text_without_spaces_is_cut_between_characters(tmp_path):
    line = "".join(chr(0x61 + i % 26) for i in range(10_000))  # a blob without spaces
    article = _one_line_article(tmp_path, line)
    chars = len  # one token per character, like a tokenizer meeting an unknown script
    chunks = chunk_articles([article], max_tokens=300, count_tokens=chars)
    assert max(chars(c.text) for c in chunks) <= 300
    assert "".join(c.text for c in chunks) == line
    source = read_source(tmp_path / "c", "long.txt")
    assert all(source[c.start : c.end] == c.text for c in chunks)


def test_the_budget_holds_with_uneven_tokens(tmp_path):
    # Long words cost more tokens than short ones: the first guess of a piece's length is too long.
    article = _one_line_article(tmp_path, " ".join(["a"] * 3000 + ["ordningsföljdsproblem"] * 3000))
    per_letter = lambda text: sum(len(w) for w in text.split())  # noqa: E731
    chunks = chunk_articles([article], max_tokens=100, count_tokens=per_letter)
    assert max(per_letter(c.text) for c in chunks) <= 100
    assert sum(len(c.text.split()) for c in chunks) == 6000


def test_chunks_keep_their_sentence_spans_through_json(tiny_corpus):
    articles = load_corpus(tiny_corpus).articles
    by_id = {a.id: a for a in articles}
    for chunk in chunk_articles(articles, max_tokens=12, overlap=1):
        sentences = [s.text for s in article_sentences(by_id[chunk.article_id])]
        assert chunk.sentences and all(chunk.text[a:b] in sentences for a, b in chunk.sentences)
        assert "".join(chunk.text[a:b] for a, b in chunk.sentences).replace(" ", "") == chunk.text.replace(
            " ", ""
        ).replace("\n", "")
        row = json.loads(json.dumps(asdict(chunk), ensure_ascii=False))  # as index/store.py writes and reads it
        again = Chunk(**row)
        assert again == chunk and hash(again) == hash(chunk)


def test_shipped_corpus_chunks_do_not_change():
    """Chunking normal text stays byte-identical, so incremental builds and tuned numbers hold."""
    chunks = chunk_articles(load_corpus(SHIPPED_CORPUS).articles, 220)
    digest = hashlib.sha256("\n".join(f"{c.id}|{c.start}|{c.end}|{c.text}" for c in chunks).encode()).hexdigest()
    assert (len(chunks), digest[:16]) == (35, "e3fa91f2501eb059")


def test_utf8_bom_is_not_in_the_title_and_offsets_stay_exact(tiny_corpus):
    (tiny_corpus / "bom.txt").write_bytes("\ufeffMed BOM\n\nEn text som börjar med ett BOM.\n".encode())
    article = next(a for a in load_corpus(tiny_corpus).articles if a.source == "bom.txt")
    assert article.title == "Med BOM"
    source = read_source(tiny_corpus, "bom.txt")
    assert source[article.start :].startswith("Med BOM")
    assert source[article.paragraphs[0].start : article.paragraphs[0].end] == "En text som börjar med ett BOM."
    assert len(source) == len((tiny_corpus / "bom.txt").read_text(encoding="utf-8"))  # same offsets as plain UTF-8


def test_utf16_is_named_with_the_command_that_converts_it(tiny_corpus):
    (tiny_corpus / "u16.txt").write_bytes("Rubrik\n\nText på svenska.\n".encode("utf-16"))
    reasons = {s.path: s.reason for s in load_corpus(tiny_corpus).skipped}
    assert reasons["u16.txt"] == "it is UTF-16: convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)"


def test_files_over_the_size_limit_are_skipped_with_the_setting_named(tiny_corpus):
    (tiny_corpus / "big.txt").write_text("Stor\n\n" + "Ett stycke text. " * 20_000, encoding="utf-8")
    result = load_corpus(tiny_corpus, LoadOptions(max_file_mb=0.25))
    assert {s.path: s.reason for s in result.skipped} == {
        "big.txt": "it is 0.32 MB, larger than 0.25 MB (ASSISTANT_MAX_FILE_MB): split it or raise the limit"
    }
    tiny = {s.path: s.reason for s in load_corpus(tiny_corpus, LoadOptions(max_file_mb=0.0005)).skipped}
    assert tiny["archive.txt"].startswith("it is 0.0009 MB, larger than 0.0005 MB")  # not "0.0 MB"
    assert len(result.articles) == 5
    assert any(a.source == "big.txt" for a in load_corpus(tiny_corpus, LoadOptions(max_file_mb=0)).articles)


@pytest.mark.parametrize(
    "text, sentences",
    [
        ("Mötet börjar kl. 18 i aulan. Alla är välkomna.", ["Mötet börjar kl. 18 i aulan.", "Alla är välkomna."]),
        ("Hallen ska kosta ca. 240 miljoner kronor.", ["Hallen ska kosta ca. 240 miljoner kronor."]),
        ("Skicka frågor till bl.a. Fritidsförvaltningen.", ["Skicka frågor till bl.a. Fritidsförvaltningen."]),
        ("Ring Dr. Karl Nyberg eller t.ex. Malmö stad.", ["Ring Dr. Karl Nyberg eller t.ex. Malmö stad."]),
        ("Hon bor i nr. 5 och han i nr. 7.", ["Hon bor i nr. 5 och han i nr. 7."]),
        # Abbreviations that often end a sentence still do before a capital; other sentences are unchanged.
        ("Vi har böcker, tidningar m.m. Biblioteket öppnar.", ["Vi har böcker, tidningar m.m.", "Biblioteket öppnar."]),
        ("Det kostar 20 kr. Nästa år höjs det.", ["Det kostar 20 kr.", "Nästa år höjs det."]),
        ("Planen gäller 2020. 2021 kom en ny.", ["Planen gäller 2020.", "2021 kom en ny."]),
    ],
)
def test_sentences_do_not_end_after_common_abbreviations(text, sentences):
    assert [text[a:b] for a, b in split_sentences(text)] == sentences


WRAPPED = """Ny återvinningscentral i Lycksele

Av Maria Holm

Lycksele kommun öppnar en ny återvinningscentral vid Hedlunda
industriområde den 2 april. Centralen har öppet alla vardagar och
tar emot farligt avfall, elektronik och trädgårdsavfall utan kostnad
för privatpersoner. Den gamla centralen vid Norrgatan stängs samtidigt.

## Öppettider

- Måndag till fredag klockan 7 till 19, lördagar klockan 9 till 15.
- Söndagar stängt.

Centralen vid Hedlunda, med plats för lastbilar. Foto: Per Berg

Avfallschefen Maria Holm räknar med att besökarna blir fler eftersom
det är lättare att parkera vid Hedlunda än vid den gamla centralen.
"""
WRAPPED_PARAGRAPHS = [
    "Av Maria Holm",
    "Lycksele kommun öppnar en ny återvinningscentral vid Hedlunda industriområde den 2 april. Centralen har "
    "öppet alla vardagar och tar emot farligt avfall, elektronik och trädgårdsavfall utan kostnad för "
    "privatpersoner. Den gamla centralen vid Norrgatan stängs samtidigt.",
    "Öppettider",
    "- Måndag till fredag klockan 7 till 19, lördagar klockan 9 till 15.",
    "- Söndagar stängt.",
    "Centralen vid Hedlunda, med plats för lastbilar. Foto: Per Berg",
    "Avfallschefen Maria Holm räknar med att besökarna blir fler eftersom det är lättare att parkera vid "
    "Hedlunda än vid den gamla centralen.",
]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_hard_wrapped_paragraphs_are_one_paragraph_with_exact_offsets(tmp_path, newline):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "wrapped.md").write_bytes(WRAPPED.replace("\n", newline).encode())
    (article,) = load_corpus(folder).articles
    source = read_source(folder, "wrapped.md")
    assert len(source) == len(WRAPPED.replace("\n", newline))  # a space for each character of a line break
    assert article.title == "Ny återvinningscentral i Lycksele"
    assert [" ".join(p.text.split()) for p in article.paragraphs] == WRAPPED_PARAGRAPHS
    assert source[article.start :].startswith(article.title)
    assert all(source[p.start : p.end] == p.text for p in article.paragraphs)
    # A sentence is no longer cut where the line was.
    sentences = [" ".join(s.text.split()) for s in article_sentences(article)]
    assert "Den gamla centralen vid Norrgatan stängs samtidigt." in sentences
    assert (
        "Centralen har öppet alla vardagar och tar emot farligt avfall, elektronik och trädgårdsavfall utan "
        "kostnad för privatpersoner." in sentences
    )


def test_files_with_a_paragraph_per_line_are_read_as_before(tmp_path):
    from corpus.clean import unwrap

    swequad = SHIPPED_CORPUS.parents[1] / "eval" / "swequad" / "corpus"
    for path in [*SHIPPED_CORPUS.iterdir(), *swequad.iterdir()]:
        text = path.read_text(encoding="utf-8")
        assert unwrap(text) == text, path.name
    # Short lines in one block (a dateline and a byline) stay apart, also next to a wrapped paragraph.
    text = "Ny plan\n\nPublicerad: 12 maj 2020\nAv Anna Berg\n\n" + WRAPPED.split("\n\n", 2)[2]
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.txt").write_text(text)
    (article,) = load_corpus(folder).articles
    assert [p.text for p in article.paragraphs[:2]] == ["Publicerad: 12 maj 2020", "Av Anna Berg"]
    assert (article.date, article.author) == ("2020-05-12", "Anna Berg")


TRANAS = """# Bibliotekets öppettider i Tranås

Av Karin Lindqvist

Biblioteket i Tranås har nya öppettider från juni.

| Dag | Öppet |
| --- | :---: |
| Måndag | 10–19 |
"""
FRONT_MATTER = """---
title: "Vattenläcka i Mora"
date: 2022-08-09
author: Olle Strand
tags:
  - vatten
---

# Vattenläcka i Mora

En vattenläcka på Vasagatan i Mora lämnade 400 hushåll utan vatten i natt. Reparationen tog sex timmar.
"""


def test_markdown_titles_without_hash_marks_and_no_table_rules(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "tranas.md").write_text(TRANAS)
    (article,) = load_corpus(folder).articles
    source = read_source(folder, "tranas.md")
    assert article.title == "Bibliotekets öppettider i Tranås"
    assert source[article.start : article.start + len(article.title)] == article.title
    assert article.author == "Karin Lindqvist"
    texts = [p.text for p in article.paragraphs]
    assert texts[-2:] == ["| Dag | Öppet |", "| Måndag | 10–19 |"]  # the rule row between them is gone
    assert all(source[p.start : p.end] == p.text for p in article.paragraphs)


def test_markdown_front_matter_is_metadata_not_text(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "mora.md").write_text(FRONT_MATTER)
    (article,) = load_corpus(folder).articles
    assert (article.title, article.date, article.author) == ("Vattenläcka i Mora", "2022-08-09", "Olle Strand")
    assert [p.text for p in article.paragraphs] == [FRONT_MATTER.rstrip().rsplit("\n", 1)[1]]
    source = read_source(folder, "mora.md")
    assert len(source) == len(FRONT_MATTER) and source[article.start :].startswith("Vattenläcka i Mora")
    assert "title:" not in source and "author:" not in source and "vatten\n" not in source


def test_markdown_table_rules_are_not_lines_of_text():
    lines = clean_lines("T\n\n| a | b |\n|---|:---:|\n| --- | --- |\n| 1 | 2 |\n")
    assert [ln.text for ln in lines] == ["T", "| a | b |", "| 1 | 2 |"]
