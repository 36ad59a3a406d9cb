"""Line-level cleaning of web pages: drop boilerplate, keep offsets.

Cleaning never rewrites text inside a line (except trimming a glued image file name or a
Markdown heading's "#" marks at the start), so every kept line still points at its exact span in
the source file. `unwrap` joins the lines of hard-wrapped paragraphs before that, with spaces of
the same length as the line breaks, so offsets stay exact there too.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from corpus.markdown import heading_text

# Lines that are never article text: archive headers, result counters, social widgets, form labels.
BOILERPLATE = re.compile(
    r"^(etikettarkiv|kategoriarkiv|tag archives?|arkiv)\s*:"
    r"|^viser resultat|^vis flere resultater|^facebook$|likebox|^fyll (bara )?i "
    r"|\*\s*:$",
    re.IGNORECASE,
)
# Newsletter sign-ups and job-ad calls to action, but only on short lines: a sentence of article text
# may say "prenumeranterna" ("... för att utdelningen till prenumeranterna skall vara klar").
SIGN_UP = re.compile(r"prenumer|nyhetsbrev|nyhedsbrev|newsletter|subscribe|ansök här|søg her|apply here", re.IGNORECASE)
SIGN_UP_MAX_CHARS = 100
# A web page's teasers and feedback prompts, also on short lines only, at the line's start: "Läs även: Utegymmet
# invigs på lördag", "Was this page helpful?", "Dela på Facebook".
PROMPT = re.compile(
    r"^(?:läs även|läs också|læs også|læs mere|read more)\s*:"
    r"|^(?:was this page helpful|var (?:den här )?sidan till hjälp|fandt du det,? du søgte|var siden nyttig)\s*\?$"
    r"|^(?:dela på|del på|share on)\s+(?:facebook|x|twitter|linkedin|instagram|e-?post|e-?mail)\b",
    re.IGNORECASE,
)
CAPTION = re.compile(r"\b(foto|foton|photo|fotos)\s*:", re.IGNORECASE)
IMAGE_NAME = re.compile(r"^[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)+$")  # e.g. basta_shutterstock_492503308_edit
# An image file name glued to the start of a paragraph: "stockholm_DSC0354_annaAnna: Handlingsplanen ..."
GLUED_IMAGE = re.compile(r"^[a-z]+_[A-Za-z0-9_]*?(?=[A-ZÅÄÖÆØ][a-zåäöæø]+:|\s*[–-]\s)")
REPEAT_MAX_CHARS = 200  # a short line seen again in the same page is a repeated caption, link or heading
# A Markdown table's rule row ("| --- | :---: |"), a horizontal rule or a heading's underline: no text.
# (Checked with str.strip, not one regex: a long line of dashes would make that backtrack for ages.)
_RULE_CHARS = "|+:-=_*~ \t\r"
_RULE_RUN = re.compile(r"[-=_*~]{3}|\|[ \t]*:?-")  # "---", or a table cell "|-" / "| :-"
# Text is hard-wrapped at 60-80 columns: a file with a longer line of prose is not, and one whose
# lines are all short (a title, a byline, a list) has nothing wrapped.
WRAP_MIN_CHARS, WRAP_MAX_CHARS = 50, 100
# A wrapped line is nearly as long as the longest: a hand-wrapped or overflowing line makes the longest
# a few characters longer than the width the others were wrapped at.
WRAP_FILL = 0.85
# A line that starts a paragraph of its own, never continues the one above: a heading, a list item, a
# quote ("– Vi är glada, säger hon."), a table row.
_STARTS_BLOCK = re.compile(r"^(?:#|[-*+•–—][ \t]|\d{1,2}[.)][ \t]|\|)")


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    text: str
    kind: str = "text"  # "text", "caption", or "marker" (an image name: a cue that an article starts)


def clean_lines(text: str, markdown: bool = False) -> list[Line]:
    """The useful lines of a page, in order, with their spans in `text`.

    In a Markdown file (`markdown`) a heading's line is its text without the "#" marks.
    """
    lines, seen = [], Counter()
    for start, end in _line_spans(text):
        line = text[start:end]
        glued = GLUED_IMAGE.match(line)
        if glued:
            start += len(glued.group(0))
            line = text[start:end].lstrip()
            start = end - len(line)
        heading = heading_text(line) if markdown else None
        if heading:
            start += heading[0]
            line = heading[1]
            end = start + len(line)
        short = len(line) <= SIGN_UP_MAX_CHARS
        if BOILERPLATE.search(line) or is_rule(line) or (short and (SIGN_UP.search(line) or PROMPT.match(line))):
            continue
        if IMAGE_NAME.match(line):
            lines.append(Line(start, end, line, "marker"))
            continue
        seen[line] += 1
        if seen[line] > 1 and len(line) <= REPEAT_MAX_CHARS:
            continue
        lines.append(Line(start, end, line, "caption" if CAPTION.search(line) else "text"))
    return lines


def is_rule(line: str) -> bool:
    """Whether `line` is only a rule: a Markdown table's "| --- | --- |", "-----", "=====" under a heading."""
    return not line.strip(_RULE_CHARS) and _RULE_RUN.search(line) is not None


def _line_spans(text: str):
    """(start, end) of each non-blank line, with surrounding whitespace trimmed."""
    for match in re.finditer(r"[^\n]+", text):
        raw = match.group(0)
        stripped = raw.strip()
        if stripped:
            start = match.start() + (len(raw) - len(raw.lstrip()))
            yield start, start + len(stripped)


def unwrap(text: str) -> str:
    """`text` with the line breaks inside hard-wrapped paragraphs turned into spaces.

    Only a file whose paragraphs are separated by blank lines and whose longest line of prose is
    WRAP_MIN_CHARS to WRAP_MAX_CHARS long is hard-wrapped (files with a paragraph per line are left
    as they are). There a line continues into the next one when it is full: with the next line's
    first word it would be longer than WRAP_FILL of the longest line, so the wrapping moved that
    word down. A short line (a title, byline, caption) ends its paragraph, and a heading, list item
    or table row is one. Each line break becomes as many spaces (two for a CRLF), so offsets stay
    exact.
    """
    lines = text.split("\n")
    content = [line.strip() for line in lines]
    prose = [c for c in content if " " in c and not c.startswith("|")]  # a URL or table row cannot wrap
    width = max(map(len, prose), default=0)
    separated = any(not c for c in content[1:-1])
    if not separated or not WRAP_MIN_CHARS <= width <= WRAP_MAX_CHARS:
        return text
    parts = []
    for i, line in enumerate(lines[:-1]):
        if _continues(content[i], content[i + 1], width):
            parts += [line[:-1] + " " if line.endswith("\r") else line, " "]
        else:
            parts += [line, "\n"]
    return "".join(parts + lines[-1:])


def _continues(line: str, following: str, width: int) -> bool:
    """Whether `following` is the rest of the paragraph `line` was wrapped from."""
    if not line or not following or line.startswith(("#", "|")) or _STARTS_BLOCK.match(following):
        return False
    if CAPTION.search(following) or is_rule(following) or is_rule(line):
        return False
    return len(line) + 1 + len(following.split()[0]) > WRAP_FILL * width
