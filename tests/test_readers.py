"""Readers of published reports (PDF, DOCX, HTML, text) over the real files in shared/testdata/reports."""

from __future__ import annotations

import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from qa.errors import ReportError
from qa.readers import detect_format, read_bytes, read_report

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "reports"
pytestmark = pytest.mark.skipif(not TESTDATA.is_dir(), reason=f"test documents not found at {TESTDATA} "
                                "(a checkout of the shared test data beside the repository)")
CONVERTED = TESTDATA / "converted"
BAD = TESTDATA / "bad"
SAMPLES = TESTDATA / "pdf-samples"

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eval.ingest_check import check, title_key  # noqa: E402


@pytest.mark.parametrize("name", ["001", "002", "003", "004"])
@pytest.mark.parametrize("ext", ["pdf", "docx", "html"])
def test_converted_reports_keep_their_headings_and_text(name, ext):
    c = check(CONVERTED / f"{name}.{ext}", CONVERTED / f"{name}.md")
    assert c.recall >= 0.95 and c.precision >= 0.95, c
    assert c.kept >= (0.99 if ext == "pdf" else 0.92), c
    if ext == "pdf":  # every bookmark's heading is printed on the page it points to
        assert c.pages_right == 1.0, c


def test_pdf_without_outline_finds_headings_from_fonts():
    c = check(CONVERTED / "002-no-bookmarks.pdf", CONVERTED / "002.md")
    assert c.recall >= 0.6 and c.precision >= 0.8, c
    assert c.kept >= 0.99, c


def test_format_is_recognised_from_content_not_name():
    assert detect_format((CONVERTED / "001.pdf").read_bytes()) == "pdf"
    assert detect_format((CONVERTED / "001.docx").read_bytes()) == "docx"
    assert detect_format((CONVERTED / "001.html").read_bytes()) == "html"
    assert detect_format((CONVERTED / "001.md").read_bytes()) == "markdown"
    assert detect_format(b"Plain words on a line.\nAnother line of plain text.\n") == "text"
    assert detect_format((BAD / "html-renamed.pdf").read_bytes()) == "html"
    assert detect_format((BAD / "pdf-renamed.docx").read_bytes()) == "pdf"
    # read without a name, the renamed PDF is a PDF with the report's text
    doc = read_bytes((BAD / "pdf-renamed.docx").read_bytes())
    assert doc.format == "pdf" and "Westminster" in doc.text


def test_pdf_pages_and_metadata():
    doc = read_report(CONVERTED / "001.pdf")
    assert doc.pages[0].offset == 0 and doc.pages[0].label == "1"
    assert [p.label for p in doc.pages] == [str(i) for i in range(1, len(doc.pages) + 1)]
    assert len(doc.pages) == int(doc.metadata["pages"]) == 24
    i = doc.text.index("663 complaints")
    assert doc.page_at(i) not in ("", "1", "24")
    assert doc.metadata["title"] == "CQC assessment of Birmingham City Council"
    assert doc.metadata["creation_date"].startswith("2026")  # the conversion time, not the report's date
    assert "\r" not in doc.text and "\x02" not in doc.text and "\ufffe" not in doc.text
    assert "person-centred" in read_report(CONVERTED / "002.pdf").text


def test_mistitled_outline_entries_never_become_headings():
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(SAMPLES / "mistitled_outlines_example.pdf"))
    outline = {title_key(item.get_title()) for item in pdf.get_toc()}
    pdf.close()
    doc = read_report(SAMPLES / "mistitled_outlines_example.pdf")
    found = {title_key(h.title) for h in doc.headings}
    assert len(outline) >= 10 and not outline & found


def test_matching_outline_of_another_producer():
    doc = read_report(SAMPLES / "pdflatex-outline.pdf")
    assert [h.title for h in doc.headings] == ["Foo", "Bar", "Baz", "Foo", "Bar", "Baz", "Foo", "Bar", "Baz"]
    assert [h.page for h in doc.headings][:4] == ["2", "2", "2", "2"]


@pytest.mark.parametrize("name", ["multicolumn.pdf", "pdflatex-4-pages.pdf"])
def test_other_producers_give_text(name):
    doc = read_report(SAMPLES / name)
    assert len(doc.text.split()) > 500 and doc.pages


def test_password_protected_pdf_reads_with_its_password():
    doc = read_report(BAD / "encrypted-user-password.pdf", password="open-sesame")
    assert "Westminster" in doc.text
    with pytest.raises(ReportError, match="password given does not open it"):
        read_report(BAD / "encrypted-user-password.pdf", password="wrong")
    assert "Westminster" in read_report(BAD / "encrypted-owner-only.pdf").text


BAD_FILES = {
    "encrypted-user-password.pdf": "encrypted and needs a password",
    "scanned.pdf": "no text layer: is it a scan",
    "truncated.pdf": "damaged",
    "html-renamed.pdf": r"ends in \.pdf but its content is a web page",
    "pdf-renamed.docx": r"ends in \.docx but its content is a PDF",
    "zip-bomb.docx": "zip bomb",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_get_their_own_clear_error_in_bounded_memory(name):
    tracemalloc.start()
    try:
        with pytest.raises(ReportError, match=BAD_FILES[name]) as err:
            read_report(BAD / name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(err.value).startswith(name + ": ")
    assert peak < 20 * 2**20  # the zip bomb's 300 MB is never unpacked


def test_every_bad_file_has_a_different_message():
    messages = set()
    for name in [*BAD_FILES, "../pdf-samples/imagemagick-images.pdf", "../pdf-samples/libreoffice-writer-password.pdf"]:
        with pytest.raises(ReportError) as err:
            read_report(BAD / name)
        messages.add(str(err.value).split(": ", 1)[1])
    assert len(messages) == len(BAD_FILES) + 1  # the two encrypted PDFs share "needs a password"


def test_empty_oversized_and_binary_files_are_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ReportError, match="empty"):
        read_report(empty)
    few = tmp_path / "few.md"
    few.write_text("# Title\n\nToo short.\n")
    with pytest.raises(ReportError, match="no report text"):
        read_report(few)
    with pytest.raises(ReportError, match="over the limit"):
        read_report(CONVERTED / "001.pdf", max_bytes=10_000)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\x01\x02binary" * 100)
    with pytest.raises(ReportError, match="binary file"):
        read_report(blob)


def test_html_navigation_and_footer_are_not_report_text():
    page = (b"<!doctype html><html><head><title>T</title></head><body><nav><a>Home</a> Menu item</nav>"
            b"<header>Site banner</header><main><h1>Report title</h1><p>" + b"Real report words here. " * 10
            + b"</p><h2>Part two</h2><ul><li>First point</li><li>Second point</li></ul></main>"
            b"<footer>Cookie policy and copyright</footer></body></html>")
    doc = read_bytes(page)
    assert [(h.level, h.title) for h in doc.headings] == [(1, "Report title"), (2, "Part two")]
    assert "Menu" not in doc.text and "Cookie" not in doc.text and "banner" not in doc.text
    assert "- First point" in doc.text


def test_pdf_reading_is_safe_from_several_threads():
    files = [CONVERTED / f"00{i}.pdf" for i in (1, 2, 3, 4)] * 2
    expected = {f: read_report(f).text for f in files}
    results, errors = {}, []

    def work(f):
        try:
            results.setdefault(f, []).append(read_report(f).text)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(text == expected[f] for f, texts in results.items() for text in texts)


def _pdf_with_labels(pages: list[list[tuple[float, float, str]]], labels: str) -> bytes:
    """A small PDF written by hand: Helvetica text at (size, y, text) per page, and a /PageLabels tree."""
    objects = ["<< /Type /Catalog /Pages 2 0 R " + labels + " >>", ""]
    kids = []
    for lines in pages:
        stream = "".join(f"BT /F1 {size} Tf 72 {y} Td ({text}) Tj ET\n" for size, y, text in lines).encode()
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}endstream")
        content = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
                       "/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_page_labels_win_and_running_headers_and_page_numbers_are_dropped():
    body = "The council reviewed its adult social care services and found waiting lists had fallen"
    pages = []
    for n in range(4):
        lines = [(9, 760, "Annual report of Testshire County Council"), (16, 700, f"Part {n + 1} of the review")]
        lines += [(11, 660 - 14 * i, f"{body} in area {n}{i}.") for i in range(6)]
        lines.append((9, 40, str(n + 1)))
        pages.append(lines)
    doc = read_bytes(_pdf_with_labels(pages, "/PageLabels << /Nums [0 << /S /r >> 2 << /S /D /St 1 >>] >>"))
    assert [p.label for p in doc.pages] == ["i", "ii", "1", "2"]
    assert [(h.title, h.page) for h in doc.headings] == [(f"Part {n} of the review", label) for n, label in
                                                         zip((1, 2, 3, 4), ("i", "ii", "1", "2"))]
    assert "Annual report of Testshire" not in doc.text  # a running header, on every page
    assert "\n\n3\n" not in doc.text and not doc.text.rstrip().endswith("4")  # bare page numbers
    assert doc.text.count(body) == 24


def _docx_bytes(build) -> bytes:
    import io

    import docx

    document = docx.Document()
    build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_word_headings_from_custom_styles_outline_levels_or_bold_paragraphs():
    from docx.enum.style import WD_STYLE_TYPE

    body = [f"Body sentence number {i} about the council's adult social care work." for i in range(5)]

    def styled(d):
        custom = d.styles.add_style("Report Section", WD_STYLE_TYPE.PARAGRAPH)
        custom.base_style = d.styles["Heading 2"]  # a house style based on a heading style
        d.add_paragraph("Annual review of care", style="Title")
        d.add_paragraph("Custom section heading", style="Report Section")
        for t in body:
            d.add_paragraph(t)

    def bold_only(d):
        d.add_paragraph().add_run("Bold heading only").bold = True
        for t in body:
            d.add_paragraph(t)
        d.add_paragraph().add_run("A bold sentence in the body, not a heading.").bold = True

    doc = read_bytes(_docx_bytes(styled))
    assert [(h.level, h.title) for h in doc.headings] == [(1, "Annual review of care"), (2, "Custom section heading")]
    doc = read_bytes(_docx_bytes(bold_only))
    assert [(h.level, h.title) for h in doc.headings] == [(2, "Bold heading only")]
    assert "A bold sentence in the body" in doc.text
