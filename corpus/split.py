"""Split a cleaned page into articles.

Tag-archive and listing pages hold several articles. Each one opens with a short title line
that is directly followed by its featured image: a photo caption ("Foto: ...") or a bare
image file name. A page without such cues is one article titled by its first line.
"""

from __future__ import annotations

from corpus.clean import Line

TITLE_MAX_CHARS = 100


def split_articles(lines: list[Line]) -> list[list[Line]]:
    """Blocks of lines; the first line of each block is the article title."""
    starts = [i for i in range(len(lines) - 1) if _is_title(lines[i]) and lines[i + 1].kind in ("caption", "marker")]
    if not starts or starts[0] != 0:
        starts.insert(0, _first_title(lines))
    blocks = []
    for begin, end in zip(starts, starts[1:] + [len(lines)]):
        block = [ln for ln in lines[begin:end] if ln.kind != "marker"]
        if block:
            blocks.append(block)
    return blocks


def _is_title(line: Line) -> bool:
    text = line.text
    if line.kind != "text" or len(text) > TITLE_MAX_CHARS:
        return False
    return not text.endswith((".", ":", ",")) and text[0] not in '–-»"'


def _first_title(lines: list[Line]) -> int:
    """Skip a one-word section label ("Utveckling") that sits above the real title."""
    if len(lines) > 2 and " " not in lines[0].text and _is_title(lines[1]):
        return 1
    return 0
