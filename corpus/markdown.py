"""Markdown files: YAML front matter read as metadata, heading marks kept out of titles.

Both keep offsets: the front matter is blanked to spaces of the same length (only its title stays,
where it stands, so it becomes the file's first line), and a heading's "#" marks are left out of
its line's span rather than removed from the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corpus.meta import parse_date

# "---" on the first line (after a byte-order mark, which the loader turned into a space), up to a
# line of "---" or "...": the YAML front matter of Jekyll, Hugo and Pandoc files.
_FRONT_MATTER = re.compile(r"\A ?---[ \t]*\r?\n(.*?^)(?:---|\.\.\.)[ \t]*\r?$", re.S | re.M)
_FIELD = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:(.*)$", re.M)
# Every line of front matter is a field, an indented or listed value, or a comment: a "---" rule in
# a text followed by prose is not front matter.
_YAML_LINE = re.compile(r"[A-Za-z_][\w-]*[ \t]*:|[ \t]+\S|-[ \t]|#|[ \t]*\r?$")
_HEADING = re.compile(r"#{1,6}[ \t]+")  # "## Title", "# Title #"


@dataclass(frozen=True)
class FrontMatter:
    title: str = ""
    date: str = ""  # ISO date, "" when missing or not a date
    author: str = ""


def front_matter(text: str) -> tuple[str, FrontMatter]:
    """`text` with its front matter blanked, except the title's value, and what the front matter says.

    Text without front matter (or with a "---" block that holds no "key: value") comes back as it is.
    """
    block = _FRONT_MATTER.match(text)
    if not block or not all(_YAML_LINE.match(line) for line in block.group(1).split("\n")[:-1]):
        return text, FrontMatter()
    fields = {m.group(1).casefold(): m for m in _FIELD.finditer(text, block.start(1), block.end(1))}
    if not fields:
        return text, FrontMatter()
    spans = {key: _value_span(match) for key, match in fields.items()}
    value = {key: text[start:end] for key, (start, end) in spans.items()}
    # The title's value stays in the text, where it stands, as the file's first line.
    keep = spans["title"] if value.get("title") else (0, 0)
    blanked = "".join(ch if ch == "\n" or keep[0] <= i < keep[1] else " " for i, ch in enumerate(text[: block.end()]))
    date = value.get("date", "")[:60]  # a date is short: dateparser is not given a whole paragraph
    iso = re.match(r"\d{4}-\d{2}-\d{2}", date)  # "2022-08-09T10:00:00+02:00" is that day
    return blanked + text[block.end() :], FrontMatter(
        value.get("title", ""), parse_date(iso.group(0) if iso else date) if date else "", value.get("author", "")
    )


def _value_span(field: re.Match) -> tuple[int, int]:
    """The span of a field's value without the spaces and quotes around it."""
    raw = field.group(2)
    start = field.start(2) + len(raw) - len(raw.lstrip())
    end = field.start(2) + len(raw.rstrip())
    if end - start >= 2 and field.string[start] in "\"'" and field.string[end - 1] == field.string[start]:
        start, end = start + 1, end - 1
    return start, end


def heading_text(line: str) -> tuple[int, str] | None:
    """(offset in `line`, text) of a Markdown heading's text without its "#" marks; None if not a heading.

    `line` is stripped. A closing run of "#" after a space goes too ("## Title ##").
    """
    match = _HEADING.match(line)
    if not match:
        return None
    text = line[match.end() :]
    unclosed = text.rstrip("#")
    if unclosed != text and (not unclosed or unclosed[-1] in " \t"):
        text = unclosed.rstrip()
    return (match.end(), text) if text else None
