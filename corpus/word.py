"""Word (.docx) files by `python-docx`: paragraphs in order, headings marked, core properties.

Page headers and footers are not body text and are not read. Tables are read row by row.
"""

from __future__ import annotations

import io

from corpus.document import Block, Extracted, Unreadable, titled
from corpus.meta import metadata_date

# Authors python-docx and Word write when nobody filled the field in: not a person.
_PLACEHOLDER_AUTHORS = {"python-docx", "microsoft office user", "user", "author", "administrator"}


def extract_docx(data: bytes) -> Extracted:
    """The document's paragraphs; Unreadable when it is not a Word file or is damaged."""
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise Unreadable("it is not a readable Word (.docx) file (damaged or another format)") from None
    except Exception as exc:  # noqa: BLE001 - lxml and zip errors of a damaged file: one line, never a traceback
        raise Unreadable(f"it is a damaged Word file ({type(exc).__name__})") from None
    try:
        # python-docx parses the body lazily: a bad table cell (gridSpan="abc", a vMerge in the
        # first row) only raises here, while the rows are read.
        return _extracted(document)
    except Unreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - as above: one line for a damaged file, never a traceback
        raise Unreadable(f"it is a damaged Word file ({type(exc).__name__})") from None


def _extracted(document) -> Extracted:
    """The blocks, title, date and author of an opened document."""
    title, blocks = "", []
    for text, style in _paragraphs(document):
        text = " ".join(text.split())
        if not text:
            continue
        if style == "Title" and not title:
            title = text
        blocks.append(Block(text, heading=style == "Title" or style.startswith("Heading")))
    props = document.core_properties
    author = (props.author or "").strip()
    # python-docx's template says it was written by "python-docx" on 2013-12-23: neither is the document's.
    created = None if author == "python-docx" else props.created
    author = "" if author.casefold() in _PLACEHOLDER_AUTHORS else author
    if title:  # the Title-style paragraph goes first: it is the document's title wherever it stands
        blocks = [Block(title, heading=True)] + [b for b in blocks if b.text != title or not b.heading]
    return titled(blocks, title or props.title or "", metadata_date(created), author)


def _paragraphs(document):
    """(text, style name) of body paragraphs and table rows, in document order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            yield item.text, item.style.name if item.style is not None else ""
        elif isinstance(item, Table):
            for row in item.rows:
                yield " | ".join(dict.fromkeys(cell.text.strip() for cell in row.cells if cell.text.strip())), ""
