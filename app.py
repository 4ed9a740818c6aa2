"""Start the browser chat app: `python app.py [--host 127.0.0.1] [--port 7860]` (see docs/app.md)."""

from __future__ import annotations

import argparse
import logging


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, load the assistant (building the index on first run) and serve."""
    from qa import Assistant, QAError
    from qa.app_settings import AppSettings
    from qa.live import LiveAssistant
    from qa.ui import build_app, launch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health check is noise
    try:
        settings = AppSettings.from_env()
        parser = argparse.ArgumentParser(description="Serve the adult social care reports Q&A app.")
        parser.add_argument("--host", default=settings.host, help=f"address to bind (default {settings.host})")
        parser.add_argument("--port", type=int, default=settings.port, help=f"port (default {settings.port})")
        args = parser.parse_args(argv)
        settings = settings.with_(host=args.host, port=args.port)
        print("Loading the model and the index (built from corpus/ on the first run)...", flush=True)
        assistant = LiveAssistant(Assistant.load(progress=True))  # picks up `python -m qa add` without a restart
        launch(build_app(assistant, settings), assistant, settings)
    except QAError as exc:  # a configuration or index problem: say what to fix, no traceback
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
