"""The person-name finder behind the "name_missing" answerability feature (qa/person_names.py)."""

import pytest

from qa.person_names import NameFinder, given_names

CORPUS = [
    "Linda Sanders led the peer challenge. It may take time, and we will see in time. In May the team met.",
    "The Director of Adult Social Care reports to the Cabinet Member. Contact linda.sanders@example.gov.uk.",
]


@pytest.fixture(scope="module")
def finder():
    return NameFinder.from_texts(CORPUS)


@pytest.mark.parametrize("text, named", [
    ("Linda Sanders led the peer challenge.", True),
    ("The audit was led by Mark J. Godfrey in 2016.", True),  # a middle initial
    ("The Director of Adult Social Care reports to the Cabinet Member.", False),  # role titles only
    ("The Deputy Chief Executive and Bi-Borough Executive Director", False),
    ("In May the team met.", False),  # "May" is a given name, but this corpus writes "may" mostly
    ("the peer challenge", False),
])
def test_names_are_told_from_role_titles(finder, text, named):
    assert finder.finds(text) is named


def test_the_corpus_casing_decides_which_given_names_are_ordinary_words(finder):
    assert {"may", "will", "in"} <= finder.ordinary
    # "linda" in an e-mail address is not a use of the word in lower case
    assert "linda" not in finder.ordinary
    assert "linda" in given_names() and "cabinet" not in given_names()
