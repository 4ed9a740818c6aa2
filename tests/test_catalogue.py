"""The catalogue's lookups: filters, councils and report names, the same as a loop over every report."""

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest

from qa import QueryError
from qa.catalogue import Catalogue, distinctive, report_phrases
from qa.corpus import DocumentInfo, read_catalogue
from qa.retriever import Filters
from qa.sides import comparison_sides, named_councils, named_report_years

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").open()]
KINDS = [("CQC local authority assessment", "CQC assessment ({c}, {y})"),
         ("Council self-assessment", "Self-assessment ({c}, {y})"),
         ("Peer challenge feedback letter", "Peer challenge letter ({c}, {y})"),
         ("CQC quality statement", "CQC quality statement ({c}, {y})")]


def national(n: int = 3000, seed: int = 0) -> list[DocumentInfo]:
    """`n` reports about 120 councils, of the real reports' kinds and care providers' inspections, 2016-2025."""
    rng = random.Random(seed)
    places = ["Birmingham", "Westminster", "Leeds", "York", "North Yorkshire", "Kent", "Camden", "Wigan"]
    councils = [f"{p} City Council" for p in places] + [f"Borough {i} Council" for i in range(112)]
    docs = []
    for i in range(n):
        council, year = rng.choice(councils), rng.randint(2016, 2025)
        provider = ("CQC provider inspection report", f"CQC inspection of Home {i} ({{y}})")
        doc_type, title = rng.choice([*KINDS, provider])
        docs.append(DocumentInfo(f"r{i:05d}", f"r{i}.txt", title.format(c=council, y=year),
                                 title.format(c=council, y=year), council, "CQC", doc_type, str(year), str(year)))
    return docs


def report_years_by_loop(text, documents, within=None):
    """`qa.sides.named_report_years` as it was written before the catalogue: a loop over the reports."""
    said = re.findall(r"[a-z0-9]+", text.lower())
    grams = set(zip(said, said[1:])) | {(w,) for w in said}
    by_phrase = {}
    for d in documents:
        if within is None or d.council == within:
            for phrase in report_phrases(d):
                if phrase in grams:
                    by_phrase.setdefault(phrase, set()).add((d.council, d.year))
    named = [f for f in by_phrase.values() if len({y for _, y in f}) == 1]
    councils = {c for f in named for c, _ in f}
    if within is None and len(councils) == 1 and len(named) < len(by_phrase):
        return report_years_by_loop(text, documents, councils.pop())
    return {y for f in named for _, y in f}


def first_year_by_loop(documents, council, year):
    covered = [d.year for d in documents if council in (None, d.council) and year in (None, d.year)]
    return min(covered) if covered else None


@pytest.mark.parametrize("documents", [read_catalogue(ROOT / "corpus"), national(1000)],
                         ids=["the five reports", "1,000 reports"])
def test_what_a_question_names_is_the_same_as_a_loop_over_every_report(documents):
    """`qa.sides.comparison_sides` reads the catalogue only through these lookups."""
    catalogue = Catalogue(documents)
    rng = random.Random(1)
    asked = QUESTIONS + [f"How did {a} compare with {b}?" for a, b in
                         (rng.sample(["the peer challenge", "the 2019 CQC assessment", "Leeds", "York", "Kent",
                                      "the self-assessment", "2021", "2024", "CQC"], 2) for _ in range(200))]
    named_years = 0
    for question in asked:
        assert catalogue.named_councils(question) == named_councils(question, catalogue.councils)
        for council in (None, *sorted(catalogue.named_councils(question))[:1]):
            found = named_report_years(question, catalogue, council)
            assert found == report_years_by_loop(question, documents, council), question
            named_years += bool(found)
    assert named_years > 20  # report names were read, not only missed
    for council in (None, *catalogue.councils):
        for year in (None, 1999, *catalogue.years):
            want = first_year_by_loop(documents, council, year)
            assert catalogue.first_year(council, year) == want
            assert catalogue.covers(council, year) == (want is not None)
    assert any(comparison_sides(q, catalogue) for q in asked)  # the comparison path was taken


def test_a_filter_selects_the_reports_a_loop_would():
    documents = national(500)
    catalogue = Catalogue(documents)
    for council, doc_id, year in [("westminster", None, None), ("CITY COUNCIL", None, 2020), (None, "r001", None),
                                  (None, "r00042", None), ("Borough 7", "r0", 2016), (None, "", None),
                                  (None, None, 1999), ("York", None, None)]:
        want = [i for i, d in enumerate(documents)
                if (council is None or council.casefold() in d.council.casefold())
                and (doc_id is None or doc_id and d.doc_id.startswith(doc_id))
                and (year is None or d.year == year)]
        assert catalogue.select(council, doc_id, year) == want
    assert catalogue.select() == list(range(500))
    assert len(catalogue.select(council="York")) > len(catalogue.select(council="North York"))  # "York" in both


def test_what_the_reports_cover():
    catalogue = Catalogue(national(500))
    for council in catalogue.councils[:5]:
        own = [d.year for d in catalogue if d.council == council]
        assert catalogue.council_years[council] == set(own)
        assert catalogue.first_year(council, None) == min(own)
        assert [d.doc_id for d in catalogue.about(council, own[0])] == \
            [d.doc_id for d in catalogue if d.council == council and d.year == own[0]]
        assert not catalogue.covers(council, 1999) and catalogue.first_year(council, 1999) is None
    assert catalogue.covers(None, None) and not Catalogue([]).covers(None, None)
    assert distinctive("North Yorkshire City Council") == {"north", "yorkshire"}
    # "of" and "and" name no council: a question using them does not name Kensington and Chelsea
    assert distinctive("Royal Borough of Kensington and Chelsea") == {"kensington", "chelsea"}


@pytest.mark.slow
def test_filter_masks_keep_the_chunks_of_the_reports_selected(retriever):
    doc_of = np.array([c.doc_id for c in retriever.index.chunks])
    for f in [Filters(council="Westminster"), Filters(year=2016), Filters(council="birmingham", year="2023"),
              Filters(doc_id=retriever.index.chunks[0].doc_id[:3]), Filters(council="Westminster", year=2016)]:
        year = None if f.year is None else int(f.year)
        kept = {retriever.catalogue[i].doc_id for i in retriever.catalogue.select(f.council, f.doc_id, year)}
        mask = retriever._mask(f)
        assert np.array_equal(mask, np.isin(doc_of, sorted(kept)))
        assert retriever._mask(f) is mask and not mask.flags.writeable  # kept for the next question, read-only
    with pytest.raises(QueryError, match="Known councils: Birmingham City Council, Westminster City Council"):
        retriever._mask(Filters(council="Leeds"))
    with pytest.raises(QueryError, match="Years covered: 2016, 2023, 2024, 2025"):
        retriever._mask(Filters(year=2019))
