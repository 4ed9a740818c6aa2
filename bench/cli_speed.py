"""Wall time of what a command-line user waits for, each in a new process, medians of N runs.

    python bench/cli_speed.py [--runs 5] [--skip-build]

Prints a table: `python -m qa search --method bm25`, `search` (hybrid), `ask`, `Retriever.load()`
in a new process (imports included), and `python -m qa build`, each run `--runs` times into a
temporary index folder (the build runs first; the others load what it wrote). Every figure includes
the interpreter's start. Timings on a shared 2-core machine are noisy: the table gives the median
wall time, the runs, and the median CPU time (user + system), which other jobs disturb less.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "DoLS backlog"
ASK = "How many complaints about adult social care did Birmingham receive?"


CPU: dict[str, list[float]] = {}


def _timed(args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run; its CPU seconds (user + system) are kept in CPU under the command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU.setdefault(" ".join(args), []).append(cpu)
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    p.add_argument("--index-dir", help="use this index (built once if missing) instead of a temporary one; "
                                       "the build row is then skipped")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        index_dir = args.index_dir or str(Path(tmp) / "index")
        env = dict(os.environ, QA_INDEX_DIR=index_dir, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        rows: list[tuple[str, list[str], list[float]]] = []
        if args.index_dir:
            _timed(["-m", "qa", "build", "--if-stale"], env)
        else:
            cmd = ["-m", "qa", "build"]
            rows.append(("python -m qa build", cmd, [_timed(cmd, env) for _ in range(args.runs)]))
        commands = [
            ("python -m qa search --method bm25", ["-m", "qa", "search", QUESTION, "--method", "bm25"]),
            ("python -m qa search (hybrid)", ["-m", "qa", "search", QUESTION]),
            ("python -m qa ask", ["-m", "qa", "ask", ASK]),
            ("Retriever.load() new process", ["-c", "from qa import Retriever; Retriever.load(build_if_missing=False)"]),
        ]
        for _, cmd in commands:  # warm the disk cache once, as a user's second command would find it
            _timed(cmd, env)
        for name, cmd in commands:
            rows.append((name, cmd, [_timed(cmd, env) for _ in range(args.runs)]))

    print(f"{'command':<36} {'wall s':>7} {'cpu s':>6}  wall runs (s); median of {args.runs}, CPU = user + system")
    for name, cmd, times in rows:
        cpu = statistics.median(CPU[" ".join(cmd)][-args.runs:])
        print(f"{name:<36} {statistics.median(times):>7.2f} {cpu:>6.2f}  {', '.join(f'{t:.2f}' for t in times)}")


if __name__ == "__main__":
    main()
