"""Dates and authors found in an article's own lines, for files without metadata.

Candidates are picked by pattern (a "Publicerad:" line, a dd/mm/yy stamp, "Varberg den 15 juni
2017", an ISO date) and parsed by `dateparser` in Swedish, Danish and English, day before month
as these archives write it. Only the first and last lines of an article are searched: a date in
the middle of the text is what the article is about, not when it was written. A line that starts
with a publication label ("Publicerad: måndag 30 september, 2019") is searched a little further in,
since a page footer often puts the author's name or a pull quote after it.
"""

from __future__ import annotations

import re
from datetime import date, datetime

HEAD_LINES, TAIL_LINES = 4, 2
DATELINE_LINES = 8  # a labelled dateline is looked for among this many first and last lines
MAX_LINE_CHARS = 200  # a dateline or byline is short; a long line is article text that mentions a date
_MONTHS = (
    "januari|februari|mars|april|maj|juni|juli|augusti|september|oktober|november|december"
    "|januar|februar|marts|august|oktober|january|february|march|may|june|july|october"
    "|jan|feb|mar|apr|jun|jul|aug|sep|sept|okt|oct|nov|dec"
)
_CANDIDATES = (
    re.compile(
        r"(?:publicerad|publiceret|published|uppdaterad|opdateret|updated|datum|dato|date)\s*:?\s*(.{6,60})",
        re.I,
    ),
    re.compile(rf"\b(\d{{1,2}}\.?\s+(?:{_MONTHS})\.?,?\s+\d{{4}})\b", re.I),
    re.compile(rf"\b((?:{_MONTHS})\.?\s+\d{{1,2}},?\s+\d{{4}})\b", re.I),
    re.compile(r"\b(\d{1,2}/\d{1,2}[/-]\d{2,4}(?:\s+\d{1,2}[:.]\d{2})?)(?!\d)"),
    re.compile(r"\b(\d{4}-\d{2}-\d{2})\b"),
)
# Only publication labels: "Datum: 12 maj" near the end is as likely the date of an event in the text.
_DATELINE = re.compile(r"^\W*(?:publicerad|publiceret|published|uppdaterad|opdateret|updated)\b", re.I)
_BYLINE = re.compile(
    r"^(?i:av|af|by|text|tekst|skrevet af|skriven av|författare|forfatter|author)\s*:?\s+"
    r"((?:[A-ZÅÄÖÆØÉ][\w'-]+\s*){2,4})(?:[,|–·-].*)?$"
)
_PARSE_SETTINGS = {"DATE_ORDER": "DMY", "REQUIRE_PARTS": ["day", "month", "year"], "PREFER_DAY_OF_MONTH": "first"}


def find_date(lines: list[str]) -> str:
    """The ISO date of the first dateline among the article's first and last lines, or "".

    A line starting with a publication label ("Publicerad:", "Published") counts a few lines further
    from the edges too; any other date there is text.
    """
    for line in _edges(lines, HEAD_LINES, TAIL_LINES):
        found = _date_in(line)
        if found:
            return found
    return find_dateline(lines)


def find_dateline(lines: list[str]) -> str:
    """The ISO date of the first line starting with a publication label ("Publicerad:", "Published")
    among the article's first and last DATELINE_LINES lines, or ""."""
    for line in _edges(lines, DATELINE_LINES, DATELINE_LINES):
        found = _date_in(line) if _DATELINE.match(line) else ""
        if found:
            return found
    return ""


def _date_in(line: str) -> str:
    """The first date in `line` that a candidate pattern finds and that parses, or ""."""
    for pattern in _CANDIDATES:
        for match in pattern.finditer(line):
            found = parse_date(match.group(1))
            if found:
                return found
    return ""


def parse_date(text: str) -> str:
    """`text` as an ISO date (sv/da/en, day first), or "" when it is not a whole, plausible date."""
    import dateparser

    text = text.strip().rstrip(".,")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return _plausible(date.fromisoformat(text))
        except ValueError:
            return ""
    parsed = dateparser.parse(text, languages=["sv", "da", "en"], settings=_PARSE_SETTINGS)
    return _plausible(parsed.date()) if parsed else ""


def metadata_date(value) -> str:
    """A date or datetime from a file's metadata as ISO, or "" (missing or implausible)."""
    if isinstance(value, datetime):
        value = value.date()
    return _plausible(value) if isinstance(value, date) else ""


def _plausible(value: date) -> str:
    return value.isoformat() if 1900 <= value.year <= date.today().year + 1 else ""


def find_author(lines: list[str]) -> str:
    """The name on a byline ("Av Karin Johansson", "Tekst: Jens Holm") near the top, or ""."""
    for line in lines[:HEAD_LINES]:
        match = _BYLINE.match(line.strip()) if len(line) <= MAX_LINE_CHARS else None
        if match:
            return " ".join(match.group(1).split())
    return ""


def _edges(lines: list[str], head: int, tail: int) -> list[str]:
    """The first `head` and last `tail` lines (each line once), without long lines of text."""
    picked = lines[:head] + lines[max(head, len(lines) - tail) :]
    return [ln for ln in picked if len(ln) <= MAX_LINE_CHARS]
