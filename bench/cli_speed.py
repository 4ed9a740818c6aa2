"""Wall time of what a command-line user waits for, each in a new process, medians of N runs.

    python bench/cli_speed.py [--runs 5] [--skip-build]

Prints a table: `python -m qa search --method bm25`, `search` (hybrid), `ask`, `Retriever.load()`
in a new process (imports included), and `python -m qa build` three ways (from nothing; a new index
with the model's ONNX export kept from an earlier build; a rebuild with nothing changed), each run
`--runs` times into a temporary index folder (the builds run first; the others load what they wrote). Every figure includes
the interpreter's start. Timings on a shared 2-core machine are noisy: the table gives the median
wall time, the runs, and the median CPU time (user + system), which other jobs disturb less.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUESTION = "DoLS backlog"
ASK = "How many complaints about adult social care did Birmingham receive?"


CPU: dict[str, list[float]] = {}


def _timed(args: list[str], env: dict[str, str], key: str | None = None) -> float:
    """Wall seconds of one run; its CPU seconds (user + system) are kept in CPU under `key`
    (the command by default)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    CPU.setdefault(key or " ".join(args), []).append(cpu)
    return elapsed


def _build_rows(env: dict[str, str], runs: int) -> list[tuple[str, list[float]]]:
    """`qa build` three ways, each into `env`'s index folder: from nothing (the ONNX export and every
    embedding made anew), a new index whose model export is kept beside it but no embedding is cached,
    and a rebuild with nothing changed (every embedding read from the cache)."""
    try:
        from qa.embedding_cache import CACHE_DIR_NAME
    except ImportError:  # a checkout from before the embedding cache (timing an old commit)
        CACHE_DIR_NAME = ".index-embeddings"  # noqa: N806

    index = Path(env["QA_INDEX_DIR"])
    cache = index.parent / CACHE_DIR_NAME

    def clear(keep_export: bool) -> None:
        for path in [index, index.parent / f".{index.name}.generations"]:
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir():
                shutil.rmtree(path)
        if cache.is_dir():
            for folder in cache.iterdir():
                if not (keep_export and folder.name.startswith("onnx-")):
                    shutil.rmtree(folder)

    cmd = ["-m", "qa", "build"]
    rows = []
    for name, keep in (("python -m qa build, from nothing", False), ("python -m qa build, export kept", True)):
        times = []
        for _ in range(runs):
            clear(keep_export=keep)
            times.append(_timed(cmd, env, key=name))
        rows.append((name, times))
    name = "python -m qa build, nothing changed"
    rows.append((name, [_timed(cmd, env, key=name) for _ in range(runs)]))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    p.add_argument("--index-dir", help="use this index (built once if missing) instead of a temporary one; "
                                       "the build row is then skipped")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        index_dir = args.index_dir or str(Path(tmp) / "index")
        env = dict(os.environ, QA_INDEX_DIR=index_dir, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        rows: list[tuple[str, list[float]]] = []
        if args.index_dir:
            _timed(["-m", "qa", "build", "--if-stale"], env)
        else:
            rows.extend(_build_rows(env, args.runs))
        commands = [
            ("python -m qa search --method bm25", ["-m", "qa", "search", QUESTION, "--method", "bm25"]),
            ("python -m qa search (hybrid)", ["-m", "qa", "search", QUESTION]),
            ("python -m qa ask", ["-m", "qa", "ask", ASK]),
            ("Retriever.load() new process", ["-c", "from qa import Retriever; Retriever.load(build_if_missing=False)"]),
        ]
        for _, cmd in commands:  # warm the disk cache once, as a user's second command would find it
            _timed(cmd, env)
        for name, cmd in commands:
            rows.append((name, [_timed(cmd, env, key=name) for _ in range(args.runs)]))

    print(f"{'command':<38} {'wall s':>7} {'cpu s':>6}  wall runs (s); median of {args.runs}, CPU = user + system")
    for name, times in rows:
        cpu = statistics.median(CPU[name][-args.runs:])
        print(f"{name:<38} {statistics.median(times):>7.2f} {cpu:>6.2f}  {', '.join(f'{t:.2f}' for t in times)}")


if __name__ == "__main__":
    main()
