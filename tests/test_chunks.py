"""Chunks of the real corpus: they fit the model, lose no text, cite their source, and know their twins."""

import re

import pytest

from qa.chunks import Chunk, Chunker, mark_duplicates
from qa.corpus import load_corpus, strip_markup
from qa.sentences import split_sentences

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def docs(settings):
    return load_corpus(settings.corpus_dir)


@pytest.fixture(scope="module")
def chunks(retriever):
    return retriever.index.chunks


def _squash(text):
    return re.sub(r"\W+", " ", text).strip().lower()


def test_every_chunk_fits_the_model_token_limit(chunks, encoder, settings):
    assert encoder.max_tokens == 256
    lengths = [encoder.count_tokens(c.indexed_text(settings.contextual_chunks)) for c in chunks]
    assert max(lengths) <= encoder.max_tokens
    assert len(chunks) > 100  # the corpus really was split, not indexed whole


def test_no_text_is_lost(docs, chunks):
    """Every sentence of every document is in some chunk's text, or (a heading) in a section path."""
    by_doc = {}
    for c in chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
    for doc in docs:
        text = strip_markup(doc.text).text
        haystack = " | ".join(_squash(c.text) for c in by_doc[doc.doc_id])
        headings = " | ".join({_squash(part) for c in by_doc[doc.doc_id] for part in c.section_path})
        missing = [text[a:b] for a, b in split_sentences(text)
                   if _squash(text[a:b]) not in haystack and _squash(text[a:b]) not in headings]
        assert not missing, f"{doc.doc_id}: {len(missing)} sentences in no chunk, e.g. {missing[:3]}"


def test_chunk_spans_point_at_the_source_lines(docs, chunks):
    raw = {d.doc_id: d.raw for d in docs}
    for c in chunks:
        source = raw[c.doc_id][c.start : c.end]
        first_words = " ".join(re.findall(r"\w+", c.text)[:4])
        assert first_words in " ".join(re.findall(r"\w+", source)), c.chunk_id
        assert raw[c.doc_id][: c.start].count("\n") + 1 == c.line_start


def test_the_repeated_governance_section_is_linked_not_lost(chunks):
    ids = {c.chunk_id: c for c in chunks}
    single = [c for c in chunks if c.doc_id.startswith("000")]
    assert single and all(c.duplicate_of for c in single)
    assert all(ids[c.duplicate_of].doc_id.startswith("001") for c in single)
    assert not any(c.duplicate_of for c in chunks if not c.doc_id.startswith("000"))


def test_mark_duplicates_needs_near_identical_text():
    a = Chunk("a", 0, ("A",), "The DASS was a visible, respected, and well-liked leader in the city.", 0, 10, 1, 1)
    b = Chunk("b", 0, ("B",), "The DASS was a visible,\nrespected, and well-liked leader in the city.", 0, 10, 1, 1)
    c = Chunk("c", 0, ("C",), "The DASS was a visible leader, but the teams had waiting lists.", 0, 10, 1, 1)
    out = mark_duplicates([a, b, c], canonical_order=["a", "b", "c"])
    assert out[1].duplicate_of == a.chunk_id
    assert out[0].duplicate_of == "" and out[2].duplicate_of == ""


def test_chunk_ids_are_stable_and_derived_from_content(chunks):
    again = Chunk.from_json(chunks[5].to_json())
    assert again == chunks[5]
    with pytest.raises(ValueError):
        Chunk("x", 0, ("X",), "   ", 0, 1, 1, 1)


def test_chunks_read_back_share_their_section_paths_and_report_ids(chunks):
    shared: dict = {}
    again = [Chunk.from_json(c.to_json(), shared) for c in chunks]
    assert again == list(chunks)
    same_section = [(a, b) for a, b in zip(again, again[1:]) if a.section_path == b.section_path]
    assert same_section and all(a.section_path is b.section_path and a.doc_id is b.doc_id for a, b in same_section)


def test_chunker_splits_long_sections_in_model_tokens(encoder, docs):
    chunker = Chunker(encoder.count_tokens, encoder.max_tokens, chunk_tokens=64, overlap_tokens=8)
    small = chunker.chunk_document(docs[1])
    assert all(encoder.count_tokens(c.text) <= 64 + 2 for c in small)
    assert all(chunker.fits(c) for c in small)
