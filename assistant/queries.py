"""Test-query files: our JSON Lines format, BEIR folders, and candidates from user feedback.

A line is `{"id", "query", "lang", "answer_contains": [...], "articles": [...]?, "source"?, "start"?, "end"?,
"split"?, "history"?, "kind"?}`. Relevance:

- with `source`, `start`, `end` (the gold answer's place in a corpus file) a passage is relevant only when its
  citation is in that file and covers the span: a short answer such as "ditt pass" occurs on dozens of pages;
- otherwise a passage is relevant when it contains one of the phrases (case-insensitive, whitespace-normalised)
  or belongs to a listed article.

A query with none of these is out of scope: its right answer is "nothing relevant". `split` ("tune" or
"heldout") says whether defaults may be chosen on it; `history` holds the earlier user turns of a conversation,
`kind` whether the last turn is a real follow-up ("follow_up") or a topic switch ("switch").
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import QueryFileError

SPLITS = ("tune", "heldout")
KINDS = ("follow_up", "switch")


@dataclass(frozen=True)
class EvalQuery:
    id: str
    query: str
    lang: str
    answer_contains: tuple[str, ...] = ()
    articles: tuple[str, ...] = ()
    chunks: tuple[str, ...] = ()  # BEIR qrels may name chunk ids directly
    source: str | None = None  # the gold answer's corpus file (relative to the corpus folder) ...
    start: int | None = None  # ... and its character span there
    end: int | None = None
    split: str = ""
    history: tuple[str, ...] = ()
    kind: str = ""

    @property
    def has_span(self) -> bool:
        return self.source is not None

    @property
    def out_of_scope(self) -> bool:
        return not (self.answer_contains or self.articles or self.chunks or self.has_span)


def normalise(text: str) -> str:
    """Lower case, whitespace runs collapsed to one space: how phrases and passages are compared."""
    return " ".join(text.lower().split())


def covers(query: EvalQuery, source: str | None, start: int | None, end: int | None) -> bool:
    """Whether a citation (source file, start, end) covers the query's gold span."""
    return source == query.source and start is not None and end is not None and start <= query.start < query.end <= end


def is_relevant(
    query: EvalQuery,
    chunk_id: str,
    article_id: str,
    text: str,
    source: str | None = None,
    start: int | None = None,
    end: int | None = None,
) -> bool:
    """The relevance rule for one passage (see the module docstring); `Judge` applies it to a whole index."""
    if query.has_span:
        return covers(query, source, start, end)
    if chunk_id in query.chunks or article_id in query.articles:
        return True
    haystack = normalise(text)
    return any(normalise(p) in haystack for p in query.answer_contains)


class Judge:
    """Every passage of an index prepared once, so that a query's relevant passages are a lookup, not a scan
    that normalises every passage again for each of a thousand queries."""

    def __init__(self, chunks, articles=None):
        self.chunks = list(chunks)
        texts = [normalise(c.text) for c in self.chunks]
        # One string for all passages; a newline cannot occur in a normalised phrase, so no match spans two.
        self._haystack = "\n".join(texts)
        self._offsets, at = [], 0
        for text in texts:
            self._offsets.append(at)
            at += len(text) + 1
        self._titles = "\n".join(sorted({normalise(c.title) for c in self.chunks}))
        self._articles = "\n".join(normalise(a.text) for a in articles or ())
        self._by_source, self._by_article = defaultdict(list), defaultdict(list)
        for c in self.chunks:
            self._by_source[c.source].append(c)
            self._by_article[c.article_id].append(c)
        self._ids = {c.id for c in self.chunks}

    def relevant(self, query: EvalQuery) -> set[str]:
        """Ids of every passage in the index that is relevant to `query` (empty when out of scope)."""
        if query.has_span:
            return {c.id for c in self._by_source.get(query.source, ()) if covers(query, c.source, c.start, c.end)}
        ids = {cid for cid in query.chunks if cid in self._ids}
        ids |= {c.id for a in query.articles for c in self._by_article.get(a, ())}
        for phrase in query.answer_contains:
            ids |= self.containing(phrase)
        return ids

    def containing(self, phrase: str) -> set[str]:
        """Ids of the passages whose text contains the phrase."""
        needle, found, at = normalise(phrase), set(), 0
        while needle and (at := self._haystack.find(needle, at)) >= 0:
            position = bisect.bisect_right(self._offsets, at) - 1
            found.add(self.chunks[position].id)
            at = self._offsets[position + 1] if position + 1 < len(self._offsets) else len(self._haystack)
        return found

    def check(self, queries: list[EvalQuery], path: Path) -> list[str]:
        """Warnings about parts of queries that can never match; raises for queries that can never be found.

        Passage texts are what is matched, so a phrase that occurs only in a title (or only across two
        passages) is a warning; a query none of whose phrases can match, or whose gold file is not in the
        index, is an error.
        """
        warnings, dead = [], []
        sources = set(self._by_source)
        for q in queries:
            if q.out_of_scope:
                continue
            if q.has_span:
                if q.source not in sources:
                    dead.append(f"{q.id} (its file {q.source} is not in it)")
                elif not self.relevant(q):
                    warnings.append(f"{q.id}: no passage covers {q.source}:{q.start}-{q.end} (counts as a miss)")
                continue
            if q.articles or q.chunks:
                unknown = [a for a in q.articles if a not in self._by_article and a not in self._ids]
                if unknown and not self.relevant(q):
                    dead.append(f"{q.id} (no article {unknown[0]!r} in it)")
                elif unknown:
                    warnings.append(f"{q.id}: no article {unknown[0]!r} in this index")
                continue
            phrases = {p: self.containing(p) for p in q.answer_contains}
            for phrase, found in phrases.items():
                if not found:
                    warnings.append(f"{q.id}: {phrase!r} {self._where(phrase)}, so no passage can contain it")
            if not any(phrases.values()):
                dead.append(f"{q.id} (none of its phrases occurs in a passage)")
        if dead:
            total = sum(not q.out_of_scope for q in queries)
            hint = (
                "; is this the right index? Evaluate a set against its own corpus with --index (and --corpus)"
                if len(dead) > total / 2
                else ""
            )
            raise QueryFileError(
                f"{path}: {len(dead)} of {total} queries can never be found in this index: {'; '.join(dead[:5])}{hint}."
            )
        return warnings

    def _where(self, phrase: str) -> str:
        needle = normalise(phrase)
        if needle in self._titles:
            return "occurs only in an article title"
        if needle in self._articles:
            return "occurs only across two passages"
        return "occurs nowhere in the corpus"


def load_queries(path: Path) -> list[EvalQuery]:
    """Read a JSONL file or a BEIR folder (`Judge.check` then tells which queries can be found in an index)."""
    if not path.exists():
        raise QueryFileError(f"Test-query file {path} does not exist: check the path.")
    try:
        return _load_beir(path) if path.is_dir() else _load_jsonl(path)
    except OSError as exc:
        raise QueryFileError(f"Cannot read test queries at {path}: {exc.strerror or exc}.") from None


def select_split(queries: list[EvalQuery], split: str, path: Path | str) -> list[EvalQuery]:
    """The queries of one split ("tune", "heldout") or all of them ("all")."""
    if split == "all":
        return queries
    chosen = [q for q in queries if q.split == split]
    if not chosen:
        raise QueryFileError(f'{path} has no queries with "split": "{split}": use --split all.')
    return chosen


def _load_jsonl(path: Path) -> list[EvalQuery]:
    try:
        content = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QueryFileError(f"{path} is not UTF-8 (byte {exc.start}): save it as UTF-8.") from None
    queries, errors, seen = [], [], set()
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            query = _query(json.loads(line))
            if query.id in seen:
                raise ValueError(f"duplicate id {query.id}")
        except (ValueError, KeyError, TypeError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            errors.append(f"line {number}: {detail}")
            continue
        seen.add(query.id)
        queries.append(query)
    if errors:
        raise QueryFileError(f"{path} has malformed lines: " + "; ".join(errors[:10]))
    if not queries:
        raise QueryFileError(f"{path} holds no queries.")
    return queries


# The fields of a query line; any other is refused (a "_"-prefixed one is a comment and ignored).
KEYS = ("id", "query", "lang", "answer_contains", "articles", "split", "history", "kind", "source", "start", "end")


def _query(row) -> EvalQuery:
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    unknown = [key for key in row if key not in KEYS and not str(key).startswith("_")]
    if unknown:  # a misspelt "answer_contains" would silently make the query an out-of-scope one
        raise ValueError(f"unknown field {unknown[0]!r} (the fields are {', '.join(KEYS)})")
    if not isinstance(row["id"], str | int) or isinstance(row["id"], bool):
        raise ValueError("id must be text or a whole number")
    if not isinstance(row["query"], str) or not isinstance(row.get("lang", ""), str):
        raise ValueError("query and lang must be text")
    query = EvalQuery(
        id=str(row["id"]),
        query=row["query"],
        lang=row.get("lang", ""),
        answer_contains=tuple(_strings(row.get("answer_contains", []), "answer_contains")),
        articles=tuple(_strings(row.get("articles", []), "articles")),
        split=_choice(row, "split", SPLITS),
        history=tuple(_strings(row.get("history", []), "history")),
        kind=_choice(row, "kind", KINDS),
        **_span(row),
    )
    if not query.query.strip():
        raise ValueError("empty query")
    if query.kind and not query.history:
        raise ValueError(f"kind {query.kind!r} needs a non-empty history")
    return query


def _span(row: dict) -> dict:
    present = [key for key in ("source", "start", "end") if key in row]
    if not present:
        return {}
    if len(present) < 3:
        raise ValueError("source, start and end go together: " + ", ".join(present) + " given alone")
    source, start, end = row["source"], row["start"], row["end"]
    if not isinstance(source, str) or not source.strip():
        raise ValueError("source must be a file name relative to the corpus folder")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
        raise ValueError("start and end must be whole numbers")
    if not 0 <= start < end:
        raise ValueError(f"the span {start}-{end} is empty or negative: need 0 <= start < end")
    return {"source": source, "start": start, "end": end}


def _choice(row: dict, key: str, allowed: tuple[str, ...]) -> str:
    value = row.get(key, "")
    if value and value not in allowed:
        raise ValueError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    return value or ""


def _strings(value, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{name} must be a list of non-empty strings")
    return value


def _load_beir(folder: Path) -> list[EvalQuery]:
    """BEIR layout: queries.jsonl ({"_id", "text"}) and qrels/*.tsv (query-id, corpus-id, score).

    Corpus ids are matched against our article ids and chunk ids.
    """
    qrels: dict[str, set[str]] = {}
    try:
        for tsv in sorted((folder / "qrels").glob("*.tsv")):
            with tsv.open(encoding="utf-8") as fh:
                for row in csv.DictReader(fh, delimiter="\t"):
                    if int(row.get("score", 1)) > 0:
                        qrels.setdefault(row["query-id"], set()).add(row["corpus-id"])
        queries = []
        for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if not isinstance(row["text"], str) or not row["text"].strip():
                    raise ValueError(f"query {row['_id']!r:.40} has no text")
                ids = tuple(sorted(qrels.get(str(row["_id"]), ())))
                lang = (row.get("metadata") or {}).get("lang", "")
                queries.append(EvalQuery(str(row["_id"]), row["text"], lang, articles=ids, chunks=ids))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise QueryFileError(f"{folder} is not a readable BEIR folder: {exc!r}.") from None
    if not queries:
        raise QueryFileError(f"{folder / 'queries.jsonl'} holds no queries.")
    return queries


# --- candidates from user feedback ------------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackCandidates:
    candidates: list[dict]  # new test queries to review, unique ids
    skipped: list[str]  # "line N: reason" for lines that could not be used
    duplicates: int  # thumbs-up lines that repeat a candidate already made (or already in the output file)
    not_up: int  # lines with another verdict: not candidates, not errors


def queries_from_feedback(
    feedback_file: Path, known_ids: set[str] | frozenset[str] = frozenset()
) -> FeedbackCandidates:
    """Thumbs-up answers become candidate test queries; a person reads each before adding it to a set.

    Two line formats are read: the UI's original one (`{"question", "verdict", "passages": [...],
    "passage_index"?}`, the liked passage being `passage_index`, default the first) and the per-passage one
    (`{"question", "verdict", "chunk_id", "citation": {...}, "highlight"?, "text"?}`). The liked passage's
    highlight (or text) becomes the answer phrase; with only a citation, its span does. Bad lines are skipped
    with a reason, never fatal; a question liked twice for the same passage gives one candidate, and ids in
    `known_ids` (an existing output file) are not repeated.
    """
    try:
        raw = feedback_file.read_bytes()
    except OSError as exc:
        raise QueryFileError(f"Cannot read feedback file {feedback_file}: {exc.strerror or exc}.") from None
    candidates, skipped, seen = [], [], set(known_ids)
    duplicates = not_up = 0
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            candidate = _feedback_candidate(line)
        except ValueError as exc:
            skipped.append(f"line {number}: {exc}")
            continue
        if candidate is None:
            not_up += 1
        elif candidate["id"] in seen:
            duplicates += 1
        else:
            seen.add(candidate["id"])
            candidates.append(candidate)
    return FeedbackCandidates(candidates, skipped, duplicates, not_up)


def _feedback_candidate(line: bytes) -> dict | None:
    """The candidate query of one feedback line, None when it is not a thumbs up; ValueError says why not."""
    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    except ValueError:
        raise ValueError("not JSON (a cut-off or damaged line?)") from None
    if not isinstance(row, dict):
        kind = {type(None): "null", list: "list", str: "string", bool: "true/false"}.get(type(row), "number")
        raise ValueError(f"a JSON {kind}, not an object")
    if row.get("verdict") != "up":
        return None
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("no question")
    passage = _liked_passage(row)
    phrase = passage.get("highlight") or passage.get("text") or ""
    phrase = phrase.split(" … ")[0].strip()[:120] if isinstance(phrase, str) else ""
    target: dict = {"answer_contains": [phrase]} if phrase else _citation_span(passage.get("citation"))
    lang = row.get("lang") if isinstance(row.get("lang"), str) else ""
    key = json.dumps([" ".join(question.split()), target], ensure_ascii=False, sort_keys=True)
    qid = "fb-" + hashlib.sha1(key.encode()).hexdigest()[:12]
    return {"id": qid, "query": question.strip(), "lang": lang, **target}


def _liked_passage(row: dict) -> dict:
    if "passages" not in row:  # per-passage format: the line is the passage
        return row
    passages, index = row["passages"], row.get("passage_index")
    if not isinstance(passages, list) or not passages:
        raise ValueError("thumbs up without passages")
    index = 0 if index is None else index
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(passages):
        raise ValueError(f"passage_index {index!r} is not one of the {len(passages)} passages")
    if not isinstance(passages[index], dict):
        raise ValueError("the liked passage is not an object")
    return passages[index]


def _citation_span(citation) -> dict:
    if not isinstance(citation, dict) or not all(k in citation for k in ("source", "start", "end")):
        raise ValueError("the liked passage has neither text nor a citation with source, start and end")
    try:
        return _span(citation)
    except ValueError as exc:
        raise ValueError(f"the liked passage has no text and its citation is unusable: {exc}") from None
