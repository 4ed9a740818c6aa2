"""Adding a report to a built index: only its texts are embedded, the result equals a full rebuild,
and its passages cite PDF pages."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa import Retriever
from qa.embedding_cache import EmbeddingCache
from qa.index import SentenceTable
from qa.library import Library

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "reports"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not TESTDATA.is_dir(), reason=f"test documents not found at {TESTDATA}")]

QUESTIONS = ["How many complaints about adult social care did Birmingham receive?",
             "What did the peer challenge say about the front door?",
             "What was the workforce turnover rate?", "carers assessments waiting list",
             "Deprivation of Liberty Safeguards backlog", "joint working arrangements within health"]


def _texts(chunks, contextual=True) -> set[str]:
    return {c.indexed_text(contextual) for c in chunks} | set(SentenceTable.of(chunks).texts(chunks))


@pytest.fixture(scope="module")
def grown(retriever, encoder, tmp_path_factory):
    """The session's corpus, indexed, then 003 added from its PDF, indexed incrementally.

    With the stock model: adapting it is tested in test_adaptation.py (where adding a report keeps the
    adapted model), and a full rebuild of the grown corpus would adapt it anew, to other pairs.
    """
    base = retriever.settings
    root = tmp_path_factory.mktemp("grown")
    corpus = root / "corpus"
    shutil.copytree(base.corpus_dir, corpus, ignore=shutil.ignore_patterns(".*"))
    settings = base.with_(corpus_dir=corpus, index_dir=root / "index", adapt_model=False)
    lib = Library(settings, encoder=encoder)
    before = lib.update_index()
    added = lib.add(TESTDATA / "converted" / "003.pdf", publisher="Peer challenge team")
    return lib, before, added


def test_adding_a_report_embeds_only_its_new_texts(grown, retriever):
    lib, before, added = grown
    assert before.chunks == len(retriever.index.chunks)
    grown_index = Retriever.load(settings=lib.settings, encoder=retriever.encoder, build_if_missing=False).index
    new_chunks = [c for c in grown_index.chunks if c.doc_id == added.info.doc_id]
    assert new_chunks and added.index.chunks == before.chunks + len(new_chunks)
    new_texts = _texts(new_chunks) - _texts(retriever.index.chunks)
    assert added.index.embedded == len(new_texts) > 0
    assert added.index.cached >= before.cached


def test_incremental_index_equals_a_full_rebuild(grown, encoder, tmp_path):
    lib, _, _ = grown
    incremental = Retriever.load(settings=lib.settings, encoder=encoder, build_if_missing=False)
    fresh = lib.settings.with_(index_dir=tmp_path / "fresh" / "index")  # its own, empty embedding cache
    assert not EmbeddingCache.for_settings(fresh, encoder).folder.exists()
    full = Retriever.build(fresh, encoder=encoder)
    assert full.index.manifest["embedding_cache"]["cached"] < full.index.manifest["embedding_cache"]["embedded"]
    assert [c.chunk_id for c in full.index.chunks] == [c.chunk_id for c in incremental.index.chunks]
    assert [c.duplicate_of for c in full.index.chunks] == [c.duplicate_of for c in incremental.index.chunks]
    assert np.allclose(full.index.sentences.vectors, incremental.index.sentences.vectors, atol=1e-5)
    for method in ("hybrid", "dense", "bm25"):
        for a, b in zip(full.search_batch(QUESTIONS, k=10, method=method),
                        incremental.search_batch(QUESTIONS, k=10, method=method)):
            assert [p.chunk_id for p in a] == [p.chunk_id for p in b]
            assert np.allclose([p.score for p in a], [p.score for p in b], atol=1e-4)


def test_passages_of_a_pdf_report_cite_their_pages(grown, encoder):
    import pypdfium2 as pdfium

    lib, _, added = grown
    r = Retriever.load(settings=lib.settings, encoder=encoder, build_if_missing=False)
    hits = r.search("joint working arrangements within health", k=5, doc_id=added.info.doc_id)
    assert hits
    pdf = pdfium.PdfDocument(str(lib.corpus_dir / added.info.original))
    pages = {str(i + 1): pdf[i].get_textpage().get_text_range() for i in range(len(pdf))}
    pdf.close()
    squash = lambda s: " ".join(re.findall(r"\w+", s.lower()))  # noqa: E731
    for hit in hits:
        assert re.search(r", pages? \d+(-\d+)?$", hit.citation), hit.citation
        first, last = hit.page_start, hit.page_end
        span = " ".join(pages[str(p)] for p in range(int(first), int(last) + 1))
        words = re.findall(r"\w+", hit.text)
        assert squash(" ".join(words[:6])) in squash(span) and squash(" ".join(words[-6:])) in squash(span)
    # text reports keep their line citations
    assert r.search("complaints", k=1, doc_id="001")[0].citation.endswith(tuple(f"{d}" for d in range(10)))
    assert ", lines " in r.search("complaints", k=1, doc_id="001")[0].citation


def test_removing_the_report_gives_back_the_original_index(grown, retriever):
    lib, _, added = grown
    lib.remove(added.info.doc_id)
    after = Retriever.load(settings=lib.settings, encoder=retriever.encoder, build_if_missing=False)
    assert [c.chunk_id for c in after.index.chunks] == [c.chunk_id for c in retriever.index.chunks]
    assert after.index.manifest["embedding_cache"]["embedded"] == 0
