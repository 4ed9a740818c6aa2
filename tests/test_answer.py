"""Extractive answers: verbatim quotes, numbered citations, report and date named, honest abstention."""

import re

import pytest

from qa import QueryError, answer
from qa.answer import NOT_FOUND, report_label

pytestmark = pytest.mark.slow


def check_quotes(a):
    """Every quoted sentence is in its cited passage, at its offsets, and in the answer text with its marker."""
    assert a.citations and a.quotes
    for q in a.quotes:
        passage = a.citations[q.n - 1]
        assert passage.text[q.start : q.end] == q.text
        assert f'"{q.text}" [{q.n}]' in a.text
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", a.text)}
    assert markers == set(range(1, len(a.citations) + 1))


def test_a_corpus_question_gets_a_cited_verbatim_answer(assistant):
    a = assistant.ask("How many complaints about adult social care did Birmingham receive?")
    assert not a.abstained
    check_quotes(a)
    assert "663" in a.text
    assert a.citations[0].doc_id.startswith("001")
    assert report_label(a.citations[0]) in a.text  # the report and its date introduce the quote
    assert "17 November 2023" in a.text


def test_answers_from_different_reports_say_which_is_which(assistant):
    a = assistant.ask("What was the Deprivation of Liberty Safeguards backlog in 2016 and in 2023?")
    assert not a.abstained
    check_quotes(a)
    for p in a.citations:
        assert report_label(p) in a.text


def test_westminster_is_named_when_the_answer_comes_from_its_report(assistant):
    a = assistant.ask("What was the workforce turnover rate in Westminster?")
    assert not a.abstained and "5.3%" in a.text
    assert "Westminster" in a.text.split('"')[0]


@pytest.mark.parametrize("question", [
    "What is the capital of France?",
    "Who won the football World Cup in 2018?",
])
def test_out_of_corpus_questions_abstain_with_nearest_sections(assistant, question):
    a = assistant.ask(question)
    assert a.abstained and a.text.startswith(NOT_FOUND)
    assert a.citations == [] and not re.search(r"\[\d+\]", a.text)
    assert a.nearest and "The nearest sections are:" in a.text


def test_a_council_outside_the_corpus_is_named_in_the_abstention(assistant):
    a = assistant.ask("What rating did CQC give Leeds City Council for safeguarding?")
    assert a.abstained and "Leeds City Council" in a.text and "Birmingham City Council" in a.text


def test_an_answer_that_misses_what_was_asked_abstains(assistant):
    """Passages about care homes and beds, but none naming the home asked about: no answer."""
    a = assistant.ask("How many beds does Perry Tree Care Centre have?")
    assert a.abstained and "do not mention" in a.text and "Perry" in a.text
    assert a.nearest


def test_filters_reach_the_answer(assistant):
    a = assistant.ask("What did the leaders do about governance?", council="Westminster")
    assert not a.abstained and {p.council for p in a.citations} == {"Westminster City Council"}


@pytest.mark.parametrize("question", ["", "   ", "x" * 5000])
def test_bad_questions_raise_query_error(assistant, question):
    with pytest.raises(QueryError):
        assistant.ask(question)


def test_json_and_the_answer_function(assistant):
    a = answer("How many councillors does Birmingham City Council have?", assistant=assistant)
    data = a.to_json()
    assert set(data) >= {"answer", "abstained", "citations"}
    assert data["answer"] == a.text and data["citations"][0]["n"] == 1
    assert data["citations"][0]["citation"] == a.citations[0].citation
    with pytest.raises(QueryError):
        answer(None, assistant=assistant)
