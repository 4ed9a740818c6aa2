"""Quality gate: the hybrid retriever and the answer engine on eval/questions.jsonl must not regress.

The thresholds sit just under the values measured when they were set (shown beside each); raise
them when the retriever or answer engine improves. The run uses the session index and model
(`retriever`, `assistant` fixtures) through the harness's own functions, so it measures exactly
what `python -m eval --retriever hybrid` reports.
"""

from __future__ import annotations

import pytest

from eval.conversations import load_conversations, run_conversations
from eval.harness import DEFAULT_QUESTIONS, EvalRun, load_questions, run_eval

# Measured 2026-11-29 (`python -m eval`) on 544 questions, of which 334 were written in staff's words
# (lay paraphrases, near misses, comparisons): the 312 of 2026-11-28 and 232 written since without
# looking at the system's answers, which are harder. Each batch was first scored before anything was
# fitted on it: 10 of 30 near misses abstained and 4 of 20 lay answers right for the first, 12 of 25
# and 6 of 15 for the second, 10 of 36 and 4 of 24 for the third (whose lay questions share 2% of
# their content words with the evidence), 10 of 30 and 4 of 20 for the fourth; the fifth and sixth,
# 16 comparisons each, held both sides' facts in 4 answers each. The embedding model is adapted to
# the corpus (qa/adaptation.py); answerability reads word-piece matches and persons' names
# (qa/answerability.py); the fusion's dense weight rises when BM25 finds little (`Retriever._dense_weight`).
HYBRID_HIT_AT_5_MIN = 0.77  # measured 0.787 (280/356); 0.825 on the dev part
HYBRID_MRR_AT_10_MIN = 0.62  # measured 0.634
ANSWER_ACCURACY_MIN = 0.64  # measured 0.654 (233/356)
ABSTENTION_ACCURACY_MIN = 0.52  # measured 0.564 (106/188; the dev part is in-sample)
# The product promise is 1 in 20: the threshold is calibrated to it on the dev questions under
# cross-validation (5.0%); measured 0.053 here (19/356; held out 6 of 76, dev 4.6%).
FALSE_ABSTENTION_MAX = 0.06
# Plain facts in the reports' own words must stay where they are.
FACT_HIT_AT_5_MIN = 0.98  # measured 0.991 (113/114, with the 11 quality-statement scores); stock 0.982
FACT_ANSWER_ACCURACY_MIN = 0.95  # measured 0.965 (110/114); 0.947 before
# eval/conversations.jsonl through `qa.Conversation` (`python -m eval --conversations ...`), measured
# 2026-11-29 (session 15): all 452 turns 0.748 (338), the 261 follow-ups 0.663 (173; raw 0.502). Three
# batches were written blind this session and scored before anything changed for them: c121-c134's and
# c135-c148's follow-ups right 10 and 13 of 24 (13 and 15 after the mends they showed; dev split now),
# c149-c162's 16 of 24 (held out, nothing changed for them). Before them (session 14): 332 turns
# 0.750, follow-ups 0.677; with this session's code, 0.759 and 0.683.
CONVERSATION_TURNS_MIN = 0.74
FOLLOW_UPS_MIN = 0.65

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


def test_fact_questions_keep_their_retrieval_and_answers(gate_run):
    facts = gate_run.summary.by_type["fact"]
    assert facts.retrieval["hybrid"].hit(5) >= FACT_HIT_AT_5_MIN
    assert facts.answers.accuracy >= FACT_ANSWER_ACCURACY_MIN


def test_every_question_was_scored(gate_run):
    """A question silently skipped would inflate every share above."""
    assert gate_run.summary.retrieval["hybrid"].n == sum(q.answerable for q in load_questions(DEFAULT_QUESTIONS))
    assert gate_run.summary.answers.n_unanswerable >= 10


def test_all_evidence_fits_inside_a_chunk(gate_run):
    """Evidence split across two chunks can never be retrieved whole; a chunking change must not cause it."""
    split = {r.id: r.unreachable for r in gate_run.results if r.unreachable}
    assert not split, f"evidence in no single chunk (question id: need numbers): {split}"


def test_every_quality_statement_score_is_answered(gate_run):
    """Each quality statement's indicative score, asked as staff ask it, is answered with that score."""
    questions = {q.id: q for q in load_questions(DEFAULT_QUESTIONS)}
    scores = [r for r in gate_run.results if any("Evidence shows" in a for a in questions[r.id].answer)]
    assert len(scores) >= 11
    wrong = [(r.id, questions[r.id].question) for r in scores if not r.correct]
    assert not wrong, wrong


def test_conversations_keep_their_follow_ups(assistant):
    turns = run_conversations(assistant, load_conversations())
    follow_ups = [t for t in turns if t.dependency not in ("none", "topic_switch")]
    share = sum(t.correct["system"] for t in turns) / len(turns)
    assert share >= CONVERSATION_TURNS_MIN, f"conversation turns right {share:.3f} < {CONVERSATION_TURNS_MIN}"
    share = sum(t.correct["system"] for t in follow_ups) / len(follow_ups)
    assert share >= FOLLOW_UPS_MIN, f"follow-ups right {share:.3f} < {FOLLOW_UPS_MIN}"
    # the rewriting is what carries them: without it (each question asked alone) far fewer are right
    assert sum(t.correct["system"] for t in follow_ups) > sum(t.correct["raw"] for t in follow_ups) + 10
