"""The UI: handlers tested directly; then a real server, driven by gradio_client and by Chromium."""

from __future__ import annotations

import ast
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, replace
from html import escape
from pathlib import Path

import pytest

from assistant.errors import QuestionError
from assistant.library import rebuild
from assistant.settings import Settings
from assistant.summary import Sentence
from tests.fixtures import make_fixtures as fx
from ui.app import SOURCE_HINT, Handlers
from ui.render import answer_html, citation_text


@pytest.fixture
def handlers(tiny_settings, fake_embedder, tmp_path, coverage_calibration):
    settings = replace(tiny_settings, no_answer_threshold=0.2, feedback_file=tmp_path / "fb" / "feedback.jsonl")
    (settings.corpus_dir / "evil.txt").write_text(
        "Elak titel <script>alert(1)</script>\n\n"
        "Denna text har <img src=x onerror=alert(2)> och <script>alert(3)</script> i sig. Umeå nämns här.\n"
    )
    rebuild(settings, fake_embedder, say=lambda _: None, progress=False)
    return Handlers(settings, embedder=fake_embedder)


def ask(handlers, question, history=None, answers=None, **kw):
    return handlers.respond(question, history or [], answers or [], **kw)


def test_answer_cards_show_title_language_paragraph_label_and_highlight(handlers):
    history, answers = ask(handlers, "Hur många medarbetare omfattar arbetet i Umeå?", k=3)
    html = history[-1]["content"]
    assert history[-2] == {"role": "user", "content": "Hur många medarbetare omfattar arbetet i Umeå?"}
    assert html.count('class="hit-card"') == 3
    assert "Nya rutiner i Umeå" in html and "Svenska" in html and "¶" in html
    assert '<div class="hit-highlight">' in html and "<mark>" in html
    assert "relevance" not in html and "%" not in html  # no raw cosine percentages
    assert "\n" not in html  # one line: the chat's Markdown must not break the HTML apart


def test_short_answer_is_verbatim_cited_and_first(handlers):
    history, answers = ask(handlers, "Hur många medarbetare omfattar arbetet i Umeå?", k=5)
    answer, html = answers[-1], history[-1]["content"]
    assert 1 <= len(answer.short_answer) <= 3
    assert answer.short_answer[0].rank == 1
    for sentence in answer.short_answer:
        hit = answer.hits[sentence.rank - 1]
        assert sentence.text in " ".join(hit.text.split())  # verbatim from its passage
    assert len({s.text for s in answer.short_answer}) == len(answer.short_answer)
    assert html.index('class="short-answer"') < html.index('class="hit-card"')
    turn = len(history) - 1
    assert f'class="cite act act-source turn-{turn} rank-1">[1]</a>' in html


def test_short_answer_skips_repeated_sentences_and_weak_pieces():
    from assistant.answer import Citation, Hit
    from assistant.summary import as_text, short_answer

    citation = Citation("a", "T", "sv", "a.txt", 1, 0, 10)
    same = "Umeå kommun har infört nya rutiner."
    hits = [
        Hit(1, 0.9, f"{same} Annat.", ((0, len(same)),), citation, "c1"),
        Hit(2, 0.8, f"Intro. {same.upper()}", ((7, 7 + len(same)),), citation, "c2"),  # same words, other case
        Hit(3, 0.7, "Ja. Arbetet omfattar 120 medarbetare.", ((0, 3),), citation, "c3"),  # "Ja." says nothing
        Hit(4, 0.6, "Fyra nya handledare anställs.", ((0, 29),), citation, "c4"),  # beyond the top three
    ]
    assert [(s.text, s.rank) for s in short_answer(hits)] == [(same, 1)]
    assert as_text(short_answer(hits)) == f"{same} [1]"
    assert short_answer([]) == ()
    sure, unsure = replace(hits[0], confidence=0.9), replace(hits[3], rank=2, confidence=0.3)
    assert [s.rank for s in short_answer([sure, unsure])] == [1]  # far less likely to answer: left out
    assert [s.rank for s in short_answer([sure, replace(unsure, confidence=0.6)])] == [1, 2]
    rule = "| ------ | ------ |"  # a Markdown table's rule: long enough, but not a word in it
    assert short_answer([replace(hits[0], text=rule, highlight=((0, len(rule)),))]) == ()


def test_no_answer_is_said_plainly_with_the_closest_titles(handlers):
    handlers.assistant.settings = replace(handlers.assistant.settings, no_answer_threshold=1.0)
    history, answers = ask(handlers, "Vem vann fotbolls-VM 2018?")
    html = history[-1]["content"]
    assert "Nothing relevant found" in html and "closest articles" in html
    titles = [h.citation.title for h in answers[-1].hits]
    assert all(escape(t) in html for t in titles)
    assert html.count('class="hit-title act act-source') == len(set(titles)) and 'class="hit-card"' not in html
    assert answers[-1].short_answer == () and 'class="short-answer"' not in html


@pytest.mark.parametrize(
    "confidence, label", [(0.0, "weak"), (0.39, "weak"), (0.4, "partial"), (0.69, "partial"), (0.7, "strong")]
)
def test_relevance_labels_come_from_the_calibrated_confidence_with_a_tooltip(handlers, confidence, label):
    _, answers = ask(handlers, "Umeå rutiner", k=1)
    hit = replace(answers[-1].hits[0], confidence=confidence, score=0.99)
    html = answer_html(replace(answers[-1], hits=(hit,)), 1)
    assert f'<span class="label label-{label}" title="{label.capitalize()}: ' in html
    assert "calibrated chance" in html and "99" not in html


def test_corpus_text_and_questions_are_escaped(handlers):
    history, answers = ask(handlers, "<script>alert('q')</script> Elak titel onerror Umeå", k=5)
    html = history[-1]["content"]
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html or "&lt;img" in html
    turn = len(answers) - 1
    rank = next(h.rank for h in answers[-1].hits if "Elak" in h.citation.title)
    source = handlers.open_source(answers, turn, rank)
    assert "<script>" not in source and "&lt;script&gt;alert(1)&lt;/script&gt;" in source
    markdown_file = Path(handlers.export(answers)).read_text()
    # A Markdown file: the title escaped, so a Markdown viewer shows it as written instead of running it.
    assert "Elak titel &lt;script&gt;alert(1)&lt;/script&gt;" in markdown_file and "<script>" not in markdown_file


def test_empty_and_long_questions(handlers):
    history, answers = ask(handlers, "   ")
    assert "empty" in history[-1]["content"] and answers[-1] is None
    history, answers = ask(handlers, "Umeå " * 30_000)
    assert "only the first 1,000 were used" in history[-1]["content"]


def test_filters_reach_retrieval(handlers):
    history, answers = ask(handlers, "medarbejderne ledelse", languages=["da"])
    assert {h.citation.language for h in answers[-1].hits} == {"da"}
    history, answers = ask(handlers, "medarbejderne ledelse", articles=["Hemtjänst i Kiruna"])
    assert {h.citation.title for h in answers[-1].hits} == {"Hemtjänst i Kiruna"}


def test_follow_up_uses_the_conversation(handlers):
    import gradio as gr

    history, answers = ask(handlers, "Vad kostar konferensen om den nya lagen?")
    # The page hands the history back as Gradio's chat does: each message's content a list of parts.
    chat = gr.Chatbot()
    history = chat.preprocess(chat.postprocess(history))
    assert history[0]["content"] == [{"text": "Vad kostar konferensen om den nya lagen?", "type": "text"}]
    history, answers = ask(handlers, "Och kostnaden?", history, answers)
    assert answers[-1].search_query.startswith("Vad kostar konferensen")
    assert "Read as a follow-up" in history[-1]["content"]


def test_a_citation_click_opens_the_source_at_the_passage(handlers):
    history, answers = ask(handlers, "Fler handledare behövs under hösten", k=3)
    turn = len(history) - 1
    html, note, where = handlers.action(f"source:{turn}:1:123", answers, None)
    hit = answers[-1].hits[0]
    assert '<mark id="cited-passage" class="cited-passage">' in html and hit.text.split("\n")[0][:30] in html
    assert hit.citation.title in html and "[1]</span> of 3" in html and note is None and where == [str(turn), "1"]
    html, where = handlers.step_source(answers, where, +1)
    assert where == [str(turn), 2] and "[2]</span> of 3" in html and answers[-1].hits[1].citation.title in html
    html, where = handlers.step_source(answers, where, +5)
    assert where == [str(turn), 3]  # stops at the last citation
    assert handlers.action("source:0:1:1", answers, None)[0] == SOURCE_HINT  # the user's message: no passages
    assert handlers.action("source:x:y", answers, None)[0] == SOURCE_HINT


def test_more_context_holds_the_neighbouring_passages_of_the_same_article(handlers):
    history, answers = ask(handlers, "Fler handledare behövs under hösten", k=3)
    html, hit = history[-1]["content"], answers[-1].hits[0]
    around = handlers.assistant.context(hit.chunk_id, 1, 1)
    assert len(around) > 1 and {c.article_id for c in around} == {hit.citation.article_id}
    card = html.split('class="hit-card"')[1]
    neighbour = next(c for c in around if c.id != hit.chunk_id)
    assert escape(neighbour.text.split("\n")[0][:40]) in card and "act-context" in card
    position = next(c.position for c in around if c.id == hit.chunk_id)
    at = card.index(escape(neighbour.text.split("\n")[0][:40]))
    assert (at < card.index('<div class="hit-text">')) == (neighbour.position < position)  # in reading order


def _cited(html: str) -> str:
    return html.split('<mark id="cited-passage" class="cited-passage">')[1].split("</mark>")[0]


def test_source_paths_never_leave_the_corpus(handlers):
    _, answers = ask(handlers, "Umeå", k=1)
    hit = answers[-1].hits[0]
    for forged in (
        replace(hit.citation, source="../../../../etc/passwd"),
        replace(hit.citation, source="../../../../etc/passwd", article_id="nope"),
    ):
        answers[-1] = replace(answers[-1], hits=(replace(hit, citation=forged),))
        html = handlers.open_source(answers, len(answers) - 1, 1)
        assert "root:" not in html and "is not a source in this index" in html


def test_source_edited_after_the_build_shows_the_indexed_text_with_a_notice(handlers):
    _, answers = ask(handlers, "Fler handledare behövs under hösten", k=1)
    hit, turn = answers[-1].hits[0], len(answers) - 1
    path = handlers.settings.corpus_dir / hit.citation.source
    fresh = handlers.open_source(answers, turn, 1)
    assert "changed since the index was built" not in fresh
    first_line = hit.text.split("\n")[0]
    assert _cited(fresh).startswith(first_line[:40])

    path.write_text("En ny inledning som flyttar all text längre ned i filen.\n\n" + path.read_text())
    html = handlers.open_source(answers, turn, 1)
    assert "The file changed since the index was built; rebuild to update" in html
    assert _cited(html).startswith(first_line[:40]) and "En ny inledning" not in html

    path.unlink()
    html = handlers.open_source(answers, turn, 1)
    assert "rebuild to update" in html and _cited(html).startswith(first_line[:40])


def test_feedback_is_one_line_per_passage_verdict(handlers):
    history, answers = ask(handlers, "Umeå rutiner", k=5)
    turn = len(answers) - 1
    _, note, _ = handlers.action(f"up:{turn}:2:1", answers, None)
    hit = answers[-1].hits[1]
    assert note == f"Thanks — feedback on [2] {hit.citation.title} saved."
    handlers.action(f"down:{turn}:1:2", answers, None)
    assert handlers.feedback(answers, 0, 1, True) == ""  # the user's own message carries no passages
    lines = handlers.settings.feedback_file.read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    assert [r["verdict"] for r in rows] == ["up", "down"]
    assert set(rows[0]) == {"time", "question", "verdict", "chunk_id", "citation", "highlight", "index_version"}
    assert rows[0]["question"] == "Umeå rutiner" and rows[0]["chunk_id"] == hit.chunk_id
    assert rows[0]["citation"] == asdict(hit.citation) and rows[0]["highlight"] == hit.highlight_text[:160]
    assert rows[0]["index_version"] == handlers.assistant.index.manifest.built_at and rows[0]["time"]
    assert rows[1]["chunk_id"] == answers[-1].hits[0].chunk_id
    assert max(len(line.encode()) for line in lines) < 1200  # no passage texts


def test_feedback_note_shows_a_title_as_text_not_markdown(handlers):
    title = "[Logga in](https://evil.example/login) ![x](https://evil.example/p.png) <b>Umeå</b> *nytt* $x$"
    (handlers.settings.corpus_dir / "lank.txt").write_text(f"{title}\n\nKommunen i Umeå har nya rutiner för allt.\n")
    handlers.rebuild()
    history, answers = ask(handlers, "Umeå nya rutiner för allt", k=5)
    rank = next(h.rank for h in answers[-1].hits if h.citation.title == title)
    note = handlers.feedback(answers, len(answers) - 1, rank, True)
    shown = r"\[Logga in\](https\://evil.example/login) \!\[x\](https\://evil.example/p.png)"
    shown += r" &lt;b&gt;Umeå&lt;/b&gt; \*nytt\* \$x\$"
    assert note == f"Thanks — feedback on [{rank}] {shown} saved."


def test_feedback_and_sources_of_a_passage_the_rebuilt_index_lost_are_refused(handlers):
    history, answers = ask(handlers, "Umeå rutiner", k=3)
    hit = answers[-1].hits[0]
    title, path = hit.citation.title, handlers.settings.corpus_dir / hit.citation.source
    head, rest = path.read_text().split("\n", 1)
    path.write_text(f"{head}\n\nEn helt ny inledning som flyttar allt annat längre ned i filen.\n{rest}")
    handlers.rebuild()
    note = handlers.feedback(answers, len(answers) - 1, 1, True)
    assert note.startswith("Feedback not saved: the index was rebuilt") and not handlers.settings.feedback_file.exists()
    # The source viewer too: the old offsets marked other text of the changed file, without a word.
    assert "no longer holds this passage" in handlers.open_source(answers, len(answers) - 1, 1)
    # A chosen article the rebuild removed is said so; it was an empty filter, and the whole corpus answered.
    path.unlink()
    handlers.rebuild()
    history, answers = ask(handlers, "Umeå rutiner", history, answers, articles=[title])
    assert answers[-1] is None and "no longer in the index" in history[-1]["content"]


def test_feedback_stops_at_its_size_limit_with_a_message(handlers):
    handlers.settings = replace(handlers.settings, feedback_max_bytes=10_000)
    _, answers = ask(handlers, "Umeå rutiner", k=5)
    messages = [handlers.feedback(answers, 1, 1, True) for _ in range(40)]
    assert messages[0].startswith("Thanks") and "reached its limit of 10,000 bytes" in messages[-1]
    assert handlers.settings.feedback_file.stat().st_size <= 10_000
    handlers.settings = replace(handlers.settings, feedback_file=handlers.settings.corpus_dir / "archive.txt" / "x")
    assert handlers.feedback(answers, 1, 1, True).startswith("Feedback not saved: cannot write")


def test_markdown_export_holds_questions_short_answers_passages_and_citations(handlers):
    assert handlers.export([]) is None
    history, answers = ask(handlers, "Hur många medarbetare omfattar arbetet i Umeå?", k=2)
    handlers.assistant.settings = replace(handlers.assistant.settings, no_answer_threshold=1.0)
    history, answers = ask(handlers, "Vem vann fotbolls-VM 2018?", history, answers)
    text = Path(handlers.export(answers)).read_text()
    first = answers[1]
    assert "## Hur många medarbetare omfattar arbetet i Umeå?" in text
    assert f"**Short answer:** {first.short_answer[0].text} [1]" in text
    assert f"**[1]** {citation_text(first.hits[0])}" in text and first.hits[0].citation.source in text
    assert "## Vem vann fotbolls-VM 2018?" in text and "Nothing relevant found." in text
    # Markup in the corpus (evil.txt) or a question is text in the file too, not HTML a viewer would run.
    handlers.assistant.settings = replace(handlers.assistant.settings, no_answer_threshold=0.0)
    history, answers = ask(handlers, "Umeå <img src=x onerror=alert(9)> i sig", history, answers, k=5)
    text = Path(handlers.export(answers)).read_text()
    assert "Elak titel &lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;img src=x onerror=alert(2)&gt;" in text
    assert "## Umeå &lt;img src=x onerror=alert(9)&gt; i sig" in text
    assert "<script>" not in text and "<img" not in text


def test_exports_live_in_one_folder_made_at_the_first_and_removed_with_the_handlers(handlers):
    import gc

    fresh = Handlers(handlers.settings, embedder=handlers.embedder)
    assert fresh._exports is None  # a page start made an empty folder in /tmp each time
    history, answers = ask(fresh, "Hur många medarbetare omfattar arbetet i Umeå?")
    folder = Path(fresh.export(answers)).parent
    assert Path(fresh.export(answers)).parent == folder and len(list(folder.iterdir())) == 2
    del fresh
    gc.collect()
    assert not folder.exists()


def test_copy_citation_carries_the_full_citation_as_text(handlers):
    history, answers = ask(handlers, "Umeå rutiner", k=1)
    hit = answers[-1].hits[0]
    c = hit.citation
    assert citation_text(hit) == f"{c.title}. {c.source}, ¶{c.paragraph}, characters {c.start}–{c.end} (Svenska)."
    assert f'<button title="{escape(citation_text(hit))}" class="copy act act-copy' in history[-1]["content"]


def test_cards_and_citations_show_date_author_and_pdf_page_when_known(handlers):
    from ui.render import hit_card

    hit = ask(handlers, "Umeå rutiner", k=1)[1][-1].hits[0]
    dated = replace(hit, citation=replace(hit.citation, page=3, date="2019-09-30", author="Eva <Lind>"))
    c = dated.citation
    assert citation_text(dated) == (
        f"{c.title}, Eva <Lind>, 2019-09-30. {c.source}, page 3, ¶{c.paragraph}, "
        f"characters {c.start}–{c.end} (Svenska)."
    )
    assert "Svenska · 2019-09-30 · Eva &lt;Lind&gt; · page 3 · ¶" in hit_card(dated)
    assert "page" not in hit_card(hit).split('class="hit-meta">')[1].split("</div>")[0]


def _upload(tmp_path, name: str, data: bytes) -> Path:
    path = tmp_path / "incoming" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def test_upload_adds_a_new_article_and_rebuilds(handlers, tmp_path):
    path = _upload(tmp_path, "Malmö skolor.txt", "Ny artikel om Malmö\n\nMalmö bygger tre nya skolor.\n".encode())
    message = handlers.upload([str(path)])
    assert "Added uploads/Malmö skolor.txt." in message and "1 added" in message and "articles" not in message
    assert (handlers.settings.corpus_dir / "uploads" / "Malmö skolor.txt").read_bytes() == path.read_bytes()
    _, answers = ask(handlers, "Malmö bygger skolor", k=1)
    assert answers[-1].hits[0].citation.title == "Ny artikel om Malmö"


def test_an_upload_the_build_leaves_out_is_said_to_be_not_indexed(handlers, tmp_path):
    corpus = handlers.settings.corpus_dir
    (corpus / "lund.txt").write_text("Lund bygger\n\nLunds kommun bygger en ny skola i stadens norra del.\n")
    handlers.rebuild()
    same_text = _upload(
        tmp_path, "kopia.txt", b"Lund bygger\n\nLunds kommun bygger en ny skola i stadens norra del.  \n"
    )
    message = handlers.upload([str(same_text)])  # other bytes, the same article: indexed once, as lund.txt
    assert "Added uploads/kopia.txt." in message
    assert "uploads/kopia.txt is in the corpus folder but not indexed: Skipped uploads/kopia.txt" in message
    assert "it is a copy of lund.txt (same text)" in message


def test_upload_refuses_duplicates_wrong_types_oversize_and_unreadable_files(handlers, tmp_path):
    corpus = handlers.settings.corpus_dir
    before = sorted(p.relative_to(corpus) for p in corpus.rglob("*"))
    handlers.settings = replace(handlers.settings, max_upload_mb=0.001)
    files = [
        _upload(tmp_path, "copy.txt", b"Kopia\n\nEn artikel om Lund.\n"),
        _upload(tmp_path, "tool.exe", b"MZ binary"),
        _upload(tmp_path, "big.txt", b"Titel\n\n" + b"ord " * 400),
        _upload(tmp_path, "latin1.txt", "Titel\n\nÅr för år växer Malmö.\n".encode("latin-1")),
        _upload(tmp_path, "empty.html", b"<html><script>x()</script></html>"),
    ]
    (corpus / "small.txt").write_bytes(files[0].read_bytes())  # so copy.txt's bytes are in the corpus
    before.append(Path("small.txt"))
    message = handlers.upload([str(f) for f in files])
    assert "copy.txt: already in the corpus as small.txt; not added again." in message
    assert "tool.exe: not added — only .txt, .md, .html, .htm, .pdf, .docx files can be added." in message
    assert "big.txt: not added — it is larger than 0.001 MB (ASSISTANT_MAX_UPLOAD_MB)." in message
    assert "latin1.txt: not added — " in message and "UTF-8" in message
    assert "empty.html: not added — it has no article text" in message
    assert "Added" not in message and "Rebuilt" not in message
    assert sorted(p.relative_to(corpus) for p in corpus.rglob("*") if p.name != "uploads") == sorted(before)
    assert handlers.upload([]) == "Choose one or more files first (.txt, .md, .html, .htm, .pdf, .docx)."


@pytest.mark.parametrize(
    "name, safe",
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\boot.ini.md", "boot.ini.md"),
        (".hidden.txt", "hidden.txt"),
        ("a<b>|c?.TXT", "a_b__c_.txt"),
        ("Åre nyheter.html", "Åre nyheter.html"),
        ("x" * 300 + ".txt", "x" * 96 + ".txt"),
        ("...", "upload"),
    ],
)
def test_upload_names_are_sanitised(name, safe):
    from assistant.library import safe_name

    assert safe_name(name) == safe


def test_uploads_are_written_only_inside_the_corpus_and_never_overwrite(handlers, tmp_path):
    from assistant.library import add_files

    outside = tmp_path / "outside"
    outside.mkdir()
    first = _upload(tmp_path, "a.txt", "Första\n\nEn text om Lund.\n".encode())
    second = _upload(tmp_path, "b.txt", b"Andra\n\nEn text om Ystad.\n")
    report = add_files(handlers.settings, [("../../outside/a.txt", first), ("a.txt", second)])
    assert report.added == ["uploads/a.txt", "uploads/a-2.txt"] and not list(outside.iterdir())
    assert (handlers.settings.corpus_dir / "uploads" / "a.txt").read_bytes() == first.read_bytes()
    (handlers.settings.corpus_dir / "uploads").rename(tmp_path / "moved")
    (handlers.settings.corpus_dir / "uploads").symlink_to(outside)
    third = _upload(tmp_path, "c.txt", b"Tredje\n\nEn text om Visby.\n")
    report = add_files(handlers.settings, [("c.txt", third)])
    assert report.rejected == [("c.txt", "uploads/ in the corpus folder is a link leaving it; nothing was written")]
    assert not list(outside.iterdir())


@pytest.mark.parametrize("question, k", [("  ", 5), ("Umeå", 0), ("Umeå", -1), ("Umeå", "abc"), ("Umeå", None), (7, 5)])
def test_api_handler_refuses_bad_arguments_with_a_message(handlers, question, k):
    assert json.loads(json.dumps(handlers.api_ask("Umeå rutiner", 2)))["passages"][0]["citation"]["title"]
    with pytest.raises(QuestionError, match="empty|k must be a whole number from 1 to 50|must be text"):
        handlers.api_ask(question, k)


def test_rebuild_swaps_in_a_new_index(handlers):
    (handlers.settings.corpus_dir / "new.txt").write_text("Ny artikel om Malmö\n\nMalmö bygger tre nya skolor.\n")
    message = handlers.rebuild()
    assert "1 added" in message and "7 articles" in handlers.status()
    assert "Ny artikel om Malmö" in handlers.article_titles()


def test_a_broken_index_becomes_a_message_not_a_crash(tiny_settings, fake_embedder):
    h = Handlers(tiny_settings, embedder=fake_embedder)  # nothing built yet
    assert "assistant index build" in h.status()
    history, answers = h.respond("Hej?", [], [])
    assert "assistant index build" in history[-1]["content"] and answers == [None, None]


def test_ui_talks_only_to_the_assistant_stage():
    for path in (Path(__file__).parents[1] / "ui").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] in ("corpus", "index")], path.name


def test_uploads_are_capped_at_the_upload_setting(handlers):
    from ui.app import launch_options

    settings = replace(handlers.settings, max_upload_mb=2)
    assert launch_options(settings)["max_file_size"] == "2048kb"


def test_api_answer_has_the_short_answer_with_markers_and_labels(handlers):
    data = json.loads(json.dumps(handlers.api_ask("Hur många medarbetare omfattar arbetet i Umeå?", 3)))
    first = data["short_answer_sentences"][0]
    assert data["short_answer"].startswith(f"{first['text']} [{first['rank']}]")
    assert {p["label"] for p in data["passages"]} <= {"strong", "partial", "weak"}
    assert data["passages"][0]["chunk_id"]


@pytest.mark.integration
def test_gradio_client_ask_endpoint(server):
    from gradio_client import Client

    url, _ = server
    result = Client(url, verbose=False).predict("Vad kostar konferensen om äldreomsorg?", 3, api_name="/ask")
    data = result if isinstance(result, dict) else json.loads(result)
    assert len(data["passages"]) == 3
    assert data["passages"][0]["citation"]["title"] == "Utbildningskonferens – Ny lagstiftning inom äldreomsorgen"
    assert "[1]" in data["short_answer"] and {p["label"] for p in data["passages"]} <= {"strong", "partial", "weak"}


@pytest.mark.integration
@pytest.mark.parametrize(
    "args, message",
    [
        (("Vad kostar konferensen?", "abc"), "k must be a whole number from 1 to 50 (passages to return); got 'abc'."),
        (("Vad kostar konferensen?", None), "k must be a whole number from 1 to 50 (passages to return); got None."),
        (("Vad kostar konferensen?", 0), "k must be a whole number from 1 to 50 (passages to return); got 0."),
        (("Vad kostar konferensen?", -1), "k must be a whole number from 1 to 50 (passages to return); got -1."),
        ((42, 5), "The question must be text, not int."),
        (("   ", 5), "The question is empty"),
    ],
)
def test_api_errors_reach_the_client_as_readable_messages(server, args, message):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        Client(server[0], verbose=False).predict(*args, api_name="/ask")
    assert str(caught.value).startswith(message)


@pytest.mark.integration
def test_api_call_may_leave_out_what_follows_the_question(server):
    import httpx

    url = server[0] + "gradio_api/call/ask"

    def call(data):
        event_id = httpx.post(url, json={"data": data}).json()["event_id"]
        stream = httpx.get(f"{url}/{event_id}", timeout=60).text
        return stream.split("\n", 1)[0], json.loads(stream.split("data:", 1)[1].splitlines()[0])

    event, data = call([])
    assert event == "event: error" and data["error"] == "Missing argument: send at least the question (got 0)."
    # The arguments after the question take their defaults (k 5, no filters), as gradio_client sends them.
    for data, passages in ((["Vad kostar konferensen?"], 5), (["Vad kostar konferensen?", 2], 2)):
        event, answer = call(data)
        assert event == "event: complete" and len(answer[0]["passages"]) == passages, answer


@pytest.mark.integration
def test_uploads_are_capped(server):
    import httpx

    url = server[0] + "gradio_api/upload"
    too_big = int(Settings().max_upload_mb * 1024 * 1024) + 1024
    assert httpx.post(url, files={"files": ("big.txt", b"x" * too_big)}).status_code == 413


@pytest.mark.integration
def test_original_files_are_served_from_the_corpus_folder_only(server, real_index):
    import httpx

    inside = next(real_index.corpus_dir.resolve().glob("*.txt"))
    served = httpx.get(f"{server[0]}gradio_api/file={inside}")
    assert served.status_code == 200 and served.content == inside.read_bytes()
    assert httpx.get(f"{server[0]}gradio_api/file=/etc/passwd").status_code in (403, 404)


def _chromium(playwright):
    """Debian's Chromium (make test installs it), headless."""
    return playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=[
            "--no-sandbox",
            "--headless",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
        ],
    )


@pytest.mark.browser
def test_long_unbroken_text_wraps_inside_its_card(handlers):
    from playwright.sync_api import sync_playwright

    from ui.render import CSS

    _, answers = ask(handlers, "Umeå", k=1)
    hit = answers[-1].hits[0]
    long = replace(hit, text="x" * 3000 + " " + hit.text, citation=replace(hit.citation, title="T" * 400))
    answer = replace(answers[-1], hits=(long,), short_answer=(Sentence("y" * 2000, 1),))
    html = answer_html(answer, 1, {hit.chunk_id: ("z" * 2000, "w" * 2000)})
    with sync_playwright() as p:
        browser = _chromium(p)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.set_content(f"<style>{CSS}</style><div id='box' style='width: 360px'>{html}</div>")
        page.evaluate("document.querySelector('details').open = true")
        page.evaluate("document.querySelector('.hit-card').classList.add('with-context')")
        assert page.locator(".ctx").first.is_visible()
        assert page.locator(".short-answer").evaluate("e => e.scrollWidth - e.clientWidth") <= 1
        card = page.locator(".hit-card")
        assert card.evaluate("e => e.scrollWidth - e.clientWidth") <= 1
        right = "e => e.getBoundingClientRect().right"
        assert card.evaluate(right) <= page.locator("#box").evaluate(right) + 1
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        browser.close()


@pytest.fixture
def own_server(real_index, tmp_path):
    """A server over a private copy of the real corpus and index: the browser test adds an article."""
    from tests.conftest import serving

    shutil.copytree(real_index.corpus_dir, tmp_path / "corpus")
    shutil.copytree(real_index.index_dir, tmp_path / "index", symlinks=True)
    settings = replace(real_index, corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    with serving(settings, tmp_path) as running:
        yield running


NEW_ARTICLE = (
    "Nytt badhus i Sundsvall\n\nSundsvalls kommun bygger ett nytt badhus vid Norrmalm. Badhuset öppnar i juni "
    "2027 och får en femtiometersbassäng. Bygget kostar 400 miljoner kronor. På skylten står $x^2$ och $$\\int f$$.\n"
)
SCREENSHOTS = Path(os.environ.get("UI_SCREENSHOTS", tempfile.gettempdir())) / "assistant-ui-screens"


def _wait_for(condition, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline and not condition():
        time.sleep(0.3)
    return condition()


@pytest.mark.browser
def test_real_browser_short_answer_source_context_feedback_export_and_upload(own_server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, feedback = own_server
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = _chromium(p)
        context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url.rstrip("/"))
        page = context.new_page()
        page.goto(url)
        page.fill("#question textarea", "Vem är stadsdelsdirektör i Farsta?")
        page.click("#ask-button")
        # The question leaves the box at once, and the box waits for the answer: nothing typed meanwhile is lost.
        page.wait_for_function("document.querySelector('#question textarea').disabled", timeout=10_000)
        assert page.locator("#question textarea").input_value() == ""
        page.wait_for_selector("#chat .answer", timeout=60_000)
        page.wait_for_function("!document.querySelector('#question textarea').disabled", timeout=10_000)
        answer = page.locator("#chat .answer").last
        short = answer.locator(".short-answer")
        assert "[1]" in short.inner_text() and len(short.inner_text()) > 30
        first = answer.locator(".hit-card").first
        title = first.locator(".hit-title").inner_text()
        assert title == "Fokus på arbetssituationen i Stockholms stad"
        assert first.locator(".label").get_attribute("title").startswith(first.locator(".label").inner_text().title())

        # The newest answer starts in view: its top lies inside the chat's visible box.
        page.wait_for_timeout(1200)
        top = answer.evaluate("e => e.getBoundingClientRect().top")
        box = page.locator("#chat").evaluate("e => [e.getBoundingClientRect().top, e.getBoundingClientRect().bottom]")
        assert box[0] <= top < box[1] - 100, (top, box)

        # [1] opens the source beside the chat, the cited passage marked and in view.
        short.locator(".act-source.rank-1").click()
        mark = page.locator("#source-view mark#cited-passage")
        mark.wait_for(timeout=30_000)
        assert mark.is_visible() and title in page.locator("#source-view .source-head").inner_text()
        passage = " ".join(first.locator(".hit-text").text_content().split())
        assert " ".join(mark.inner_text().split())[:60] in passage
        assert page.locator("#source-column").evaluate("e => e.getBoundingClientRect().left") > 600  # beside
        page.click("#source-next")
        page.wait_for_function("document.querySelector('#source-view .source-head').innerText.startsWith('[2]')")

        # A card opens to its whole passage; "More context" adds the neighbouring passages.
        first.locator("summary").click()
        assert first.locator(".hit-text").is_visible() and not first.locator(".ctx").first.is_visible()
        first.locator(".ctx-button").click()
        assert first.locator(".ctx").first.is_visible()
        page.screenshot(path=str(SCREENSHOTS / "desktop-1400.png"))

        # 👍 on passage [2] writes one line naming that passage.
        second = answer.locator(".hit-card").nth(1)
        second.locator(".act-up").click()
        assert _wait_for(lambda: feedback.exists() and feedback.read_text().strip())
        row = json.loads(feedback.read_text().splitlines()[-1])
        assert row["verdict"] == "up" and row["question"] == "Vem är stadsdelsdirektör i Farsta?"
        assert row["citation"]["title"] == second.locator(".hit-title").inner_text() and row["chunk_id"]
        assert "[2]" in page.locator("#feedback-note").inner_text()

        # Copy one citation; download the conversation as Markdown.
        first.locator(".act-copy").click()
        page.wait_for_function("document.querySelector('#chat .answer .act-copy').innerText.includes('Copied')")
        assert page.evaluate("navigator.clipboard.readText()").startswith(title + ".")
        with page.expect_download() as download:
            page.click("#download")
        markdown = Path(download.value.path()).read_text()
        assert "## Vem är stadsdelsdirektör i Farsta?" in markdown and f"**[1]** {title}." in markdown

        # Add an article from the page, then ask what only it answers.
        page.get_by_text("Add articles and index").click()
        (tmp_path / "badhus.txt").write_text(NEW_ARTICLE)
        report = fx.report_pdf(tmp_path / "rapport.pdf")  # the page refused PDF and Word files, the loader's formats
        page.set_input_files("#upload input[type=file]", [str(tmp_path / "badhus.txt"), str(report)])
        page.wait_for_timeout(1500)
        page.click("#add-button")
        page.wait_for_function("document.querySelector('#add-button').disabled", timeout=10_000)  # no second add
        page.wait_for_function("document.querySelector('#upload-note').innerText.includes('Rebuilt')", timeout=120_000)
        page.wait_for_function("!document.querySelector('#add-button').disabled", timeout=10_000)
        note = page.locator("#upload-note").inner_text()
        assert "Added uploads/badhus.txt" in note and "Added uploads/rapport.pdf" in note
        status_now = page.locator("#index-status").text_content()
        page.fill("#question textarea", "När öppnar det nya badhuset i Sundsvall?")
        page.click("#ask-button")
        page.wait_for_function("document.querySelectorAll('#chat .answer').length == 2", timeout=60_000)
        newest = page.locator("#chat .answer").last
        assert newest.locator(".hit-title").first.inner_text() == "Nytt badhus i Sundsvall"
        assert "juni 2027" in newest.locator(".short-answer").inner_text()
        assert "$x^2$ och $$\\int f$$" in newest.locator(".hit-text").first.text_content()  # text, not maths
        # An elliptical follow-up is read with the question before it, from the history the page sends back.
        page.fill("#question textarea", "Och kostnaden?")
        page.click("#ask-button")
        page.wait_for_function("document.querySelectorAll('#chat .answer').length == 3", timeout=60_000)
        follow_up = page.locator("#chat .answer").last
        assert "Read as a follow-up" in follow_up.inner_text()
        assert follow_up.locator(".hit-title").first.inner_text() == "Nytt badhus i Sundsvall"
        page.screenshot(path=str(SCREENSHOTS / "desktop-1400-full.png"), full_page=True)
        # The chat's own clear button clears the answers behind it too: a new answer's [1] opened the old one's.
        page.locator("#chat button[aria-label='Clear']").click()
        page.wait_for_function("document.querySelectorAll('#chat .answer').length == 0", timeout=10_000)
        page.fill("#question textarea", "Hvem er faglig koordinator i Billund?")
        page.click("#ask-button")
        page.wait_for_selector("#chat .answer", timeout=60_000)
        fresh = page.locator("#chat .answer").last
        fresh.locator(".short-answer .act-source.rank-1").click()
        head = fresh.locator(".hit-title").first.inner_text()
        page.wait_for_function(
            f"document.querySelector('#source-view .source-head')?.innerText.includes({json.dumps(head)})",
            timeout=30_000,
        )

        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.goto(url)
        # A page opened after the rebuild shows the rebuilt index, not the one the server started with.
        phone.get_by_text("Add articles and index").click()
        assert _wait_for(lambda: phone.locator("#index-status").text_content() == status_now), status_now
        phone.get_by_text("Add articles and index").click()
        phone.fill("#question textarea", "Hvem er faglig koordinator i Billund?")
        phone.click("#ask-button")
        phone.wait_for_selector("#chat .answer", timeout=60_000)
        phone.wait_for_timeout(1200)
        phone.screenshot(path=str(SCREENSHOTS / "phone-390.png"))
        phone.locator("#chat .short-answer .act-source.rank-1, #chat .answer .act-source").first.click()
        phone.locator("#source-view mark#cited-passage").wait_for(timeout=30_000)
        phone.wait_for_timeout(800)
        assert phone.locator("#source-view mark#cited-passage").evaluate(
            "e => e.getBoundingClientRect().top < window.innerHeight && e.getBoundingClientRect().bottom > 0"
        ), "the source panel (below the chat on a phone) is scrolled into view"
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"page scrolls sideways by {overflow}px at 390 px"
        phone.screenshot(path=str(SCREENSHOTS / "phone-390-source.png"))
        phone.screenshot(path=str(SCREENSHOTS / "phone-390-full.png"), full_page=True)
        browser.close()
    assert (SCREENSHOTS / "desktop-1400.png").stat().st_size > 20_000


def test_failed_logins_are_throttled_per_user():
    from ui.login import FREE_FAILURES, Login, TooManyFailures

    now = [0.0]
    login = Login("admin", "s3cret", clock=lambda: now[0])
    assert not any(login.check("admin", "guess") for _ in range(FREE_FAILURES))
    with pytest.raises(TooManyFailures, match="wait 2 s"):
        login.check("admin", "s3cret")  # locked: even the right password waits
    assert login.check("other", "guess") is False  # other names are not locked
    now[0] += 2.1
    assert login.check("admin", "wrong") is False  # one more failure doubles the wait
    with pytest.raises(TooManyFailures, match="wait 4 s"):
        login.check("admin", "s3cret")
    now[0] += 4.1
    assert login.check("admin", "s3cret") is True
    assert login.check("admin", "wrong") is False  # a success starts the count again


def test_the_login_page_throttles_a_password_guesser(handlers):
    import httpx

    from tests.conftest import free_port
    from ui.app import build_app, launch_options

    settings = replace(handlers.settings, auth="admin:s3cret")
    port = free_port()
    app = build_app(handlers).queue()
    app.launch(server_port=port, prevent_thread_lock=True, quiet=True, **launch_options(settings))
    try:
        url = f"http://127.0.0.1:{port}/login"
        codes = [httpx.post(url, data={"username": "admin", "password": f"guess{i}"}).status_code for i in range(5)]
        assert codes == [400] * 5
        locked = httpx.post(url, data={"username": "admin", "password": "s3cret"})
        assert locked.status_code == 429 and "Too many failed logins" in locked.text
        time.sleep(2.2)
        assert httpx.post(url, data={"username": "admin", "password": "s3cret"}).status_code == 200
    finally:
        app.close()


def test_date_and_author_filters_reach_the_search(handlers):
    history, answers = handlers.respond("Umeå rutiner", [], [], 3, "hybrid", None, None, "2030", "", "")
    assert answers[-1] is None and "No article matches these filters" in history[-1]["content"]  # none from 2030
    history, answers = handlers.respond("Umeå rutiner", [], [], 3, "hybrid", None, None, "20x", "", "")
    assert answers[-1] is None and "since" in history[-1]["content"]  # a bad date is one readable line
    history, answers = handlers.respond("Umeå rutiner", [], [], 3, "hybrid", None, None, "", "", "")
    assert answers[-1].hits


def test_the_source_offers_the_original_file_inside_the_corpus(handlers, tmp_path):
    from ui.app import launch_options, original_link

    history, answers = ask(handlers, "Umeå rutiner", k=1)
    html = handlers.open_source(answers, len(answers) - 1, 1)
    corpus = handlers.settings.corpus_dir.resolve()
    assert f'href="/gradio_api/file={corpus}/' in html and "Open the original file" in html
    assert launch_options(handlers.settings)["allowed_paths"] == [str(corpus)]

    class View:
        original, page = corpus / "rapport.pdf", 4

    assert 'rapport.pdf#page=4"' in original_link(View) and "at page 4" in original_link(View)


@pytest.mark.browser
def test_original_files_are_served_sandboxed_and_only_for_articles(handlers):
    import httpx
    from playwright.sync_api import sync_playwright

    from tests.conftest import free_port
    from ui.app import build_app, launch_options

    corpus = handlers.settings.corpus_dir.resolve()
    (corpus / "notes.env").write_text("TOKEN=secret\n")  # in the corpus folder, but no article
    (corpus / "kept").mkdir()
    (corpus / "kept" / "text.dat").write_text("Sparad text\n\nUmeå kommun sparar sina texter här.\n")
    (corpus / "sparad.txt").symlink_to(corpus / "kept" / "text.dat")  # an article whose file is a link inside
    handlers.rebuild()
    assert handlers.is_original("page.html") and handlers.is_original("sparad.txt")
    assert not handlers.is_original("notes.env") and not handlers.is_original("kept/text.dat")
    port = free_port()
    app = build_app(handlers).queue()
    options = launch_options(handlers.settings, handlers.is_original)
    app.launch(server_port=port, prevent_thread_lock=True, quiet=True, **options)
    try:
        base = f"http://127.0.0.1:{port}/gradio_api/file="
        page = httpx.get(f"{base}{corpus}/page.html")  # a saved web page with a <script> in it
        assert page.status_code == 200 and 'alert("no")' in page.text
        assert page.headers["content-security-policy"].startswith("sandbox;")
        assert page.headers["x-content-type-options"] == "nosniff"
        for hidden in (f"{corpus}/notes.env", f"{corpus}/../{corpus.name}/notes.env", f"{corpus}/kept/text.dat"):
            assert httpx.get(base + hidden).status_code == 404
            assert httpx.get(base + hidden, headers={"Range": "bytes=0-3"}).status_code == 404
            old_route = f"http://127.0.0.1:{port}/gradio_api/file/{hidden}"  # Gradio's deprecated twin route
            assert httpx.get(old_route).status_code == 404
        twin = httpx.get(f"http://127.0.0.1:{port}/gradio_api/file/{corpus}/page.html")
        assert twin.status_code == 200 and twin.headers["content-security-policy"].startswith("sandbox;")
        linked = httpx.get(f"{base}{corpus}/sparad.txt")
        assert linked.status_code == 200 and "Umeå kommun sparar" in linked.text
        with sync_playwright() as p:
            browser = _chromium(p)
            tab = browser.new_page()
            dialogs = []
            tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            tab.goto(f"{base}{corpus}/page.html")
            assert "Eva Lind" in tab.inner_text("body") and dialogs == []  # shown, its script not run
            browser.close()
    finally:
        app.close()


def test_api_filters_by_date_and_author(handlers):
    with pytest.raises(QuestionError, match="No article matches these filters"):
        handlers.api_ask("Umeå rutiner", 3, since="2030")
    assert handlers.api_ask("Umeå rutiner", 3, author="  ")["passages"]  # blank filters are no filters
    with pytest.raises(QuestionError, match="since"):
        handlers.api_ask("Umeå rutiner", 3, since="someday")
    with pytest.raises(QuestionError, match="must be text"):
        handlers.api_ask("Umeå rutiner", 3, author=7)
