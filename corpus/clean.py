"""Line-level cleaning of web pages: drop boilerplate, keep offsets.

Cleaning never rewrites text inside a line (except trimming a glued image file name at the
start), so every kept line still points at its exact span in the source file.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

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
CAPTION = re.compile(r"\b(foto|foton|photo|fotos)\s*:", re.IGNORECASE)
IMAGE_NAME = re.compile(r"^[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)+$")  # e.g. basta_shutterstock_492503308_edit
# An image file name glued to the start of a paragraph: "stockholm_DSC0354_annaAnna: Handlingsplanen ..."
GLUED_IMAGE = re.compile(r"^[a-z]+_[A-Za-z0-9_]*?(?=[A-ZÅÄÖÆØ][a-zåäöæø]+:|\s*[–-]\s)")
REPEAT_MAX_CHARS = 200  # a short line seen again in the same page is a repeated caption, link or heading


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    text: str
    kind: str = "text"  # "text", "caption", or "marker" (an image name: a cue that an article starts)


def clean_lines(text: str) -> list[Line]:
    """The useful lines of a page, in order, with their spans in `text`."""
    lines, seen = [], Counter()
    for start, end in _line_spans(text):
        line = text[start:end]
        glued = GLUED_IMAGE.match(line)
        if glued:
            start += len(glued.group(0))
            line = text[start:end].lstrip()
            start = end - len(line)
        if BOILERPLATE.search(line) or (len(line) <= SIGN_UP_MAX_CHARS and SIGN_UP.search(line)):
            continue
        if IMAGE_NAME.match(line):
            lines.append(Line(start, end, line, "marker"))
            continue
        seen[line] += 1
        if seen[line] > 1 and len(line) <= REPEAT_MAX_CHARS:
            continue
        lines.append(Line(start, end, line, "caption" if CAPTION.search(line) else "text"))
    return lines


def _line_spans(text: str):
    """(start, end) of each non-blank line, with surrounding whitespace trimmed."""
    for match in re.finditer(r"[^\n]+", text):
        raw = match.group(0)
        stripped = raw.strip()
        if stripped:
            start = match.start() + (len(raw) - len(raw.lstrip()))
            yield start, start + len(stripped)
