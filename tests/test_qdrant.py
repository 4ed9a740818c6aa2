"""The Qdrant backend gives the same results as the embedded one: in the official client's local
mode always, and against a real server when QA_QDRANT_URL is set."""

import json
import os
from pathlib import Path

import pytest

from qa import Retriever
from qa.backends import VectorStore
from qa.backends.qdrant import QdrantBackend, sparse_bm25

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").open()]
FEW = 30  # candidates a source, so that Qdrant's own ranking chooses them (273 chunks here)


def overlap(retriever, backend, method, filters):
    saved = retriever.backend
    try:
        retriever.backend = backend
        got = retriever.search_batch(QUESTIONS, 10, method=method, **filters)
    finally:
        retriever.backend = saved
    want = retriever.search_batch(QUESTIONS, 10, method=method, **filters)
    return sum(len({p.chunk_id for p in g} & {p.chunk_id for p in w}) / len(w)
               for g, w in zip(got, want) if w) / len(QUESTIONS)


@pytest.fixture(scope="module")
def local_backend(retriever):
    return QdrantBackend.open(retriever.index, retriever.settings, VectorStore.of_index(retriever.index),
                              candidates=FEW)


def test_sparse_weights_reproduce_bm25s_scores(retriever):
    sparse = sparse_bm25(retriever.index.lexical)
    lex = retriever.index.lexical
    vocab = lex._bm25.vocab_dict
    for q in QUESTIONS[:30]:
        words = [vocab[t] for t in lex.tokens(q, expand_acronyms=True) if t in vocab]
        mine = [sum(float(w[list(ids).index(t)]) for t in words if t in set(ids.tolist())) for ids, w in sparse]
        assert max(abs(a - b) for a, b in zip(mine, lex.scores(q))) < 1e-4


@pytest.mark.parametrize("method, filters", [("hybrid", {}), ("dense", {}), ("bm25", {}),
                                             ("hybrid", {"council": "Westminster"}), ("bm25", {"year": 2016})],
                         ids=str)
def test_local_qdrant_matches_the_embedded_backend(retriever, local_backend, method, filters):
    assert overlap(retriever, local_backend, method, filters) >= 0.95


def test_the_setting_selects_qdrant(retriever):
    r = Retriever(retriever.index, retriever.encoder, list(retriever.documents.values()),
                  retriever.settings.with_(backend="qdrant"))
    assert r.backend.name == "qdrant"
    assert [p.chunk_id for p in r.search("DoLS backlog", k=5)] == [p.chunk_id for p in retriever.search("DoLS backlog", k=5)]


@pytest.mark.skipif(not os.environ.get("QA_QDRANT_URL"), reason="QA_QDRANT_URL is not set: no Qdrant server here")
def test_a_qdrant_server_matches_the_embedded_backend(retriever):
    settings = retriever.settings.with_(backend="qdrant", qdrant_url=os.environ["QA_QDRANT_URL"])
    server = QdrantBackend.open(retriever.index, settings, VectorStore.of_index(retriever.index), candidates=FEW)
    for method in ("hybrid", "dense", "bm25"):
        assert overlap(retriever, server, method, {}) >= 0.95
        assert overlap(retriever, server, method, {"council": "Westminster"}) >= 0.95
