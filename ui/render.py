"""HTML for answers and sources. Every piece of corpus text and every question is escaped here."""

from __future__ import annotations

from html import escape

from assistant.answer import Answer, Hit

LANGUAGE_NAMES = {"sv": "Svenska", "da": "Dansk", "en": "English", "nb": "Norsk"}
CONTEXT_CHARS = 600  # source shown around the cited passage before "whole article" kicks in
SOURCE_WHOLE_CHARS = 20_000  # articles up to this long are shown whole in the source view
SOURCE_WINDOW_CHARS = 3_000  # of a longer one, this much either side of the passage


def _marked(text: str, spans) -> str:
    """Escape `text`, wrapping the highlight spans in <mark>."""
    out, cursor = [], 0
    for start, end in sorted(spans):
        out += [escape(text[cursor:start]), "<mark>", escape(text[start:end]), "</mark>"]
        cursor = end
    out.append(escape(text[cursor:]))
    return "".join(out).replace("\n", "<br>")


def hit_card(hit: Hit) -> str:
    c = hit.citation
    percent = max(0, min(100, round(hit.score * 100)))
    return (
        f'<div class="hit-card">'
        f'<div class="hit-head"><span class="cite-num">[{hit.rank}]</span> '
        f'<strong class="hit-title">{escape(c.title)}</strong></div>'
        f'<div class="hit-meta">{escape(LANGUAGE_NAMES.get(c.language, c.language))} · ¶{c.paragraph} · '
        f"{escape(c.source)} · relevance {percent}%"
        f'<span class="bar"><span style="width:{percent}%"></span></span></div>'
        f'<div class="hit-text">{_marked(hit.text, hit.highlight)}</div>'
        f"</div>"
    )


def answer_html(answer: Answer) -> str:
    notices = "".join(f'<p class="notice">{escape(n)}</p>' for n in answer.notices)
    if answer.no_answer:
        return (
            notices + '<p class="no-answer"><strong>Nothing relevant found</strong> in the articles for '
            f"“{escape(answer.question)}”. Try other words or a more specific question, e.g. about social "
            "services in Stockholm, Västerås, Luleå, Hässleholm, Holstebro or Billund.</p>"
        )
    follow = ""
    if answer.search_query != answer.question:
        follow = f'<p class="notice">Read as a follow-up: searched for “{escape(answer.search_query)}”.</p>'
    return notices + follow + "".join(hit_card(h) for h in answer.hits)


def citation_label(hit: Hit) -> str:
    return f"[{hit.rank}] {hit.citation.title} · ¶{hit.citation.paragraph}"


def source_html(
    source_text: str, title: str, source: str, start: int, end: int, window: tuple[int, int] | None = None
) -> str:
    """The source around [start, end) with the passage marked: by default the whole `window`
    (the article), else some context around the passage. Of an article longer than
    SOURCE_WHOLE_CHARS only SOURCE_WINDOW_CHARS either side of the passage are sent, with a note."""
    lo, hi = window or (max(0, start - CONTEXT_CHARS), min(len(source_text), end + CONTEXT_CHARS))
    lo, hi = min(lo, start), max(hi, end)
    note = ""
    if hi - lo > SOURCE_WHOLE_CHARS:
        shown_lo, shown_hi = _around(source_text, lo, hi, start, end)
        note = (
            f'<div class="notice">A long article ({hi - lo:,} characters): showing the {shown_hi - shown_lo:,} '
            "around the passage; the article continues"
            f"{' above' if shown_lo > lo else ''}{' and' if shown_lo > lo and shown_hi < hi else ''}"
            f"{' below' if shown_hi < hi else ''}.</div>"
        )
        lo, hi = shown_lo, shown_hi
    before, passage, after = source_text[lo:start], source_text[start:end], source_text[end:hi]
    return (
        f'<div class="source-view"><div class="source-head"><strong>{escape(title)}</strong> — '
        f"{escape(source)}, characters {start}–{end}</div>{note}"
        f'<div class="source-text">{"… " if lo else ""}{escape(before)}'
        f'<mark id="cited-passage">{escape(passage)}</mark>{escape(after)}{" …" if hi < len(source_text) else ""}'
        f"</div></div>"
    )


def _around(text: str, lo: int, hi: int, start: int, end: int) -> tuple[int, int]:
    """SOURCE_WINDOW_CHARS either side of [start, end) within [lo, hi), widened or narrowed to a
    line break when one is near, so the view starts and ends with whole paragraphs."""
    a, b = max(lo, start - SOURCE_WINDOW_CHARS), min(hi, end + SOURCE_WINDOW_CHARS)
    if a > lo:
        line = text.find("\n", a, start)
        a = line + 1 if 0 <= line < a + SOURCE_WINDOW_CHARS // 2 else a
        a += len(text[a:start]) - len(text[a:start].lstrip("\n"))
    if b < hi:
        line = text.rfind("\n", end, b)
        b = line if line > b - SOURCE_WINDOW_CHARS // 2 else b
        b -= len(text[end:b]) - len(text[end:b].rstrip("\n"))
    return a, b


def status_markdown(manifest) -> str:
    counts = manifest.counts
    return (
        f"**{counts.articles} articles**, {counts.chunks} passages from {counts.files} files "
        f"({counts.skipped} skipped) · languages: {', '.join(manifest.languages)} · "
        f"model: {manifest.model.name} ({manifest.model.dimension} dims) · "
        f"{manifest.index_type} · built {manifest.built_at}"
    )


CSS = """
.hit-card {border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 10px; margin: 6px 0;
           overflow-wrap: anywhere; word-break: break-word; max-width: 100%; box-sizing: border-box;}
.hit-head {font-size: 1.02em;}
.cite-num {color: #0969da; font-weight: bold;}
.hit-meta {font-size: 0.85em; color: #57606a; margin: 2px 0 6px;}
.bar {display: inline-block; width: 60px; height: 6px; background: #eaeef2; margin-left: 6px; border-radius: 3px;
      vertical-align: middle;}
.bar span {display: block; height: 6px; background: #2da44e; border-radius: 3px;}
.hit-text {max-height: 16em; overflow-y: auto; line-height: 1.4;}
.hit-card mark, .source-view mark {background: #fff3b0; padding: 0 1px;}
.source-text {white-space: pre-wrap; overflow-wrap: anywhere; max-height: 28em; overflow-y: auto; line-height: 1.45;}
.notice {color: #9a6700; font-size: 0.9em;}
"""
