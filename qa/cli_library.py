"""Command line for the library: `python -m qa add | remove | list` (wired into `qa/cli.py`).

    python -m qa add report.pdf [--title T] [--council C] [--date YYYY-MM-DD] [--type T]
                     [--publisher P] [--password PW] [--replace DOC_ID] [--no-index]
    python -m qa remove DOC_ID
    python -m qa list [--json]
"""

from __future__ import annotations

import json
import sys

from qa.config import Settings


def add_commands(sub) -> None:
    a = sub.add_parser("add", help="add reports as published (PDF, DOCX, HTML, Markdown, text)",
                       description="Read each report, infer its catalogue entry (printed with where each value "
                                   "came from), add it to the corpus and update the index. Options override "
                                   "what is inferred; a value that cannot be inferred is asked for (at a "
                                   "terminal) or must be given. A bad file changes nothing.")
    a.add_argument("paths", nargs="+", metavar="PATH", help="report files; the format is read from the content")
    a.add_argument("--title", help="the report's full title")
    a.add_argument("--short-title", dest="short_title", help="short title used in section paths")
    a.add_argument("--council", help="the council the report is about, e.g. 'Birmingham City Council'")
    a.add_argument("--date", help="publication date: YYYY-MM-DD, YYYY-MM or YYYY")
    a.add_argument("--type", dest="doc_type",
                   help="CQC assessment, quality statement, self-assessment, peer challenge, other (or free text)")
    a.add_argument("--publisher", help="who published it, e.g. 'Care Quality Commission (CQC)'")
    a.add_argument("--password", help="password of an encrypted PDF")
    a.add_argument("--replace", metavar="DOC_ID", help="a new version of this report: it takes the old one's place")
    a.add_argument("--no-index", action="store_true", help="only update the corpus; build the index later")
    r = sub.add_parser("remove", help="remove a report from the corpus and the index",
                       description="Remove a report (its id or first digits) and update the index.")
    r.add_argument("doc_id", metavar="DOC_ID")
    r.add_argument("--no-index", action="store_true", help="only update the corpus; build the index later")
    ls = sub.add_parser("list", help="the reports in the corpus", description="List the reports in the catalogue.")
    ls.add_argument("--json", action="store_true", help="print the catalogue entries as JSON")
    for sp in (a, r, ls):
        sp.add_argument("--index-dir", help="index folder (default: QA_INDEX_DIR or ./index)")


def _ask(field: str, prompt: str, hint: str) -> str:
    if hint:
        print(f"  ({hint})", file=sys.stderr)
    return input(f"{prompt}: ")


def cmd_add(args, settings: Settings) -> int:
    from qa.library import Library

    lib = Library(settings)
    if len(args.paths) > 1 and (args.replace or args.title):
        print("error: --replace and --title apply to one report; add the files one at a time", file=sys.stderr)
        return 2
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if len(args.paths) == 1:  # one file: its error is the command's error (exit status 2, nothing changed)
        results = [_add_one(lib, args, args.paths[0], interactive)]
        refused = 0
    else:  # several: each refusal is reported, the others are still added
        from qa.errors import ReportError

        results, refused = [], 0
        for path in args.paths:
            try:
                results.append(_add_one(lib, args, path, interactive))
            except ReportError as exc:
                print(f"error: {exc}", file=sys.stderr)
                refused += 1
    if results and not args.no_index:  # the model loads only once every file has been read and added
        _quiet(args)
        results[-1].index = lib.update_index()
    for result in results:
        print(describe(result))
    if refused:
        print(f"{len(results)} of {len(args.paths)} reports added; {refused} refused (see above).", file=sys.stderr)
        return 2
    return 0


def _add_one(lib, args, path: str, interactive: bool):
    return lib.add(path, title=args.title, council=args.council, date=args.date, doc_type=args.doc_type,
                   publisher=args.publisher, short_title=args.short_title, password=args.password,
                   replace=args.replace, ask=_ask if interactive else None, update_index=False)


def describe(result) -> str:
    """What `add` prints: what was read, each value with its source, the files, the index update."""
    doc = result.extracted
    pages = f", {doc.metadata['pages']} pages" if doc.metadata.get("pages") else ""
    source = ("its outline" if doc.format == "pdf" and doc.metadata.get("outline") == "yes" else
              "font sizes" if doc.format == "pdf" else "heading styles" if doc.format == "docx" else
              "h1-h6" if doc.format == "html" else "the text")
    heads = f", {len(doc.headings)} headings (from {source})" if doc.headings else ""
    lines = [f"Read {result.info.notes.split(' (')[0].removeprefix('Added from ')}: "
             f"{doc.format.upper() if doc.format in ('pdf', 'docx', 'html') else doc.format}{pages}{heads}, "
             f"{len(doc.text.split()):,} words."]
    labels = {"title": "title", "council": "council", "date": "date", "doc_type": "type", "publisher": "publisher",
              "short_title": "short title"}
    for name, label in labels.items():
        found = result.inferred[name]
        value = found.value + (f" ({result.info.date_text})" if name == "date" else "")
        lines.append(f"  {label:<12} {value}\n  {'':<12}   <- {found.source}")
    for w in result.warnings:
        lines.append(f"  warning: {w}")
    verb = f"Replaced {result.replaced.doc_id} with" if result.replaced else "Added"
    lines.append(f"{verb} {result.info.doc_id}: {', '.join(result.files)}")
    if result.index:
        u = result.index
        lines.append(f"Index updated in {u.seconds:.1f} s: {u.chunks} chunks from {u.documents} reports; "
                     f"{u.embedded} texts embedded, {u.cached} reused from the cache.")
    return "\n".join(lines)


def _quiet(args) -> None:
    if not args.verbose:
        from qa.cli import quiet_progress_bars

        quiet_progress_bars()


def cmd_remove(args, settings: Settings) -> int:
    from qa.library import Library

    lib = Library(settings)
    info = lib.remove(args.doc_id, update_index=False)
    if not args.no_index:
        _quiet(args)
        lib.update_index()
    print(f"Removed {info.doc_id} ({info.title}).")
    return 0


def cmd_list(args, settings: Settings) -> int:
    from qa.library import Library, _entry

    infos = Library(settings).list()
    if args.json:
        print(json.dumps([_entry(i) for i in infos], indent=2, ensure_ascii=False))
        return 0
    for i in infos:
        fmt = i.format or "text"
        print(f"{i.doc_id}  {i.date:<10}  {fmt:<8}  {i.short_title}\n{'':<22}{i.title}")
    return 0


COMMANDS = {"add": cmd_add, "remove": cmd_remove, "list": cmd_list}
