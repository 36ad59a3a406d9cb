"""Huge articles stay cheap to answer from and to show: highlights use the sentence spans kept
with each chunk (no re-splitting of the article per hit), and the source view sends a window
around the passage instead of the whole article."""

from __future__ import annotations

from dataclasses import replace

from ui.render import source_html

QUESTION = "Vem leder arbetet i Holstebro?"


def test_highlights_come_from_the_spans_kept_with_each_chunk(tiny_assistant, monkeypatch):
    expected = tiny_assistant.ask(QUESTION, k=3)
    assert "Direktøren Helle Bro leder arbejdet." in expected.hits[0].highlight_text
    # With re-splitting articles made impossible, only the spans stored with the chunks can give the same highlights.
    monkeypatch.setattr("assistant.answer.article_sentences", lambda article: 1 / 0)
    answer = tiny_assistant.ask(QUESTION, k=3)
    assert [h.highlight for h in answer.hits] == [h.highlight for h in expected.hits]


def test_an_index_built_before_spans_were_kept_still_highlights(tiny_assistant):
    expected = tiny_assistant.ask(QUESTION, k=3)
    tiny_assistant.index.chunks[:] = [replace(c, sentences=()) for c in tiny_assistant.index.chunks]
    answer = tiny_assistant.ask(QUESTION, k=3)
    assert [h.highlight for h in answer.hits] == [h.highlight for h in expected.hits]


def _article(paragraphs: int) -> str:
    return "Rubrik\n\n" + "\n\n".join(f"Stycke {i} <om> omsorgen i kommunen." for i in range(paragraphs)) + "\n"


def test_a_long_source_is_shown_as_a_window_around_the_passage():
    text = _article(12_000)  # ~400 KB
    start = text.index("Stycke 6000 ")
    end = text.index("\n", start)
    html = source_html(text, "Rubrik", "long.txt", start, end, window=(0, len(text)))
    assert len(text) > 400_000 and len(html) < 12_000  # ~3,000 characters either side, escaped
    assert '<mark id="cited-passage" class="cited-passage">Stycke 6000 &lt;om&gt; omsorgen i kommunen.</mark>' in html
    assert "the article continues above and below" in html
    assert "Stycke 5950 " in html and "Stycke 6050 " in html  # context on both sides
    assert "Stycke 5000 " not in html and "Stycke 7000 " not in html
    # The window starts and ends at paragraph breaks, not inside a word.
    shown = html.split('<div class="source-text">… ')[1]
    assert shown.startswith("Stycke ")


def test_a_passage_near_the_start_has_context_only_below():
    text = _article(12_000)
    start = text.index("Stycke 3 ")
    html = source_html(text, "Rubrik", "long.txt", start, start + 10, window=(0, len(text)))
    assert "the article continues below." in html and html.count("Stycke ") < 300


def test_a_short_article_is_shown_whole():
    text = _article(100)
    assert len(text) < 20_000
    start = text.index("Stycke 50 ")
    html = source_html(text, "Rubrik", "short.txt", start, start + 10, window=(0, len(text)))
    assert html.count("Stycke ") == 100 and "continues" not in html
