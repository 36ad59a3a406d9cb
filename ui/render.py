"""HTML for answers and sources. Every piece of corpus text and every question is escaped here."""

from __future__ import annotations

import re
from functools import partial
from html import escape

from assistant.answer import Answer, Hit

# What can turn text into a link, an image, emphasis, code, a table or a heading in Markdown; on the page also
# maths and a bare URL's link (not in the downloaded file, where "kl. 10:00" should read as written).
_MARKDOWN = re.compile(r"([\\`*_\[\]#!|~])")
_MARKDOWN_PAGE = re.compile(r"([\\`*_\[\]#!|~$:])")

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


LABEL_TIPS = {
    "strong": "Strong: this passage very likely answers the question.",
    "partial": "Partial: this passage may answer part of the question; check the source.",
    "weak": "Weak: this passage is only loosely related to the question.",
}
LABEL_NOTE = (
    " The label comes from a calibrated chance that the passage answers the question, the same score "
    "that decides when nothing relevant was found."
)


def _act(action: str, turn: int, rank: int, *classes: str) -> str:
    """The class attribute of an element the page's script turns into an action on passage `rank` of chat
    message `turn`. Classes, because the chat's HTML sanitiser removes data-* attributes."""
    return f'class="{" ".join(classes)} act act-{action} turn-{turn} rank-{rank}"'


def citation_text(hit: Hit) -> str:
    """One citation as plain text, for copying and for the Markdown export."""
    c = hit.citation
    language = LANGUAGE_NAMES.get(c.language, c.language)
    extra = "".join(f", {x}" for x in (c.author, c.date) if x)
    page = f", page {c.page}" if c.page else ""
    return f"{c.title}{extra}. {c.source}{page}, ¶{c.paragraph}, characters {c.start}–{c.end} ({language})."


def _where(c) -> str:
    """Language, date, page and paragraph of a citation, for a card's meta line."""
    parts = [LANGUAGE_NAMES.get(c.language, c.language), c.date, c.author, f"page {c.page}" if c.page else ""]
    return " · ".join(escape(p) for p in [*filter(None, parts), f"¶{c.paragraph}", c.source])


def label_html(hit: Hit) -> str:
    return (
        f'<span class="label label-{hit.label}" title="{escape(LABEL_TIPS[hit.label] + LABEL_NOTE)}">{hit.label}</span>'
    )


def hit_card(hit: Hit, turn: int = 0, context: tuple[str, str] = ("", "")) -> str:
    """A passage: title (opens the source), language, ¶, label, the marked sentence(s); expanding shows
    the whole passage, and "More context" the neighbouring passages `context` = (before, after)."""
    c, n = hit.citation, hit.rank
    highlight = " … ".join(escape(hit.text[a:b]) for a, b in hit.highlight) or escape(hit.text[:240]) + " …"
    before, after = (f'<div class="ctx">{escape(x)}</div>'.replace("\n", "<br>") if x else "" for x in context)
    more = f"<button {_act('context', turn, n, 'ctx-button')}>More context</button>" if before or after else ""
    return (
        f'<div class="hit-card" id="hit-{turn}-{n}">'
        f'<div class="hit-head"><a href="#" {_act("source", turn, n, "cite-num")}>[{n}]</a> '
        f'<a href="#" {_act("source", turn, n, "hit-title")}>{escape(c.title)}</a> {label_html(hit)}</div>'
        f'<div class="hit-meta">{_where(c)}</div>'
        f'<div class="hit-highlight">{highlight}</div>'
        f'<details class="hit-more"><summary>Whole passage</summary>{before}'
        f'<div class="hit-text">{_marked(hit.text, hit.highlight)}</div>{after}{more}</details>'
        f'<div class="hit-actions">'
        f'<button title="This passage helps" {_act("up", turn, n, "fb")}>👍 Useful</button>'
        f'<button title="This passage does not help" {_act("down", turn, n, "fb")}>👎 Not useful</button>'
        # The title holds the citation the script copies (and shows it on hover).
        f'<button title="{escape(citation_text(hit))}" {_act("copy", turn, n, "copy")}>Copy citation</button></div>'
        f"</div>"
    )


def short_answer_html(answer: Answer, turn: int) -> str:
    """The 1-3 verbatim sentences on top, each followed by its [n] marker, which opens the source."""
    if not answer.short_answer:
        return ""
    parts = [
        f'{escape(s.text)} <a href="#" {_act("source", turn, s.rank, "cite")}>[{s.rank}]</a>'
        for s in answer.short_answer
    ]
    return f'<div class="short-answer">{" ".join(parts)}</div>'


def answer_html(answer: Answer, turn: int = 0, contexts: dict | None = None) -> str:
    """One answer for chat message `turn`: notices, the short answer, then the passage cards; or, when
    nothing relevant was found, that sentence and the closest articles by title. `contexts` maps a
    chunk id to its neighbouring passages' texts (before, after)."""
    notices = "".join(f'<p class="notice">{escape(n)}</p>' for n in answer.notices)
    if answer.no_answer:
        firsts = {}
        for hit in answer.hits:
            firsts.setdefault(hit.citation.title, hit.rank)
        closest = "".join(
            f'<li><a href="#" {_act("source", turn, rank, "hit-title")}>{escape(title)}</a></li>'
            for title, rank in firsts.items()
        )
        closest = (
            f'<p>The closest articles, in case one helps:</p><ul class="closest">{closest}</ul>' if closest else ""
        )
        return (
            f'<div class="answer">{notices}<p class="no-answer"><strong>Nothing relevant found</strong> in the '
            f"articles for “{escape(answer.question)}”. Try other words or a more specific question.</p>"
            f"{closest}</div>"
        )
    follow = ""
    if answer.search_query != answer.question:
        follow = f'<p class="notice">Read as a follow-up: searched for “{escape(answer.search_query)}”.</p>'
    contexts = contexts or {}
    cards = "".join(hit_card(h, turn, contexts.get(h.chunk_id, ("", ""))) for h in answer.hits)
    return f'<div class="answer">{notices}{follow}{short_answer_html(answer, turn)}{cards}</div>'


def markdown(answers, index_version: str = "") -> str:
    """The conversation as Markdown: each question, its short answer, its passages with full citations."""
    lines = ["# Conversation with the Nordic article assistant", ""]
    if index_version:
        lines += [f"Index built {index_version}.", ""]
    md = partial(markdown_text, page=False)  # questions and corpus text read in the file exactly as written
    for answer in (a for a in answers if a is not None):
        lines += [f"## {md(answer.question)}", ""]
        if answer.no_answer:
            titles = list(dict.fromkeys(md(h.citation.title) for h in answer.hits))
            lines += ["Nothing relevant found." + (" Closest articles: " + "; ".join(titles) if titles else ""), ""]
            continue
        if answer.short_answer:
            lines += ["**Short answer:** " + " ".join(f"{md(s.text)} [{s.rank}]" for s in answer.short_answer), ""]
        for hit in answer.hits:
            lines += [f"**[{hit.rank}]** {md(citation_text(hit))} Relevance: {hit.label}.", ""]
            lines += ["> " + md(line) if line.strip() else ">" for line in hit.text.splitlines()] + [""]
    return "\n".join(lines)


def source_html(
    source_text: str,
    title: str,
    source: str,
    start: int,
    end: int,
    window: tuple[int, int] | None = None,
    heading: str = "",
) -> str:
    """The source around [start, end) with the passage marked: by default the whole `window`
    (the article), else some context around the passage. Of an article longer than
    SOURCE_WHOLE_CHARS only SOURCE_WINDOW_CHARS either side of the passage are sent, with a note.
    `heading` (HTML, already escaped) goes before the title, e.g. the citation number."""
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
        f'<div class="source-view"><div class="source-head">{heading}<strong>{escape(title)}</strong> — '
        f"{escape(source)}, characters {start}–{end}</div>{note}"
        f'<div class="source-text">{"… " if lo else ""}{escape(before)}'
        f'<mark id="cited-passage" class="cited-passage">{escape(passage)}</mark>'
        f"{escape(after)}{' …' if hi < len(source_text) else ''}"
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


def markdown_text(text: str, page: bool = True) -> str:
    """`text` (a title, a file name, a passage) shown literally inside Markdown: its HTML escaped, Markdown's
    punctuation backslashed, so "[x](https://…)" or "<img …>" in a title stays text; `page=False` for the
    downloaded file, which leaves bare URLs and "$" as they are."""
    return (_MARKDOWN_PAGE if page else _MARKDOWN).sub(r"\\\1", escape(text, quote=False))


def status_markdown(manifest) -> str:
    counts = manifest.counts
    return (
        f"**{counts.articles} articles**, {counts.chunks} passages from {counts.files} files "
        f"({counts.skipped} skipped) · languages: {', '.join(manifest.languages)} · "
        f"model: {manifest.model.name} ({manifest.model.dimension} dims) · "
        f"{manifest.index_type} · built {manifest.built_at}"
    )


CSS = """
#source-column {position: sticky; top: 8px; align-self: flex-start;}
.answer {overflow-wrap: anywhere; word-break: break-word;}
.short-answer {border-left: 4px solid #0969da; background: #f3f8ff; padding: 8px 10px; margin: 4px 0 10px;
               line-height: 1.5; border-radius: 4px; color: #1f2328;}
.short-answer .cite, .cite-num {color: #0969da; font-weight: bold; text-decoration: none; cursor: pointer;}
.hit-card {border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 10px; margin: 6px 0;
           overflow-wrap: anywhere; word-break: break-word; max-width: 100%; box-sizing: border-box;}
.hit-head {font-size: 1.02em;}
.hit-title {font-weight: bold; cursor: pointer; color: inherit; text-decoration: none;}
.hit-title:hover, .cite:hover, .cite-num:hover {text-decoration: underline;}
.label {font-size: 0.75em; padding: 1px 6px; border-radius: 10px; margin-left: 4px; cursor: help;
        vertical-align: middle; white-space: nowrap;}
.label-strong {background: #dafbe1; color: #116329;} .label-partial {background: #fff8c5; color: #7d4e00;}
.label-weak {background: #eaeef2; color: #57606a;}
.hit-meta {font-size: 0.85em; color: #57606a; margin: 2px 0 6px;}
.hit-highlight {border: 1px solid #d4a72c; background: #fffbea; border-radius: 4px; padding: 4px 8px; line-height: 1.4;}
.hit-more summary {cursor: pointer; color: #0969da; font-size: 0.9em; margin-top: 4px;}
.hit-text {line-height: 1.4; margin: 4px 0;}
.ctx {display: none; color: #57606a; line-height: 1.4; margin: 4px 0; padding-left: 8px;
      border-left: 2px solid #d0d7de;}
.hit-card.with-context .ctx {display: block;}
.hit-actions {margin-top: 4px; display: flex; gap: 6px; flex-wrap: wrap;}
.hit-actions button, .ctx-button {border: 1px solid #d0d7de; border-radius: 6px; background: #f6f8fa;
                                  padding: 1px 8px; font-size: 0.85em; cursor: pointer;}
.hit-actions button.chosen {background: #ddf4ff; border-color: #0969da;}
.hit-card mark, .source-view mark {background: #fff3b0; padding: 0 1px;}
.source-text {white-space: pre-wrap; overflow-wrap: anywhere; max-height: 70vh; overflow-y: auto; line-height: 1.45;}
.notice {color: #9a6700; font-size: 0.9em;}
"""
