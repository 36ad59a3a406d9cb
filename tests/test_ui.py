"""The UI: handlers tested directly; then a real server, driven by gradio_client and by Chromium."""

from __future__ import annotations

import ast
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.errors import QuestionError
from assistant.library import rebuild
from ui.app import Handlers
from ui.render import answer_html


@pytest.fixture
def handlers(tiny_settings, fake_embedder, tmp_path):
    settings = replace(tiny_settings, no_answer_threshold=0.2, feedback_file=tmp_path / "fb" / "feedback.jsonl")
    (settings.corpus_dir / "evil.txt").write_text(
        "Elak titel <script>alert(1)</script>\n\n"
        "Denna text har <img src=x onerror=alert(2)> och <script>alert(3)</script> i sig. Umeå nämns här.\n"
    )
    rebuild(settings, fake_embedder, say=lambda _: None, progress=False)
    return Handlers(settings, embedder=fake_embedder)


def ask(handlers, question, history=None, answers=None, **kw):
    return handlers.respond(question, history or [], answers or [], **kw)


def test_answer_cards_show_title_language_paragraph_score_and_highlight(handlers):
    history, answers, choices = ask(handlers, "Hur många medarbetare omfattar arbetet i Umeå?", k=3)
    html = history[-1]["content"]
    assert history[-2] == {"role": "user", "content": "Hur många medarbetare omfattar arbetet i Umeå?"}
    assert html.count('class="hit-card"') == 3
    assert "Nya rutiner i Umeå" in html and "Svenska" in html and "¶" in html and "relevance" in html
    assert "<mark>" in html
    assert len(choices) == 3 and choices[0].startswith("[1] ")
    assert answers[-1].hits[0].citation.title in choices[0]


def test_corpus_text_and_questions_are_escaped(handlers):
    history, answers, _ = ask(handlers, "<script>alert('q')</script> Elak titel onerror Umeå", k=5)
    html = history[-1]["content"]
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html or "&lt;img" in html
    source = handlers.open_source(next(c for c in handlers.citation_choices(answers[-1]) if "Elak" in c), answers)
    assert "<script>" not in source and "&lt;script&gt;alert(1)&lt;/script&gt;" in source


def test_empty_and_long_questions(handlers):
    history, answers, choices = ask(handlers, "   ")
    assert "empty" in history[-1]["content"] and answers[-1] is None and choices == []
    history, answers, _ = ask(handlers, "Umeå " * 30_000)
    assert "only the first 1,000 were used" in history[-1]["content"]


def test_no_answer_is_said_plainly_with_a_suggestion(handlers):
    handlers.assistant.settings = replace(handlers.assistant.settings, no_answer_threshold=1.0)
    history, answers, choices = ask(handlers, "Vem vann fotbolls-VM 2018?")
    assert "Nothing relevant found" in history[-1]["content"] and "Try other words" in history[-1]["content"]
    assert choices == []


def test_filters_reach_retrieval(handlers):
    history, answers, _ = ask(handlers, "medarbejderne ledelse", languages=["da"])
    assert {h.citation.language for h in answers[-1].hits} == {"da"}
    history, answers, _ = ask(handlers, "medarbejderne ledelse", articles=["Hemtjänst i Kiruna"])
    assert {h.citation.title for h in answers[-1].hits} == {"Hemtjänst i Kiruna"}


def test_follow_up_uses_the_conversation(handlers):
    history, answers, _ = ask(handlers, "Vad kostar konferensen om den nya lagen?")
    history, answers, _ = ask(handlers, "Och kostnaden?", history, answers)
    assert answers[-1].search_query.startswith("Vad kostar konferensen")
    assert "Read as a follow-up" in history[-1]["content"]


def test_source_view_marks_the_passage_inside_the_article(handlers):
    _, answers, choices = ask(handlers, "Fler handledare behövs under hösten", k=3)
    html = handlers.open_source(choices[0], answers)
    hit = answers[-1].hits[0]
    assert '<mark id="cited-passage">' in html and hit.text.split("\n")[0][:30] in html
    assert hit.citation.title in html


def test_source_paths_never_leave_the_corpus(handlers):
    _, answers, choices = ask(handlers, "Umeå", k=1)
    hit = answers[-1].hits[0]
    for forged in (
        replace(hit.citation, source="../../../../etc/passwd"),
        replace(hit.citation, source="../../../../etc/passwd", article_id="nope"),
    ):
        answers[-1] = replace(answers[-1], hits=(replace(hit, citation=forged),))
        html = handlers.open_source(choices[0], answers)
        assert "root:" not in html and "is not a source in this index" in html


def _cited(html: str) -> str:
    return html.split('<mark id="cited-passage">')[1].split("</mark>")[0]


def test_source_edited_after_the_build_shows_the_indexed_text_with_a_notice(handlers):
    _, answers, choices = ask(handlers, "Fler handledare behövs under hösten", k=1)
    hit = answers[-1].hits[0]
    path = handlers.settings.corpus_dir / hit.citation.source
    fresh = handlers.open_source(choices[0], answers)
    assert "changed since the index was built" not in fresh
    first_line = hit.text.split("\n")[0]
    assert _cited(fresh).startswith(first_line[:40])

    path.write_text("En ny inledning som flyttar all text längre ned i filen.\n\n" + path.read_text())
    html = handlers.open_source(choices[0], answers)
    assert "The file changed since the index was built; rebuild to update" in html
    assert _cited(html).startswith(first_line[:40]) and "En ny inledning" not in html

    path.unlink()
    html = handlers.open_source(choices[0], answers)
    assert "rebuild to update" in html and _cited(html).startswith(first_line[:40])


def test_feedback_is_appended_as_small_jsonl_lines(handlers):
    history, answers, _ = ask(handlers, "Umeå rutiner", k=5)
    assert handlers.feedback(len(answers) - 1, True, answers).startswith("Thanks")
    handlers.feedback(len(answers) - 1, False, answers)
    assert handlers.feedback(0, True, answers) == ""  # the user's own message carries no answer
    lines = handlers.settings.feedback_file.read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    assert [r["verdict"] for r in rows] == ["up", "down"]
    assert rows[0]["question"] == "Umeå rutiner" and len(rows[0]["passages"]) == 5 and rows[0]["time"]
    hit = answers[-1].hits[0]
    assert rows[0]["passages"][0]["chunk_id"] == hit.chunk_id and rows[0]["passages"][0]["citation"]["start"]
    assert all("text" not in p for p in rows[0]["passages"])  # ids and citations, not the passages
    assert max(len(line.encode()) for line in lines) < 1200  # with the passage texts: over 2 KB


def test_feedback_stops_at_its_size_limit_with_a_message(handlers):
    handlers.settings = replace(handlers.settings, feedback_max_bytes=10_000)
    _, answers, _ = ask(handlers, "Umeå rutiner", k=5)
    messages = [handlers.feedback(1, True, answers) for _ in range(30)]
    assert messages[0].startswith("Thanks") and "reached its limit of 10,000 bytes" in messages[-1]
    assert handlers.settings.feedback_file.stat().st_size <= 10_000
    handlers.settings = replace(handlers.settings, feedback_file=handlers.settings.corpus_dir / "archive.txt" / "x")
    assert handlers.feedback(1, True, answers).startswith("Feedback not saved: cannot write")


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
    history, answers, _ = h.respond("Hej?", [], [])
    assert "assistant index build" in history[-1]["content"]


def test_ui_talks_only_to_the_assistant_stage():
    for path in (Path(__file__).parents[1] / "ui").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] in ("corpus", "index")], path.name


def test_the_app_has_no_upload_component_and_caps_uploads(handlers):
    import gradio as gr

    from ui.app import build_app, launch_options

    uploaders = (gr.File, gr.UploadButton, gr.Image, gr.Audio, gr.Video, gr.Gallery, gr.MultimodalTextbox, gr.Model3D)
    assert not [b for b in build_app(handlers).blocks.values() if isinstance(b, uploaders)]
    assert launch_options(handlers.settings)["max_file_size"] == "1kb"


@pytest.mark.integration
def test_gradio_client_ask_endpoint(server):
    from gradio_client import Client

    url, _ = server
    result = Client(url, verbose=False).predict("Vad kostar konferensen om äldreomsorg?", 3, api_name="/ask")
    data = result if isinstance(result, dict) else json.loads(result)
    assert len(data["passages"]) == 3
    assert data["passages"][0]["citation"]["title"] == "Utbildningskonferens – Ny lagstiftning inom äldreomsorgen"


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
def test_api_call_missing_an_argument_gets_a_message(server):
    import httpx

    url = server[0] + "gradio_api/call/ask"
    for data in ([], ["Vad kostar konferensen?"]):
        event_id = httpx.post(url, json={"data": data}).json()["event_id"]
        stream = httpx.get(f"{url}/{event_id}", timeout=60).text
        assert "event: error" in stream, stream
        error = json.loads(stream.split("data:", 1)[1].splitlines()[0])["error"]
        assert error.startswith("Missing argument: send question and k"), stream


@pytest.mark.integration
def test_uploads_are_capped(server):
    import httpx

    url = server[0] + "gradio_api/upload"
    assert httpx.post(url, files={"files": ("big.txt", b"x" * 5000)}).status_code == 413


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

    _, answers, _ = ask(handlers, "Umeå", k=1)
    hit = answers[-1].hits[0]
    long = replace(hit, text="x" * 3000 + " " + hit.text, citation=replace(hit.citation, title="T" * 400))
    html = answer_html(replace(answers[-1], hits=(long,)))
    with sync_playwright() as p:
        browser = _chromium(p)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.set_content(f"<style>{CSS}</style><div id='box' style='width: 360px'>{html}</div>")
        card = page.locator(".hit-card")
        assert card.evaluate("e => e.scrollWidth - e.clientWidth") <= 1
        right = "e => e.getBoundingClientRect().right"
        assert card.evaluate(right) <= page.locator("#box").evaluate(right) + 1
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        browser.close()


@pytest.mark.browser
def test_real_browser_chat_source_and_feedback(server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, feedback = server
    with sync_playwright() as p:
        browser = _chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.fill("#question textarea", "Vem är stadsdelsdirektör i Farsta?")
        page.click("#ask-button")
        page.wait_for_selector("#chat .hit-card", timeout=60_000)
        titles = page.locator("#chat .hit-title").all_inner_texts()
        assert "Fokus på arbetssituationen i Stockholms stad" in titles
        page.locator("#citations label", has_text="Fokus på arbetssituationen").first.click()
        mark = page.locator("#source-view mark#cited-passage")
        mark.wait_for(timeout=30_000)
        assert mark.is_visible() and len(mark.inner_text()) > 20
        assert "Fokus på arbetssituationen i Stockholms stad" in page.locator("#source-view").inner_text()
        page.screenshot(path=str(tmp_path / "desktop.png"), full_page=True)
        page.locator("#chat button[aria-label='Like']").last.click()
        deadline = time.time() + 20
        while time.time() < deadline and not (feedback.exists() and feedback.read_text().strip()):
            time.sleep(0.5)
        row = json.loads(feedback.read_text().splitlines()[-1])
        assert row["verdict"] == "up" and row["question"] == "Vem är stadsdelsdirektör i Farsta?"

        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.goto(url)
        phone.fill("#question textarea", "Hvem er faglig koordinator i Billund?")
        phone.click("#ask-button")
        phone.wait_for_selector("#chat .hit-card", timeout=60_000)
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"page scrolls sideways by {overflow}px at 390 px"
        phone.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
        browser.close()
    assert (tmp_path / "desktop.png").stat().st_size > 20_000


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
