"""Which councils and years a question names, and the sides of a question comparing reports."""

from types import SimpleNamespace

from qa.sides import comparison_sides, named_councils, years

DOCS = [SimpleNamespace(council="Birmingham City Council", year=2016),
        SimpleNamespace(council="Birmingham City Council", year=2023),
        SimpleNamespace(council="Birmingham City Council", year=2025),
        SimpleNamespace(council="Westminster City Council", year=2024)]


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
