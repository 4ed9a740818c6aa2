"""Corpus loading and normalisation: the source files stay as they are, the text is cleaned in code."""

import json

import pytest

from qa.config import Settings
from qa.corpus import TrackedText, corpus_hashes, load_corpus, normalise, read_catalogue
from qa.errors import CorpusError


@pytest.fixture(scope="module")
def docs():
    return {d.doc_id[:3]: d for d in load_corpus(Settings().corpus_dir)}


def test_catalogue_lists_every_corpus_file_with_metadata():
    infos = read_catalogue(Settings().corpus_dir)
    files = sorted(p.name for p in Settings().corpus_dir.glob("*.txt"))
    assert sorted(i.file for i in infos) == files
    by_id = {i.doc_id[:3]: i for i in infos}
    assert by_id["004"].council == "Westminster City Council"
    assert {by_id[k].council for k in ("000", "001", "002", "003")} == {"Birmingham City Council"}
    assert [by_id[k].year for k in ("001", "002", "003", "004")] == [2023, 2025, 2016, 2024]


def test_hard_wraps_of_the_pdf_extraction_are_rejoined(docs):
    text = docs["000"].text.text
    assert "Governance, management and sustainability" in text
    assert "councillors Executive Committee, and Chief Executive Officer who agreed" in text
    assert "guided the work programme. It was clear" in text
    # the same paragraph in the full report reads identically once normalised
    assert "guided the work programme. It was clear" in docs["001"].text.text


def test_html_and_quotes_are_normalised_but_offsets_point_at_the_source(docs):
    text = docs["003"].text
    i = text.text.find("14th -16th November 2016")
    assert i >= 0 and "<sup>" not in text.text
    start, end = text.source_span(i, i + len("14th -16th November 2016"))
    assert docs["003"].raw[start:end] == "14<sup>th</sup> -16<sup>th</sup> November 2016"
    assert "\u2019" not in docs["000"].text.text and "local authority's corporate" in docs["000"].text.text


def test_line_numbers_of_source_offsets(docs):
    d = docs["001"]
    offset = d.raw.index("Assessment published: 17 November 2023")
    assert d.line_of(offset) == d.raw[:offset].count("\n") + 1


def test_tracked_sub_keeps_one_offset_per_character():
    t = TrackedText("a **bold** word").sub(r"\*\*", "")
    assert t.text == "a bold word"
    assert len(t.offsets) == len(t.text)
    assert t.source_span(2, 6) == (4, 8)


def test_normalise_is_deterministic_and_strips_invisible_characters():
    raw = "Line one has\u200b a zero\u00a0width space and a wrap\n\ninto the next line."
    expected = "Line one has a zero width space and a wrap into the next line."
    assert normalise(raw).text == normalise(raw).text == expected


def test_catalogue_errors_are_clear(tmp_path):
    with pytest.raises(CorpusError, match="No catalogue"):
        read_catalogue(tmp_path)
    (tmp_path / "catalogue.json").write_text("{not json")
    with pytest.raises(CorpusError, match="not a valid catalogue"):
        read_catalogue(tmp_path)
    entry = {"doc_id": "x", "file": "x.txt", "title": "X", "short_title": "X", "council": "C",
             "publisher": "P", "doc_type": "T", "date": "2020", "date_text": "2020"}
    (tmp_path / "catalogue.json").write_text(json.dumps({"documents": [entry]}))
    with pytest.raises(CorpusError, match="does not exist"):
        corpus_hashes(tmp_path)
    (tmp_path / "catalogue.json").write_text(json.dumps({"documents": [{**entry, "date": "May 2020"}]}))
    with pytest.raises(CorpusError, match="YYYY"):
        read_catalogue(tmp_path)
