"""The library API on the real corpus: search, filters, duplicates, citations and bad input."""

import copy
import dataclasses

import numpy as np
import pytest

from qa import Passage, QueryError
from qa.retriever import clean_query, similarities

pytestmark = pytest.mark.slow


def test_search_returns_cited_passages_best_first(retriever):
    hits = retriever.search("How many complaints about adult social care did Birmingham receive?", k=5)
    assert len(hits) == 5 and all(isinstance(h, Passage) for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    top = hits[0]
    assert "663 complaints" in top.text
    assert top.doc_id.startswith("001") and top.title == "CQC assessment of Birmingham City Council"
    assert top.section == "Theme 4: Leadership › Governance, management and sustainability"
    assert top.council in top.citation and "17 November 2023" in top.citation and top.section in top.citation
    assert top.indicative_score.startswith("3 - ")
    assert 1 <= top.line_start <= top.line_end
    assert set(top.to_json()) >= {"text", "score", "doc_id", "title", "section", "citation"}


@pytest.mark.parametrize("method", ["bm25", "dense", "hybrid"])
def test_every_method_finds_a_plain_fact(retriever, method):
    hits = retriever.search("young people waiting for a transitions assessment 217", k=5, method=method)
    assert any("217" in h.text for h in hits)


def test_duplicates_are_returned_once_with_the_other_report_noted(retriever):
    hits = retriever.search("The DASS was a visible, respected, and well-liked leader", k=10)
    same = [h for h in hits if "well-liked leader" in h.text]
    assert len(same) == 1
    assert same[0].doc_id.startswith("001")
    assert any("Governance, management and sustainability" in a and "CQC assessment of Birmingham" in a
               for a in same[0].also_in)
    texts = [" ".join(h.text.split()) for h in hits]
    assert len(texts) == len(set(texts))


def test_filters_by_council_report_and_year(retriever):
    q = "What did the leadership team do about governance?"
    assert {h.council for h in retriever.search(q, k=5, council="Westminster")} == {"Westminster City Council"}
    assert {h.doc_id[:3] for h in retriever.search(q, k=5, year=2016)} == {"003"}
    assert {h.doc_id[:3] for h in retriever.search(q, k=5, doc_id="002")} == {"002"}
    single = retriever.search(q, k=3, doc_id="000")  # the duplicate report is still searchable on its own
    assert single and {h.doc_id[:3] for h in single} == {"000"}
    assert retriever.search(q, k=5, council="Westminster", year=2023) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"council": "Leeds"}, "No report is about council 'Leeds'"),
    ({"year": 1999}, "No report is from 1999"),
    ({"doc_id": "999"}, "No report has id"),
    ({"council": ["Birmingham"]}, "No report is about council"),  # not text: matched as written, not a crash
    ({"k": 0}, "k must be a whole number"),
    ({"k": 1000}, "k must be a whole number"),
    ({"method": "magic"}, "method must be one of"),
])
def test_bad_arguments_are_named(retriever, kwargs, message):
    with pytest.raises(QueryError, match=message):
        retriever.search("safeguarding", **kwargs)


@pytest.mark.parametrize("query, message", [
    ("", "empty"), ("   \n\t ", "empty"), ("\u200b\u200b", "empty"), ("x" * 2001, "2,001 characters"),
    (None, "must be text"), (42, "must be text"),
])
def test_bad_queries_get_a_clear_value_error(retriever, query, message):
    with pytest.raises(ValueError, match=message):
        retriever.search(query)


def test_queries_are_cleaned_of_control_and_invisible_characters():
    assert clean_query("safe\u0000guarding\u200b  in\tBirmingham?\x07", 2000) == "safe guarding in Birmingham?"


@pytest.mark.parametrize("typed, read", [
    ("whats the DoLS backlog?", "what's the DoLS backlog?"),
    ("Whos the director", "Who's the director"),
    ("why dont they", "why don't they"),
    ("cant they", "can't they"),
    ("theyre off", "they're off"),
    # words of their own stay as typed
    ("its budget", "its budget"),
    ("were they", "were they"),
    ("lets see", "lets see"),
])
def test_a_contraction_typed_without_its_apostrophe_gets_it_back(typed, read):
    assert clean_query(typed, 2000) == read


def test_a_question_typed_without_apostrophes_is_answered_as_with_them(assistant):
    """Without the apostrophe, "whats" would be a key word the reports never use (the rarest kind)."""
    typed = assistant.ask("whats the indicative rating for birmingham?")
    written = assistant.ask("what's the indicative rating for birmingham?")
    assert (typed.text, typed.confidence) == (written.text, written.confidence)


def test_similarities_are_every_vector_s_inner_product_in_index_order_for_any_faiss_index():
    import faiss

    rng = np.random.default_rng(0)
    stored = rng.standard_normal((50, 8)).astype(np.float32)
    queries = rng.standard_normal((3, 8)).astype(np.float32)
    wrapped = faiss.IndexIDMap(faiss.IndexFlatIP(8))
    wrapped.add_with_ids(stored, np.arange(50))
    flat = faiss.IndexFlatIP(8)
    flat.add(stored)
    for index in (flat, wrapped):  # the flat index's own vectors are read; another index is searched
        assert np.allclose(similarities(index, queries), queries @ stored.T, atol=1e-5)
    assert similarities(faiss.IndexFlatIP(8), queries).shape == (3, 0)


def test_a_query_comparing_reports_gets_passages_from_each_side(retriever):
    question = "How did the market for home care change between 2016 and 2023 in Birmingham?"
    plain = retriever.retrieve_batch([question], 5, each_side=False)[0].passages
    assert {h.year for h in plain} == {2023}  # searched as one, the 2023 report fills the five places
    hits = retriever.search(question, k=5)
    assert {h.year for h in hits} == {2016, 2023}
    assert hits[0].chunk_id == plain[0].chunk_id  # the side the plain search ranked higher comes first
    assert len({h.chunk_id for h in hits}) == 5
    # a filter narrows the search to one side: nothing is taken from the other
    assert {h.year for h in retriever.search(question, k=5, year=2016)} == {2016}


def test_the_sides_of_a_comparison_reuse_the_query_s_encoding(retriever, monkeypatch):
    calls = []
    encode = retriever.encoder.encode_queries_with_tokens
    monkeypatch.setattr(retriever.encoder, "encode_queries_with_tokens",
                        lambda texts: calls.append(texts) or encode(texts))
    retriever.search("How did the market for home care change between 2016 and 2023 in Birmingham?", k=5)
    assert len(calls) == 1


def test_batch_search_matches_single_search(retriever):
    questions = ["DoLS backlog", "Westminster workforce turnover"]
    batch = retriever.search_batch(questions, k=3)
    assert [[h.chunk_id for h in hits] for hits in batch] == \
        [[h.chunk_id for h in retriever.search(q, k=3)] for q in questions]


def test_acronyms_learnt_from_the_corpus_link_both_forms(retriever):
    acronyms = retriever.index.lexical.acronyms
    assert acronyms["DoLS"] == "Deprivation of Liberty Safeguards"
    assert acronyms["EDT"] == "Emergency Duty Team"
    hits = retriever.search("Who gives out-of-hours help: the EDT?", k=5, method="bm25")
    assert any("Emergency Duty Team" in h.text for h in hits)


def test_the_fusion_trusts_the_dense_side_more_when_bm25_finds_little(retriever):
    """A question in the reports' words has a chunk that BM25 scores nearer the question's ceiling than
    one in lay words, whose words are scattered over chunks: the dense side weighs more for the latter."""
    lexical, base = retriever.index.lexical, retriever.settings.dense_weight

    def weight(query):
        return retriever._dense_weight(query, float(lexical.scores(query).max()))

    reports_words = weight("How many complaints about adult social care did Birmingham receive?")
    lay = weight("Can deaf people get a signer at council consultation meetings in Birmingham?")
    assert base <= reports_words < lay <= 1.0
    assert weight("zzzz qqqq") == 1.0  # no word BM25 knows: the dense side alone
    fixed = copy.copy(retriever)
    fixed.settings = dataclasses.replace(retriever.settings, dense_weight_gain=0.0)
    assert fixed._dense_weight("Can deaf people get a signer?", 0.0) == base


@pytest.mark.parametrize("typed, cleaned", [("spend in 21/22?", "spend in 2021/22?"), ("and 22-23", "and 2022-23"),
                                            ("open 24/7", "open 24/7"), ("about 1/2 of them", "about 1/2 of them"),
                                            ("in 2021/22", "in 2021/22")])
def test_a_financial_year_typed_short_is_written_in_full(typed, cleaned):
    assert clean_query(typed, 500) == cleaned
