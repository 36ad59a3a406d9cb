"""What the CLI and the UI do to the article library besides asking: rebuild the index, open a source.

Both front ends call these, so `ui/` needs nothing from `corpus/` or `index/`.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.answer import Assistant, Citation
from assistant.errors import CorpusError, QuestionError
from assistant.settings import Settings
from corpus.load import read_source
from corpus.types import Article

STALE = "The file changed since the index was built; rebuild to update. Showing the text as it was indexed."
GONE = "The file is no longer readable in the corpus folder; rebuild to update. Showing the text as it was indexed."


def rebuild(settings: Settings, embedder=None, say=print, progress: bool = True):
    """Build the index from `settings` (re-embedding only what changed) and switch to it; returns the
    build report. The model is loaded here unless an `embedder` is given."""
    from index.build import build_index
    from index.embed import Embedder

    return build_index(settings.build_options(), embedder or Embedder(settings.model), say=say, progress=progress)


@dataclass(frozen=True)
class Source:
    """A cited article's text: `text[start:end]` is the passage, `window` the article's span."""

    text: str
    title: str
    source: str
    start: int
    end: int
    window: tuple[int, int]
    notice: str | None = None  # set when the file differs from the index: `text` is then the indexed text
    page: int = 0  # the PDF page the passage is on (open the original there: corpus.load.source_path); 0 if none


def source(assistant: Assistant, citation: Citation) -> Source:
    """The source of `citation`, checked against the index: when the file changed since the build, the
    indexed text (at the same offsets) with a notice, never the new file with the wrong text marked."""
    article = assistant.index.articles.get(citation.article_id)
    if article is None or article.source != citation.source:
        raise QuestionError(f"{citation.source} is not a source in this index: ask the question again.")
    notice = None
    try:
        # The path comes from the index, and read_source still refuses paths outside the corpus folder.
        text = read_source(assistant.settings.corpus_dir, article.source)
        if any(text[start:end] != piece for start, end, piece in _pieces(article)):
            text, notice = _indexed_text(article), STALE
    except (CorpusError, OSError, UnicodeDecodeError):
        text, notice = _indexed_text(article), GONE
    return Source(
        text,
        article.title,
        article.source,
        citation.start,
        citation.end,
        (article.start, article.end),
        notice,
        citation.page,
    )


def _pieces(article: Article) -> list[tuple[int, int, str]]:
    """(start, end, text) of the article's title line and paragraphs, as indexed."""
    title = (article.start, article.start + len(article.title), article.title)
    return [title] + [(p.start, p.end, p.text) for p in article.paragraphs]


def _indexed_text(article: Article) -> str:
    """The article as indexed, each line at its original offsets (so citations still point into it);
    the gaps between lines become blank lines."""
    parts, cursor = [], 0
    for start, end, text in _pieces(article):
        gap = start - cursor
        parts.append(" " * max(0, gap - 2) + "\n" * min(gap, 2))
        parts.append(text)
        cursor = end
    return "".join(parts)
