"""Make a corpus in which reports 001-004 are added from their PDFs instead of their text files.

    python eval/pdf_corpus.py /tmp/pdf-eval                  # writes /tmp/pdf-eval/corpus
    QA_CORPUS_DIR=/tmp/pdf-eval/corpus QA_INDEX_DIR=/tmp/pdf-eval/index python -m eval --json pdf.json
    python -m eval --json text.json                          # the text corpus, for comparison
    python -m eval --compare text.json pdf.json

Report 000 stays the text file; 001-004 are added with `qa.Library.add` from
shared/testdata/reports/converted/NNN.pdf (or `--format docx|html`), with the catalogue's own
metadata given as options, so that only the extraction differs between the two corpora.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata" / "reports"


def main(argv: list[str] | None = None) -> int:
    from qa.config import Settings
    from qa.corpus import read_catalogue
    from qa.library import Library

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder to create (its corpus/ must not exist yet)")
    p.add_argument("--format", choices=("pdf", "docx", "html"), default="pdf")
    p.add_argument("--testdata", type=Path, default=TESTDATA)
    args = p.parse_args(argv)
    source = Settings().corpus_dir
    corpus = args.out / "corpus"
    if corpus.exists():
        print(f"error: {corpus} exists already", file=sys.stderr)
        return 1
    corpus.mkdir(parents=True)
    infos = read_catalogue(source)
    first = infos[0]
    shutil.copy(source / first.file, corpus / first.file)
    catalogue = json.loads((source / "catalogue.json").read_text(encoding="utf-8"))
    catalogue["documents"] = catalogue["documents"][:1]
    (corpus / "catalogue.json").write_text(json.dumps(catalogue, indent=2) + "\n", encoding="utf-8")
    lib = Library(Settings(corpus_dir=corpus, index_dir=args.out / "index"))
    for info in infos[1:]:
        path = args.testdata / "converted" / f"{info.doc_id[:3]}.{args.format}"
        added = lib.add(path, title=info.title, short_title=info.short_title, council=info.council,
                        date=info.date, doc_type=info.doc_type, publisher=info.publisher, update_index=False)
        print(f"{info.doc_id} -> {added.info.doc_id} from {path.name}")
    print(f"corpus ready in {corpus}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
