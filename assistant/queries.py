"""Test-query files: our JSON Lines format, BEIR folders, and candidates from user feedback.

A line is `{"id", "query", "lang", "answer_contains": [...], "articles": [...]?}`. A passage is
relevant when it contains one of the phrases (case-insensitive, whitespace-normalised) or
belongs to a listed article; an empty `answer_contains` (and no articles) marks an out-of-scope
query whose right answer is "nothing relevant".
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import QueryFileError


@dataclass(frozen=True)
class EvalQuery:
    id: str
    query: str
    lang: str
    answer_contains: tuple[str, ...] = ()
    articles: tuple[str, ...] = ()
    chunks: tuple[str, ...] = ()  # BEIR qrels may name chunk ids directly

    @property
    def out_of_scope(self) -> bool:
        return not (self.answer_contains or self.articles or self.chunks)


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def is_relevant(query: EvalQuery, chunk_id: str, article_id: str, text: str) -> bool:
    if chunk_id in query.chunks or article_id in query.articles:
        return True
    haystack = normalise(text)
    return any(normalise(p) in haystack for p in query.answer_contains)


def load_queries(path: Path, corpus_texts: list[str] | None = None) -> list[EvalQuery]:
    """Read a JSONL file or a BEIR folder; check every phrase occurs somewhere in `corpus_texts`."""
    if not path.exists():
        raise QueryFileError(f"Test-query file {path} does not exist.")
    queries = _load_beir(path) if path.is_dir() else _load_jsonl(path)
    if corpus_texts is not None:
        corpus = normalise("\n".join(corpus_texts))
        missing = [f"{q.id}: {p!r}" for q in queries for p in q.answer_contains if normalise(p) not in corpus]
        if missing:
            raise QueryFileError(
                f"{path}: {len(missing)} answer phrase(s) occur nowhere in the corpus, so they "
                f"can never be found: {'; '.join(missing[:10])}"
            )
    return queries


def _load_jsonl(path: Path) -> list[EvalQuery]:
    queries, errors, seen = [], [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            query = EvalQuery(
                id=str(row["id"]),
                query=str(row["query"]),
                lang=str(row.get("lang", "")),
                answer_contains=tuple(_strings(row.get("answer_contains", []))),
                articles=tuple(_strings(row.get("articles", []))),
            )
            if not query.query.strip():
                raise ValueError("empty query")
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


def _strings(value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("answer_contains and articles must be lists of non-empty strings")
    return value


def _load_beir(folder: Path) -> list[EvalQuery]:
    """BEIR layout: queries.jsonl ({"_id", "text"}) and qrels/*.tsv (query-id, corpus-id, score).

    Corpus ids are matched against our article ids and chunk ids.
    """
    qrels: dict[str, set[str]] = {}
    for tsv in sorted((folder / "qrels").glob("*.tsv")):
        with tsv.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if int(row.get("score", 1)) > 0:
                    qrels.setdefault(row["query-id"], set()).add(row["corpus-id"])
    queries = []
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            ids = tuple(sorted(qrels.get(str(row["_id"]), ())))
            queries.append(
                EvalQuery(
                    str(row["_id"]), row["text"], row.get("metadata", {}).get("lang", ""), articles=ids, chunks=ids
                )
            )
    return queries


def queries_from_feedback(feedback_file: Path) -> list[dict]:
    """Thumbs-up answers become candidate test queries: the liked passage's highlight is the phrase.

    A person should read each candidate before adding it to the shipped set.
    """
    candidates = []
    for line in feedback_file.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        passages = row.get("passages") or []
        if row.get("verdict") != "up" or not passages:
            continue
        liked = passages[int(row.get("passage_index") or 0)]
        phrase = liked.get("highlight") or liked.get("text", "")[:120]
        qid = "fb-" + hashlib.sha1(row["question"].encode()).hexdigest()[:8]
        candidates.append(
            {
                "id": qid,
                "query": row["question"],
                "lang": row.get("lang", ""),
                "answer_contains": [phrase.split(" … ")[0]],
            }
        )
    return candidates
