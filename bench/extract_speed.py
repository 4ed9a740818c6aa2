"""PDF extraction speed of the reader (target: at least 150 pages per second on this machine).

    python bench/extract_speed.py [--repeat 5] [--testdata DIR]

Reads every PDF with a text layer in shared/testdata/reports (converted/ and pdf-samples/) with
`qa.readers.read_report`: text, outline or font headings, page labels, paragraphs. Prints pages
per second for each pass and their median, and the same for DOCX and HTML (words per second).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TESTDATA = ROOT.parent / "shared" / "testdata" / "reports"


def main(argv: list[str] | None = None) -> int:
    from qa.errors import ReportError
    from qa.readers import read_report

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5, help="passes over the files (default 5)")
    p.add_argument("--testdata", type=Path, default=TESTDATA)
    args = p.parse_args(argv)
    pdfs = []
    for f in sorted((args.testdata / "converted").glob("*.pdf")) + sorted((args.testdata / "pdf-samples").glob("*.pdf")):
        try:
            pages = int(read_report(f, check_extension=False).metadata["pages"])
            pdfs.append((f, pages))
        except ReportError:  # encrypted or image-only samples: nothing to time
            continue
    total_pages = sum(n for _, n in pdfs)
    print(f"{len(pdfs)} PDFs, {total_pages} pages")
    rates = []
    for i in range(args.repeat):
        t0 = time.perf_counter()
        for f, _ in pdfs:
            read_report(f, check_extension=False)
        seconds = time.perf_counter() - t0
        rates.append(total_pages / seconds)
        print(f"pass {i + 1}: {seconds:.3f} s, {rates[-1]:.0f} pages/s")
    print(f"PDF: median {statistics.median(rates):.0f} pages/s over {args.repeat} passes")
    for ext in ("docx", "html"):
        files = sorted((args.testdata / "converted").glob(f"*.{ext}"))
        t0 = time.perf_counter()
        words = sum(len(read_report(f).text.split()) for f in files)
        seconds = time.perf_counter() - t0
        print(f"{ext.upper()}: {len(files)} files, {words:,} words in {seconds:.3f} s ({words / seconds:,.0f} words/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
