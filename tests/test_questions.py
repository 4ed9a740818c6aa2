"""The question set itself: well formed, and every piece of evidence really is in the corpus."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from eval.harness import QUESTION_TYPES, SPLITS, UNANSWERABLE_TYPES, normalise

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "eval" / "questions.jsonl"
CORPUS = ROOT / "corpus"
REQUIRED = {"id": str, "type": str, "question": str, "evidence": list, "answer": list}
ALLOWED = set(REQUIRED) | {"evidence_all", "answer_all", "split"}


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    lines = [ln for ln in QUESTIONS.read_text(encoding="utf-8").splitlines() if ln.strip()]
    out = []
    for number, line in enumerate(lines, start=1):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            pytest.fail(f"line {number} is not JSON: {exc}")
    return out


@pytest.fixture(scope="module")
def corpus() -> dict[str, str]:
    """doc_id -> normalised text of each catalogued file (HTML superscripts stripped, as qa does)."""
    catalogue = json.loads((CORPUS / "catalogue.json").read_text(encoding="utf-8"))["documents"]
    return {d["doc_id"]: normalise(re.sub(r"</?sup>", "", (CORPUS / d["file"]).read_text(encoding="utf-8")))
            for d in catalogue}


def test_every_line_has_the_required_keys_and_types(rows):
    problems = []
    for row in rows:
        for key, kind in REQUIRED.items():
            if not isinstance(row.get(key), kind):
                problems.append(f"{row.get('id')}: {key} should be {kind.__name__}")
        if "evidence_all" in row and not isinstance(row["evidence_all"], list):
            problems.append(f"{row.get('id')}: evidence_all should be a list")
        if set(row) - ALLOWED:
            problems.append(f"{row.get('id')}: unknown keys {sorted(set(row) - ALLOWED)}")
        if row.get("type") not in QUESTION_TYPES:
            problems.append(f"{row.get('id')}: type {row.get('type')!r}")
        if row.get("split", "dev") not in SPLITS:
            problems.append(f"{row.get('id')}: split {row.get('split')!r}")
        for key in ("evidence", "answer", "evidence_all", "answer_all"):
            if any(not isinstance(s, str) or not s.strip() for s in row.get(key, [])):
                problems.append(f"{row.get('id')}: {key} holds an empty or non-string item")
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            problems.append(f"{row.get('id')}: empty question")
    assert not problems, "\n".join(problems)


def test_ids_are_unique(rows):
    repeated = [i for i, n in Counter(r["id"] for r in rows).items() if n > 1]
    assert not repeated


def test_answers_and_evidence_empty_exactly_for_unanswerable(rows):
    wrong = [r["id"] for r in rows
             if (r["type"] in UNANSWERABLE_TYPES) != (not r["answer"])
             or (r["type"] in UNANSWERABLE_TYPES) != (not r["evidence"])
             or (r["type"] in UNANSWERABLE_TYPES and (r.get("evidence_all") or r.get("answer_all")))]
    assert not wrong


def test_size_and_mix(rows):
    types = Counter(r["type"] for r in rows)
    assert len(rows) >= 300
    assert types["unanswerable"] >= 10
    assert types["lay"] >= 40 and types["near_miss"] >= 40 and types["comparison"] >= 10, types
    assert set(types) == set(QUESTION_TYPES), types
    heldout = Counter(r["type"] for r in rows if r.get("split") == "heldout")
    assert all(heldout[t] >= 5 for t in ("lay", "near_miss")), "a part of the new questions is kept aside"


def test_each_answer_all_string_is_in_its_own_evidence(rows):
    """A comparison needs one figure from each side: each answer_all string sits in some evidence_all string."""
    wrong = [r["id"] for r in rows for a in r.get("answer_all", [])
             if not any(normalise(a) in normalise(e) for e in r.get("evidence_all", []))]
    assert not wrong


def test_every_evidence_string_is_in_the_corpus(rows, corpus):
    missing = [(r["id"], s) for r in rows for s in {*r["evidence"], *r.get("evidence_all", [])}
               if not any(normalise(s) in text for text in corpus.values())]
    assert not missing, "\n".join(f"{qid}: {s!r}" for qid, s in missing)


def test_evidence_all_strings_are_also_evidence(rows):
    """The harness reads `evidence` for any-of matching; an `evidence_all` string missing there is a typo."""
    wrong = [r["id"] for r in rows if not set(r.get("evidence_all", [])) <= set(r["evidence"])]
    assert not wrong


def test_each_answerable_question_has_an_answer_inside_its_evidence(rows):
    """An answer string that its own evidence does not contain cannot be quoted from that evidence."""
    unsupported = [r["id"] for r in rows if r["answer"] and not any(
        normalise(a) in normalise(e) for a in r["answer"] for e in [*r["evidence"], *r.get("evidence_all", [])])]
    assert not unsupported


def test_every_document_is_represented(rows, corpus):
    used = {doc for r in rows for s in r["evidence"] for doc, text in corpus.items() if normalise(s) in text}
    assert set(corpus) <= used, f"no question has evidence in {sorted(set(corpus) - used)}"
