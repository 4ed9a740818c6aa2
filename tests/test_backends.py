"""Backends: the approximate (FAISS) candidates give the same top 10 as the exact path, on every
question of the eval set, for all three methods, with and without filters."""

import json
from pathlib import Path

import numpy as np
import pytest

from qa import Retriever
from qa.backends import VectorStore, make_backend
from qa.backends.exact import ExactBackend
from qa.backends.faiss_ann import FaissAnnBackend
from qa.errors import QAError

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").open()]
FILTERS = [{}, {"council": "Birmingham"}, {"council": "Westminster"}, {"year": 2016}, {"doc_id": "002"}]
# Few candidates per source (of 273 chunks and ~1,300 sentences), so the approximate indexes
# really choose: with the default 100 nearly every chunk would be a candidate at this size. The
# hybrid reorders its best 30 by word pieces (qa/late_interaction.py), so its top 10 is the exact
# one when the candidates hold those 30: with 30 a source, 54 of the 312 questions differed, with
# 40 eight; from 50 (a median of 124 candidates), none.
FEW = 50


@pytest.fixture(scope="module")
def store(retriever):
    return VectorStore.of_index(retriever.index)


def top10(retriever, backend, method, filters):
    saved = retriever.backend
    retriever.backend = backend
    try:
        return [[p.chunk_id for p in hits] for hits in retriever.search_batch(QUESTIONS, 10, method=method, **filters)]
    finally:
        retriever.backend = saved


@pytest.fixture(scope="module")
def exact_top10(retriever, store):
    full = ExactBackend(store, retriever.index.lexical, full_scan=True)
    return {(m, json.dumps(f)): top10(retriever, full, m, f) for m in ("hybrid", "dense", "bm25") for f in FILTERS}


def test_the_default_backend_scores_every_chunk_here(retriever):
    assert retriever.backend.name == "exact" and retriever.backend.full_scan


# Filters go to the ANN indexes with a selector, or (as the backend does for a small selection)
# to an exact scan of the chunks they keep.
CASES = [(f, True) for f in FILTERS] + [(f, False) for f in FILTERS if f]


@pytest.mark.parametrize("method", ["hybrid", "dense", "bm25"])
@pytest.mark.parametrize("filters, selector", CASES,
                         ids=[json.dumps(f) + (" ann" if sel else " scan") for f, sel in CASES])
def test_fast_path_equals_exact_path(retriever, store, exact_top10, method, filters, selector):
    fast = FaissAnnBackend.build(store, retriever.index.lexical, candidates=FEW,
                                 exact_below=0 if selector else len(retriever.index.chunks))
    got = top10(retriever, fast, method, filters)
    want = exact_top10[(method, json.dumps(filters))]
    differ = [QUESTIONS[i] for i, (a, b) in enumerate(zip(got, want)) if a != b]
    assert not differ, f"{len(differ)} of {len(QUESTIONS)} questions differ, e.g. {differ[:3]}"


def test_fast_candidates_are_a_real_subset(retriever, store):
    fast = FaissAnnBackend.build(store, retriever.index.lexical, candidates=FEW, exact_below=0)
    vectors = retriever.encoder.encode_queries(QUESTIONS[:50])
    sizes = [len(c.chunks) for c in fast.candidates(vectors, QUESTIONS[:50], None, "hybrid")]
    assert np.median(sizes) < 0.5 * len(retriever.index.chunks)


def test_exact_top_candidates_equal_the_full_scan(retriever, store, exact_top10):
    few = ExactBackend(store, retriever.index.lexical, full_scan=False, candidates=FEW)
    for f in FILTERS[:2]:
        assert top10(retriever, few, "hybrid", f) == exact_top10[("hybrid", json.dumps(f))]


def test_backend_setting_chooses_the_backend(retriever):
    faiss_retriever = Retriever(retriever.index, retriever.encoder, list(retriever.documents.values()),
                                retriever.settings.with_(backend="faiss"))
    assert faiss_retriever.backend.name == "faiss"
    assert [p.chunk_id for p in faiss_retriever.search("DoLS backlog", k=5)] == \
           [p.chunk_id for p in retriever.search("DoLS backlog", k=5)]
    with pytest.raises(QAError, match="QA_BACKEND must be one of"):
        retriever.settings.with_(backend="elastic")
    with pytest.raises(QAError, match="QA_BACKEND must be one of"):
        make_backend("elastic", retriever.index, retriever.settings)


def test_answers_over_the_fast_path_read_the_same_evidence(retriever, assistant):
    """The answerability features need how near the reports come to a question ("top_dense"): the fast
    path chooses candidates instead of scoring every chunk, and must still give it, else every answer
    would look off-topic and be withheld."""
    from qa import Assistant

    faiss_retriever = Retriever(retriever.index, retriever.encoder, list(retriever.documents.values()),
                                retriever.settings.with_(backend="faiss"))
    fast = Assistant(faiss_retriever, answerability=assistant.answerability)
    for question in QUESTIONS[:40]:
        _, a, exact_features = assistant.candidate(question)
        _, b, fast_features = fast.candidate(question)
        assert a.text == b.text
        if exact_features is not None:
            assert fast_features["top_dense"] == pytest.approx(exact_features["top_dense"], abs=1e-6), question
    assert not fast.ask("What score did Westminster get for governance?").abstained


def test_bm25_in_a_helper_thread_gives_the_same_candidates(retriever, store):
    """With two search threads (forced here: this corpus is below `parallel_above`), BM25 runs in a
    helper thread; the candidates and their BM25 scores are those of one thread, for queries one
    at a time and for several at once (those that find the helper busy do their BM25 themselves)."""
    from concurrent.futures import ThreadPoolExecutor

    one = FaissAnnBackend.build(store, retriever.index.lexical, candidates=FEW, exact_below=0, threads=1)
    two = FaissAnnBackend(one.store, one.lexical, one.hnsw, one.ivf, candidates=FEW, exact_below=0,
                          threads=2, parallel_above=0)
    assert two.threads == 2 and one.threads == 1
    questions = QUESTIONS[:60]
    vectors = retriever.encoder.encode_queries(questions)
    allowed = np.zeros(len(retriever.index.chunks), dtype=bool)
    allowed[::3] = True
    for mask in (None, allowed):
        want = one.candidates(vectors, questions, mask, "hybrid")

        def ask(i):
            return two.candidates(vectors[i:i + 1], questions[i:i + 1], mask, "hybrid")[0]

        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(ask, range(len(questions))))
        for got in ([ask(i) for i in range(len(questions))], together):
            for a, b in zip(got, want):
                assert np.array_equal(a.chunks, b.chunks)
                assert np.array_equal(a.chunk_lexical, b.chunk_lexical)
    assert two._helpers is not None  # the helper was used


def test_search_threads_setting_reaches_the_backend(retriever):
    from qa import Settings

    assert Settings.from_env({"QA_SEARCH_THREADS": "1"}).search_threads == 1
    with pytest.raises(QAError, match="search_threads must be at least 1"):
        Settings.from_env({"QA_SEARCH_THREADS": "0"})
    backend = make_backend("faiss", retriever.index, retriever.settings.with_(search_threads=1))
    assert backend.threads == 1
