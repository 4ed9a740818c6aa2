"""Quality gate: the hybrid retriever and the answer engine on eval/questions.jsonl must not regress.

The thresholds sit just under the values measured when they were set (shown beside each); raise
them when the retriever or answer engine improves. The run uses the session index and model
(`retriever`, `assistant` fixtures) through the harness's own functions, so it measures exactly
what `python -m eval --retriever hybrid` reports.
"""

from __future__ import annotations

import pytest

from eval.harness import DEFAULT_QUESTIONS, EvalRun, load_questions, run_eval

# Measured 2026-11-23 (`python -m eval`); the same values this test computes.
HYBRID_HIT_AT_5_MIN = 0.90  # measured 0.915 (162/177)
HYBRID_MRR_AT_10_MIN = 0.77  # measured 0.787
ANSWER_ACCURACY_MIN = 0.80  # measured 0.842 (149/177)
ABSTENTION_ACCURACY_MIN = 0.63  # measured 0.682 (15/22)
FALSE_ABSTENTION_MAX = 0.05  # measured 0.028 (5/177); the product promise: at most 1 in 20

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gate_run(retriever, assistant) -> EvalRun:
    return run_eval(retriever, load_questions(DEFAULT_QUESTIONS), assistant=assistant, methods=["hybrid"], k=5,
                    timing=False, questions_file=DEFAULT_QUESTIONS)


def test_hybrid_hit_at_5(gate_run):
    value = gate_run.summary.retrieval["hybrid"].hit(5)
    assert value >= HYBRID_HIT_AT_5_MIN, f"hybrid hit@5 {value:.3f} < {HYBRID_HIT_AT_5_MIN}"


def test_hybrid_mrr_at_10(gate_run):
    value = gate_run.summary.retrieval["hybrid"].mrr
    assert value >= HYBRID_MRR_AT_10_MIN, f"hybrid MRR@10 {value:.3f} < {HYBRID_MRR_AT_10_MIN}"


def test_answer_accuracy(gate_run):
    value = gate_run.summary.answers.accuracy
    assert value >= ANSWER_ACCURACY_MIN, f"answer accuracy {value:.3f} < {ANSWER_ACCURACY_MIN}"


def test_abstention_accuracy(gate_run):
    value = gate_run.summary.answers.abstention_accuracy
    assert value >= ABSTENTION_ACCURACY_MIN, f"abstention accuracy {value:.3f} < {ABSTENTION_ACCURACY_MIN}"


def test_false_abstention_rate(gate_run):
    value = gate_run.summary.answers.false_abstention_rate
    assert value <= FALSE_ABSTENTION_MAX, f"false-abstention rate {value:.3f} > {FALSE_ABSTENTION_MAX}"


def test_every_question_was_scored(gate_run):
    """A question silently skipped would inflate every share above."""
    assert gate_run.summary.retrieval["hybrid"].n == sum(q.answerable for q in load_questions(DEFAULT_QUESTIONS))
    assert gate_run.summary.answers.n_unanswerable >= 10


def test_all_evidence_fits_inside_a_chunk(gate_run):
    """Evidence split across two chunks can never be retrieved whole; a chunking change must not cause it."""
    split = {r.id: r.unreachable for r in gate_run.results if r.unreachable}
    assert not split, f"evidence in no single chunk (question id: need numbers): {split}"
