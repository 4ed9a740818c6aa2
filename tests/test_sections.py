"""Heading detection on the four styles of the corpus, on small texts and on the real reports."""

import pytest

from qa.config import Settings
from qa.corpus import load_corpus, normalise
from qa.sections import parse_sections


def paths(text, title="Doc"):
    return [" › ".join(s.path[1:]) for s in parse_sections(normalise(text), title)]


def test_bare_cqc_headings_with_themes_and_quality_statements():
    text = ("Report title\n\nAssessing how local authorities meet their duties is a new responsibility for CQC, "
            "and this long opening paragraph introduces the whole report to the reader.\n\n"
            "Theme 1: How the local authority works with people\n\nThis theme includes these statements.\n\n"
            "Assessing needs\n\nIndicative score:\n\n2 - Evidence shows some shortfalls\n\n"
            "Key findings for this quality statement\n\nThere was a backlog of 217 young people.\n\n"
            "Theme 2: Providing support\n\nCare provision\n\n"
            "Indicative score:\n\n3 - Evidence shows a good standard\n\n"
            "Most people had access to a varied market.\n")
    sections = parse_sections(normalise(text), "Doc")
    got = {" › ".join(s.path[1:]): s for s in sections}
    assert "Theme 1: How the local authority works with people › Assessing needs" in got
    assert "Theme 2: Providing support › Care provision" in got
    assessing = got["Theme 1: How the local authority works with people › Assessing needs"]
    assert assessing.score == "2 - Evidence shows some shortfalls"
    assert "Key findings for this quality statement" in assessing.body.text  # a label, not a heading
    assert "217 young people" in assessing.body.text


def test_upper_case_and_numbered_sub_sections_not_list_items():
    text = ("THEME 1- HOW THE LOCAL AUTHORITY WORKS WITH PEOPLE\n\nIntro paragraph that is long enough to be body "
            "text and not a heading of any kind, ending with a full stop.\n\n1. Assessing Needs\n\nBody of the "
            "first section, with enough words to be a paragraph of its own.\n\nOur Strengths\n\n"
            "1. Three conversations model: a strengths-based approach.\n\n2. Responding to demand:\n\n"
            "Text about demand.\n\n2. Supporting People to Live Healthier Lives\n\nMore body text here.\n")
    got = paths(text)
    assert "THEME 1- HOW THE LOCAL AUTHORITY WORKS WITH PEOPLE › 1. Assessing Needs › Our Strengths" in got
    assert "THEME 1- HOW THE LOCAL AUTHORITY WORKS WITH PEOPLE › 2. Supporting People to Live Healthier Lives" in got
    assert not any(p.endswith("Responding to demand") for p in got)  # a list item ending in ':'


def test_markdown_headings_bold_lines_and_grouping():
    text = ("# Governance\n\nScore: 3\n\n3 - Evidence shows a good standard\n\n## Key findings\n\n"
            "### Risk management\n\nThe governance was clear.\n\n## Strategic planning\n\nPlans were used.\n\n"
            "**National priorities**\n\n## Areas for consideration\n\n- Long way to go towards co-production\n")
    sections = parse_sections(normalise(text), "Doc")
    got = [" › ".join(s.path[1:]) for s in sections]
    assert got == ["Governance", "Governance › Key findings › Risk management", "Governance › Strategic planning",
                   "Governance › Strategic planning › National priorities › Areas for consideration"]
    assert sections[0].score.startswith("3 - Evidence")
    assert all(s.score for s in sections)  # children inherit the statement's score


@pytest.fixture(scope="module")
def real():
    return {d.doc_id[:3]: [" › ".join(s.path[1:]) for s in parse_sections(d.text, d.info.short_title)]
            for d in load_corpus(Settings().corpus_dir)}


def test_real_reports_have_their_expected_sections(real):
    assert real["000"] == ["Governance, management and sustainability"]
    assert "Theme 3: How the local authority ensures safety within the system › Safeguarding" in real["001"]
    assert "Theme 4: Leadership › Learning, improvement and innovation" in real["001"]
    assert sum(1 for p in real["001"] if p.startswith("Theme ") and " › " in p) == 9  # nine quality statements
    assert "THEME 1- HOW THE LOCAL AUTHORITY WORKS WITH PEOPLE › 1. Assessing Needs › Our Strengths" in real["002"]
    assert "THEME 4 – LEADERSHIP › 6. Financial Leadership and Sustainability" in real["002"]
    assert "Appendix 1 › Leadership › Strengths" in real["003"]
    assert "Appendix 1 › Workforce management › Areas for consideration" in real["003"]
    assert "Governance, management and sustainability › Strategic planning" in real["004"]


def test_quality_statement_scores_are_carried(real):
    docs = {d.doc_id[:3]: d for d in load_corpus(Settings().corpus_dir)}
    scores = {" › ".join(s.path[1:]): s.score for s in parse_sections(docs["001"].text, "x")}
    assert scores["Theme 3: How the local authority ensures safety within the system › Safeguarding"] == \
        "2 - Evidence shows some shortfalls"
    assert scores["Theme 4: Leadership › Governance, management and sustainability"].startswith("3 - ")
