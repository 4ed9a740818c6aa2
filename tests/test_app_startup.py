"""`python app.py` as staff start it: a busy port is reported at once, and start-up output is quiet."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from served_app import free_port

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_APP_")}
    return dict(env, HF_HUB_OFFLINE="1", **extra)


def test_a_port_in_use_is_one_line_before_anything_loads():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=_env(),
                             capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert out.stderr.strip() == (f"error: port {port} on 127.0.0.1 is already in use (another copy of the app?). "
                                  "Choose another with --port or QA_APP_PORT.")
    assert "Loading" not in out.stdout and "Traceback" not in out.stderr


@pytest.mark.slow
def test_start_up_output_is_quiet_and_says_where_the_app_listens(retriever):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env=_env(QA_INDEX_DIR=str(retriever.settings.index_dir)))
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if line.startswith("Listening on"):
                break
    finally:
        proc.terminate()
        proc.wait(30)
    output = "\n".join(lines)
    assert lines and lines[-1] == (f"Listening on http://127.0.0.1:{port}/ with no login (set QA_APP_USER and "
                                   "QA_APP_PASSWORD to require one). Press Ctrl+C to stop."), output
    for noise in ("AVX2", "DEBUG", "Loading weights", "share=True", "Traceback"):
        assert noise not in output, output
    assert len(lines) <= 3, output


@pytest.mark.parametrize("given, threads", [(None, 1), ("2", 2)])
def test_the_app_runs_blas_on_one_thread_unless_told_otherwise(given, threads):
    code = ("import app; app.one_blas_thread(); import numpy, threadpoolctl; "
            "print([i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'])")
    env = {k: v for k, v in _env().items() if k != "OPENBLAS_NUM_THREADS"}
    if given:
        env["OPENBLAS_NUM_THREADS"] = given
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == str([threads]), out.stderr
