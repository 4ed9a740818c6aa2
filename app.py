"""Start the browser chat app: `python app.py [--host 127.0.0.1] [--port 7860]` (see docs/app.md)."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import socket
import sys


def port_problem(host: str, port: int) -> str:
    """Why the app cannot listen on (host, port), in one line; "" when it can. Checked before loading."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot listen on {host!r}: {exc.strerror}. Set another address with --host or QA_APP_HOST."
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself does
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"port {port} on {host} is already in use (another copy of the app?). "
                        "Choose another with --port or QA_APP_PORT.")
            return f"cannot listen on {host}:{port} ({exc.strerror}). Choose another with --port or QA_APP_PORT."
    return ""


def one_blas_thread() -> None:
    """Matrix products on the thread that asks for them (unless OPENBLAS_NUM_THREADS says otherwise).

    The app answers several questions at once; with BLAS's own threads for each question's products,
    they took the cores from one another (`python bench/load_app.py --seconds 30`, 20 users: 35.5
    requests/s, p95 723 ms, 46 ms of CPU a request; with one thread, 49.1 requests/s, p95 544 ms,
    25 ms). Set before numpy is first imported, which reads it then.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def quiet_logging() -> None:
    """Our INFO lines with timestamps; nothing from the libraries below unless it is a warning."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx: one line per health check; faiss.loader: "Could not load library with AVX2 support";
    # bm25s sets its own logger to DEBUG when imported (so it is imported first).
    import bm25s  # noqa: F401

    for name in ("httpx", "faiss", "faiss.loader", "bm25s", "sentence_transformers", "gradio", "uvicorn"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # the "Loading weights" bar
    transformers_logging.set_verbosity_error()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, load the assistant (building the index on first run) and serve."""
    one_blas_thread()
    from qa import QAError
    from qa.config import AppSettings

    try:
        settings = AppSettings.from_env()
        parser = argparse.ArgumentParser(description="Serve the adult social care reports Q&A app.")
        parser.add_argument("--host", default=settings.host, help=f"address to bind (default {settings.host})")
        parser.add_argument("--port", type=int, default=settings.port, help=f"port (default {settings.port})")
        args = parser.parse_args(argv)
        settings = settings.with_(host=args.host, port=args.port)
        problem = port_problem(settings.host, settings.port)
        if problem:  # before the model loads: say it now, not after a minute
            raise SystemExit(f"error: {problem}")
        quiet_logging()
        from qa import Assistant
        from qa.live import LiveAssistant
        from qa.ui import build_app, launch

        print("Loading the model and the index (built from the reports on the first run)...", flush=True)
        assistant = LiveAssistant(Assistant.load(progress=True))  # picks up `python -m qa add` without a restart
        demo = build_app(assistant, settings)
        _, url, _ = launch(demo, assistant, settings, quiet=True, prevent_thread_lock=True)
        login = ("with a login required" if settings.auth else
                 "with no login (set QA_APP_USER and QA_APP_PASSWORD to require one)")
        print(f"Listening on {url} {login}. Press Ctrl+C to stop.", flush=True)
        demo.block_thread()
    except QAError as exc:  # a configuration or index problem: say what to fix, no traceback
        raise SystemExit(f"error: {exc}") from None
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
