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


def test_a_place_named_where_a_council_would_be_is_named_in_the_abstention(assistant):
    """Leeds is mentioned once, in passing, in Birmingham's self-assessment: not a council the reports
    cover. Oldham they never mention; both were answered with Birmingham's quotes."""
    for place in ("Leeds", "Oldham"):
        a = assistant.ask(f"What did CQC say about {place}?")
        assert a.abstained and f"none is about {place}" in a.text
    # beside a council the reports cover, it is part of the question, not a council asked about
    b = assistant.ask("How does Birmingham's population compare with Leeds?")
    assert not b.abstained and "Leeds" in b.text


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


# -- quotes that stand on their own ------------------------------------------------------------
LEANING = re.compile(r"^[\"'(]*(?:(?:of|among|in|for|despite) )?(these|this|they|it|however|those|such)\b",
                     re.IGNORECASE)


def test_no_quote_opens_leaning_on_a_sentence_it_does_not_show(assistant):
    """A quote that would open with "These"/"It"/"However" either brings the sentence before it or is left out."""
    from eval.harness import load_questions

    questions = [q.question for q in load_questions() if q.type in ("fact", "paraphrase")][:80]
    leaning = []
    for question in questions:
        a = assistant.ask(question)
        if a.abstained:
            continue
        check_quotes(a)
        leaning += [(question, q.text) for q in a.quotes if LEANING.match(q.text)]
    assert not leaning, leaning[:3]


def test_a_leaning_lead_sentence_brings_the_one_before_it(assistant):
    """The lead quote is one verbatim span: the sentence it leans on, then itself."""
    a = assistant.ask("How many safeguarding complaints did Birmingham have from Ombudsman applications?")
    check_quotes(a)
    assert not any(q.text.startswith("These were") for q in a.quotes)


def test_a_leaning_further_quote_brings_the_sentences_it_leans_on(assistant):
    """The issue's signer question: "They also told us about ... BSL and other interpreters" is not the
    lead sentence, and is quoted with the two sentences it leans on instead of being left out."""
    a = assistant.ask("Can deaf people get a signer at council consultation meetings in Birmingham?")
    check_quotes(a)
    (span,) = [q.text for q in a.quotes if "BSL and other interpreters" in q.text]
    assert span.startswith("The local authority told us about the range of ways")


def test_the_complaints_answer_does_not_append_a_sentence_about_something_else(assistant):
    a = assistant.ask("How many complaints about adult social care did Birmingham receive?")
    assert not any(q.text.startswith("These were in relation") for q in a.quotes)


def test_a_sentence_opening_of_these_is_quoted_in_one_span_with_the_one_it_counts_from(assistant):
    """ "Of these, 45% were about service quality" counts from the 663 complaints: quoted after another
    report sentence (the Ombudsman's 37 applications) it would read as a share of those."""
    a = assistant.ask("How many complaints about adult social care did Birmingham receive?")
    check_quotes(a)
    (span,) = [q.text for q in a.quotes if "663 complaints" in q.text]
    assert not any(q.text.startswith("Of these") for q in a.quotes)
    if "45% were about service quality" in a.text:
        assert "upheld. Of these, 45% were about service quality" in span


def test_a_sentence_that_leans_on_the_quoted_one_before_it_continues_that_quote(assistant):
    """ "Its actual spend was ..." follows the quoted estimate in one span, and so keeps the figure asked for."""
    a = assistant.ask("What was Birmingham's actual spend on adult social care in 2021/22?")
    check_quotes(a)
    (span,) = [q.text for q in a.quotes if "£331,951,000" in q.text]
    assert span.startswith("The local authority estimated") and "Its actual spend was £331,951,000" in span

# -- comparisons ---------------------------------------------------------------------------------
def quotes_by_year(a) -> dict[int, str]:
    """A comparison's quotes by their report's year, once the answer is checked as given and verbatim."""
    assert not a.abstained
    check_quotes(a)
    return {a.citations[q.n - 1].year: q.text for q in a.quotes}


def test_a_comparison_of_councils_quotes_each_side_oldest_report_first(assistant):
    a = assistant.ask("Compare Birmingham and Westminster on the Principal Social Worker's role.")
    assert not a.abstained
    check_quotes(a)
    councils = [a.citations[q.n - 1].council for q in a.quotes]
    assert set(councils) == {"Birmingham City Council", "Westminster City Council"}
    dates = [a.citations[q.n - 1].date for q in a.quotes]
    assert dates == sorted(dates)
    for q in a.quotes:
        assert report_label(a.citations[q.n - 1]) in a.text


def test_a_comparison_of_years_quotes_the_report_of_each_year(assistant):
    a = assistant.ask("How did the Deprivation of Liberty Safeguards backlog in Birmingham change between 2016 and 2023?")
    assert not a.abstained
    check_quotes(a)
    years = [a.citations[q.n - 1].year for q in a.quotes]
    assert years == [2016, 2023]


def test_a_comparison_joining_one_question_per_side_asks_each_side_its_own_part(assistant):
    a = assistant.ask("What did the 2016 peer challenge say about the Better Care Fund, "
                      "and what did CQC find about safeguarding enquiries in 2023?")
    by_year = quotes_by_year(a)
    assert set(by_year) == {2016, 2023}
    assert "Better Care Fund" in by_year[2016]
    assert "safeguarding" in by_year[2023].lower()
    # the answer says what each side searched for
    assert '2023: "what did CQC find about safeguarding enquiries in 2023?"' in a.note


def test_a_comparison_of_reports_named_without_their_years_quotes_each_on_its_topic(assistant):
    # "the peer challenge" is 2016's report and "the CQC assessment" 2023's; each side is searched
    # without the words naming its report, which had drawn the 2016 side to the letter's opening
    # ("I was pleased to lead the peer challenge ...")
    a = assistant.ask("Has the DoLS backlog got better or worse since the peer challenge? "
                      "What did the peer challenge say vs the CQC assessment?")
    by_year = quotes_by_year(a)
    assert set(by_year) == {2016, 2023}
    assert "Deprivation of Liberty" in by_year[2016] and "backlog" in by_year[2023]


# -- answerability -------------------------------------------------------------------------------
def test_the_answerability_model_refuses_features_it_was_not_fitted_on():
    from qa.answerability import FEATURES, AnswerabilityModel

    n = len(FEATURES)
    with pytest.raises(ValueError, match="refit"):
        AnswerabilityModel((0.0,) * n, 0.0, (0.0,) * n, (1.0,) * n, 0.5, features=("other",) * n)
    stored = AnswerabilityModel.load()
    assert stored.features == FEATURES and 0.0 < stored.threshold < 1.0
    assert stored.info["n_dev"] > 0  # fitted on the dev questions, with their cross-validated figures recorded


def test_an_abstention_offers_the_nearest_sections_of_the_council_asked_about_and_says_why(assistant):
    # the example: no report names Westminster's Cabinet Member, though its governance
    # section speaks of its Director and "lead members"
    a = assistant.ask("Who is the Cabinet Member for adult social care in Westminster?")
    assert a.abstained and a.text.startswith(NOT_FOUND)
    assert a.nearest and "nearest sections" in a.text
    assert a.nearest[0].council == "Westminster City Council"
    assert a.note


def test_what_an_acronym_stands_for_is_quoted_where_the_reports_spell_it_out_else_not_found(assistant):
    a = assistant.ask("What does TEC stand for?")
    assert not a.abstained and "Technology Enabled Care (TEC)" in a.quotes[0].text
    # the self-assessment uses "BCELS" and never spells it out
    a = assistant.ask("What does BCELS stand for?")
    assert a.abstained and "do not spell out what BCELS stands for" in a.text


def test_a_rates_base_is_not_the_figure_a_how_many_question_asks_for(assistant):
    from qa.answer import _gives_new_figure

    rate = "Birmingham has proportionately fewer care home beds per 100,000 adults than the regional average."
    assert not _gives_new_figure(rate, "How many beds does the largest care home have?")
    assert _gives_new_figure("There were 1,200 beds, or 95 per 100,000 adults.", "How many beds are there?")
    # the example: no report gives any one care home's beds; the rate above was quoted for it
    a = assistant.ask("How many beds does Birmingham's largest care home have?")
    assert a.abstained and "per 100,000" not in a.text


def test_a_question_only_another_councils_report_comes_near_is_pointed_to_its_own_councils_sections(assistant):
    # Westminster's one report is about governance: the passages nearest a question on waiting for a
    # social worker may all be Birmingham's, which cannot answer a question about Westminster
    question = "How long do people wait for a social worker in Westminster?"
    birmingham = assistant.retriever.search(question, k=assistant.settings.k, council="Birmingham")
    named = {"Westminster City Council"}
    nearest = assistant._nearest_of_named(question, birmingham, named, None, None, None)
    assert nearest and {p.council for p in nearest} == {"Westminster City Council"}
    assert assistant._nearest_of_named(question, birmingham, named, "Birmingham", None, None) == birmingham  # filter
    a = assistant._abstain(question, nearest + nearest, 0.0, "why")
    assert a.nearest and len({(p.title, p.section) for p in a.nearest}) == len(a.nearest)  # each section once


@pytest.mark.parametrize("question", [
    "What is the name of the independent chair of Birmingham's Safeguarding Adults Board?",
    "What is the out-of-hours phone number for Birmingham's Emergency Duty Team?",  # none is quoted
])
def test_a_question_whose_fact_the_reports_lack_abstains(assistant, question):
    assert assistant.ask(question).abstained


def test_a_question_about_something_the_reports_do_not_cover_says_so(assistant):
    a = assistant.ask("What is the boiling point of water?")
    assert a.abstained and "Nothing in these reports comes close" in a.text
    # a place named where a council would be is named in the refusal (see the Leeds test)
    b = assistant.ask("What is the capital of France?")
    assert b.abstained and "none is about France" in b.text


def test_a_person_is_named_in_the_answer_to_who_led_the_case_file_audit(assistant):
    """The name finder does not stop a question whose answer names a person ("Mark Godfrey")."""
    a = assistant.ask("Who led the case file audit in the 2016 peer challenge?")
    assert not a.abstained and "Mark Godfrey" in a.text


@pytest.mark.parametrize("text, statement", [
    ("Adult Social Care CQC Self-Assessment (September 2025)", False),  # a title, though it holds a year
    ("Good: Evidence shows a good standard", True),  # a labelled fact: a rating
    ("Theme 2 Providing Support", False),
    ("Score: 3 - Evidence shows a good standard", True),
    ("The Labour Party runs the council.", True),
    ("Over half of residents are carers.", True),
])
def test_a_short_title_case_line_is_not_quoted_as_a_statement(text, statement):
    from qa.answer import _is_statement

    assert _is_statement(text) is statement


@pytest.mark.parametrize("question", ["And Westminster?", "Why did they do that?", "What's her name?", "And in 2016?"])
def test_a_question_naming_no_topic_asks_for_one_instead_of_answering(assistant, question):
    # a follow-up asked on its own (outside a conversation, which rewrites it) names only a council,
    # a year or pointers: nothing to look for, so no passage is a reason to answer
    a = assistant.ask(question)
    assert a.abstained and "does not say what to look for" in a.text
    assert not a.nearest


def test_a_figure_for_another_financial_year_does_not_answer(assistant):
    """The 2023 assessment gives the 2021/22 spend, and names 2022/23 elsewhere in the same passage."""
    asked = assistant.ask("How much did Birmingham actually spend on adult social care in 2021/22?")
    assert not asked.abstained and "£331,951,000" in asked.text
    other = assistant.ask("How much did Birmingham actually spend on adult social care in 2022/23?")
    assert "£331,951,000" not in other.text


def test_a_question_asking_who_is_answered_only_by_a_sentence_naming_a_person(assistant):
    named = assistant.ask("Who was the peer challenge's case file audit led by?")
    assert not named.abstained and "Mark Godfrey" in named.text
    role_only = assistant.ask("Who was the Director of Adult Social Services in Birmingham when CQC came in 2023?")
    assert role_only.abstained and "name asked for" in role_only.text
