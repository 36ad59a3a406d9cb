"""Web pages: the article's main text by `trafilatura`, without menus, banners, footers and links.

`None` means trafilatura found no article in the page; the loader then reads the page the old
way (markup blanked), so a page is never lost because the extractor did not recognise it.
"""

from __future__ import annotations

import logging

from corpus.document import Block, Extracted, titled
from corpus.meta import parse_date

# Precision mode: the default mode cut "Chefen heter <b>Eva Lind</b> och ..." into three lines on our
# fixtures; precision mode keeps inline markup inside its paragraph and drops more link lists.
_OPTIONS = dict(favor_precision=True, deduplicate=False, include_comments=False, include_tables=True)
# Dates only from the page's metadata: the extensive search took "började 2020" in the text for a date.
_DATES = {"extensive_search": False, "original_date": True}


def extract_html(html: str) -> Extracted | None:
    """The page's article as blocks with its title, date and author; None when none was found."""
    import trafilatura

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # it logs "empty page" and the like
    try:
        doc = trafilatura.bare_extraction(html, with_metadata=True, date_extraction_params=_DATES, **_OPTIONS)
    except Exception:  # noqa: BLE001 - a page the extractor chokes on is read the old way
        return None
    lines = [" ".join(line.split()) for line in (doc.text or "").splitlines()] if doc else []
    lines = [line for line in lines if line]
    if not lines:
        return None
    date = parse_date(doc.date) if doc.date else ""
    return titled([Block(line) for line in lines], doc.title or "", date, (doc.author or "").strip())
