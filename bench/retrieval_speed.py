"""Retrieval speed on this machine: build, load, and warm search against query encoding alone.

    python bench/retrieval_speed.py [--runs 3] [--queries 200]

Prints medians (timings on a shared 2-core machine are noisy). Search and encoding are measured
in the same run, interleaved question by question, so their ratio is fair.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _timed_subprocess(code: str, env_index: str) -> float:
    import os

    env = dict(os.environ, QA_INDEX_DIR=env_index, HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, help="builds and cold loads to time (default 3)")
    p.add_argument("--queries", type=int, default=200, help="warm searches to time (default 200)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        index_dir = str(Path(tmp) / "index")
        builds = [_timed_subprocess("from qa.cli import main; main(['build'])", index_dir) for _ in range(args.runs)]
        loads = [_timed_subprocess("from qa import Retriever; Retriever.load(build_if_missing=False)", index_dir)
                 for _ in range(args.runs)]

        from qa import Retriever
        from qa.config import Settings

        retriever = Retriever.load(settings=Settings.from_env(index_dir=Path(index_dir)), build_if_missing=False)
        questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").open()]
        questions = (questions * (args.queries // len(questions) + 1))[: args.queries]
        for q in questions[:20]:  # warm-up
            retriever.search(q, k=5)
        # the same retriever without the word-piece reranking, timed in the same loop: what it costs
        plain = copy.copy(retriever)
        plain.settings = dataclasses.replace(retriever.settings, rerank_weight=0.0)
        search_ms, encode_ms, plain_ms = [], [], []
        for q in questions:
            t = time.perf_counter()
            retriever.encoder.encode_queries([q])
            encode_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            retriever.search(q, k=5)
            search_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            plain.search(q, k=5)
            plain_ms.append((time.perf_counter() - t) * 1000)

    med = statistics.median
    print(f"build index (python -m qa build, {args.runs} runs): median {med(builds):.1f} s  "
          f"(runs: {', '.join(f'{b:.1f}' for b in builds)})")
    print(f"Retriever.load() cold process incl. imports ({args.runs} runs): median {med(loads):.1f} s  "
          f"(runs: {', '.join(f'{x:.1f}' for x in loads)})")
    print(f"warm search k=5 ({len(questions)} queries): median {med(search_ms):.1f} ms, "
          f"p95 {sorted(search_ms)[int(0.95 * len(search_ms))]:.1f} ms")
    print(f"query encoding alone, same run:          median {med(encode_ms):.1f} ms")
    print(f"search / encoding ratio (medians): {med(search_ms) / med(encode_ms):.2f}")
    print(f"without the word-piece reranking (QA_RERANK_WEIGHT=0), same run: median {med(plain_ms):.1f} ms, "
          f"ratio {med(plain_ms) / med(encode_ms):.2f}")


if __name__ == "__main__":
    main()
