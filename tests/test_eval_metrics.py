"""The harness without the model: matching, metrics on hand-computed inputs, a run over stand-ins,
JSON round trip, the report, and `--compare`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import pytest

from eval import harness, report
from eval.__main__ import main
from eval.harness import (
    AnswerMetrics,
    EvalError,
    Question,
    RetrievalMetrics,
    answer_is_correct,
    hit_at_k,
    ndcg_at_k,
    need_ranks,
    normalise,
    question_rank,
    reciprocal_rank,
)

# -- matching -----------------------------------------------------------------------------------


def test_normalise_folds_case_quotes_stars_and_spaces():
    raw = "  The **DASS**\n was  \u2018well\u2019-liked \u201cleader\u201d "
    assert normalise(raw) == "the dass was 'well'-liked \"leader\""


def test_need_ranks_any_evidence_string_counts():
    q = Question("x", "fact", "?", evidence=("alpha beta", "Gamma"), answer=("a",))
    texts = ["nothing here", "some GAMMA rays", "alpha\n beta"]
    assert need_ranks(q, texts) == [2]
    assert question_rank(need_ranks(q, texts)) == 2


def test_need_ranks_evidence_all_takes_the_last_one_covered():
    q = Question("x", "cross", "?", evidence=("one", "two"), answer=("a",), evidence_all=("one", "two"))
    assert need_ranks(q, ["two", "zzz", "one"]) == [3, 1]
    assert question_rank([3, 1]) == 3
    assert need_ranks(q, ["two", "zzz"]) == [None, 1]
    assert question_rank([None, 1]) is None


def test_unanswerable_question_has_no_needs():
    q = Question("x", "unanswerable", "?", evidence=(), answer=())
    assert not q.answerable and q.needs() == [] and question_rank([]) is None


def test_answer_correctness():
    q = Question("x", "fact", "?", evidence=("e",), answer=("\u00a31,847,287,000", "51.4%"))
    assert answer_is_correct(q, 'Report (2023): "it was 51.4 % ... 51.4%" [1]', abstained=False)
    assert not answer_is_correct(q, "51.4%", abstained=True)  # abstaining never counts as correct
    assert not answer_is_correct(q, "51.5%", abstained=False)
    u = Question("u", "unanswerable", "?", evidence=(), answer=())
    assert answer_is_correct(u, "I could not find this", abstained=True)
    assert not answer_is_correct(u, "Some answer", abstained=False)


# -- metrics (values worked out by hand) --------------------------------------------------------


@pytest.mark.parametrize(("rank", "k", "expected"), [(None, 5, False), (1, 1, True), (5, 5, True), (6, 5, False)])
def test_hit_at_k(rank, k, expected):
    assert hit_at_k(rank, k) is expected


@pytest.mark.parametrize(("rank", "expected"), [(1, 1.0), (4, 0.25), (10, 0.1), (11, 0.0), (None, 0.0)])
def test_reciprocal_rank_cut_at_10(rank, expected):
    assert reciprocal_rank(rank) == pytest.approx(expected)


@pytest.mark.parametrize(("ranks", "expected"), [
    ([1], 1.0),
    ([3], 0.5),  # 1/log2(4)
    ([None], 0.0),
    ([11], 0.0),  # beyond the cutoff
    ([1, 3], 1.5 / (1 + 1 / math.log2(3))),  # (1 + 0.5) / (1 + 0.6309) = 0.9197
    ([2, 2], 0.7737),  # one passage covers both: 2 * 0.6309 / 1.6309
    ([1, 1], 1.0),  # would be 2 / 1.6309, capped at 1
    ([None, 1], 1 / (1 + 1 / math.log2(3))),  # 0.6131
])
def test_ndcg_at_10(ranks, expected):
    assert ndcg_at_k(ranks) == pytest.approx(expected, abs=1e-4)


def test_retrieval_metrics_aggregate():
    m = RetrievalMetrics.of([1, 3, None, 2], [[1], [3], [None], [2]])
    assert m.n == 4
    assert [m.hit(1), m.hit(2), m.hit(3), m.hit(10)] == [0.25, 0.5, 0.75, 0.75]
    assert m.mrr == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)  # 0.4583
    assert m.ndcg == pytest.approx((1 + 0.5 + 0 + 1 / math.log2(3)) / 4)  # 0.5327
    with pytest.raises(ValueError):
        m.hit(11)


def test_percentile_and_latency():
    assert harness.percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)
    assert harness.percentile([7.0], 95) == 7.0
    stats = harness.LatencyStats.of([10, 30, 20, 40])
    assert (stats.median_ms, stats.p95_ms) == (25, pytest.approx(38.5))


def test_answer_metrics_counts_only_asked_questions():
    def r(answerable, abstained, correct):
        return harness.QuestionResult("q", "fact", "?", answerable, abstained=abstained, correct=correct)

    a = AnswerMetrics.of([r(True, False, True), r(True, True, False), r(True, False, False),
                          r(False, True, True), r(False, False, False), r(True, None, None)])
    assert (a.n_answerable, a.n_correct, a.n_false_abstentions) == (3, 1, 1)
    assert a.accuracy == pytest.approx(1 / 3) and a.false_abstention_rate == pytest.approx(1 / 3)
    assert a.abstention_accuracy == 0.5
    assert AnswerMetrics.of([]).accuracy is None


# -- question files -----------------------------------------------------------------------------


def _write_lines(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


GOOD = {"id": "a", "type": "fact", "question": "Q?", "evidence": ["e"], "answer": ["x"]}


def test_load_questions_reads_optional_evidence_all(tmp_path):
    path = _write_lines(tmp_path / "q.jsonl", [GOOD, {**GOOD, "id": "b", "type": "cross", "evidence_all": ["e", "f"]},
                                               {"id": "c", "type": "unanswerable", "question": "?", "evidence": [],
                                                "answer": []}])
    qs = harness.load_questions(path)
    assert [q.id for q in qs] == ["a", "b", "c"]
    assert qs[1].evidence_all == ("e", "f") and qs[1].needs() == [["e"], ["f"]]
    assert not qs[2].answerable


@pytest.mark.parametrize(("rows", "message"), [
    ([GOOD, GOOD], "used twice"),
    ([GOOD, "{not json"], "line 2"),
    ([{**GOOD, "type": "opinion"}], "type must be"),
    ([{**GOOD, "type": "unanswerable"}], "empty evidence"),
    ([{**GOOD, "answer": []}], "needs evidence and answer"),
    ([{k: v for k, v in GOOD.items() if k != "evidence"}], "'evidence' is missing"),
    ([{**GOOD, "evidence": "e"}], "list of non-empty strings"),
])
def test_load_questions_rejects_bad_files(tmp_path, rows, message):
    with pytest.raises(EvalError, match=message):
        harness.load_questions(_write_lines(tmp_path / "q.jsonl", rows))


def test_parse_methods():
    assert harness.parse_methods("all") == ["bm25", "dense", "hybrid"]
    assert harness.parse_methods("hybrid,bm25") == ["bm25", "hybrid"]
    with pytest.raises(EvalError):
        harness.parse_methods("splade")


# -- a run over stand-ins -------------------------------------------------------------------------


@dataclass
class FakePassage:
    text: str
    doc_id: str = "001_x"
    section: str = "Sec"


class FakeRetriever:
    """Returns fixed passages per (method, question); counts single searches for the timing pass."""

    def __init__(self, table: dict[str, dict[str, list[str]]]):
        self.table = table
        self.single_searches = 0

    def search_batch(self, queries, k=5, *, method="hybrid"):
        return [[FakePassage(t) for t in self.table[method].get(q, ["filler"])][:k] for q in queries]

    def search(self, query, k=5, *, method="hybrid"):
        self.single_searches += 1
        return self.search_batch([query], k, method=method)[0]


@dataclass
class FakeAnswer:
    text: str
    abstained: bool
    confidence: float = 0.5


class FakeAssistant:
    def __init__(self, answers: dict[str, FakeAnswer]):
        self.answers = answers

    def ask(self, question):
        return self.answers[question]


QUESTIONS = [
    Question("q1", "fact", "Q1?", evidence=("the answer is 42",), answer=("42",)),
    Question("q2", "paraphrase", "Q2?", evidence=("sky is blue",), answer=("blue",)),
    Question("q3", "cross", "Q3?", evidence=("a1", "b1"), answer=("a1",), evidence_all=("a1", "b1")),
    Question("q4", "unanswerable", "Q4?", evidence=(), answer=()),
]


def _run(hybrid_q2: list[str], q2_answer: FakeAnswer, k: int = 5) -> harness.EvalRun:
    filler = [f"filler {i}" for i in range(6)]
    table = {
        "bm25": {"Q1?": ["The answer is 42."], "Q2?": filler + ["the SKY is blue"], "Q3?": ["b1", "a1"]},
        "dense": {"Q1?": ["x", "The answer is 42."], "Q2?": ["sky is blue"], "Q3?": ["a1"]},
        "hybrid": {"Q1?": ["The answer is 42."], "Q2?": hybrid_q2, "Q3?": ["b1", "x", "a1"]},
    }
    answers = {"Q1?": FakeAnswer('"The answer is 42." [1]', False), "Q2?": q2_answer,
               "Q3?": FakeAnswer("I could not find this.", True), "Q4?": FakeAnswer("Something", False)}
    return harness.run_eval(FakeRetriever(table), QUESTIONS, assistant=FakeAssistant(answers), k=k,
                            questions_file="fake.jsonl")


@pytest.fixture
def run_a():
    return _run(["sky is blue"], FakeAnswer('"The sky is blue." [1]', False))


@pytest.fixture
def run_b():  # q2: hybrid now misses and the answer abstains
    return _run(["nothing"], FakeAnswer("I could not find this.", True))


def test_run_eval_ranks_answers_and_summary(run_a):
    by_id = {r.id: r for r in run_a.results}
    assert by_id["q1"].ranks == {"bm25": 1, "dense": 2, "hybrid": 1}
    assert by_id["q2"].ranks == {"bm25": 7, "dense": 1, "hybrid": 1}
    assert by_id["q3"].ranks["hybrid"] == 3 and by_id["q3"].need_ranks["hybrid"] == [3, 1]
    assert by_id["q3"].ranks["dense"] is None  # b1 never retrieved
    assert by_id["q4"].ranks == {}
    assert by_id["q1"].top["dense"].snippet == "x"
    assert [by_id[q].correct for q in ("q1", "q2", "q3", "q4")] == [True, True, False, False]
    assert all(len(r.search_ms) == 3 and r.ask_ms is not None for r in run_a.results)

    s = run_a.summary
    assert s.retrieval["bm25"].hit(5) == pytest.approx(2 / 3)  # q2 at 7 misses
    assert s.retrieval["bm25"].hit(10) == 1.0
    assert s.retrieval["hybrid"].mrr == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert s.retrieval["dense"].hit(1) == pytest.approx(1 / 3)
    assert (s.answers.accuracy, s.answers.abstention_accuracy) == (pytest.approx(2 / 3), 0.0)
    assert s.answers.false_abstention_rate == pytest.approx(1 / 3)
    assert set(s.latency) == {"search:bm25", "search:dense", "search:hybrid", "ask"}
    assert s.by_type["cross"].retrieval["hybrid"].hit(3) == 1.0
    assert s.by_type["unanswerable"].retrieval == {} and s.by_type["unanswerable"].answers.n_unanswerable == 1
    assert run_a.meta.depth == 10 and run_a.meta.n_questions == 4


def test_run_eval_without_timing_makes_no_single_searches():
    retriever = FakeRetriever({"hybrid": {}})
    run = harness.run_eval(retriever, QUESTIONS, methods=["hybrid"], timing=False)
    assert retriever.single_searches == 0
    assert run.summary.answers is None and run.summary.latency == {}


def test_run_eval_flags_evidence_no_chunk_holds():
    @dataclass
    class Chunk:
        text: str

    retriever = FakeRetriever({"hybrid": {}})
    retriever.index = type("Index", (), {"chunks": [Chunk("the answer is 42."), Chunk("a1 and b")]})()
    run = harness.run_eval(retriever, QUESTIONS, methods=["hybrid"], timing=False)
    assert {r.id: r.unreachable for r in run.results if r.unreachable} == {"q2": [0], "q3": [1]}


def test_json_round_trip(run_a, tmp_path):
    path = harness.save_run(run_a, tmp_path / "out" / "run.json")
    data = json.loads(path.read_text())
    assert data["summary"]["answers"]["accuracy"] == pytest.approx(2 / 3)
    assert data["questions"][0]["ranks"] == {"bm25": 1, "dense": 2, "hybrid": 1}
    back = harness.load_run(path)
    assert back.summary == run_a.summary
    assert back.results == run_a.results
    assert back.meta == run_a.meta


def test_load_run_rejects_other_json(tmp_path):
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(EvalError, match="not a result"):
        harness.load_run(tmp_path / "x.json")


# -- presenting ---------------------------------------------------------------------------------


def test_console_table_lists_metrics_and_failures(run_a):
    text = report.format_run(run_a)
    assert "hit@1  hit@3  hit@5  MRR@10  nDCG@10" in text
    hybrid_row = next(line for line in text.splitlines() if line.startswith("hybrid "))
    assert hybrid_row.split()[1:4] == ["0.667", "1.000", "1.000"]  # q3's second need is at rank 3
    assert "answer accuracy        0.667" in text
    assert "Missed by bm25 only, found by hybrid (1" in text and "q2" in text
    assert "q4  unanswerable  answered" in text
    assert "q3  cross         abstained" in text


def test_report_writes_markdown_and_png(run_a, tmp_path):
    md = report.write_report(run_a, tmp_path / "r" / "report.md")
    png = tmp_path / "r" / "report_hit_at_k.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = md.read_text()
    assert "](report_hit_at_k.png)" in text
    assert "| hybrid | 0.667 | 1.000 | 1.000 |" in text  # hit@1: q3 needs rank 3
    assert "## Answer failures (2)" in text


def _with_settings(run, **settings):
    return replace(run, meta=replace(run.meta, settings={"index_dir": "/somewhere", **settings}))


def test_compare_reports_deltas_and_flips(run_a, run_b):
    c = report.compare_runs(_with_settings(run_a, dense_weight=0.5), _with_settings(run_b, dense_weight=0.4))
    assert c.settings_changed == [("dense_weight", 0.5, 0.4)]
    deltas = {d.name: d for d in c.metrics}
    assert deltas["hybrid hit@5"].delta == pytest.approx(-1 / 3)
    assert deltas["bm25 hit@5"].delta == 0
    assert deltas["answer accuracy"].delta == pytest.approx(-1 / 3)
    flips = {(f.id, f.what, f.before, f.after) for f in c.flips}
    assert flips == {("q2", "hybrid hit@5", True, False), ("q2", "answer", True, False)}
    assert c.only_before == [] and c.only_after == []


def test_compare_command_line(run_a, run_b, tmp_path, capsys):
    a = harness.save_run(_with_settings(run_a, dense_weight=0.5), tmp_path / "a.json")
    b = harness.save_run(_with_settings(run_b, dense_weight=0.4), tmp_path / "b.json")
    assert main(["--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    hybrid = next(line for line in out.splitlines() if line.startswith("hybrid hit@5 "))
    assert hybrid.split()[-3:] == ["1.000", "0.667", "-0.333"]
    assert "hybrid hit@5" in out and "hit -> miss" in out and "correct -> incorrect" in out
    assert "q2" in out
    assert "Settings changed: dense_weight 0.5 -> 0.4" in out


def test_compare_command_line_missing_file(tmp_path, capsys):
    assert main(["--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 2
    assert "No result file" in capsys.readouterr().err
