"""Follow-up questions: each kind of dependency is rewritten into a standalone question, a new topic
is left alone, a place or year the reports do not cover abstains, and `reset` forgets the topic.

Real model and index (conftest's session fixtures). The conversations here are written for these
tests, not taken from eval/conversations.jsonl.
"""

from __future__ import annotations

import pytest

from qa import Conversation, QueryError
from qa.answer import NOT_FOUND
from qa.conversation import Rewriter

pytestmark = pytest.mark.slow

COMPLAINTS = "How many complaints about adult social care did Birmingham receive?"
GOVERNANCE_BIRMINGHAM = "What score did Birmingham get for governance?"
GOVERNANCE_WESTMINSTER = "What score did Westminster get for governance?"
TURNOVER = "What was Westminster's adult social care workforce turnover rate in 2023/24?"


def turn(chat: Conversation, question: str):
    """Ask, and return (answer, how the question was read)."""
    a = chat.ask(question)
    return a, chat.turns[-1].rewrite


def test_first_question_is_asked_as_it_is(assistant):
    chat = Conversation(assistant)
    a, rw = turn(chat, COMPLAINTS)
    assert rw.kind == "none" and a.query == COMPLAINTS and a.question == COMPLAINTS
    assert not a.abstained and "663" in a.text
    assert a.to_json()["query"] == COMPLAINTS


def test_entity_swap_keeps_the_topic_and_answers_from_the_named_councils_report(assistant):
    chat = Conversation(assistant)
    first, _ = turn(chat, GOVERNANCE_BIRMINGHAM)
    assert {p.council for p in first.citations} == {"Birmingham City Council"}
    a, rw = turn(chat, "And Westminster?")
    assert rw.kind == "entity_swap"
    assert a.question == "And Westminster?"  # what the user asked...
    assert "westminster" in a.query.lower() and "governance" in a.query.lower()  # ...and what was searched
    assert "birmingham" not in a.query.lower()
    assert not a.abstained
    assert {p.council for p in a.citations} == {"Westminster City Council"}


def test_year_swap_carries_topic_and_council_and_puts_the_new_year_in(assistant):
    chat = Conversation(assistant)
    turn(chat, COMPLAINTS)
    a, rw = turn(chat, "And in 2016?")
    assert rw.kind == "year_swap"
    q = a.query.lower()
    assert "2016" in q and "complaints" in q and "birmingham" in q


def test_year_swap_replaces_the_year_as_written(assistant):
    chat = Conversation(assistant)
    turn(chat, TURNOVER)
    a, rw = turn(chat, "and in 2024-25?")
    assert rw.kind == "year_swap"
    assert "2024-25" in a.query and "2023/24" not in a.query and "turnover" in a.query


@pytest.mark.parametrize("follow_up, report", [("And in 2023?", "the 2023 CQC assessment"),
                                                ("And in 2025?", "the 2025 self-assessment"),
                                                ("And in 2019?", "in 2019")])  # no report is from 2019
def test_a_year_swap_names_that_years_report_not_the_old_report_with_a_new_year(assistant, follow_up, report):
    rw = Rewriter(assistant).rewrite(follow_up, "How many carers did Birmingham support according to the 2016 "
                                                "peer challenge?")
    assert rw.kind == "year_swap"
    assert report in rw.query and "peer challenge" not in rw.query and "carers" in rw.query


@pytest.mark.parametrize("follow_up, expected, gone", [
    ("And in 2016?", "in 2016 according to the 2016 peer challenge", "2025"),  # 2016 has a report of its own
    ("And in 2024?", "in 2024 according to the 2025 self-assessment", "2023")])  # no 2024 report: a data year
def test_a_year_swap_after_a_data_year_and_a_report_names_the_new_years_report_if_there_is_one(
        assistant, follow_up, expected, gone):
    rw = Rewriter(assistant).rewrite(follow_up, "What was Birmingham's population in 2023 according to the 2025 "
                                                "self-assessment?")
    assert rw.kind == "year_swap"
    assert expected in rw.query and gone not in rw.query and "population" in rw.query


def test_a_year_swap_after_a_possessive_keeps_the_possessive_without_an_article(assistant):
    rw = Rewriter(assistant).rewrite("And in 2023?", "How many carers were supported in Birmingham's 2025 "
                                                     "self-assessment?")
    assert "Birmingham's 2023 CQC assessment" in rw.query and "'s the" not in rw.query


def test_a_party_the_reports_name_is_not_read_as_a_place(assistant):
    """The reports write "The Labour Party" and "Labour-led": a name, not a council no report covers."""
    rw = Rewriter(assistant).rewrite("And how many are Labour?", "How many councillors does Birmingham have?")
    assert rw.kind != "entity_swap" and not rw.uncovered and "Labour Council" not in rw.query


def test_a_year_swap_to_a_year_no_report_is_from_drops_the_words_naming_another_years_report(assistant):
    rw = Rewriter(assistant).rewrite("And in 2024?", "What did CQC find about direct payments in Birmingham in 2023?")
    assert rw.kind == "year_swap"
    assert "2024" in rw.query and "CQC" not in rw.query and "the reports" in rw.query and "direct payments" in rw.query


def test_anaphora_replaces_the_pronoun_with_the_phrase_it_stands_for(assistant):
    chat = Conversation(assistant)
    turn(chat, "What is the Birmingham Care Wage?")
    a, rw = turn(chat, "How much does it pay?")
    assert rw.kind == "anaphora"
    assert "Birmingham Care Wage" in a.query
    assert " it " not in f" {a.query.lower()} "


@pytest.mark.parametrize("first, follow_up, name", [
    ("What did the 2016 peer challenge say about the Birmingham Care Wage?", "What hourly rate did it pay?",
     "the Birmingham Care Wage pay"),
    ("Which award was Birmingham's Care Homes Infection Prevention Control Service shortlisted for?",
     "Since when has it been running?", "Care Homes Infection Prevention Control Service been"),
])
def test_a_pronoun_stands_for_a_whole_name_not_part_of_one(assistant, first, follow_up, name):
    chat = Conversation(assistant)
    turn(chat, first)
    a, rw = turn(chat, follow_up)
    assert rw.kind == "anaphora" and name in a.query


def test_a_pronoun_does_not_stand_for_a_verb_and_its_subject(assistant):
    """ "when CQC inspected it": "CQC inspected" is followed by a pronoun, so it is no noun phrase."""
    rw = Rewriter(assistant).rewrite("Who carried it out?",
                                     "How many carers had a review in Westminster when CQC inspected it?")
    assert rw.kind == "anaphora"
    assert "review" in rw.query and "inspected" not in rw.query


def test_a_question_word_after_a_preposition_still_continues_the_topic(assistant):
    rw = Rewriter(assistant).rewrite("Over how many days?", "When did the peer challenge team visit Birmingham?")
    assert rw.kind == "ellipsis"
    assert "days" in rw.query and "peer challenge" in rw.query and "Birmingham" in rw.query


def test_a_closing_too_adds_to_the_question_before(assistant):
    rw = Rewriter(assistant).rewrite("Did Westminster see a fall too?",
                                     "Did Birmingham's DoLS backlog fall between 2023 and 2025?")
    assert rw.kind == "ellipsis"
    assert "Westminster" in rw.query and "DoLS" in rw.query and "too" not in rw.query.split()


def test_a_demonstrative_before_its_noun_carries_the_previous_topic(assistant):
    rw = Rewriter(assistant).rewrite("What were those rates?",
                                     "Did Westminster's workforce turnover beat the London rates?")
    assert rw.kind == "anaphora"
    assert "turnover" in rw.query and "those" not in rw.query and "Westminster" in rw.query


@pytest.mark.parametrize("follow_up, figure", [("How many were over 65?", "over 65"), ("And under 18s?", "under 18"),
                                              ("how many over 90 days?", "over 90 days")])
def test_a_follow_up_that_only_adds_a_figure_keeps_the_topic_and_the_figure(assistant, follow_up, figure):
    rw = Rewriter(assistant).rewrite(follow_up, "How many people were on the waiting list in Birmingham?")
    assert rw.kind == "ellipsis"
    assert figure in rw.query and "waiting list" in rw.query and "Birmingham" in rw.query


def test_that_before_the_end_of_a_phrasal_verb_points_back(assistant):
    """ "sort that out": "that" is the verb's object, not a relative pronoun after a noun or verb."""
    rw = Rewriter(assistant).rewrite("When will the council sort that out?",
                                     "Why were young people waiting for a transition assessment in Birmingham?")
    assert rw.kind == "anaphora"
    assert " that " not in rw.query and "Birmingham" in rw.query


def test_a_question_naming_another_report_with_few_words_of_its_own_is_the_question_before_asked_of_it(assistant):
    previous = "How many young people were stuck waiting for a transitions assessment in Birmingham in 2023?"
    rw = Rewriter(assistant).rewrite("what's the target date in the 2025 self-assessment?", previous)
    assert rw.kind == "year_swap"
    assert "transitions assessment" in rw.query and "2025 self-assessment" in rw.query and "2023" not in rw.query
    # a new question naming another report stays as it is
    new = "What does the 2025 self-assessment say about the gender pay gap?"
    rw = Rewriter(assistant).rewrite(new, "How many people used direct payments in Birmingham in 2023?")
    assert rw.kind == "none" and rw.query == new


def test_that_before_a_participle_is_the_subject_not_a_demonstrative(assistant):
    rw = Rewriter(assistant).rewrite("has that improved?",
                                     "How long were safeguarding enquiries taking in Birmingham in 2023?")
    assert rw.kind == "anaphora"
    assert "the improved" not in rw.query.lower() and "improved" in rw.query and "safeguarding" in rw.query


@pytest.mark.parametrize("follow_up", ["has that improved since?", "is it still like that?"])
def test_a_pointer_asked_of_the_present_is_the_question_before_asked_of_the_latest_report(assistant, follow_up):
    rw = Rewriter(assistant).rewrite(follow_up, "how long were safeguarding enquiries taking in birmingham when "
                                                "cqc looked at it in 2023?")
    assert rw.kind == "year_swap"
    assert rw.query == "How long were safeguarding enquiries taking in birmingham in the 2025 self-assessment?"


@pytest.mark.parametrize("previous, follow_up, expected", [
    ("How long did a safeguarding enquiry take in Birmingham in 2023?", "and now?",
     "How long did a safeguarding enquiry take in Birmingham in 2025?"),
    ("How many people used direct payments in Birmingham in 2016?", "what about these days?",
     "How many people used direct payments in Birmingham in 2025?"),
])
def test_a_follow_up_about_the_present_asks_the_latest_report(assistant, previous, follow_up, expected):
    rw = Rewriter(assistant).rewrite(follow_up, previous)
    assert rw.query == expected and rw.kind == "year_swap"


@pytest.mark.parametrize("follow_up, year", [("and the year after?", "2022/23"),
                                             ("what about the previous year", "2020/21"),
                                             ("and a year later?", "2022/23")])
def test_a_year_given_by_the_one_before_is_put_as_that_year(assistant, follow_up, year):
    previous = "How much did Birmingham actually spend on adult social care in 2021/22?"
    rw = Rewriter(assistant).rewrite(follow_up, previous)
    assert rw.kind == "year_swap"
    assert rw.query == f"How much did Birmingham actually spend on adult social care in {year}?"


def test_a_follow_up_about_the_present_after_the_latest_report_changes_nothing(assistant):
    previous = "How long did a safeguarding enquiry take in Birmingham in 2025?"
    assert Rewriter(assistant).rewrite("and now?", previous).query == previous


def test_there_carries_the_council_before_whatever_the_question_s_own_topic(assistant):
    rw = Rewriter(assistant).rewrite("who stands in for the adult social care director there?",
                                     "What other jobs does Westminster's Director of Adult Social Care hold?")
    assert rw.kind == "anaphora"
    assert rw.query == "Who stands in for the adult social care director in Westminster?"


def test_one_after_a_preposition_stands_for_a_noun_said_before(assistant):
    rw = Rewriter(assistant).rewrite("how long are people waiting for one at the moment?",
                                     "How many OT assessments did Birmingham do in 2024?")
    assert rw.kind == "anaphora"
    assert "OT" in rw.query and " one " not in rw.query and "Birmingham" in rw.query
    # a number, not a pointer
    assert not Rewriter(assistant).read("Is one of the teams short of staff?").pointers


def test_a_question_whose_own_words_are_few_besides_a_report_continues_the_topic(assistant):
    """ "What's the plan in the 2025 self-assessment?" has one word of its own: the report it names
    does not make it a new topic."""
    rw = Rewriter(assistant).rewrite("What's the plan in the 2025 self-assessment?",
                                     "How long were people waiting for a Care Act assessment in Birmingham in 2023?")
    assert rw.kind == "ellipsis"
    assert "2025 self-assessment" in rw.query and "Birmingham" in rw.query and "2023" not in rw.query
    assert len(rw.query) > len(rw.question) + len(" in Birmingham")  # a topic of the question before came with it


def test_her_before_a_noun_is_possessive_and_asks_for_a_name(assistant):
    """ "What's her name?" about the therapist Westminster appointed: no report names her."""
    chat = Conversation(assistant)
    turn(chat, "When did Westminster appoint a Principal Occupational Therapist?")
    a, rw = turn(chat, "What's her name?")
    assert "Principal Occupational Therapist's name" in a.query
    assert a.abstained


def test_a_why_question_about_the_previous_one_keeps_its_topic_with_its_own_question_word(assistant):
    chat = Conversation(assistant)
    turn(chat, "When did the peer challenge team visit Birmingham?")
    a, rw = turn(chat, "Why did they do that?")
    assert rw.kind == "anaphora"
    assert a.query.lower().startswith("why") and "peer challenge" in a.query.lower()


@pytest.mark.parametrize("previous, expected", [
    ("When did Westminster appoint a Principal Occupational Therapist?",
     "Why did Westminster appoint a Principal Occupational Therapist?"),
    ("What did CQC say about the DoLS backlog in Birmingham?",
     "What did CQC say about the DoLS backlog in Birmingham, and why?"),
    ("Who led the 2016 peer challenge of Birmingham?", "Who led the 2016 peer challenge of Birmingham, and why?"),
])
def test_a_bare_why_takes_the_place_of_the_question_word_only_where_that_stays_english(assistant, previous, expected):
    rw = Rewriter(assistant).rewrite("why?", previous)
    assert rw.query == expected


def test_ellipsis_carries_the_council_and_drops_then(assistant):
    chat = Conversation(assistant)
    turn(chat, GOVERNANCE_WESTMINSTER)
    a, rw = turn(chat, "what about waiting times then?")
    assert rw.kind == "ellipsis"
    q = a.query.lower()
    assert "waiting times" in q and "westminster" in q and "then" not in q.split()


def test_a_bare_phrase_on_a_new_topic_is_searched_on_its_own_with_the_council_carried(assistant):
    chat = Conversation(assistant)
    turn(chat, COMPLAINTS)
    a, rw = turn(chat, "And the DoLS backlog?")
    q = a.query.lower()
    assert "dols backlog" in q and "birmingham" in q and "complaints" not in q
    assert not a.abstained and "Deprivation of Liberty" in a.text


def test_a_bare_phrase_ending_in_the_noun_of_a_name_before_takes_that_names_place(assistant):
    chat = Conversation(assistant)
    turn(chat, "Is housing represented on Birmingham's Health and Wellbeing Board?")
    a, rw = turn(chat, "And the safeguarding boards?")
    assert rw.kind == "ellipsis"
    assert a.query == "Is housing represented on the safeguarding boards in Birmingham?"
    assert "Safeguarding Board" in a.text  # the report says housing sits on both safeguarding boards
    # a phrase whose noun no name of the question before ends in: searched with the council carried
    _, rw = turn(chat, "And the DoLS backlog?")
    assert rw.query == "What about the DoLS backlog in Birmingham?"


def test_a_bare_phrase_the_corpus_answers_better_after_the_question_before_is_joined_to_it(assistant):
    chat = Conversation(assistant)
    turn(chat, "What share of people used direct payments in Birmingham according to the 2023 CQC report?")
    a, rw = turn(chat, "What about carers?")
    assert rw.kind == "ellipsis"
    assert "direct payments" in a.query and a.query.endswith("(carers)?")
    assert "carers receiving direct payments" in a.text


def test_an_adverb_of_time_is_not_a_topic(assistant):
    rw = Rewriter(assistant).rewrite("And back in 2016?", "How big was Birmingham's DoLS backlog in 2023?")
    assert rw.kind == "year_swap"
    assert rw.query == "How big was Birmingham's DoLS backlog in 2016?"


def test_a_very_short_question_leans_on_the_one_before(assistant):
    chat = Conversation(assistant)
    turn(chat, COMPLAINTS)
    a, rw = turn(chat, "How many were upheld?")
    assert rw.kind == "ellipsis"
    assert "birmingham" in a.query.lower() and "upheld" in a.query.lower()


def test_a_new_topic_is_left_alone(assistant):
    chat = Conversation(assistant)
    turn(chat, COMPLAINTS)
    a, rw = turn(chat, TURNOVER)
    assert rw.kind == "none" and a.query == TURNOVER
    assert not a.abstained and "5.3%" in a.text
    # nor is a new topic that names no council: Westminster is not carried into it
    a, rw = turn(chat, "What is the DoLS backlog?")
    assert rw.kind == "none" and a.query == "What is the DoLS backlog?"


@pytest.mark.parametrize("follow_up, place", [("And Leeds?", "Leeds"),
                                              ("What about Manchester City Council?", "Manchester")])
def test_a_follow_up_about_a_council_no_report_covers_abstains(assistant, follow_up, place):
    chat = Conversation(assistant)
    turn(chat, COMPLAINTS)
    a, rw = turn(chat, follow_up)
    assert rw.kind == "entity_swap" and place in rw.uncovered
    assert place in a.query and "complaints" in a.query
    assert a.abstained and a.text.startswith(NOT_FOUND) and not a.citations
    assert place in a.note


@pytest.mark.parametrize("follow_up, council", [("same for leeds?", "Leeds Council"),
                                                ("what about north yorkshire?", "North Yorkshire Council"),
                                                ("coventry do it the same way?", "Coventry Council")])
def test_a_council_typed_in_lower_case_is_recognised_and_abstains(assistant, follow_up, council):
    chat = Conversation(assistant)
    turn(chat, COMPLAINTS)
    a, rw = turn(chat, follow_up)
    assert rw.uncovered.lower() == council.lower().removesuffix(" council")
    assert council in a.query and "Birmingham" not in a.query
    assert a.abstained and not a.citations


@pytest.mark.parametrize("question, place", [
    ("What did CQC find in leeds?", "leeds"),
    ("After reading the report, what did CQC say about carers?", ""),  # a word, not Reading
    ("Can I get help with a bath at home?", ""),
    ("How did Birmingham compare with Wolverhampton?", "Wolverhampton"),
])
def test_english_councils_are_places_only_where_a_council_would_stand(assistant, question, place):
    assert Rewriter(assistant).read(question).place == place


def test_a_question_about_a_council_typed_in_lower_case_abstains_naming_it_properly(assistant):
    a = assistant.ask("what did CQC find about carers in leeds?")
    assert a.abstained and not a.citations
    assert "none is about Leeds" in a.note


def test_a_follow_up_about_a_year_the_reports_never_mention_abstains(assistant):
    chat = Conversation(assistant)
    turn(chat, COMPLAINTS)
    a, rw = turn(chat, "And in 1987?")
    assert rw.kind == "year_swap" and rw.uncovered == "1987"
    assert a.abstained and not a.citations and "1987" in a.note


def test_names_in_a_first_question_are_not_taken_for_unknown_places(assistant):
    chat = Conversation(assistant)
    a, rw = turn(chat, "What is the Birmingham Care Wage?")
    assert rw.uncovered == "" and not a.abstained


def test_reset_starts_a_new_topic(assistant):
    chat = Conversation(assistant)
    turn(chat, COMPLAINTS)
    chat.reset()
    assert chat.turns == []
    a, rw = turn(chat, "And what about Westminster?")
    assert rw.kind == "none" and a.query == "And what about Westminster?"
    assert len(chat.turns) == 1


@pytest.mark.parametrize("bad", ["", "   ", None, 42, "x" * 5000])
def test_bad_input_raises_and_leaves_the_conversation_unchanged(assistant, bad):
    chat = Conversation(assistant)
    turn(chat, COMPLAINTS)
    with pytest.raises(QueryError):
        chat.ask(bad)
    assert [t.question for t in chat.turns] == [COMPLAINTS]
    # the next follow-up still leans on the last good turn
    a, rw = turn(chat, "And in 2016?")
    assert "complaints" in a.query.lower() and "2016" in a.query


def test_only_the_latest_turns_are_kept(assistant):
    chat = Conversation(assistant, max_turns=2)
    for q in (COMPLAINTS, GOVERNANCE_BIRMINGHAM, "And Westminster?"):
        chat.ask(q)
    assert [t.question for t in chat.turns] == [GOVERNANCE_BIRMINGHAM, "And Westminster?"]
    a, _ = turn(chat, "And in 2016?")  # still read against the latest turn
    assert "governance" in a.query.lower() and "2016" in a.query
    with pytest.raises(ValueError, match="max_turns"):
        Conversation(assistant, max_turns=0)


def test_ask_extractive_records_the_turn_and_update_last_replaces_its_answer(assistant):
    chat = Conversation(assistant)
    turn(chat, GOVERNANCE_BIRMINGHAM)
    answer, passages = chat.ask_extractive("And Westminster?")
    assert passages and not answer.abstained
    assert {p.council for p in answer.citations} == {"Westminster City Council"}
    assert chat.turns[-1].answer.text == answer.text and "Westminster" in answer.query
    from dataclasses import replace

    chat.update_last(replace(answer, text="a checked model answer", mode="some-model"))
    last = chat.turns[-1]
    assert last.answer.text == "a checked model answer" and last.answer.query == answer.query
    assert last.answer.question == "And Westminster?"


# -- with a language model (the scripted server of tests/test_generate.py) ---------------------------
@pytest.fixture
def llm_assistant(assistant):
    from test_generate import serving

    from qa.answer import Assistant

    with serving() as fake:
        yield Assistant(assistant.retriever, llm=fake.settings(timeout=5)), fake


def _rewrite_requests(fake) -> list[dict]:
    return [r for r in fake.requests if "Follow-up question:" in r["messages"][-1]["content"]]


def test_a_model_may_write_the_standalone_question(llm_assistant):
    assistant, fake = llm_assistant
    chat = Conversation(assistant)
    fake.reply = "What score did Westminster City Council get for governance?"
    chat.rewrite(GOVERNANCE_BIRMINGHAM)  # reading a first question asks no model
    assert _rewrite_requests(fake) == []
    chat.ask(GOVERNANCE_BIRMINGHAM)
    assert _rewrite_requests(fake) == []  # a first question is not rewritten
    fake.reply = "What score did Westminster City Council get for governance?"
    chat.ask("And Westminster?")
    sent = _rewrite_requests(fake)
    assert len(sent) == 1 and "And Westminster?" in sent[0]["messages"][-1]["content"]
    rw = chat.turns[-1].rewrite
    assert rw.query == "What score did Westminster City Council get for governance?"
    assert "language model" in rw.reason and rw.kind == "entity_swap"


@pytest.mark.parametrize("reply, why", [
    ("What score did Birmingham get for governance?", "council"),  # drops the council the follow-up names
    ("What score did Westminster get for governance in 2019?", "neither question"),  # invents a year
    ("Westminster?\nAlso, here is a poem.", "sensible"),
])
def test_a_models_rewrite_that_fails_the_checks_gives_way_to_the_rules(llm_assistant, reply, why):
    assistant, fake = llm_assistant
    chat = Conversation(assistant)
    chat.ask(GOVERNANCE_BIRMINGHAM)
    fake.reply = reply
    chat.ask("And Westminster?")
    rw = chat.turns[-1].rewrite
    assert rw.query != reply and "Westminster" in rw.query and "governance" in rw.query
    assert "not used" in rw.reason and why in rw.reason


def test_an_unreachable_model_leaves_the_rules_rewrite(llm_assistant):
    assistant, fake = llm_assistant
    chat = Conversation(assistant)
    chat.ask(GOVERNANCE_BIRMINGHAM)
    fake.behaviour = "http500"
    a = chat.ask("And Westminster?")
    rw = chat.turns[-1].rewrite
    assert rw.kind == "entity_swap" and "Westminster" in a.query and "could not rewrite" in rw.reason


@pytest.mark.parametrize("previous, follow_up, expected", [
    ("how big was the dols backlog in birmingham when cqc assessed it in 2023?", "and in the 2025 self assessment?",
     "How big was the dols backlog in birmingham in the 2025 self assessment?"),
    ("What percentage use direct payments in birmingham according to cqc?", "and in 2016?",
     "What percentage use direct payments in birmingham according to the 2016 peer challenge letter?"),
])
def test_a_closing_clause_naming_the_report_is_replaced_whole_on_a_year_swap(assistant, previous, follow_up,
                                                                             expected):
    rw = Rewriter(assistant).rewrite(follow_up, previous)
    assert rw.kind == "year_swap" and rw.query == expected


def test_a_clause_that_asks_when_is_not_a_source(assistant):
    reader = Rewriter(assistant)
    assert reader.read("Did respite care work in Birmingham when CQC assessed the council?").source \
        == "when CQC assessed the council"
    assert reader.read("By when did Birmingham plan to clear it in 2023?").source == ""
    assert reader.read("How did they cope when they're not around?").source == ""


def test_a_figure_added_goes_before_the_closing_source_clause(assistant):
    rw = Rewriter(assistant).rewrite("How many were over 65?", "How many people received long-term support "
                                     "from Birmingham according to the 2025 self-assessment?")
    assert rw.query == ("How many people received long-term support from Birmingham over 65 according to the "
                        "2025 self-assessment?")


def test_a_possessive_typed_without_its_apostrophe_is_the_council(assistant):
    rw = Rewriter(assistant).rewrite("and westminster?", "what did cqc think of birminghams DASS")
    assert rw.kind == "entity_swap" and rw.query == "What did cqc think of westminster's DASS"


def test_their_after_a_council_the_follow_up_names_is_that_council(assistant):
    rw = Rewriter(assistant).rewrite("what about birmingham, whats their turnover rate",
                                     "What was the staff turnover rate in Westminster in 2023/24?")
    assert "birmingham's turnover rate" in rw.query.lower() and "westminster" not in rw.query.lower()


def test_a_follow_up_whose_own_words_are_the_question_before_s_swaps_its_council(assistant):
    rw = Rewriter(assistant).rewrite("and who runs westminster", "which party runs birmingham council")
    assert rw.kind == "entity_swap" and rw.query == "Which party runs westminster"


def test_a_financial_year_typed_short_is_read_in_full(assistant):
    chat = Conversation(assistant)
    chat.ask("how much did birmingham actually spend on adult social care in 21/22")
    assert chat.turns[-1].rewrite.query.endswith("in 2021/22")
    chat.ask("and in 22/23?")
    assert chat.turns[-1].rewrite.kind == "year_swap" and "2022/23" in chat.turns[-1].rewrite.query


def test_a_pointer_does_not_stand_for_a_word_of_the_closing_source_clause(assistant):
    rw = Rewriter(assistant).rewrite("What deadline does the 2025 self-assessment give for sorting that out?",
                                     "How many young people were stuck waiting for a transitions assessment in "
                                     "Birmingham when CQC assessed them in 2023?")
    assert "CQC" not in rw.query


def test_a_figure_keeps_its_sign_as_typed(assistant):
    rw = Rewriter(assistant).rewrite("and how many of them been waiting 90+ days",
                                     "how many DoLS applications in Birmingham are high priority?")
    assert "90+ days" in rw.query


def test_a_figure_with_a_plural_s_stays_one_word(assistant):
    rw = Rewriter(assistant).rewrite("how many over 85s?", "What was Birmingham's population in the 2025 "
                                                           "self-assessment?")
    assert "over 85s" in rw.query


def test_them_may_stand_for_one_person(assistant):
    rw = Rewriter(assistant).rewrite("who covers for them", "what other jobs does the DASS in westminster do?")
    assert rw.kind == "anaphora" and "DASS" in rw.query and "jobs" not in rw.query


def test_a_pointer_after_a_question_asking_who_may_stand_for_a_name_the_answer_gave(assistant):
    chat = Conversation(assistant)
    first = chat.ask("Who delivers carers assessments for Birmingham?")
    assert "Forward Carers" in first.text
    chat.ask("how much is their contract worth")
    query = chat.turns[-1].rewrite.query
    assert "Carers Hub" in query or "Forward Carers" in query


@pytest.mark.parametrize("question, rest", [
    ("different question - how many councillors does Birmingham have?", "How many councillors does Birmingham have?"),
    ("unrelated but whats the average caseload in Westminster", "What's the average caseload in Westminster"),
    ("on a different note, who signs off Westminster's privacy notices?",
     "Who signs off Westminster's privacy notices?"),
])
def test_words_saying_a_new_topic_starts_leave_the_question_on_its_own(assistant, question, rest):
    chat = Conversation(assistant)
    chat.ask("How many complaints about adult social care did Birmingham receive in 2023?")
    chat.ask(question)
    rw = chat.turns[-1].rewrite
    assert rw.kind == "none" and rw.query == rest


def test_a_topic_word_is_not_read_as_a_new_topic(assistant):
    rw = Rewriter(assistant).rewrite("and what about a different topic like carers?",
                                     "How many people used direct payments in Birmingham in 2023?")
    assert "new topic" not in rw.reason
