"""Evaluation: metrics on hand-checked cases, query-file validation, BEIR, feedback, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from assistant.answer import Answer, Citation, Hit
from assistant.cli import main
from assistant.errors import QueryFileError, SettingsError
from assistant.eval import Evaluation, QueryResult, best_threshold, metrics, parse_requirement
from assistant.queries import EvalQuery, Judge, is_relevant, load_queries, queries_from_feedback, select_split
from assistant.report import table
from assistant.settings import PROJECT_ROOT
from corpus.types import Chunk
from tests.conftest import FakeEmbedder

SHIPPED = PROJECT_ROOT / "eval" / "queries.jsonl"


def fake_result(
    qid: str,
    lang: str,
    relevant: list[bool],
    total_relevant: int | None = None,
    out_of_scope: bool = False,
    no_answer: bool = False,
    top_score: float = 0.9,
) -> QueryResult:
    hits = tuple(
        Hit(i + 1, top_score - i * 0.01, f"text {i}", (), Citation("a", "t", lang, "s", 1, 0, 1), f"{qid}-c{i}")
        for i in range(len(relevant))
    )
    query = EvalQuery(qid, "q", lang, () if out_of_scope else ("x",))
    rel_ids = {h.chunk_id for h, r in zip(hits, relevant) if r}
    rel_ids |= {f"{qid}-missing{i}" for i in range((total_relevant or len(rel_ids)) - len(rel_ids))}
    return QueryResult(query, Answer("q", hits, no_answer, "q"), relevant, set() if out_of_scope else rel_ids)


def test_metrics_match_hand_computed_values():
    results = [
        fake_result("q1", "sv", [True, False, False]),  # rank 1
        fake_result("q2", "sv", [False, False, True]),  # rank 3
        fake_result("q3", "da", [False] * 6 + [True]),  # rank 7
        fake_result("q4", "da", [False, False, False]),  # never
        fake_result("o1", "sv", [False], out_of_scope=True, no_answer=True),
        fake_result("o2", "sv", [False], out_of_scope=True, no_answer=False),
    ]
    m = metrics(results)
    overall = m["overall"]
    assert overall["queries"] == 4
    assert overall["recall@1"] == 0.25
    assert overall["recall@5"] == 0.5
    assert overall["recall@10"] == 0.75
    assert overall["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 7 + 0) / 4, abs=1e-4)
    # nDCG@10 with one relevant passage each: 1/log2(rank+1)
    import math

    assert overall["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(8)) / 4, abs=1e-4)
    assert m["by_language"]["sv"]["recall@5"] == 1.0 and m["by_language"]["da"]["recall@5"] == 0.0
    assert m["no_answer_accuracy"] == 0.5 and m["out_of_scope_queries"] == 2


def test_ndcg_counts_every_relevant_passage():
    # Two relevant passages exist; only the first is returned, at rank 2: DCG = 1/log2(3), IDCG = 1 + 1/log2(3).
    import math

    m = metrics([fake_result("q1", "sv", [False, True, False], total_relevant=2)])
    assert m["overall"]["ndcg@10"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)), abs=1e-4)


def test_best_threshold_separates_scopes():
    results = [
        fake_result("q1", "sv", [True], top_score=0.86),
        fake_result("q2", "sv", [True], top_score=0.83),
        fake_result("o1", "sv", [False], out_of_scope=True, top_score=0.79),
    ]
    threshold, refused, answered = best_threshold(results)
    assert 0.79 < threshold <= 0.83 and refused == 1.0 and answered == 1.0


def test_relevance_is_case_and_whitespace_insensitive():
    q = EvalQuery("q", "?", "sv", ("3 500  KR per",))
    assert is_relevant(q, "c", "a", "Kursavgiften är 3 500 kr\nper deltagare")
    assert not is_relevant(q, "c", "a", "3 500 euro")
    assert is_relevant(EvalQuery("q", "?", "sv", articles=("a1",)), "c", "a1", "anything")


def test_malformed_lines_are_reported_with_numbers(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "a", "query": "ok", "lang": "sv", "answer_contains": ["x"], "_note": "a comment"}\n'
        "not json\n"
        '{"id": "b", "lang": "sv"}\n'
        '{"id": "c", "query": "q", "answer_contains": "not a list"}\n'
        '{"id": "a", "query": "dup", "answer_contains": []}\n'
        '{"id": "d", "query": "Vem?", "answer_contain": ["x"]}\n'
        '{"id": "e", "query": null}\n'
        '{"id": null, "query": "Vem?"}\n'
        '{"id": "f", "query": "Vem?", "lang": 7}\n'
    )
    with pytest.raises(QueryFileError) as err:
        load_queries(path)
    message = str(err.value)
    fragments = ["line 2", "line 3: missing field 'query'", "line 4", "line 5: duplicate id a"]
    fragments += ["line 6: unknown field 'answer_contain' (the fields are id, query,", "line 7: query and lang must be"]
    fragments += ["line 8: id must be text or a whole number", "line 9: query and lang must be text"]
    for fragment in fragments:
        assert fragment in message
    assert "line 1:" not in message  # a "_" field is a comment


def test_shipped_set_is_valid_and_big_enough():
    from corpus.chunk import chunk_articles
    from corpus.load import load_corpus
    from tests.conftest import REAL_CORPUS

    corpus = load_corpus(REAL_CORPUS)
    chunks = chunk_articles(corpus.articles, 220, lambda text: len(text.split()))
    queries = load_queries(SHIPPED)
    Judge(chunks, corpus.articles).check(queries, SHIPPED)
    in_scope = [q for q in queries if not q.out_of_scope]
    assert len(queries) >= 80
    assert sum(q.lang == "en" for q in in_scope) >= 20
    assert sum(q.out_of_scope for q in queries) >= 8
    assert {q.lang for q in in_scope} == {"sv", "da", "en"}


def test_beir_folder(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "Vem?"}\n{"_id": "2", "text": "Vad?"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\tart1\t1\n1\tart2\t0\n")
    queries = {q.id: q for q in load_queries(tmp_path)}
    assert queries["1"].articles == ("art1",) and queries["2"].out_of_scope
    for content, message in (("\n", "holds no queries"), ('{"_id": "3", "text": 42}\n', "query '3' has no text")):
        (tmp_path / "queries.jsonl").write_text(content)
        with pytest.raises(QueryFileError, match=message):
            load_queries(tmp_path)


def test_feedback_thumbs_up_becomes_a_candidate(tmp_path):
    feedback = tmp_path / "feedback.jsonl"
    passage = {
        "text": "Kursavgiften är 3 500 kr.",
        "highlight": "Kursavgiften är 3 500 kr.",
        "citation": {"article_id": "a1"},
    }
    feedback.write_text(
        json.dumps({"question": "Vad kostar det?", "verdict": "up", "passages": [passage]})
        + "\n"
        + json.dumps({"question": "Dålig", "verdict": "down", "passages": [passage]})
        + "\n"
    )
    candidates = queries_from_feedback(feedback).candidates
    assert len(candidates) == 1
    assert candidates[0]["query"] == "Vad kostar det?"
    assert candidates[0]["answer_contains"] == ["Kursavgiften är 3 500 kr."]


# --- integration ------------------------------------------------------------------------------


@pytest.mark.integration
def test_eval_cli_reports_every_mode_with_json_and_report(real_index, tmp_path):
    args = ["eval", str(SHIPPED), "--mode", "all", "--json", "--report", str(tmp_path / "report")]
    result = CliRunner().invoke(main, [*args, "--index", str(real_index.index_dir)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["metrics"]) == {"hybrid", "dense", "bm25"}
    first = data["queries"][0]
    assert {"id", "query", "lang", "no_answer", "first_relevant_rank", "passages"} <= set(first)
    assert {"rank", "score", "text", "citation"} <= set(first["passages"][0])
    assert (tmp_path / "report" / "report.md").read_text().count("recall") > 0
    assert (tmp_path / "report" / "recall_at_k.png").stat().st_size > 10_000


# The retrieval guard: held-out parts only (never used to choose anything), at the levels measured when the
# defaults were chosen (README "Evaluation"), minus a small margin. Issue bars not met yet are in the README.
GUARD = {
    "ours": {
        "recall@1": 0.80,
        "recall@5": 0.97,
        "mrr@10": 0.88,  # the bar, met since the word bridge (measured 0.884)
        "in_scope_refused_max": 0.01,
        "out_of_scope_refused_min": 0.52,
    },
    "swequad": {
        "recall@5": 0.93,
        "mrr@10": 0.84,
        "recall@1": 0.75,
        "in_scope_refused_max": 0.01,
        "out_of_scope_refused_min": 0.64,
    },
}
# Hybrid must not fall below its best single mode. Measured held out: SweQUAD dev hybrid R@1 0.762 vs BM25 0.706,
# MRR@10 0.854 vs 0.812; ours 0.814 vs 0.674 and 0.884 vs 0.791.
BEST_SINGLE_SLACK = 0.0


@pytest.mark.integration
@pytest.mark.parametrize("benchmark", sorted(GUARD))
def test_held_out_retrieval_guard(benchmark, real_embedder, tmp_path_factory):
    """Hybrid on each benchmark's held-out part: at the measured level and never below its best single mode."""
    from dataclasses import replace

    from assistant.answer import Assistant
    from assistant.eval import Evaluation
    from assistant.library import rebuild
    from assistant.queries import select_split
    from assistant.settings import Settings

    corpus, files = {
        "ours": ("corpus/articles", ["eval/queries.jsonl"]),
        "swequad": ("eval/swequad/corpus", ["eval/swequad/queries.jsonl", "eval/swequad/out_of_scope.jsonl"]),
    }[benchmark]
    index_dir = tmp_path_factory.mktemp(benchmark) / "index"
    settings = replace(Settings(), corpus_dir=PROJECT_ROOT / corpus, index_dir=index_dir)
    rebuild(settings, real_embedder, say=lambda _: None, progress=False)
    assistant = Assistant.open(settings=settings, embedder=real_embedder)
    queries = select_split([q for f in files for q in load_queries(PROJECT_ROOT / f)], "heldout", benchmark)
    evaluation = Evaluation(assistant, queries, k=10)
    found = {m: metrics(evaluation.run(m)) for m in ("hybrid", "dense", "bm25")}
    hybrid = found["hybrid"]["overall"]
    bar = GUARD[benchmark]
    for name in ("recall@1", "recall@5", "mrr@10"):
        assert hybrid[name] >= bar.get(name, 0.0), (name, hybrid[name])
        best_single = max(found[m]["overall"][name] for m in ("dense", "bm25"))
        assert hybrid[name] >= best_single - BEST_SINGLE_SLACK, (name, found)
    assert found["hybrid"]["in_scope_refused"] <= bar["in_scope_refused_max"]
    # Measured held out: ours 0.565 (13 of 23), SweQUAD dev 0.680 (17 of 25); the bar is 0.9.
    assert found["hybrid"]["out_of_scope_refused"] >= bar["out_of_scope_refused_min"], found["hybrid"]


@pytest.mark.integration
def test_eval_builds_a_benchmark_index_from_its_own_corpus(tiny_corpus, tmp_path, real_embedder):
    queries = write_jsonl(
        tmp_path / "q.jsonl",
        [{"id": "a", "query": "Vem leder arbetet i Holstebro?", "source": "holstebro.txt", "start": 134, "end": 143}],
    )
    index = tmp_path / "deep" / "index"
    args = ["eval", str(queries), "--corpus", str(tiny_corpus), "--index", str(index), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (index / "manifest.json").is_file() and "sentence windows embedded" in result.stderr
    assert json.loads(result.stdout)["metrics"]["overall"]["recall@5"] == 1.0


@pytest.mark.integration
def test_eval_min_recall_fails_below(real_index):
    result = CliRunner().invoke(
        main, ["eval", str(SHIPPED), "--min-recall", "0.999", "--mode", "bm25", "--index", str(real_index.index_dir)]
    )
    assert result.exit_code == 1 and "below --min-recall" in result.output


def test_feedback_queries_cli(tmp_path):
    feedback = tmp_path / "feedback.jsonl"
    passage = {"text": "Tio timmar.", "highlight": "Tio timmar.", "citation": {"article_id": "a"}}
    feedback.write_text(json.dumps({"question": "Hur länge?", "verdict": "up", "passages": [passage]}) + "\n")
    out = tmp_path / "candidates.jsonl"
    result = CliRunner().invoke(main, ["feedback-queries", str(feedback), "--out", str(out)])
    assert result.exit_code == 0 and "1 new candidate" in result.output
    assert json.loads(out.read_text())["answer_contains"] == ["Tio timmar."]


# --- span-based relevance (#12 item 2) ------------------------------------------------------------


def chunk(cid: str, source: str, start: int, end: int, text: str, title: str = "T", article: str = "a") -> Chunk:
    return Chunk(cid, article, title, "sv", source, 1, start, end, text, 0)


SPAN_CHUNKS = [
    chunk("c1", "visum.txt", 0, 100, "Ta med ditt pass när du hämtar beslutet."),
    chunk("c2", "visum.txt", 100, 200, "Ditt pass måste gälla hela resan."),
    chunk("c3", "kort.txt", 0, 90, "Visa ditt pass i receptionen.", article="b"),
]


def test_span_relevance_needs_the_file_and_a_covering_citation():
    q = EvalQuery("q", "Vad ska du ta med?", "sv", ("ditt pass",), source="visum.txt", start=8, end=17)
    assert is_relevant(q, "c1", "a", "Ta med ditt pass", "visum.txt", 0, 100)
    assert not is_relevant(q, "c2", "a", "Ditt pass måste gälla", "visum.txt", 100, 200)  # the phrase, not the span
    assert not is_relevant(q, "c3", "b", "Visa ditt pass", "kort.txt", 0, 90)  # another file
    assert not is_relevant(q, "c1", "a", "Ta med ditt pass", "visum.txt", 10, 100)  # covers only part of it
    # Every relevant passage (nDCG's ideal ranking) follows the same rule; the phrase alone matches all three.
    judge = Judge(SPAN_CHUNKS)
    assert judge.relevant(q) == {"c1"}
    assert judge.relevant(EvalQuery("p", "?", "sv", ("DITT  pass",))) == {"c1", "c2", "c3"}


def test_span_fields_are_validated_with_line_numbers(tmp_path):
    good = '{"id": "a", "query": "q", "answer_contains": ["x"], "source": "f.txt", "start": 1, "end": 5}'
    path = tmp_path / "q.jsonl"
    path.write_text(
        "\n".join(
            [
                good,
                '{"id": "b", "query": "q", "source": "f.txt", "start": "1", "end": 5}',
                '{"id": "c", "query": "q", "source": "f.txt", "start": 5, "end": 5}',
                '{"id": "d", "query": "q", "source": "f.txt", "start": 3}',
                '{"id": "e", "query": "q", "source": 7, "start": 1, "end": 2}',
                '{"id": "f", "query": "q", "source": "f.txt", "start": true, "end": 2}',
                '{"id": "g", "query": "q", "answer_contains": ["x"], "split": "test"}',
                '{"id": "h", "query": "q", "answer_contains": ["x"], "kind": "follow_up"}',
                "[1, 2]",
            ]
        )
    )
    with pytest.raises(QueryFileError) as err:
        load_queries(path)
    message = str(err.value)
    assert "line 1" not in message
    for fragment in (
        "line 2: start and end must be whole numbers",
        "line 3: the span 5-5 is empty",
        "line 4: source, start and end go together",
        "line 5: source must be",
        "line 6: start and end must be whole numbers",
        "line 7: split must be one of tune, heldout",
        "line 8: kind 'follow_up' needs a non-empty history",
        "line 9: not a JSON object",
    ):
        assert fragment in message
    path.write_text(good + "\n")
    (query,) = load_queries(path)
    assert (query.source, query.start, query.end, query.out_of_scope) == ("f.txt", 1, 5, False)


def test_non_utf8_query_file_is_one_clear_error(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_bytes(b'{"id": "a", "query": "K\xf6p?", "answer_contains": ["x"]}\n')
    with pytest.raises(QueryFileError, match="not UTF-8"):
        load_queries(path)


# --- phrases that cannot match (#11 item 18) -------------------------------------------------------


def test_a_title_only_phrase_is_a_warning_and_only_unmatchable_queries_fail(tmp_path):
    chunks = [chunk("c1", "a.txt", 0, 50, "Kursavgiften är 2 000 kr.", title="Konferens om äldreomsorg")]
    ok = EvalQuery("ok", "?", "sv", ("Konferens om äldreomsorg", "2 000 kr"))
    warnings = Judge(chunks).check([ok], tmp_path / "q.jsonl")
    assert len(warnings) == 1 and "'Konferens om äldreomsorg' occurs only in an article title" in warnings[0]
    dead = EvalQuery("dead", "?", "sv", ("Konferens om äldreomsorg", "finns inte alls"))
    with pytest.raises(
        QueryFileError, match=r"1 of 2 queries can never be found in this index: dead \(none of its phrases"
    ) as err:
        Judge(chunks).check([ok, dead], tmp_path / "q.jsonl")
    assert "ok" not in str(err.value).split("index:")[1]


def test_queries_naming_articles_the_index_lacks_are_warned_or_refused(tmp_path):
    judge = Judge(SPAN_CHUNKS)
    partly = EvalQuery("partly", "?", "sv", articles=("a", "nej"))
    assert judge.check([partly], tmp_path / "q.jsonl") == ["partly: no article 'nej' in this index"]
    with pytest.raises(QueryFileError, match=r"1 of 2 queries can never be found in this index: gone \(no article 'x'"):
        judge.check([partly, EvalQuery("gone", "?", "sv", articles=("x",))], tmp_path / "q.jsonl")


def test_span_checks_name_unknown_files_and_uncovered_spans(tmp_path):
    judge = Judge(SPAN_CHUNKS)
    straddling = EvalQuery("s", "?", "sv", source="visum.txt", start=90, end=110)
    elsewhere = EvalQuery("e", "?", "sv", source="annan.txt", start=0, end=5)
    assert judge.check([straddling], tmp_path) == ["s: no passage covers visum.txt:90-110 (counts as a miss)"]
    with pytest.raises(
        QueryFileError, match=r"1 of 1 queries .* e \(its file annan.txt is not in it\); is this the right index\?"
    ):
        judge.check([elsewhere], tmp_path)


# --- benchmark size (#12 item 7) -----------------------------------------------------------------------


def test_relevant_sets_of_a_benchmark_are_fast():
    import time

    words = "ansökan beslut pass visum uppehållstillstånd arbete studier familj medborgarskap avgift".split()
    text = " ".join(words[j % 10] for j in range(200))
    chunks = [
        chunk(f"c{i}", f"f{i // 4}.txt", i % 4 * 500, i % 4 * 500 + 500, f"{text} Kapitel {i}.") for i in range(2000)
    ]
    queries = [EvalQuery(f"q{i}", "?", "sv", (f"KAPITEL  {i * 3}.", "saknas helt")) for i in range(550)]
    queries += [EvalQuery(f"s{i}", "?", "sv", source=f"f{i % 500}.txt", start=10, end=20) for i in range(550)]
    queries.append(EvalQuery("common", "?", "sv", ("ansökan beslut",)))
    started = time.perf_counter()
    judge = Judge(chunks)
    sets = [judge.relevant(q) for q in queries]
    assert time.perf_counter() - started < 5.0  # normalising every passage for every query took over 10 s
    assert sets[1] == {"c3"} and sets[550] == {"c0"} and len(sets[-1]) == 2000


class BatchEmbedder(FakeEmbedder):
    """The fake embedder with a batch method that counts what it is asked to encode."""

    def __init__(self):
        super().__init__()
        self.batches: list[list[str]] = []

    def encode_queries(self, texts, batch_size=64):
        self.batches.append(list(texts))
        return np.stack([self._vector(t) for t in texts])

    def encode_query(self, text):
        raise AssertionError("evaluation must encode queries in batches")


CONVERSATIONS = [
    EvalQuery(
        "f1",
        "Och sedan?",
        "sv",
        ("tio timmar",),
        history=("Hur många timmar arbetar studenterna?",),
        kind="follow_up",
    ),
    EvalQuery(
        "s1",
        "Vem leder arbetet i Holstebro?",
        "sv",
        ("Helle Bro",),
        history=("Vad kostar konferensen?",),
        kind="switch",
    ),
    EvalQuery("p1", "Hur många anställda har hemtjänsten i Kiruna?", "sv", ("40 anställda",), split="tune"),
    EvalQuery("o1", "Hvordan søger man om boligstøtte?", "da", split="heldout"),
]


@pytest.fixture
def batch_assistant(tiny_assistant):
    tiny_assistant.embedder = BatchEmbedder()
    return tiny_assistant


def test_evaluation_encodes_each_search_once_for_all_modes_without_highlights(batch_assistant):
    evaluation = Evaluation(batch_assistant, CONVERSATIONS, k=5)
    results = {m: evaluation.run(m) for m in ("hybrid", "dense", "bm25")}
    cold = evaluation.run("hybrid", cold=True)
    searched = [s for batch in batch_assistant.embedder.batches for s in batch]
    # Each text once: the four questions alone (reused cold) + the elliptical follow-up joined with its history;
    # the switch has three content words, so it is never searched joined.
    assert len(searched) == len(set(searched)) == len(CONVERSATIONS) + 1
    assert all(h.highlight == () for rs in results.values() for r in rs for h in r.answer.hits)
    follow_up = results["hybrid"][0]
    assert follow_up.answer.search_query.startswith("Hur många timmar") and follow_up.first_relevant_rank == 1
    assert [r.query.id for r in cold] == ["f1", "s1"] and cold[0].answer.search_query == "Och sedan?"


def test_metrics_per_conversation_kind_with_history_and_cold(batch_assistant):
    evaluation = Evaluation(batch_assistant, CONVERSATIONS, k=5)
    report = metrics(evaluation.run("bm25"), evaluation.run("bm25", cold=True))
    follow_up, switch = report["by_kind"]["follow_up"], report["by_kind"]["switch"]
    assert follow_up["history"]["queries"] == follow_up["cold"]["queries"] == 1
    # "Och sedan?" alone finds nothing about hours; with the earlier turn it finds "tio timmar" first.
    assert follow_up["history"]["recall@1"] == 1.0 and follow_up["cold"]["recall@1"] == 0.0
    assert switch["history"]["queries"] == 1 and report["overall"]["queries"] == 3
    assert "by_kind" not in metrics(evaluation.run("bm25"))


def test_refusal_rates_in_and_out_of_scope():
    results = [
        fake_result("q1", "sv", [True], no_answer=True),
        fake_result("q2", "sv", [True]),
        fake_result("q3", "en", [True]),
        fake_result("q4", "en", [True]),
        fake_result("o1", "en", [False], out_of_scope=True, no_answer=True),
    ]
    m = metrics(results)
    assert m["in_scope_refused"] == 0.25 and m["out_of_scope_refused"] == 1.0
    assert m["by_language"]["sv"]["in_scope_refused"] == 0.5 and m["by_language"]["sv"]["out_of_scope_refused"] is None
    assert m["by_language"]["en"]["out_of_scope_refused"] == 1.0
    assert "in-scope refused" in table({"hybrid": m}) and "0.250 of 4" in table({"hybrid": m})


# --- requirements for CI (#12) -------------------------------------------------------------------------


def test_requirements_parse_and_fail_with_one_line_each():
    report = metrics([fake_result("q1", "sv", [False, True]), fake_result("q2", "sv", [True])])
    assert parse_requirement("recall@5>=0.97").failure(report) is None
    assert parse_requirement("MRR@10 >= 0.9").failure(report) == "mrr@10 0.750 is below --require MRR@10 >= 0.9"
    assert parse_requirement("in_scope_refused<=0.01").failure(report) is None
    assert "not measured" in parse_requirement("out_of_scope_refused>=0.9").failure(report)
    for bad in ("recall@5=0.9", "speed>=1", "recall@5>=high", ""):
        with pytest.raises(SettingsError, match="is not understood"):
            parse_requirement(bad)


# --- the eval command over the tiny index (the fake embedder stands in for the model) -------------------


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def tiny_cli(monkeypatch, batch_assistant):
    import assistant.cli as cli

    monkeypatch.setattr(cli, "_assistant", lambda *_: batch_assistant)
    return lambda *args: CliRunner().invoke(main, ["eval", *map(str, args)])


def test_eval_command_splits_files_and_requirements(tiny_cli, tmp_path):
    rows = [
        {"id": q.id, "query": q.query, "lang": q.lang, "answer_contains": list(q.answer_contains)}
        | ({"history": list(q.history), "kind": q.kind} if q.history else {})
        | ({"split": q.split} if q.split else {})
        for q in CONVERSATIONS
    ]
    conversations = write_jsonl(tmp_path / "c.jsonl", rows[:2])
    scoped = write_jsonl(tmp_path / "q.jsonl", rows[2:])
    report = tmp_path / "report"
    result = tiny_cli(
        conversations, scoped, "--mode", "all", "--require", "recall@1>=0.5", "--json", "--report", report
    )
    assert result.exit_code == 0, result.output
    assert "(split all, 4 queries)" in (report / "report.md").read_text() and (report / "recall_at_k.png").is_file()
    data = json.loads(result.stdout)
    assert {q["id"] for q in data["queries"]} == {"f1", "s1", "p1", "o1"} and len(data["queries"]) == 12
    assert set(data["metrics"]["hybrid"]["by_kind"]) == {"follow_up", "switch"}
    result = tiny_cli(conversations, scoped, "--split", "heldout", "--mode", "bm25")
    assert result.exit_code == 0 and "(split heldout, 1 queries)" in result.output
    assert "out-of-scope refused" in result.output
    result = tiny_cli(
        scoped, "--mode", "bm25", "--require", "recall@1>=0.99", "--require", "mrr@10>=2", "--min-recall", "0.1"
    )
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("Failed")]
    assert len(failed) == 1 and "mrr@10 1.000 is below --require mrr@10>=2" in failed[0]
    result = tiny_cli(scoped, "--require", "recall@5=1")
    assert result.exit_code == 2 and result.output.startswith("Error: --require 'recall@5=1' is not understood")


def test_eval_command_user_mistakes_are_one_line(tiny_cli, tmp_path):
    scoped = write_jsonl(tmp_path / "q.jsonl", [{"id": "a", "query": "Vem?", "answer_contains": ["Helle Bro"]}])
    cases = [
        ((tmp_path / "missing.jsonl",), "does not exist"),
        ((scoped, scoped), "Query id a is in both"),
        ((scoped, "--split", "tune"), 'has no queries with "split": "tune"'),
        ((scoped, "--corpus", tmp_path), "--corpus needs --index"),
        ((scoped, "--report", scoped), "Cannot write into"),  # a file: refused before the evaluation
        ((scoped, "--misses", "-5"), "-5 is not in the range x>=0"),
        ((scoped, "--min-recall", "5"), "5.0 is not in the range 0<=x<=1"),
    ]
    for args, message in cases:
        result = tiny_cli(*args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert result.output.count("\n") == 1 or result.output.startswith("Usage:"), result.output  # click's own
    # The main index named by the environment is no place to build a benchmark's corpus into.
    for env in ({"ASSISTANT_INDEX": str(tmp_path / "main")}, {"ASSISTANT_STORE": "postgresql://team@db.example/x"}):
        result = CliRunner().invoke(main, ["eval", str(scoped), "--corpus", str(tmp_path)], env=env)
        assert result.exit_code == 2 and "--corpus needs --index" in result.output, result.output


# --- feedback candidates (#11 item 10) -------------------------------------------------------------------

GOOD_OLD = {
    "question": "Hur länge?",
    "verdict": "up",
    "passages": [{"text": "Tio timmar.", "highlight": "Tio timmar."}],
}
GOOD_NEW = {
    "question": "Vem leder?",
    "verdict": "up",
    "chunk_id": "abc",
    "citation": {"source": "holstebro.txt", "start": 65, "end": 294, "article_id": "h"},
}
MALFORMED_FEEDBACK = {
    "a list": b"[1, 2, 3]",
    "a number": b"42",
    "null": b"null",
    "a string": b'"thumbs up"',
    "not json": b"{oops",
    "a cut-off line": b'{"question": "Hur?", "verd',
    "no question": json.dumps({"verdict": "up", "passages": [{"text": "x"}]}).encode(),
    "a question that is a number": json.dumps({"question": 7, "verdict": "up", "passages": [{"text": "x"}]}).encode(),
    "an empty question": json.dumps({"question": "  ", "verdict": "up", "passages": [{"text": "x"}]}).encode(),
    "non-UTF-8 bytes": b'{"question": "K\xf6p?", "verdict": "up", "passages": [{"text": "x"}]}',
    "passages not a list": json.dumps({"question": "Q?", "verdict": "up", "passages": "x"}).encode(),
    "no passages": json.dumps({"question": "Q?", "verdict": "up", "passages": []}).encode(),
    "passage_index out of range": json.dumps(
        {"question": "Q?", "verdict": "up", "passages": [{"text": "x"}], "passage_index": 3}
    ).encode(),
    "negative passage_index": json.dumps(
        {"question": "Q?", "verdict": "up", "passages": [{"text": "x"}, {"text": "y"}], "passage_index": -1}
    ).encode(),
    "passage_index a string": json.dumps(
        {"question": "Q?", "verdict": "up", "passages": [{"text": "x"}], "passage_index": "0"}
    ).encode(),
    "a passage that is a string": json.dumps({"question": "Q?", "verdict": "up", "passages": ["x"]}).encode(),
    "a passage without text or citation": json.dumps({"question": "Q?", "verdict": "up", "passages": [{}]}).encode(),
    "a citation that is a string": json.dumps({"question": "Q?", "verdict": "up", "citation": "x"}).encode(),
    "a citation with a reversed span": json.dumps(
        {"question": "Q?", "verdict": "up", "citation": {"source": "a.txt", "start": 9, "end": 2}}
    ).encode(),
    "binary garbage": b"\x00\x01\x02\xff\xfe",
}


@pytest.mark.parametrize("name", MALFORMED_FEEDBACK)
def test_feedback_queries_survives_bad_feedback_files(tmp_path, name):
    feedback = tmp_path / "feedback.jsonl"
    good = [json.dumps(GOOD_OLD).encode(), json.dumps(GOOD_NEW).encode()]
    feedback.write_bytes(b"\n".join([good[0], MALFORMED_FEEDBACK[name], good[1], good[0], b""]))
    out = tmp_path / "candidates.jsonl"
    result = CliRunner().invoke(main, ["feedback-queries", str(feedback), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 new candidate queries" in result.output and "1 lines skipped, 1 repeats" in result.output
    assert "Skipped line 2: " in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({r["id"] for r in rows}) == 2
    assert rows[0]["answer_contains"] == ["Tio timmar."]
    assert (rows[1]["source"], rows[1]["start"], rows[1]["end"]) == ("holstebro.txt", 65, 294)
    assert len(load_queries(out)) == 2  # the candidates are a valid query file
    again = CliRunner().invoke(main, ["feedback-queries", str(feedback), "--out", str(out)])
    assert "0 new candidate queries" in again.output and len(load_queries(out)) == 2  # nothing appended twice


def test_feedback_queries_never_append_to_the_feedback_file_itself(tmp_path):
    feedback = write_jsonl(tmp_path / "feedback.jsonl", [GOOD_OLD])
    before = feedback.read_bytes()
    result = CliRunner().invoke(main, ["feedback-queries", str(feedback), "--out", str(tmp_path / "." / feedback.name)])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "is the feedback file itself" in result.output
    assert feedback.read_bytes() == before


def test_feedback_picks_the_liked_passage_and_keeps_distinct_passages_apart(tmp_path):
    two = [{"text": "Första."}, {"text": "Andra stycket.", "highlight": "Andra … stycket"}]
    rows = [
        {"question": "Vad?", "verdict": "up", "passages": two, "passage_index": 1},
        {"question": "Vad?", "verdict": "up", "passages": two},
        {"question": "Vad?", "verdict": "down", "passages": two},
        GOOD_NEW | {"highlight": "Helle Bro leder arbejdet."},
    ]
    feedback = write_jsonl(tmp_path / "f.jsonl", rows)
    found = queries_from_feedback(feedback)
    assert [c["answer_contains"] for c in found.candidates] == [["Andra"], ["Första."], ["Helle Bro leder arbejdet."]]
    assert len({c["id"] for c in found.candidates}) == 3 and found.not_up == 1 and not found.skipped


@pytest.mark.integration
def test_follow_ups_beat_and_switches_match_the_same_question_cold_on_held_out_conversations(real_assistant):
    queries = select_split(load_queries(PROJECT_ROOT / "eval" / "conversations.jsonl"), "heldout", "conversations")
    evaluation = Evaluation(real_assistant, queries, k=10)
    kinds = metrics(evaluation.run("hybrid"), evaluation.run("hybrid", cold=True))["by_kind"]
    follow_up = kinds["follow_up"]
    # Measured: 0.542 with history vs 0.513 cold (one Danish conversation fewer than with the previous calibration).
    assert follow_up["history"]["mrr@10"] > follow_up["cold"]["mrr@10"] + 0.02
    switch = kinds["switch"]  # a new topic must not be glued onto the old one
    assert switch["history"]["mrr@10"] >= switch["cold"]["mrr@10"] - 0.005
