"""Command line: `python -m eval --help`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from eval import harness, report
from eval.harness import DEFAULT_QUESTIONS, METHODS, EvalError
from qa.errors import QAError

DESCRIPTION = """Evaluate the retrievers and the answer engine on a question set, or on a BEIR folder.

  python -m eval                                      # all retrievers + answers, eval/questions.jsonl
  python -m eval --json run.json --report out/report.md
  python -m eval --compare before.json after.json
  python -m eval --beir path/to/scifact
  python -m eval --conversations eval/conversations.jsonl   # follow-ups: raw, system, oracle"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, metavar="FILE",
                   help="question set, JSON Lines (default: eval/questions.jsonl)")
    p.add_argument("--retriever", default="all", metavar="|".join([*METHODS, "all"]),
                   help="retriever(s) to evaluate: one name, a comma list, or all (default)")
    p.add_argument("-k", type=int, default=5, help="cutoff for failures and timed searches (default 5)")
    p.add_argument("--index", type=Path, default=None, metavar="DIR", help="index folder (default: settings)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write per-question results and the summary as JSON")
    p.add_argument("--report", type=Path, metavar="OUT.md", help="write a Markdown report with a hit@k plot beside it")
    p.add_argument("--beir", type=Path, metavar="DIR",
                   help="instead, evaluate on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    p.add_argument("--conversations", type=Path, metavar="FILE",
                   help="instead, evaluate follow-up questions on a conversation file (JSON Lines): each turn "
                        "asked alone (raw), through qa.Conversation (system) and as its gold rewrite (oracle)")
    p.add_argument("--compare", type=Path, nargs=2, metavar=("A.json", "B.json"),
                   help="print what changed between two --json results (runs nothing)")
    p.add_argument("--no-timing", action="store_true", help="skip the per-question search timing")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch and FAISS threads (default 1: fastest on a busy 2-core machine; 0: library default)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.k <= 100:  # checked before the model loads, not after
        parser.error(f"-k must be from 1 to 100. Currently, it is {args.k}")
    if args.threads < 0:
        parser.error(f"--threads must be 0 (library default) or more. Currently, it is {args.threads}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # bm25s sets its own logger to DEBUG when imported; faiss logs its CPU features at INFO
        import bm25s  # noqa: F401 - imported first, so that the level set here is not reset

        for name in ("bm25s", "faiss", "faiss.loader"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if args.quiet:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

    try:
        if args.compare:
            before, after = (harness.load_run(p) for p in args.compare)
            print(report.format_comparison(report.compare_runs(before, after), str(args.compare[0]),
                                           str(args.compare[1])))
            return 0
        if args.conversations:
            from eval import conversations

            results = conversations.evaluate_conversations(args.conversations, index_dir=args.index,
                                                           progress=not args.quiet, threads=args.threads or None)
            print(conversations.format_results(results, str(args.conversations)))
            if args.json:
                print(f"\nWrote {conversations.save_results(results, args.json)}")
            return 0
        methods = harness.parse_methods(args.retriever)
        if args.beir:
            from eval.beir import run_beir

            if args.threads:  # before the model loads, as in the question-set mode
                harness.limit_threads(args.threads)
            beir_run = run_beir(args.beir, methods=methods, progress=not args.quiet)
            print(report.format_beir(beir_run))
            if args.json:
                print(f"\nWrote {beir_run.save(args.json)}")
            if args.report:
                print(f"Wrote {report.write_beir_report(beir_run, args.report)}")
            return 0
        run = harness.evaluate(args.questions, methods=methods, k=args.k, index_dir=args.index,
                               timing=not args.no_timing, progress=not args.quiet, threads=args.threads or None)
        print(report.format_run(run))
        if args.json:
            print(f"\nWrote {harness.save_run(run, args.json)}")
        if args.report:
            print(f"Wrote {report.write_report(run, args.report)}")
        return 0
    except (EvalError, QAError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
