"""The UI: handlers tested directly; then a real server, driven by gradio_client and by Chromium."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from ui.app import Handlers
from ui.render import answer_html


@pytest.fixture
def handlers(tiny_settings, fake_embedder, tmp_path):
    from index.build import build_index

    settings = replace(tiny_settings, no_answer_threshold=0.2, feedback_file=tmp_path / "fb" / "feedback.jsonl")
    (settings.corpus_dir / "evil.txt").write_text(
        "Elak titel <script>alert(1)</script>\n\n"
        "Denna text har <img src=x onerror=alert(2)> och <script>alert(3)</script> i sig. Umeå nämns här.\n"
    )
    build_index(settings, fake_embedder, say=lambda _: None, progress=False)
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
    evil = replace(hit, citation=replace(hit.citation, source="../../../../etc/passwd"))
    answers[-1] = replace(answers[-1], hits=(evil,))
    html = handlers.open_source(choices[0], answers)
    assert "root:" not in html and "not a file in the corpus folder" in html


def test_feedback_is_appended_as_jsonl(handlers):
    history, answers, _ = ask(handlers, "Umeå rutiner", k=2)
    assert handlers.feedback(len(answers) - 1, True, answers).startswith("Thanks")
    handlers.feedback(len(answers) - 1, False, answers)
    assert handlers.feedback(0, True, answers) == ""  # the user's own message carries no answer
    rows = [json.loads(x) for x in handlers.settings.feedback_file.read_text().splitlines()]
    assert [r["verdict"] for r in rows] == ["up", "down"]
    assert rows[0]["question"] == "Umeå rutiner" and len(rows[0]["passages"]) == 2 and rows[0]["time"]


def test_api_handler_returns_json_ready_dicts(handlers):
    data = handlers.api_ask("Umeå rutiner", 2)
    assert json.loads(json.dumps(data))["passages"][0]["citation"]["title"]
    assert "error" in handlers.api_ask("  ")


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


def test_long_passages_do_not_break_layout(handlers):
    _, answers, _ = ask(handlers, "Umeå", k=1)
    html = answer_html(answers[-1])
    from ui.render import CSS

    assert "overflow-wrap: anywhere" in CSS and "hit-card" in html


@pytest.mark.integration
def test_gradio_client_ask_endpoint(server):
    from gradio_client import Client

    url, _ = server
    result = Client(url, verbose=False).predict("Vad kostar konferensen om äldreomsorg?", 3, api_name="/ask")
    data = result if isinstance(result, dict) else json.loads(result)
    assert len(data["passages"]) == 3
    assert data["passages"][0]["citation"]["title"] == "Utbildningskonferens – Ny lagstiftning inom äldreomsorgen"


@pytest.mark.browser
def test_real_browser_chat_source_and_feedback(server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, feedback = server
    with sync_playwright() as p:
        browser = p.chromium.launch(
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
