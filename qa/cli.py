"""Command line: `qa build | search | ask` (or `python -m qa ...`).

    qa build                                 # build or refresh the index from the corpus
    qa search "question" -k 5 [--json] [--method hybrid|dense|bm25] [--council ...]
    qa ask "question" [--json] [--no-llm]    # the model server's answer when QA_LLM_BASE_URL is set

Warnings (a stale index being rebuilt, another build running) go to stderr as plain lines.

Errors print one clear line to stderr and exit with status 2 (bad input) or 1 (other failures).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap

from qa.cli_library import COMMANDS, add_commands
from qa.config import Settings
from qa.errors import QAError, QueryError, ReportError
from qa.index import adapted_weights
from qa.retriever import MAX_K, METHODS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa", description="Cited answers from adult social care reports.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens (to stderr)")
    sub = p.add_subparsers(dest="command", required=True, metavar="{build,search,ask,add,remove,list,mcp}")

    b = sub.add_parser("build", help="build or refresh the index from the corpus",
                       description="Chunk, embed and index every report listed in corpus/catalogue.json. "
                                   "The new index replaces the old one only once it is complete.")
    b.add_argument("--index-dir", help="where to write the index (default: QA_INDEX_DIR, else index/ in a checkout, "
                                          "or the user cache folder when installed)")
    b.add_argument("--if-stale", action="store_true", help="do nothing if the index is already up to date")
    b.add_argument("--readapt", action="store_true",
                   help="adapt the embedding model to the reports as they are now (a first build always does; "
                        "later builds keep the model adapted before, see QA_ADAPT_MODEL)")

    def add_filters(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("question", help="the question, in quotes")
        sp.add_argument("--council", help="only reports about this council (e.g. Westminster)")
        sp.add_argument("--doc", dest="doc_id", help="only this report (its id, or the first digits: 001)")
        sp.add_argument("--year", type=int, help="only reports from this year")
        sp.add_argument("--json", action="store_true", help="print JSON instead of text")
        sp.add_argument("--index-dir", help="index folder (default: QA_INDEX_DIR, else index/ in a checkout, "
                                                 "or the user cache folder when installed)")

    s = sub.add_parser("search", help="the passages that best match a question",
                       description="Hybrid (dense + BM25) search; prints passages with their citations.")
    add_filters(s)
    s.add_argument("-k", type=int, default=5, help=f"how many passages (1-{MAX_K}, default 5)")
    s.add_argument("--method", choices=METHODS, default="hybrid", help="retrieval method (default hybrid)")

    a = sub.add_parser("ask", help="a short cited answer, or 'not found in these reports'",
                       description="Sentences quoted from the reports with [n] citations; with a model server "
                                   "(QA_LLM_BASE_URL, see docs/llm.md) the model's checked answer instead.")
    add_filters(a)
    a.add_argument("--no-llm", action="store_true", help="quote the reports even if QA_LLM_BASE_URL is set")

    m = sub.add_parser("mcp", help="serve the reports to other assistants over MCP (stdio by default)",
                       description="MCP server with two read-only tools, search_reports and ask. Over stdio "
                                   "by default; --http serves streamable HTTP on 127.0.0.1 (another address "
                                   "needs QA_MCP_TOKEN). Needs the mcp package: pip install mcp.")
    m.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    m.add_argument("--host", help="address for --http (default: QA_MCP_HOST or 127.0.0.1)")
    m.add_argument("--port", type=int, help="port for --http (default: QA_MCP_PORT or 8765)")
    add_commands(sub)
    return p


def quiet_progress_bars() -> None:
    """The command line is an application: it may quiet the libraries' own progress bars.

    For build, add and remove. transformers reads these settings when it is first imported, which
    a build whose model export is kept never does: importing it just to quiet it cost 0.7 s of
    every build.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # already imported: too late for the settings
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()


def _quiet_logging(verbose: bool) -> None:
    """The command line is an application: it decides what the libraries print.

    Without -v: the library's warnings as plain lines on stderr, and nothing from the libraries
    below it (bm25s sets its own logger to DEBUG; transformers draws a "Loading weights" bar).
    """
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    qa_log = logging.getLogger("qa")
    qa_log.addHandler(handler)
    qa_log.setLevel(logging.WARNING)
    for name in ("bm25s", "faiss", "faiss.loader", "sentence_transformers", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_logging(args.verbose)
    if not args.verbose and args.command == "build":
        quiet_progress_bars()
    try:
        settings = Settings.from_env()
        if getattr(args, "index_dir", None):
            from pathlib import Path

            settings = settings.with_(index_dir=Path(args.index_dir))
        return {"build": _build, "search": _search, "ask": _ask, "mcp": _mcp, **COMMANDS}[args.command](args, settings)
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
        retriever = Retriever.build(settings, progress=True, readapt=args.readapt)
    m = retriever.index.manifest
    adapted = " adapted to these reports" if adapted_weights(m) else ""
    print(f"Index ready in {settings.index_dir}: {m['chunks']} chunks from {m['documents']} reports, "
          f"model {m['model']['name']}{adapted} ({m['model']['dimension']} dimensions).")
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
    from qa.generate import LLMSettings
    from qa.retriever import Retriever

    llm = LLMSettings() if args.no_llm else LLMSettings.from_env()  # read (and checked) before loading
    assistant = Assistant(Retriever.load(settings=settings, progress=not args.json), llm=llm)
    answer = assistant.ask(args.question, council=args.council, doc_id=args.doc_id, year=args.year)
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
        return 0
    print(answer.text)
    if answer.note and answer.note not in answer.text:  # an abstention already says why
        print(f"\nNote: {answer.note}")
    if answer.citations:
        print()
        for i, p in enumerate(answer.citations, 1):
            print(f"[{i}] {p.citation}")
    return 0


def _mcp(args, settings: Settings) -> int:
    from qa.config import McpSettings

    mcp_settings = McpSettings.from_env()
    changes = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    mcp_settings = mcp_settings.with_(**changes)
    try:
        from qa.mcp_server import LazyAssistant, build_server, check_http_binding, serve_http
    except ImportError as exc:
        raise QAError(f"qa mcp needs the MCP SDK ({exc}); install it with: pip install mcp") from None
    if args.http:  # refuse a bad binding before anything loads
        problem = check_http_binding(mcp_settings.host, mcp_settings.token)
        if problem:
            raise QAError(problem)

    def load():
        from qa.answer import Assistant
        from qa.generate import LLMSettings
        from qa.retriever import Retriever

        # progress bars off: over stdio, stdout is the protocol's channel
        return Assistant(Retriever.load(settings=settings, progress=False), llm=LLMSettings.from_env())

    server = build_server(LazyAssistant(load))
    if args.http:
        serve_http(server, mcp_settings.host, mcp_settings.port, mcp_settings.token)
    else:
        server.run("stdio")
    return 0
