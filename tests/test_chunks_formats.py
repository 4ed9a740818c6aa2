"""No text lost, whatever the format a report was added from: every sentence reaches a chunk."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from qa.chunks import Chunker
from qa.corpus import Document, DocumentInfo, normalise, strip_markup
from qa.readers import read_report
from qa.sentences import split_sentences

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "reports"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not TESTDATA.is_dir(), reason=f"test documents not found at {TESTDATA}")]


def _squash(text):
    return re.sub(r"\W+", " ", text).strip().lower()


@pytest.mark.parametrize("name", ["001.pdf", "002-no-bookmarks.pdf", "002.docx", "003.html", "003.pdf", "004.docx",
                                  "004.md"])
def test_every_sentence_of_an_added_report_is_in_a_chunk(name, encoder, settings):
    doc = read_report(TESTDATA / "converted" / name)
    info = DocumentInfo(doc_id="009_test", file="009_test.txt", title="T", short_title="Test report (2024)",
                        council="Test Council", publisher="P", doc_type="Other report", date="2024", date_text="2024")
    document = Document(info, doc.text, normalise(doc.text), hashlib.sha256(doc.text.encode()).hexdigest(),
                        tuple((p.offset, p.label) for p in doc.pages))
    chunker = Chunker(encoder.count_tokens, encoder.max_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens)
    chunks = chunker.chunk_document(document)
    text = strip_markup(document.text).text
    haystack = " | ".join(_squash(c.text) for c in chunks)
    headings = " | ".join({_squash(part) for c in chunks for part in c.section_path})
    missing = [text[a:b] for a, b in split_sentences(text)
               if _squash(text[a:b]) not in haystack and _squash(text[a:b]) not in headings]
    assert not missing, f"{name}: {len(missing)} sentences in no chunk, e.g. {missing[:3]}"
    if doc.pages:  # every chunk of a PDF knows its pages, in order
        labels = [p.label for p in doc.pages]
        assert all(c.page_start in labels and c.page_end in labels for c in chunks)
        assert all(labels.index(c.page_start) <= labels.index(c.page_end) for c in chunks)
        assert chunks[-1].page_end == labels[-1]
