"""Load check of the browser app: concurrent gradio_client users asking different questions.

    python bench/load_app.py [--users 20] [--seconds 60] [--max-requests 5000] [--torch-threads N] [--in-process]

Starts the app with `python app.py` on 127.0.0.1 (a free port) in a child process, as it is
deployed (or, with --in-process, in this process), then each simulated user, with its own
`gradio_client.Client`, asks the eval questions (starting at a different one) through the `/ask`
endpoint until the time is up or the request budget is spent. Prints requests, errors, throughput,
and the median and p95 latency. Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so `python bench/load_app.py` finds the qa package

from bench.ask_latency import load_questions, percentile  # noqa: E402


@dataclass
class Tally:
    """Results shared by the user threads (guarded by `lock`)."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused: int = 0  # answered with a message instead of an answer (should stay 0 here)
    started: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, budget: int) -> bool:
        """Reserve one request of the budget; False when it is spent."""
        with self.lock:
            if self.started >= budget:
                return False
            self.started += 1
            return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, feedback_log: Path, torch_threads: int | None,
                 timeout: float = 600) -> subprocess.Popen:
    """`python app.py` on loopback in a child process; returns once it answers HTTP."""
    import urllib.request

    env = {**os.environ, "QA_APP_HOST": "127.0.0.1", "QA_APP_PORT": str(port),
           "QA_APP_FEEDBACK_LOG": str(feedback_log), "GRADIO_ANALYTICS_ENABLED": "False"}
    if torch_threads is not None:
        env["QA_TORCH_THREADS"] = str(torch_threads)
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout  # the first run builds the index
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise SystemExit(f"app.py did not answer within {timeout:.0f} s")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def user(url: str, questions: list[str], offset: int, deadline: float, budget: int, tally: Tally) -> None:
    """One simulated member of staff: asks question after question until time or budget runs out."""
    from gradio_client import Client

    try:
        # gradio_client opens a new httpx client for every request, and each loads the CA
        # certificates (80% of the load generator's CPU when profiled): on plain-HTTP loopback they
        # are never used, so skip them and leave the cores to the app under test
        client = Client(url, verbose=False, ssl_verify=False)
    except Exception as exc:  # noqa: BLE001 - a load check reports every failure, whatever it is
        with tally.lock:
            tally.errors.append(f"connect: {exc!r}"[:200])
        return
    i = offset
    while time.monotonic() < deadline and tally.claim(budget):
        question = questions[i % len(questions)]
        i += 1
        start = time.perf_counter()
        try:
            _, payload = client.predict(question, "", "", api_name="/ask")
        except Exception as exc:  # noqa: BLE001
            with tally.lock:
                tally.errors.append(repr(exc)[:200])
            continue
        elapsed = (time.perf_counter() - start) * 1000
        with tally.lock:
            tally.latencies_ms.append(elapsed)
            if payload.get("error"):
                tally.refused += 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=5000, help="stop after this many requests in all")
    parser.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch intra-op threads (default: QA_TORCH_THREADS, itself 1 by default)")
    parser.add_argument("--in-process", action="store_true",
                        help="serve the app in this process (clients and server then share one GIL)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from qa.app_settings import AppSettings

    questions = load_questions(args.questions)
    with tempfile.TemporaryDirectory() as tmp:
        settings = AppSettings.from_env(port=_free_port(), feedback_log=Path(tmp) / "feedback.jsonl")
        if args.in_process:
            from qa import Assistant, Settings
            from qa.ui import build_app, launch

            overrides = {} if args.torch_threads is None else {"torch_threads": args.torch_threads}
            assistant = Assistant.load(Settings.from_env(**overrides))
            demo = build_app(assistant, settings)
            _, url, _ = launch(demo, assistant, settings, prevent_thread_lock=True, quiet=True)
            stop = demo.close
        else:
            proc = start_server(settings.port, settings.feedback_log, args.torch_threads)
            url = f"http://127.0.0.1:{settings.port}/"
            stop = lambda: stop_server(proc)  # noqa: E731
        from gradio_client import Client

        Client(url, verbose=False).predict(questions[0], "", "", api_name="/ask")  # warm-up
        tally = Tally()
        step = max(1, len(questions) // args.users)
        server_cpu_before = _cpu_seconds(proc.pid) if not args.in_process else 0.0
        own_cpu_before = time.process_time()
        start = time.monotonic()
        deadline = start + args.seconds
        threads = [threading.Thread(target=user, args=(url, questions, n * step, deadline, args.max_requests, tally),
                                    daemon=True) for n in range(args.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.seconds + 120)  # a stuck request must not hang the check forever
        wall = time.monotonic() - start
        server_cpu = _cpu_seconds(proc.pid) - server_cpu_before if not args.in_process else None
        own_cpu = time.process_time() - own_cpu_before
        stop()

    lat = tally.latencies_ms
    where = "in-process" if args.in_process else "app.py child process"
    print(f"users: {args.users} | wall time: {wall:.1f} s | server: {where} | "
          f"torch threads: {args.torch_threads if args.torch_threads is not None else 'QA_TORCH_THREADS'} | "
          f"queue max_size {settings.queue_max_size}, concurrency {settings.concurrency_limit}")
    print(f"requests: {len(lat) + len(tally.errors)} | answered: {len(lat)} | errors: {len(tally.errors)} | "
          f"refused with a message: {tally.refused} | throughput: {len(lat) / wall:.1f}/s")
    if lat:
        print(f"latency: median {statistics.median(lat):.0f} ms | p95 {percentile(lat, 95):.0f} ms | "
              f"max {max(lat):.0f} ms")
        # where the CPU went: the app (its engine and Gradio around it) and the load generator
        per = 1000 / len(lat)
        app = f"app process {server_cpu * per:.1f} ms" if server_cpu is not None else "app in this process"
        print(f"CPU per answered request: {app} | load generator {own_cpu * per:.1f} ms "
              f"| {os.cpu_count()} cores = {os.cpu_count() * per * wall:.1f} core-ms available per request")
    for error in sorted(set(tally.errors))[:5]:
        print("error:", error)
    print(json.dumps({"requests": len(lat) + len(tally.errors), "errors": len(tally.errors),
                      "median_ms": round(statistics.median(lat), 1) if lat else None,
                      "p95_ms": round(percentile(lat, 95), 1) if lat else None}))


if __name__ == "__main__":
    main()
