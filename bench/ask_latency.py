"""Warm latency of `Assistant.ask` over the eval questions, against encoding the question alone.

Target: the `ask` median under twice the median of encoding the same question (measured in the
same run, question by question, so machine noise hits both alike).

    python bench/ask_latency.py [--repeat 3] [--limit 0] [--torch-threads N]

Loads the assistant once, warms it up, then times every question of eval/questions.jsonl
(`--repeat` passes) and prints the median, p95, mean and max in milliseconds, the median of
encoding each question alone, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so `python bench/ask_latency.py` finds the qa package


def load_questions(path: Path, limit: int = 0) -> list[str]:
    """The question texts of a JSON-lines question set (the first `limit`, if given)."""
    questions = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return questions[:limit] if limit else questions


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the questions (default 3)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions (default all)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch intra-op threads (default: QA_TORCH_THREADS, itself 1 by default)")
    args = parser.parse_args(argv)

    import torch

    from qa import Assistant, Settings

    questions = load_questions(args.questions, args.limit)
    overrides = {} if args.torch_threads is None else {"torch_threads": args.torch_threads}
    assistant = Assistant.load(Settings.from_env(**overrides))
    for q in questions[:10]:  # warm-up: first calls pay for lazy initialisation
        assistant.ask(q)
    encoder = assistant.retriever.encoder
    times_ms: list[float] = []
    encode_ms: list[float] = []
    for _ in range(args.repeat):
        for q in questions:
            start = time.perf_counter()
            encoder.encode_queries([q])
            encode_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            assistant.ask(q)
            times_ms.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times_ms)
    encode = statistics.median(encode_ms)
    print(f"questions: {len(questions)} x {args.repeat} passes = {len(times_ms)} calls; "
          f"torch threads: {torch.get_num_threads()}")
    print(f"median {median:.1f} ms | p95 {percentile(times_ms, 95):.1f} ms | "
          f"mean {statistics.fmean(times_ms):.1f} ms | max {max(times_ms):.1f} ms")
    print(f"encoding the question alone: median {encode:.1f} ms; ask / encode = {median / encode:.2f}")
    print(f"target ask median < 2x encoding: {'met' if median < 2 * encode else 'NOT met'}")


if __name__ == "__main__":
    main()
