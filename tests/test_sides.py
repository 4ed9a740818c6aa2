"""Which councils and years a question names, and the sides of a question comparing reports."""

from types import SimpleNamespace

from qa.sides import comparison_sides, named_councils, named_report_years, without_side_names, years


def _doc(council, year, doc_type, short_title):
    return SimpleNamespace(doc_id=f"{council.split()[0]}-{year}-{short_title.split()[0]}".lower(), council=council,
                           year=year, doc_type=doc_type, short_title=short_title)


BIRMINGHAM, WESTMINSTER = "Birmingham City Council", "Westminster City Council"
DOCS = [_doc(BIRMINGHAM, 2016, "Peer challenge feedback letter", "Peer challenge letter (Birmingham, 2016)"),
        _doc(BIRMINGHAM, 2023, "CQC local authority assessment", "CQC assessment (Birmingham, 2023)"),
        _doc(BIRMINGHAM, 2025, "Council self-assessment", "Self-assessment (Birmingham, 2025)"),
        _doc(WESTMINSTER, 2024, "CQC quality statement", "CQC quality statement (Westminster, 2024)")]


def test_years_and_financial_years():
    assert years("in 2016, and for 2023/24 or 2024-25") == {("2016",), ("2023", "2024"), ("2024", "2025")}
    assert years("no year here, only 12345") == set()


def test_councils_are_named_by_their_distinctive_word():
    councils = ["Birmingham City Council", "Westminster City Council"]
    assert named_councils("How does Westminster compare?", councils) == {"Westminster City Council"}
    assert named_councils("What does the city council do?", councils) == set()


def test_two_report_years_are_two_sides_oldest_first():
    assert comparison_sides("How did the backlog change between 2023 and 2016?", DOCS) == [(None, 2016), (None, 2023)]


def test_two_councils_are_two_sides():
    assert comparison_sides("Compare Westminster and Birmingham on staffing", DOCS) == \
        [("Birmingham City Council", None), ("Westminster City Council", None)]


def test_one_side_or_years_no_report_is_from_are_no_comparison():
    assert comparison_sides("What did Birmingham say in 2023?", DOCS) == []
    assert comparison_sides("How did spending change between 2019 and 2020?", DOCS) == []


def test_a_filter_already_set_is_not_widened():
    assert comparison_sides("How did it change between 2016 and 2023?", DOCS, year=2023) == []
    assert comparison_sides("Compare Westminster and Birmingham", DOCS, council="Birmingham City Council") == []


def test_reports_named_without_their_years_are_sides():
    assert comparison_sides("Has the DoLS backlog improved since the peer challenge? What did the peer challenge "
                            "say vs the CQC assessment?", DOCS) == [(None, 2016), (None, 2023)]
    assert comparison_sides("CQC flagged recruitment in Birmingham: does the self-assessment show progress?", DOCS) \
        == [("Birmingham City Council", 2023), ("Birmingham City Council", 2025)]


def test_a_name_that_fits_several_councils_is_read_among_the_reports_named_outright():
    # "the peer challenge" is Birmingham's alone, so "the CQC report" is Birmingham's 2023 assessment
    assert comparison_sides("Which service did the peer challenge praise, and which did the CQC report mention?",
                            DOCS) == [(None, 2016), (None, 2023)]


def test_a_report_name_that_fits_several_years_or_the_council_names_no_side():
    # "CQC" alone is Birmingham's 2023 assessment and Westminster's 2024 statement; "local authority"
    # is how staff name the council
    assert named_report_years("What did CQC find?", DOCS) == set()
    assert named_report_years("What did CQC find?", DOCS, "Birmingham City Council") == {2023}
    assert comparison_sides("What did the local authority say in the self-assessment about carers?", DOCS) == []


def test_a_sides_search_leaves_out_the_words_naming_reports_but_not_councils_or_other_years():
    assert without_side_names("What did the 2016 peer challenge say about Birmingham's care market?", DOCS) == \
        "What did say about Birmingham's care market?"
    assert without_side_names("Birmingham's population in 2023 according to our self-assessment", DOCS) == \
        "Birmingham's population in 2023 according to"
