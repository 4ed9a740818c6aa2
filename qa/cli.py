"""Command line: `python -m qa build | search | ask`.

    python -m qa build                       # build or refresh index/ from corpus/
    python -m qa search "question" -k 5 [--json] [--method hybrid|dense|bm25] [--council ...]
    python -m qa ask "question" [--json]

Errors print one clear line to stderr and exit with status 2 (bad input) or 1 (other failures).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap

from qa.cli_library import COMMANDS, add_commands
from qa.config import Settings
from qa.errors import QAError, QueryError, ReportError
from qa.retriever import MAX_K, METHODS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m qa", description="Cited answers from adult social care reports.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    sub = p.add_subparsers(dest="command", required=True, metavar="{build,search,ask,add,remove,list}")

    b = sub.add_parser("build", help="build or refresh the index from the corpus",
                       description="Chunk, embed and index every report listed in corpus/catalogue.json. "
                                   "The new index replaces the old one only once it is complete.")
    b.add_argument("--index-dir", help="where to write the index (default: QA_INDEX_DIR or ./index)")
    b.add_argument("--if-stale", action="store_true", help="do nothing if the index is already up to date")

    def add_filters(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("question", help="the question, in quotes")
        sp.add_argument("--council", help="only reports about this council (e.g. Westminster)")
        sp.add_argument("--doc", dest="doc_id", help="only this report (its id, or the first digits: 001)")
        sp.add_argument("--year", type=int, help="only reports from this year")
        sp.add_argument("--json", action="store_true", help="print JSON instead of text")
        sp.add_argument("--index-dir", help="index folder (default: QA_INDEX_DIR or ./index)")

    s = sub.add_parser("search", help="the passages that best match a question",
                       description="Hybrid (dense + BM25) search; prints passages with their citations.")
    add_filters(s)
    s.add_argument("-k", type=int, default=5, help=f"how many passages (1-{MAX_K}, default 5)")
    s.add_argument("--method", choices=METHODS, default="hybrid", help="retrieval method (default hybrid)")

    a = sub.add_parser("ask", help="a short cited answer, or 'not found in these reports'",
                       description="Extractive answer: sentences quoted from the reports with [n] citations.")
    add_filters(a)
    add_commands(sub)
    return p


def quiet_progress_bars() -> None:
    """The command line is an application: it may quiet the libraries' own progress bars."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    elif args.command == "build":  # search and ask never load transformers; the library commands quiet it when they do
        quiet_progress_bars()
    try:
        settings = Settings.from_env()
        if args.index_dir:
            from pathlib import Path

            settings = settings.with_(index_dir=Path(args.index_dir))
        return {"build": _build, "search": _search, "ask": _ask, **COMMANDS}[args.command](args, settings)
    except (QueryError, ReportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _build(args, settings: Settings) -> int:
    from qa.retriever import Retriever

    if args.if_stale:
        retriever = Retriever.load(settings=settings, progress=True)
    else:
        retriever = Retriever.build(settings, progress=True)
    m = retriever.index.manifest
    print(f"Index ready in {settings.index_dir}: {m['chunks']} chunks from {m['documents']} reports, "
          f"model {m['model']['name']} ({m['model']['dimension']} dimensions).")
    return 0


def _search(args, settings: Settings) -> int:
    from qa.retriever import Retriever

    retriever = Retriever.load(settings=settings, progress=not args.json)
    hits = retriever.search(args.question, k=args.k, method=args.method, council=args.council,
                            doc_id=args.doc_id, year=args.year)
    if args.json:
        print(json.dumps([h.to_json() for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("No passages match these filters.")
    for i, h in enumerate(hits, 1):
        print(f"[{i}] {h.score:.3f}  {h.citation}")
        print(textwrap.indent(textwrap.fill(" ".join(h.text.split()), 100), "    "))
        for other in h.also_in:
            print(f"    (also in: {other})")
        print()
    return 0


def _ask(args, settings: Settings) -> int:
    from qa.answer import Assistant
    from qa.retriever import Retriever

    assistant = Assistant(Retriever.load(settings=settings, progress=not args.json))
    answer = assistant.ask(args.question, council=args.council, doc_id=args.doc_id, year=args.year)
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
        return 0
    print(answer.text)
    if answer.citations:
        print()
        for i, p in enumerate(answer.citations, 1):
            print(f"[{i}] {p.citation}")
    return 0
