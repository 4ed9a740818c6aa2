"""How faithfully the readers get a report back: heading recall and 5-word sequences kept.

    python eval/ingest_check.py                 # every converted/00{1,2,3,4}.{pdf,docx,html} + 002-no-bookmarks.pdf
    python eval/ingest_check.py --testdata DIR  # another copy of shared/testdata/reports

For each file it compares the reader's output with `converted/NNN.md` (the report's text with its
headings marked as Markdown `#` lines): the share of the Markdown headings found as headings
(recall, by title), the share of found headings that are true ones (precision), the share at the
same level, and the share of the text's 5-word sequences that the extraction kept. For PDFs with
an outline it also checks that each heading is placed on the page its bookmark points to.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata" / "reports"


def words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2018", "'").lower()
    text = re.sub(r"[\x02\ufffe\u00ad]", "-", text)
    return re.findall(r"\w+", text)


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def kept_share(reference: str, extracted: str, n: int = 5) -> float:
    """Share of the reference's n-word sequences that occur in the extracted text."""
    ref = shingles(reference, n)
    return len(ref & shingles(extracted, n)) / max(1, len(ref))


def title_key(title: str) -> str:
    return " ".join(words(title))


def markdown_headings(md: str) -> list[tuple[int, str]]:
    return [(len(m.group(1)), m.group(2).strip()) for m in re.finditer(r"^(#{1,6})[ ]+(.+?)[ ]*$", md, re.MULTILINE)]


@dataclass
class Check:
    file: str
    recall: float
    precision: float
    same_level: float
    kept: float
    pages_right: float | None  # share of outline headings on their bookmark's page (None: no outline)
    seconds: float


def check(path: Path, md_path: Path) -> Check:
    from qa.readers import read_report

    md = md_path.read_text(encoding="utf-8")
    t0 = time.perf_counter()
    doc = read_report(path, check_extension=False)
    seconds = time.perf_counter() - t0
    want = markdown_headings(md)
    got = [(h.level, h.title) for h in doc.headings]
    want_keys = [title_key(t) for _, t in want]
    got_keys = [title_key(t) for _, t in got]
    found = [k for k in want_keys if k in got_keys]
    true_found = [k for k in got_keys if k in want_keys]
    want_level = {title_key(t): lv for lv, t in want}
    same_level = [k for lv, t in got if (k := title_key(t)) in want_level and want_level[k] == lv]
    body_ref = re.sub(r"^#{1,6}[ ]+", "", md, flags=re.MULTILINE)
    pages_right = _outline_pages_right(path, doc) if doc.format == "pdf" else None
    return Check(path.name, len(found) / max(1, len(want_keys)), len(true_found) / max(1, len(got_keys)),
                 len(same_level) / max(1, len(want_keys)), kept_share(body_ref, doc.text), pages_right, seconds)


def _outline_pages_right(path: Path, doc) -> float | None:
    import pypdfium2 as pdfium

    from qa.readers.pdf import PDFIUM_LOCK

    with PDFIUM_LOCK:
        pdf = pdfium.PdfDocument(str(path))
        try:
            toc = [(item.get_title(), item.get_dest().get_index()) for item in pdf.get_toc()
                   if item.get_dest() is not None]
        finally:
            pdf.close()
    if not toc:
        return None
    pages = {}
    for h in doc.headings:
        pages.setdefault(title_key(h.title), []).append(h.page)
    right = sum(1 for title, index in toc if str(index + 1) in pages.get(title_key(title), []))
    return right / len(toc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--testdata", type=Path, default=TESTDATA, help=f"test documents (default {TESTDATA})")
    args = p.parse_args(argv)
    conv = args.testdata / "converted"
    if not conv.is_dir():
        print(f"error: no test documents in {conv}", file=sys.stderr)
        return 1
    files = [(conv / f"{n}.{ext}", conv / f"{n}.md") for n in ("001", "002", "003", "004")
             for ext in ("pdf", "docx", "html")]
    files.insert(4, (conv / "002-no-bookmarks.pdf", conv / "002.md"))
    print(f"{'file':<22} {'recall':>7} {'precis.':>7} {'level':>6} {'5-grams':>8} {'pages':>6} {'seconds':>8}")
    for path, md in files:
        c = check(path, md)
        pages = "-" if c.pages_right is None else f"{c.pages_right:.3f}"
        print(f"{c.file:<22} {c.recall:7.3f} {c.precision:7.3f} {c.same_level:6.3f} {c.kept:8.4f} {pages:>6} "
              f"{c.seconds:8.3f}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
