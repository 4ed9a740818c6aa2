"""The kind of answer a question asks for (qa/answerability.py), read from the phrase that asks."""

import pytest

from qa.answerability import asked_expansion, asked_kinds, topic_of
from qa.sides import years


@pytest.mark.parametrize("question, kinds, kept", [
    ("What hourly rate does the Birmingham Care Wage pay?", ["figure"], "hourly"),
    ("What is the social worker vacancy rate in Birmingham?", ["figure"], "vacancy"),
    ("What is the waiting time for a wheelchair assessment?", ["figure"], "waiting"),
    ("In which Birmingham building did the team present its feedback?", ["place"], "Birmingham"),
    ("What is the email address of Westminster's Director of Adult Social Care?", ["email"], "Director"),
    ("What is the role of the Principal Social Worker?", [], "role"),
    ("How long has the infection control team been running?", ["duration"], "infection"),
    ("How quickly does the discharge service get people home?", ["duration"], "discharge"),
    ("What phone number should carers ring?", ["phone"], "carers"),  # a phone number, not any figure
    ("According to the 2016 letter, when did Birmingham adopt it?", ["date"], "adopt"),
    ("And when?", ["date"], ""),
    # a "when" that only dates the question asks for no date
    ("Who was the Director when CQC assessed the council in 2023?", ["person"], "Director"),
    ("Why do residents say no when the council offers them help?", [], "residents"),
    # ... nor one that opens a clause before the question proper
    ("When my gran leaves hospital, will she have to repeat her story to each new team?", [], "hospital"),
    ("When exactly did Westminster appoint its Principal Occupational Therapist?", ["date"], "appoint"),
    # written as staff write: "what's", a council's possessive before the noun that asks, plurals
    ("What's the average caseload for a social worker?", ["figure"], "caseload"),
    ("What was Birmingham's vacancy rate?", ["figure"], "vacancy"),
    ("What's the name of Westminster's Principal Social Worker?", ["person"], "Principal"),
    ("Which years does the Carers Strategy cover?", ["date"], "Carers"),
    ("what % of people use direct payments in westminster", ["figure"], "direct"),  # "%" for "percentage"
    ("Is it over 50% of people?", [], "people"),  # a figure given, not asked for
])
def test_the_kind_asked_for_is_read_from_the_phrase_that_asks_and_its_modifiers_stay_topic(question, kinds, kept):
    assert asked_kinds(question) == kinds
    assert kept in topic_of(question)


@pytest.mark.parametrize("question, acronym", [
    ("What does DoLS stand for?", "DoLS"),
    ("what is AMHP short for in the CQC report?", "AMHP"),
    ('What does the acronym "TEC" stand for?', "TEC"),
    ("What does it stand for?", ""),  # a pronoun, not an acronym
    ("What does Birmingham stand for?", ""),  # one capital: a name
    ("What does the council stand for?", ""),
])
def test_a_question_asking_what_an_acronym_stands_for_is_read_with_its_acronym(question, acronym):
    assert asked_expansion(question) == acronym


def test_a_decade_is_not_read_as_a_year():
    assert years("by the mid-2030s") == set()
    assert years("in 2030 and 2023/24") == {("2030",), ("2023", "2024")}


def test_the_fitted_model_keeps_its_feature_ranges_and_floor_and_does_not_extrapolate():
    from qa.answerability import FEATURES, AnswerabilityModel

    n = len(FEATURES)
    at = FEATURES.index("piece_mean")
    weights = tuple(-2.0 if i == at else 0.0 for i in range(n))
    model = AnswerabilityModel(weights, 0.0, (0.5,) * n, (0.1,) * n, 0.5, low=(0.4,) * n, high=(0.9,) * n,
                               nearest_floor=0.3)
    again = AnswerabilityModel.from_json(model.to_json())
    assert (again.low, again.high, again.nearest_floor, again.weights) == (model.low, model.high, 0.3, weights)
    x = dict.fromkeys(FEATURES, 0.5)
    far_below = {**x, "piece_mean": 0.0}
    assert model.probability(far_below) == model.probability({**x, "piece_mean": 0.4})  # held at the range's end
    assert model.probability({**x, "top_dense": 0.29}) == 0.0 and model.off_topic({**x, "top_dense": 0.29})
    assert model.probability({**x, "top_dense": 0.31}) == 0.5


def test_a_year_is_not_the_figure_asked_for_but_can_date_a_duration():
    from qa.answerability import has_kind

    assert not has_kind("figure", "The full precept was raised in 2023/24.")
    assert has_kind("figure", "In 2023, 663 complaints were received.")
    assert has_kind("duration", "It had been operational since December 2020.")


def test_every_kind_of_answer_has_a_name_to_say_it_was_not_found():
    from qa.answerability import _KINDS, KIND_NAMES

    assert set(KIND_NAMES) == set(_KINDS)


def test_a_duration_asked_for_and_not_given_is_named_in_the_reason(assistant):
    """ "How long ...?" asks for a duration; saying it was not found once raised a KeyError."""
    question = "How long has the Care Homes Infection Prevention Control Service been operational?"
    passages = assistant.retriever.search(question, k=3)
    why = assistant._why_not(question, {"kind_missing": 1.0, "top_dense": 1.0}, passages)
    assert why == "The closest passages do not give the duration asked for."
