"""PDF files by `pypdf`: paragraphs with the page they start on, without running headers and footers.

pypdf gives lines, not paragraphs. A paragraph ends where the gap to the next line is clearly
larger than the usual line spacing for its font size, or the font size changes (a heading). Lines
that come back at the top or bottom of most pages (the running header, "Side 2 af 3") are furniture
and are dropped there, at the page edge, and nowhere else: body text never is; in a PDF a browser
made, so are the date stamp and address it prints on each page. The "ﬁ" and "ﬂ" ligatures of
typeset PDFs read as "fi" and "fl".

The date is the article's labelled dateline when it has one ("Publicerad: 14 maj 2024"), else the
PDF's creation date, else another date among its first and last lines. The creation date is when the
file was made: for a report its date, but for a web page printed to PDF the day it was printed, so a
browser's PDF gets none from its metadata.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from dataclasses import dataclass

from corpus.document import Block, Extracted, Unreadable, titled
from corpus.meta import find_date, find_dateline, metadata_date

# pypdf logs what it repairs ("EOF marker not found") on its own; the skip line says what matters.
logging.getLogger("pypdf").setLevel(logging.ERROR)

PARAGRAPH_GAP = 1.4  # a gap this many times the usual line spacing starts a new paragraph
EDGE_LINES = 3  # running headers and footers sit among the first or last lines of a page
_PAGE_NUMBER = re.compile(r"^(?:(?:side|sida|page|s\.)\s*)?[-–]?\s*\d+\s*(?:(?:af|av|of|/)\s*\d+)?\s*[-–]?$", re.I)
# What a browser prints on each page of a saved web page: "11/24/26, 1:07 PM <title>" and "<address> 1/2".
_PRINT_STAMP = re.compile(r"^(?:\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{4}-\d{2}-\d{2}),?\s+\d{1,2}[:.]\d{2}\b")
_PRINT_ADDRESS = re.compile(r"^(?:file|https?):/{2,3}\S*\s+\d+/\d+$", re.I)
# A browser's print: Chromium writes its user agent as /Creator and "Skia/PDF m156" as /Producer (Google Docs
# exports say "Skia/PDF m156 Google Docs Renderer": their creation date is the report's).
_BROWSER_CREATOR = re.compile(r"^Mozilla/")
_BROWSER_PRODUCER = re.compile(r"^Skia/PDF m\d+$")
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})


@dataclass(frozen=True)
class _Line:
    y: float
    size: float
    text: str


def extract_pdf(data: bytes) -> Extracted:
    """The PDF's paragraphs with page numbers; Unreadable when damaged, encrypted or without text."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        # Many PDFs are encrypted only against editing: the empty password opens them for reading.
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable("it is a password-protected PDF: save a copy without a password")
        pages = [_page_lines(page) for page in reader.pages]
        meta = reader.metadata or {}
        title, author = str(meta.get("/Title") or ""), str(meta.get("/Author") or "")
        printed = bool(
            _BROWSER_CREATOR.match(str(meta.get("/Creator") or ""))
            or _BROWSER_PRODUCER.match(str(meta.get("/Producer") or ""))
        )
        created = None if printed else _safe(lambda: reader.metadata.creation_date if reader.metadata else None)
    except Unreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on damaged files: one line each
        raise Unreadable(f"it is a damaged PDF ({type(exc).__name__}): it cannot be read") from None
    furniture = _running_lines(pages)
    blocks: list[Block] = []
    last_size = 0.0
    for number, lines in enumerate(pages, start=1):
        for i, (text, size) in enumerate(_paragraphs(_without_furniture(lines, furniture, printed))):
            # A page's first paragraph goes on with the previous page's last when that ends mid-sentence
            # and is set in the same size (a footnote or caption in between is smaller).
            if i == 0 and blocks and abs(size - last_size) <= 0.5 and _goes_on(blocks[-1].text, text):
                blocks[-1] = Block(join_lines(blocks[-1].text, text), page=blocks[-1].page)
            else:
                blocks.append(Block(text, page=number))
            last_size = size
    if not blocks:
        raise Unreadable("it has no text layer (a scan?): run OCR on it (e.g. ocrmypdf) and add it again")
    texts = [b.text for b in blocks]
    date = find_dateline(texts) or metadata_date(created) or find_date(texts)
    return titled(blocks, title, date, author.strip())


def _goes_on(text: str, following: str) -> bool:
    """Whether a page's first paragraph continues the previous page's last: that one ends mid-sentence
    and this one starts in lower case ("… berörs inte av" / "men kan beställa …")."""
    return not re.search(r"[.!?:;»”\"')]$", text) and following[:1].islower()


def _safe(get):
    try:
        return get()
    except Exception:  # noqa: BLE001 - a malformed date in the metadata is just no date
        return None


def _page_lines(page) -> list[_Line]:
    """The page's text lines, top to bottom, with their height on the page and font size."""
    pieces: list[tuple[float, float, str]] = []

    def visit(text, cm, tm, font, size):
        if text:
            pieces.append((tm[5] * cm[3] + cm[5], tm[4] * cm[0] + cm[4], abs(size * tm[3] * cm[3]) or size, text))

    page.extract_text(visitor_text=visit)
    lines, current, y, size, x = [], "", None, 0.0, 0.0
    for py, px, psize, text in pieces:
        # A piece further up or down, or back to the left, starts a line even without a "\n": a page's
        # fixed header drawn after its last line of text would otherwise be glued to it.
        if current and y is not None and (abs(py - y) > max(size, psize) * 0.5 or px < x - 1):
            lines.append(_Line(y, size, current))
            current, y = "", None
        x = px
        for part in re.split(r"(\n)", text):
            if part == "\n":
                lines.append(_Line(y or 0.0, size, current))
                current, y = "", None
            elif part:
                current += part
                y, size = (py, psize) if y is None else (y, size)
    if current:
        lines.append(_Line(y or 0.0, size, current))
    lines = [_Line(ln.y, ln.size, " ".join(ln.text.translate(_LIGATURES).split())) for ln in lines]
    return [ln for ln in lines if ln.text]


def _running_lines(pages: list[list[_Line]]) -> set[str]:
    """Lines (digits ignored) at the top or bottom of more than half the pages: headers and footers.

    A line whose key also comes in the middle of a page, or twice on one page, is text: a list of
    "Vecka 3: 310 resenärer" or templated paragraphs look like a running line at the page edges.
    """
    if len(pages) < 2:
        return set()
    at_edge, in_text = Counter(), set()
    for lines in pages:
        keys = [_key(ln.text) for ln in lines]
        at_edge.update(set(keys[:EDGE_LINES] + keys[-EDGE_LINES:]))
        in_text.update(keys[EDGE_LINES:-EDGE_LINES])
        in_text.update(key for key, n in Counter(keys).items() if n > 1)
    return {key for key, n in at_edge.items() if n > len(pages) / 2 and key not in in_text}


def _without_furniture(lines: list[_Line], furniture: set[str], printed: bool) -> list[_Line]:
    """The page's lines without running lines and page numbers (and a browser's print stamps when
    `printed`), removed only among the first and last lines of the page, where furniture sits: the same
    text in the body is article text."""
    last = len(lines) - EDGE_LINES
    return [
        ln
        for i, ln in enumerate(lines)
        if not ((i < EDGE_LINES or i >= last) and (_key(ln.text) in furniture or _furniture_alone(ln.text, printed)))
    ]


def _furniture_alone(text: str, printed: bool) -> bool:
    """A line that is furniture wherever it sits at a page's edge: a page number, a browser's print stamp."""
    stamp = printed and (_PRINT_STAMP.match(text) or _PRINT_ADDRESS.match(text))
    return bool(_PAGE_NUMBER.match(text) or stamp)


def _key(text: str) -> str:
    return re.sub(r"\d+", "#", text.casefold())


def _paragraphs(lines: list[_Line]) -> list[tuple[str, float]]:
    """Lines joined into paragraphs (with their font size): a break at a large gap or a change of size.

    Line spacing grows with the font, so the usual gap (measured on the body text) is scaled by a
    line's size: the two lines of a large headline are one paragraph."""
    if not lines:
        return []
    body = Counter(round(ln.size, 1) for ln in lines).most_common(1)[0][0] or 1.0
    pairs = [(a.y - b.y, abs(a.size - body) <= 0.5 and abs(b.size - body) <= 0.5) for a, b in zip(lines, lines[1:])]
    gaps = [gap for gap, in_body in pairs if gap > 0 and in_body] or [gap for gap, _ in pairs if gap > 0]
    usual = sorted(gaps)[len(gaps) // 4] if gaps else 0.0  # the tighter spacing: lines inside a paragraph
    paragraphs, current = [], lines[0].text
    for before, line in zip(lines, lines[1:]):
        gap, scale = before.y - line.y, max(1.0, line.size / body)
        if abs(line.size - before.size) > 0.5 or gap <= 0 or (usual and gap > usual * scale * PARAGRAPH_GAP):
            paragraphs.append((current, before.size))
            current = line.text
        else:
            current = join_lines(current, line.text)
    paragraphs.append((current, lines[-1].size))
    return paragraphs


_HYPHENATED = re.compile(r"[a-zåäöæøéü]-$")
# A typeset hyphen (U+2010, or a soft hyphen shown at the break) is a hyphen, never a dash, so it joins like
# "-" even after a space, which some PDFs put before it: "Livsmedels ‐" + "verket".
_TYPESET_HYPHEN = re.compile(r"(?<=\w) ?[\u2010\u00ad]$")
_KEEP_HYPHEN = {"och", "og", "eller", "samt", "and", "or", "resp", "respektive", "til", "till"}


def join_lines(text: str, line: str) -> str:
    """Two lines of one paragraph: a word hyphenated at the line end is joined again ("ombygg-" +
    "naden"), but "social- og sundhed" keeps its hyphen and space, and "SOSU-" + "skolen" its hyphen."""
    first = line.split(" ", 1)[0]
    hyphenated = _TYPESET_HYPHEN.sub("-", text)
    hyphen = hyphenated.endswith("-") and not hyphenated.endswith(" -")  # " -" at a line end is a dash
    if hyphen and first[:1].islower() and first.casefold().strip(".,") not in _KEEP_HYPHEN:
        return (hyphenated[:-1] if _HYPHENATED.search(hyphenated) else hyphenated) + line
    return f"{text} {line}"
