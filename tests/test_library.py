"""Adding, replacing, removing and listing reports (no index: `update_index=False` / `--no-index`)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from qa.cli import main
from qa.config import Settings
from qa.corpus import load_corpus, read_catalogue
from qa.errors import ReportError
from qa.library import Library, MetadataMissingError
from qa.readers import read_report

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "reports"
pytestmark = pytest.mark.skipif(not TESTDATA.is_dir(), reason=f"test documents not found at {TESTDATA}")
CONVERTED = TESTDATA / "converted"


@pytest.fixture
def lib(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(Settings().corpus_dir, corpus, ignore=shutil.ignore_patterns(".*"))
    return Library(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"))


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if not p.name.startswith(".")}


def test_add_pdf_infers_metadata_and_keeps_the_original(lib):
    result = lib.add(CONVERTED / "001.pdf", update_index=False)
    info = result.info
    assert info.doc_id.startswith("005_") and info.format == "pdf"
    assert (info.title, info.council, info.date, info.doc_type, info.publisher) == (
        "CQC assessment of Birmingham City Council", "Birmingham City Council", "2023-11-17",
        "CQC local authority assessment", "Care Quality Commission (CQC)")
    # the date comes from the text, not from the PDF's CreationDate (the conversion, in 2026)
    assert "Assessment published: 17 November 2023" in result.inferred["date"].source
    assert result.extracted.metadata["creation_date"].startswith("2026")
    folder = lib.corpus_dir
    assert (folder / info.original).read_bytes() == (CONVERTED / "001.pdf").read_bytes()
    # re-reading the kept original gives exactly the stored text and page map
    again = read_report(folder / info.original)
    assert (folder / info.file).read_text(encoding="utf-8") == again.text
    assert json.loads((folder / info.pages).read_text()) == again.pages_json()
    assert [i.doc_id for i in lib.list()][-1] == info.doc_id
    doc = {d.doc_id: d for d in load_corpus(folder)}[info.doc_id]
    assert doc.pages[0] == (0, "1") and len(doc.pages) == 24


def test_duplicate_is_refused_and_changes_nothing(lib):
    lib.add(CONVERTED / "004.docx", update_index=False, date="2024")
    before = snapshot(lib.corpus_dir)
    with pytest.raises(ReportError, match="already in the library as 005_"):
        lib.add(CONVERTED / "004.docx", update_index=False, date="2024")
    text_copy = lib.corpus_dir.parent / "copy.txt"
    shutil.copy(Settings().corpus_dir / "004_02b1782ca592e0cf.txt", text_copy)
    with pytest.raises(ReportError, match="already in the library as 004_02b1782ca592e0cf"):
        lib.add(text_copy, update_index=False, date="2024")
    assert snapshot(lib.corpus_dir) == before


def test_missing_metadata_is_refused_naming_the_option_or_asked_for(lib):
    before = snapshot(lib.corpus_dir)
    with pytest.raises(MetadataMissingError, match="Give it with --publisher"):
        lib.add(CONVERTED / "003.html", update_index=False)
    assert snapshot(lib.corpus_dir) == before
    asked = []
    result = lib.add(CONVERTED / "003.html", update_index=False,
                     ask=lambda field, prompt, hint: asked.append(field) or "LGA peer team")
    assert asked == ["publisher"] and result.info.publisher == "LGA peer team"
    assert result.inferred["publisher"].source == "typed in"


def test_given_values_override_inferred_ones(lib):
    result = lib.add(CONVERTED / "004.html", update_index=False, date="2024-03", doc_type="quality statement",
                     council="Westminster City Council")
    assert result.info.date == "2024-03" and result.info.date_text == "March 2024"
    assert result.info.doc_type == "CQC quality statement"
    assert result.inferred["date"].source == "given with --date"
    assert result.info.short_title == "CQC quality statement (Westminster, 2024)"
    with pytest.raises(ReportError, match="--date must be YYYY-MM-DD"):
        lib.add(CONVERTED / "004.pdf", update_index=False, date="March 2024")


@pytest.mark.parametrize("name", sorted(p.name for p in (TESTDATA / "bad").glob("*")
                                        if p.name != "encrypted-owner-only.pdf"))
def test_bad_files_change_nothing(lib, name):
    before = snapshot(lib.corpus_dir)
    with pytest.raises(ReportError):
        lib.add(TESTDATA / "bad" / name, update_index=False, publisher="X", date="2024")
    assert snapshot(lib.corpus_dir) == before


def test_a_failed_catalogue_write_leaves_everything_as_it_was(lib, monkeypatch):
    before = snapshot(lib.corpus_dir)
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("catalogue.json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        lib.add(CONVERTED / "002.pdf", update_index=False)
    assert snapshot(lib.corpus_dir) == before


def test_replace_and_remove(lib):
    first = lib.add(CONVERTED / "003.pdf", update_index=False, publisher="Peer team").info
    second = lib.add(CONVERTED / "003.docx", update_index=False, publisher="Peer team", replace="005").info
    assert second.doc_id.startswith("005_") and second.doc_id != first.doc_id
    ids = [i.doc_id for i in lib.list()]
    assert first.doc_id not in ids and second.doc_id in ids
    assert not (lib.corpus_dir / first.original).exists() and (lib.corpus_dir / second.original).exists()
    removed = lib.remove("005", update_index=False)
    assert removed.doc_id == second.doc_id
    assert [i.doc_id for i in read_catalogue(lib.corpus_dir)] == ids[:-1]
    assert not (lib.corpus_dir / second.file).exists()
    with pytest.raises(ReportError, match="No report has id '009'"):
        lib.remove("009", update_index=False)


def test_cli_add_list_remove(lib, monkeypatch, capsys):
    monkeypatch.setenv("QA_CORPUS_DIR", str(lib.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(lib.settings.index_dir))
    assert main(["add", str(CONVERTED / "003.pdf"), "--no-index"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 003.pdf: cannot tell the report's publisher") and "--publisher" in err
    assert "Traceback" not in err
    assert main(["add", str(CONVERTED / "003.pdf"), "--no-index", "--publisher", "Peer team"]) == 0
    out = capsys.readouterr().out
    assert "Read 003.pdf: PDF, 9 pages" in out and "<- given with --publisher" in out
    assert '<- date line near the top, page 1: "02 December 2016"' in out
    assert main(["add", str(TESTDATA / "bad" / "truncated.pdf"), "--no-index"]) == 2
    assert "damaged" in capsys.readouterr().err
    assert main(["list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[-1]["format"] == "pdf" and listed[-1]["publisher"] == "Peer team"
    assert main(["remove", listed[-1]["doc_id"], "--no-index"]) == 0
    assert len(read_catalogue(lib.corpus_dir)) == 5


def test_a_file_over_the_size_limit_is_refused_before_reading(lib, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("A sentence about adult social care in Testshire. " * 30_000)  # about 1.5 MB
    small = Library(lib.settings.with_(max_report_mb=1))
    before = snapshot(lib.corpus_dir)
    with pytest.raises(ReportError, match=r"big.txt: 1.4 MB is over the limit of 1 MB \(QA_MAX_REPORT_MB\)"):
        small.add(big, update_index=False, title="T", council="Testshire County Council", date="2024",
                  doc_type="other", publisher="P")
    assert snapshot(lib.corpus_dir) == before


def test_cli_add_several_files_reports_each_refusal_and_adds_the_others(lib, monkeypatch, capsys):
    monkeypatch.setenv("QA_CORPUS_DIR", str(lib.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(lib.settings.index_dir))
    files = [CONVERTED / "002.docx", TESTDATA / "bad" / "scanned.pdf", CONVERTED / "001.html"]
    assert main(["add", *map(str, files), "--no-index"]) == 2
    captured = capsys.readouterr()
    assert "error: scanned.pdf: no text layer" in captured.err and "2 of 3 reports added" in captured.err
    assert captured.out.count("Added 00") == 2
    assert [i.format for i in read_catalogue(lib.corpus_dir)][-2:] == ["docx", "html"]
