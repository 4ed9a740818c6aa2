"""Helpers for tests that serve the real Gradio app on loopback (imported by the test_app* files)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(assistant, settings):
    """Build the app for `assistant` and serve it with `settings` in this process: (demo, url without "/")."""
    from qa.ui import build_app, launch

    demo = build_app(assistant, settings)
    _, url, _ = launch(demo, assistant, settings, prevent_thread_lock=True, quiet=True)
    return demo, url.rstrip("/")
