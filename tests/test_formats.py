"""Web pages, PDF and Word files: what reaches the index, citations, dates, authors, copies.

The fixtures are made by code (tests/fixtures/make_fixtures.py) and look like the real thing: a
saved news page with menus and a cookie banner, a PDF with a running header, a Word memo.
"""

from __future__ import annotations

import io
import re
import shutil
import signal
import time
import zipfile
from contextlib import contextmanager
from dataclasses import replace

import pytest
from click.testing import CliRunner

from assistant.errors import CorpusError, QuestionError
from corpus.load import load_corpus, read_source
from tests import test_corpus
from tests.conftest import FIXTURES
from tests.fixtures import make_fixtures as fx

BOILERPLATE = fx.NEWS_BOILERPLATE + fx.PDF_BOILERPLATE + fx.DOCX_BOILERPLATE
ALL_PARAGRAPHS = list(fx.NEWS_PARAGRAPHS) + [p for page in fx.PDF_PAGES for p in page] + fx.all_paragraphs_docx()


@pytest.fixture
def archive(tmp_path):
    """The realistic fixtures next to the tiny corpus's plain-text files."""
    folder = fx.write_all(tmp_path / "corpus")
    for path in (FIXTURES / "corpus").iterdir():
        shutil.copy(path, folder)
    return folder


@pytest.fixture
def archive_assistant(archive, tmp_path, fake_embedder):
    from assistant.answer import Assistant
    from assistant.library import rebuild
    from assistant.settings import Settings

    settings = Settings(corpus_dir=archive, index_dir=tmp_path / "index", model="fake", chunk_tokens=40)
    settings = replace(settings, no_answer_threshold=0.0)
    rebuild(settings, fake_embedder, say=lambda _: None, progress=False)
    return Assistant.open(settings=settings, embedder=fake_embedder)


def by_source(result, source):
    (article,) = [a for a in result.articles if a.source == source]
    return article


def test_every_article_paragraph_is_indexed_and_no_boilerplate(archive_assistant):
    indexed = [c.text for c in archive_assistant.index.chunks]
    joined = "\n".join(indexed)
    # A chunk may end inside a long paragraph: each paragraph must be whole in the articles and
    # every word of it in the chunks.
    paragraphs = {p.text for a in archive_assistant.index.articles.values() for p in a.paragraphs}
    for text in ALL_PARAGRAPHS:
        assert text in paragraphs
        assert text.split()[-1] in joined
    stored = joined + "\n".join(a.title for a in archive_assistant.index.articles.values())
    for line in BOILERPLATE:
        assert line not in stored, line
    assert "Relaterade artiklar" not in stored and "Side 2" not in stored


def test_titles_are_the_documents_own(archive):
    result = load_corpus(archive)
    assert by_source(result, "nyheter-vardcentral.html").title == fx.NEWS_TITLE
    assert by_source(result, "aeldreplejen-2021.pdf").title == fx.PDF_TITLE
    memo = by_source(result, "skolbibliotek.docx")
    assert memo.title == fx.DOCX_TITLE
    # Section headings stay, in order, as paragraphs of their own.
    texts = [p.text for p in memo.paragraphs]
    assert [h for h, _ in fx.DOCX_SECTIONS] == [t for t in texts if t in dict(fx.DOCX_SECTIONS)]


def test_offsets_point_into_the_text_open_source_shows(archive):
    # The same check as for plain text, over the extracted formats.
    test_corpus.test_offsets_point_back_into_the_source_file(archive)


def test_pdf_paragraphs_know_their_page(archive):
    pdf = by_source(load_corpus(archive), "aeldreplejen-2021.pdf")
    expected = {text: number for number, page in enumerate(fx.PDF_PAGES, start=1) for text in page}
    assert {p.text: p.page for p in pdf.paragraphs} == expected


def test_pdf_citation_carries_the_page(archive_assistant):
    answer = archive_assistant.ask("Sygefraværet blandt medarbejderne faldt vagtplaner", k=1, mode="bm25")
    citation = answer.hits[0].citation
    assert (citation.source, citation.page) == ("aeldreplejen-2021.pdf", 2)
    assert (citation.date, citation.author) == (fx.PDF_DATE, fx.PDF_AUTHOR)
    other = archive_assistant.ask("Hemtjänsten i Kiruna bilar", k=1, mode="bm25").hits[0].citation
    assert other.page == 0  # formats without pages say so


def test_dates_and_authors_from_metadata(archive):
    result = load_corpus(archive)
    assert [(by_source(result, s).date, by_source(result, s).author) for s in fx.FILES] == [
        (fx.NEWS_DATE, fx.NEWS_AUTHOR),
        (fx.PDF_DATE, fx.PDF_AUTHOR),
        (fx.DOCX_DATE, fx.DOCX_AUTHOR),
    ]


@pytest.mark.parametrize(
    "line, date",
    [
        ("Publicerad: måndag 30 september, 2019", "2019-09-30"),
        ("27/2/14 12:30", "2014-02-27"),
        ("Varberg den 15 juni 2017", "2017-06-15"),
        ("Holstebro, 3. marts 2020", "2020-03-03"),
    ],
)
def test_dated_lines_in_plain_text(tmp_path, line, date):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.txt").write_text(f"Ny plan\n{line}\nAv Anna Berg\nBrödtext om kommunen och dess planer.\n")
    (article,) = load_corpus(folder).articles
    assert (article.date, article.author) == (date, "Anna Berg")


def test_a_date_in_the_middle_of_the_text_is_not_the_articles(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    body = [f"Stycke {i} om planen." for i in range(16)]
    middle = "Planen gäller från 1 januari 2020 i hela kommunen."
    (folder / "a.txt").write_text("\n".join(["Ny plan", *body[:8], middle, *body[8:]]))
    assert load_corpus(folder).articles[0].date == ""


def test_filters_by_date_and_author(archive_assistant):
    def sources(**filters):
        answer = archive_assistant.ask("kommunen", k=10, mode="bm25", **filters)
        return {h.citation.source for h in answer.hits}

    assert sources(since="2020") == {"aeldreplejen-2021.pdf"}
    assert sources(until="2019-09-30") == {"nyheter-vardcentral.html", "skolbibliotek.docx"} & sources()
    assert sources(since="2017-06", until="2017-06") == {"skolbibliotek.docx"}
    assert sources(author="lena") == {"skolbibliotek.docx"}
    assert sources(author=" LENA EK  ") == {"skolbibliotek.docx"}  # trimmed
    assert sources(author=" ") == sources()  # a blank author is no filter, not "any article with an author"
    with pytest.raises(QuestionError, match="No article matches these filters"):
        sources(author="nobody")  # said, not answered "nothing relevant"
    for bad in ("last week", "2019-02-30", "0000"):  # the last two have the form but name no day
        with pytest.raises(QuestionError, match="since must be a date"):
            archive_assistant.ask("kommunen", since=bad)
    with pytest.raises(QuestionError, match=r"until \(2019-12\) is before since \(2020\): swap them"):
        archive_assistant.ask("kommunen", since="2020", until="2019-12")
    with pytest.raises(QuestionError, match="swap them"):
        archive_assistant.ask("kommunen", since="2021-06", until="2021-05-31")
    for since, until in (("2021-05", "2021"), ("2021-05", "2021-05-01")):  # overlapping at their precision
        with pytest.raises(QuestionError, match="No article matches"):  # allowed; the archive has no such date
            archive_assistant.ask("kommunen", since=since, until=until)


def test_cli_filters_and_bad_date(archive_assistant, monkeypatch):
    from assistant import cli

    monkeypatch.setattr(cli, "_assistant", lambda *_: archive_assistant)
    ok = CliRunner().invoke(cli.main, ["ask", "skolbibliotek", "--mode", "bm25", "--author", "Lena Ek"])
    assert ok.exit_code == 0 and "skolbibliotek.docx" in ok.output and fx.DOCX_DATE in ok.output
    pdf = CliRunner().invoke(cli.main, ["ask", "Sygefraværet vagtplaner", "--mode", "bm25", "--since", "2021-01"])
    assert "page 2" in pdf.output
    bad = CliRunner().invoke(cli.main, ["ask", "skolbibliotek", "--until", "15/6/2017"])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and "until must be a date" in bad.output


def test_the_same_article_saved_twice_is_indexed_once(archive):
    shutil.copy(archive / "skolbibliotek.docx", archive / "kopia av skolbibliotek.docx")
    lines = [fx.NEWS_TITLE, *fx.NEWS_PARAGRAPHS]
    (archive / "zz-vardcentral.txt").write_text("\n\n".join(lines), encoding="utf-8")
    result = load_corpus(archive)
    assert sum(a.title == fx.DOCX_TITLE for a in result.articles) == 1
    assert sum(a.title == fx.NEWS_TITLE for a in result.articles) == 1
    reasons = {s.path: s.reason for s in result.skipped}
    # Files are read in name order: the first one read is the one indexed.
    assert "copy of kopia av skolbibliotek.docx (same text)" in reasons["skolbibliotek.docx"]
    assert "copy of nyheter-vardcentral.html" in reasons["zz-vardcentral.txt"]


def test_a_file_with_some_copied_articles_keeps_the_rest(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.txt").write_text("Första\nFoto: X\nEn text om skolan.\n")
    archive = "Första\nFoto: X\nEn text om skolan.\nAndra\nFoto: Y\nEn annan text om vården.\n"
    (folder / "b.txt").write_text(archive)
    result = load_corpus(folder)
    assert sorted(a.title for a in result.articles) == ["Andra", "Första"]
    assert [(d.path, d.reason) for d in result.duplicates] == [("b.txt", "'Första' is a copy of a.txt")]


def test_unreadable_pdf_and_word_files_are_skipped_with_a_reason(archive, caplog):
    from pypdf import PdfReader, PdfWriter

    fx.scanned_pdf(archive / "scan.pdf")
    good = (archive / "aeldreplejen-2021.pdf").read_bytes()
    (archive / "cut.pdf").write_bytes(good[:200])
    (archive / "not-really.docx").write_bytes(b"PK\x03\x04 this is no zip")
    (archive / "text.docx").write_text("plain text with a .docx name")
    (archive / "empty.pdf").write_bytes(b"")
    for name, password in (("locked.pdf", "secret"), ("no-editing.pdf", "")):
        writer = PdfWriter(clone_from=PdfReader(archive / "aeldreplejen-2021.pdf"))
        writer.encrypt(user_password=password, owner_password="owner")
        with (archive / name).open("wb") as fh:
            writer.write(fh)
    result = load_corpus(archive)
    reasons = {s.path: s.reason for s in result.skipped}
    assert "password-protected" in reasons["locked.pdf"]
    assert "copy of aeldreplejen-2021.pdf" in reasons["no-editing.pdf"]  # so it was read: no password needed
    assert "no text layer" in reasons["scan.pdf"]
    assert "damaged PDF" in reasons["cut.pdf"] or "no text layer" in reasons["cut.pdf"]
    assert "Word" in reasons["not-really.docx"] and "Word" in reasons["text.docx"]
    assert reasons["empty.pdf"] == "it is empty"
    assert all("\n" not in r and "Traceback" not in r for r in reasons.values())
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("pypdf")]  # the skip line says it all


@pytest.mark.parametrize(
    "damage",
    [
        '<w:tcPr><w:gridSpan w:val="abc"/>',  # python-docx: invalid literal for int()
        "<w:tcPr><w:vMerge/>",  # a merge continuing from above the first row: "no tr above topmost tr"
    ],
)
def test_a_word_file_with_a_damaged_table_is_skipped_and_the_rest_indexed(tmp_path, damage):
    import docx

    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "good.txt").write_text("Rubrik\n\nEn hel artikel om skolan.\n")
    document = docx.Document()
    document.add_paragraph("Protokoll")
    document.add_paragraph("Styrelsen beslutade att bygga en ny skola.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(1, 1).text = "Kostnad", "12 miljoner"
    good = io.BytesIO()
    document.save(good)
    damaged = io.BytesIO()
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(damaged, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "word/document.xml":
                data = data.decode().replace("<w:tcPr>", damage, 1).encode()
            zout.writestr(item, data)
    (folder / "bad.docx").write_bytes(damaged.getvalue())
    result = load_corpus(folder)
    assert [(s.path, s.reason) for s in result.skipped] == [("bad.docx", "it is a damaged Word file (ValueError)")]
    assert [a.source for a in result.articles] == ["good.txt"]


@contextmanager
def deadline(seconds: float):
    """Interrupt the block after `seconds` (the regular-expression engine checks for signals)."""

    def stop(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("unit", ["<script>x", "<STYLE>x", "<!--x", "<x"])
def test_a_page_of_unclosed_scripts_is_blanked_in_linear_time_and_skipped(tmp_path, unit):
    from corpus.load import blank_html

    page = unit * (1_000_000 // len(unit))  # 1 MB: the old regular expressions took minutes on it
    started = time.perf_counter()
    with deadline(10):
        blanked = blank_html(page)
    assert time.perf_counter() - started < 2
    assert len(blanked) == len(page) and not blanked.strip()  # left open: hidden to the end, as a browser does
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "good.txt").write_text("Rubrik\n\nEn hel artikel om skolan.\n")
    (folder / "scripts.html").write_text(page)
    with deadline(20):
        result = load_corpus(folder)
    assert [(s.path, s.reason) for s in result.skipped] == [
        ("scripts.html", "it has no article text (only markup, scripts or boilerplate)")
    ]
    assert [a.source for a in result.articles] == ["good.txt"]


def test_blanking_hides_scripts_styles_and_comments_and_keeps_offsets():
    from corpus.load import blank_html

    page = (
        "<p>Före</p><SCRIPT type=x>alert(1) <b>ej</b></script ><style>p {color: red}</STYLE>"
        "<!-- <script> i en kommentar --><p>Efter &amp; 3 &lt; 4</p><script>ingen slutrad"
    )
    blanked = blank_html(page)
    assert len(blanked) == len(page)
    assert blanked.split() == ["Före", "Efter", "&", "3", "<", "4"]
    assert blanked[page.index("Efter") :].startswith("Efter")


def test_a_page_the_extractor_finds_nothing_in_is_read_the_old_way(tmp_path, monkeypatch):
    import corpus.load

    folder = tmp_path / "c"
    shutil.copytree(FIXTURES / "corpus", folder)
    monkeypatch.setattr(corpus.load, "extract_html", lambda html: None)
    page = by_source(load_corpus(folder), "page.html")
    assert page.title == "Hemtjänst i Kiruna"
    assert read_source(folder, "page.html")[page.start :].startswith("Hemtjänst i Kiruna")


def test_loading_reports_progress_per_file(archive):
    calls = []
    load_corpus(archive, progress=lambda done, total: calls.append((done, total)))
    total = len(list(archive.iterdir()))
    assert calls == [(i, total) for i in range(1, total + 1)]


def test_an_index_written_before_dates_and_pages_still_loads():
    from corpus.types import Article, Paragraph
    from index.store import _record

    row = {"id": "a", "title": "T", "language": "sv", "source": "s.txt", "start": 0, "end": 5}
    paragraph = _record(Paragraph, {"index": 1, "start": 2, "end": 5, "text": "abc"})
    article = _record(Article, {**row, "paragraphs": (paragraph,)})
    assert (article.date, article.author, paragraph.page) == ("", "", 0)


def test_open_source_shows_the_extracted_text_with_the_passage_and_page(archive_assistant):
    from assistant.library import source
    from corpus.load import source_path

    hit = archive_assistant.ask("Borgertilfredsheden spørgeskemaundersøgelse", k=1, mode="bm25").hits[0]
    shown = source(archive_assistant, hit.citation)
    assert shown.notice is None and shown.page == 3
    assert shown.text[shown.start : shown.end].split() == hit.text.split()  # paragraphs: one newline in a chunk
    assert fx.PDF_HEADER not in shown.text
    folder = archive_assistant.settings.corpus_dir
    assert source_path(folder, hit.citation.source) == (folder / "aeldreplejen-2021.pdf").resolve()
    with pytest.raises(CorpusError):
        source_path(folder, "../index/manifest.json")


def test_a_word_file_without_properties_has_no_made_up_date_or_author(tmp_path):
    import docx

    folder = tmp_path / "c"
    folder.mkdir()
    document = docx.Document()  # python-docx's template: author "python-docx", created 2013-12-23
    document.add_paragraph("Anteckningar")
    document.add_paragraph("Mötet beslutade att skjuta upp frågan till hösten.")
    document.save(str(folder / "notes.docx"))
    (article,) = load_corpus(folder).articles
    assert (article.date, article.author) == ("", "")


@pytest.mark.parametrize(
    "first, second, joined",
    [
        ("Ombygg-", "naden kostade tolv miljoner.", "Ombyggnaden kostade tolv miljoner."),
        ("nye social-", "og sundhedshjælpere", "nye social- og sundhedshjælpere"),
        ("med SOSU-", "skolen i Holstebro", "med SOSU-skolen i Holstebro"),
        ("Hon sa:", "nej.", "Hon sa: nej."),
        ("påpekade Livsmedels \u2010", "verket att", "påpekade Livsmedelsverket att"),  # typeset hyphen
        ("ett \u2010", "Två", "ett \u2010 Två"),
        ("nye social\u2010", "og sundhedshjælpere", "nye social\u2010 og sundhedshjælpere"),
        ("med SOSU\u2010", "skolen", "med SOSU-skolen"),
        ("kommunen -", "som", "kommunen - som"),  # a dash, not a hyphen
    ],
)
def test_pdf_lines_hyphenated_at_the_line_end_are_joined(first, second, joined):
    from corpus.pdf import join_lines

    assert join_lines(first, second) == joined


def test_a_saved_listing_page_splits_into_its_articles_like_its_text(tmp_path):
    import html

    folder = tmp_path / "c"
    folder.mkdir()
    lines = [ln for ln in (FIXTURES / "corpus" / "archive.txt").read_text().splitlines() if ln.strip()]
    body = "".join(f"<p>{html.escape(ln)}</p>\n" for ln in lines)
    page = f"<html><head><title>{lines[0]}</title></head><body><nav><a href='/'>Hem</a></nav>{body}</body></html>"
    (folder / "archive.html").write_text(page)
    as_html = [(a.title, [p.text for p in a.paragraphs]) for a in load_corpus(folder).articles]
    (folder / "archive.html").unlink()
    shutil.copy(FIXTURES / "corpus" / "archive.txt", folder)
    as_text = [(a.title, [p.text for p in a.paragraphs]) for a in load_corpus(folder).articles]
    assert len(as_html) == 3 and as_html == as_text


def test_the_build_names_the_copies_it_left_out(archive, tmp_path, fake_embedder):
    from assistant.library import rebuild
    from assistant.settings import Settings

    shutil.copy(archive / "aeldreplejen-2021.pdf", archive / "rapport (kopi).pdf")
    messages = []
    settings = Settings(corpus_dir=archive, index_dir=tmp_path / "index", model="fake", chunk_tokens=40)
    rebuild(settings, fake_embedder, say=messages.append, progress=False)
    assert "Skipped rapport (kopi).pdf: it is a copy of aeldreplejen-2021.pdf (same text): indexed once." in messages


WEEKS = tuple(tuple(f"Vecka {n}: {900 + 13 * n} resenärer" for n in range(p * 20 + 1, p * 20 + 21)) for p in range(3))
TEMPLATED = tuple(
    tuple(
        f"Stycke {n}: Landskrona stad rapporterar att färjelinjen till Ven hade {1000 + 37 * n} resenärer under "
        f"vecka {n}. Kaptenen säger att kön till bilplatserna var {3 * n} meter lång den veckan."
        for n in range(p * 10 + 1, p * 10 + 11)
    )
    for p in range(3)
)


@pytest.mark.parametrize("pages", [WEEKS, TEMPLATED], ids=["list", "templated"])
def test_pdf_body_text_like_a_running_line_is_kept(tmp_path, pages):
    # Lines that differ only in their numbers sit at the top and bottom of every page, like a running
    # header: they are text, and only the real header and page numbers go.
    folder = tmp_path / "c"
    folder.mkdir()
    fx.report_pdf(folder / "ven.pdf", "Resenärer på Venlinjen", pages)
    (article,) = load_corpus(folder).articles
    # (Lines spaced evenly, like the list, make one paragraph per page: what matters is that none is lost.)
    on_page = {n: " ".join(p.text for p in article.paragraphs if p.page == n) for n in (1, 2, 3)}
    for number, page in enumerate(pages, start=1):
        assert all(text in on_page[number] for text in page), number
    assert len(re.findall(r"(?:Vecka|Stycke) \d+:", article.text)) == sum(map(len, pages))
    assert not any(line in article.text for line in fx.PDF_BOILERPLATE)


def test_a_publication_line_near_the_end_dates_the_article_and_a_date_in_the_text_does_not(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    body = [f"Stycke {i} om planen för kommunen." for i in range(12)]
    tail = ["Publicerad: måndag 30 september, 2019", "Victor Silwerfeldt", "Vi behöver göra upp med traditionen."]
    (folder / "a.txt").write_text("\n\n".join(["Ett steg före", *body, *tail]))
    assert load_corpus(folder).articles[0].date == "2019-09-30"
    # The same place without the label is a date the text talks about.
    tail[0] = "Planen gäller från måndag 30 september, 2019"
    (folder / "a.txt").write_text("\n\n".join(["Ett steg före", *body, *tail]))
    assert load_corpus(folder).articles[0].date == ""


def test_dates_of_the_shipped_articles():
    dates = {(a.source[:3], a.title): a.date for a in load_corpus(test_corpus.SHIPPED_CORPUS).articles}
    assert {k: v for k, v in dates.items() if v} == {
        ("000", "Ett steg före"): "2019-09-30",  # "Publicerad:" third line from the end
        ("001", "Receptet på framgång!?"): "2017-06-15",
        ("002", "Velfærdens transformationer og transformanter"): "2014-02-27",
    }


PRINTED_PAGE = """<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ font-family: "DejaVu Serif", serif; font-size: 10.5pt; }} h1 {{ font-size: 26pt; width: 11cm; }}</style>
</head><body><h1>{title}</h1>{dateline}
<p>Kommunen bygger ett nytt filter och flyttar reservoaren till Tallåsen. Arbetet kostar 312 miljoner kronor.</p>
<p>Under byggtiden flyter trafiken på Kvarnbacksvägen långsammare, och officiella besked kommer varje vecka.</p>
</body></html>"""


DATELINE = "<p>Av Johan Berglund · Publicerad: 14 maj 2024</p>"


@pytest.mark.parametrize("dateline, date", [(DATELINE, "2024-05-14"), ("", "")])
def test_a_web_page_printed_to_pdf_by_chromium(tmp_path, dateline, date):
    # Chromium stamps the print date into the PDF's metadata and prints the date, time and address on the
    # page; none of it is the article's. Its fonts set "fi"/"fl" as ligatures, and the headline wraps.
    import subprocess

    title = "Vattenverket i Norrsund byggs om för 312 miljoner kronor"
    page, folder = tmp_path / "page.html", tmp_path / "c"
    page.write_text(PRINTED_PAGE.format(title=title, dateline=dateline))
    folder.mkdir()
    args = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--print-to-pdf={folder / 'a.pdf'}"]
    subprocess.run([*args, page.as_uri()], check=True, capture_output=True, timeout=120)
    (article,) = load_corpus(folder).articles
    texts = [p.text for p in article.paragraphs]
    assert article.date == date  # not the day the test printed it
    assert article.author == ("Johan Berglund" if date else "")
    assert article.title == title and not any(title.split()[-1] == t or t in title for t in texts)
    assert not any(re.match(r"\d+/\d+/\d+, \d+:\d+|file:", t) or t.endswith("1/1") for t in texts), texts
    assert "filter och flyttar" in article.text and "officiella" in article.text  # no "ﬁ" / "ﬂ" / "ﬃ"


def test_a_web_page_in_the_charset_it_declares_is_read(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    # Saved pages that say ISO-8859-1 are windows-1252, as browsers read them: "€" and "”" are in it too.
    body = "<h1>Längre öppettider</h1><p>Biblioteket i Järnby förlänger öppettiderna på lördagar.</p>"
    body += "<p>Lånekortet kostar 5 € – ”gratis för barn”.</p>"
    page = f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"></head><body>{body}'
    (folder / "declared.html").write_bytes(page.encode("cp1252"))
    (folder / "undeclared.html").write_bytes(f"<html><body>{body}".encode("cp1252"))
    # A <meta> read as ASCII cannot be UTF-16, so no garbage text (an even length decodes as UTF-16).
    utf16 = page.replace("iso-8859-1", "utf-16").encode("cp1252")
    (folder / "utf16.html").write_bytes(utf16 + b" " * (len(utf16) % 2))
    result = load_corpus(folder)
    assert [a.source for a in result.articles] == ["declared.html"]
    assert "utf16.html: it is not valid UTF-8" in " ".join(f"{s.path}: {s.reason}" for s in result.skipped)
    text = read_source(folder, "declared.html")
    assert "Järnby förlänger öppettiderna" in text and "5 € – ”gratis för barn”" in text
    assert "undeclared.html" in " ".join(str(s) for s in result.skipped) and "UTF-8" in str(result.skipped)


VEN = "Färjan till Ven går varje timme från hamnen i Landskrona och tar ungefär en halvtimme i lugnt väder"


def test_a_pdf_paragraph_that_runs_over_a_page_break_is_one_paragraph(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    start, end = f"Det andra stycket börjar här. {VEN} och fortsätter", f"på nästa sida. {VEN} utom i storm"
    # Only a page's first paragraph can go on from the page before: the next one, though it starts in lower
    # case after a paragraph without a full stop, is a paragraph of its own.
    pages = ((f"Första stycket. {VEN}.", start), (end, f"nästa stycke. {VEN} på vintern."))
    fx.report_pdf(folder / "ven.pdf", "Resenärer på Venlinjen", pages)
    (article,) = load_corpus(folder).articles
    texts = [(p.page, p.text) for p in article.paragraphs]
    assert texts == [(1, pages[0][0]), (1, f"{start} {end}"), (2, pages[1][1])]


def test_a_pdf_is_dated_by_its_labelled_dateline_else_its_creation_date(tmp_path):
    # Not by any date near its edges: a source line "hämtade 2019-01-15" at the end is not when it was written.
    # A report's own lines that start with a date and a time (a schedule) are text, not a browser's stamp.
    schedule = "12.5.2024 18.00 Kommunfullmäktige sammanträder i stadshuset"
    body = (f"Första stycket. {VEN}.", f"Andra stycket. {VEN}.", schedule)
    cases = {
        "dateline.pdf": (("Publicerad: 14 maj 2024", *body),),
        "source.pdf": ((*body, "Källa: SCB, uppgifterna hämtade 2019-01-15."),),
    }
    dates = {}
    for name, pages in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        fx.report_pdf(folder / name, "Resenärer på Venlinjen", pages)
        (article,) = load_corpus(folder).articles
        dates[name] = article.date
        assert schedule in [p.text for p in article.paragraphs]
    assert dates == {"dateline.pdf": "2024-05-14", "source.pdf": fx.PDF_DATE}


def test_a_pdf_text_piece_further_up_or_back_to_the_left_starts_a_line():
    # pypdf hands over text pieces with their position; a page's fixed header drawn after the last line of
    # text comes without a line break, and was glued to that line.
    from corpus.pdf import _page_lines

    class Page:
        def extract_text(self, visitor_text):
            identity = [1, 0, 0, 1, 0, 0]
            for x, y, text in [(72, 700, "Första raden"), (150, 700, " går vidare,"), (72, 686, "\n"),
                               (72, 686, "sista raden."), (45, 89, "KOMMUNEN · Informationsblad"),
                               (72, 60, "Sidfot"), (60, 60, " till vänster")]:  # fmt: skip
                visitor_text(text, identity, [1, 0, 0, 1, x, y], None, 10)

    lines = [ln.text for ln in _page_lines(Page())]
    assert lines == [
        "Första raden går vidare,",
        "sista raden.",
        "KOMMUNEN · Informationsblad",
        "Sidfot",
        "till vänster",
    ]
