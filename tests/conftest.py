"""Shared fixtures: the real model and a real index of the corpus, loaded once per session.

The index is built in a session temporary folder, so tests never depend on (or touch) the
developer's `index/`. A network guard makes any attempt to reach a non-loopback address fail
loudly instead of hanging.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_real_connect = socket.socket.connect


def _is_local(address) -> bool:
    if isinstance(address, str):  # AF_UNIX
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self, address):
    if not _is_local(address):
        raise RuntimeError(f"test tried to reach the network: {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def network_guard():
    socket.socket.connect = _guarded_connect
    yield
    socket.socket.connect = _real_connect


@pytest.fixture(autouse=True, scope="session")
def gradio_close_retries():
    """Gradio's `Blocks.close` sets an asyncio.Event from the test's thread while the server's loop
    may be adding waiters to it; once in a clean run this raised "deque mutated during iteration" in
    a test's teardown. The event is set by then, so closing again finishes the job: retry it."""
    try:
        import gradio as gr
    except ImportError:
        yield
        return
    original = gr.Blocks.close

    def close(self, *args, **kwargs):
        for attempt in range(3):
            try:
                return original(self, *args, **kwargs)
            except RuntimeError as exc:
                if "mutated during iteration" not in str(exc) or attempt == 2:
                    raise
                time.sleep(0.1)

    gr.Blocks.close = close
    yield
    gr.Blocks.close = original


@pytest.fixture(scope="session")
def encoder():
    from qa.embeddings import Encoder

    return Encoder.load()


@pytest.fixture(scope="session")
def settings(tmp_path_factory):
    from qa.config import Settings

    return Settings(index_dir=tmp_path_factory.mktemp("index") / "index")


@pytest.fixture(scope="session")
def retriever(settings, encoder):
    from qa import Retriever

    return Retriever.build(settings, encoder=encoder)


@pytest.fixture(scope="session")
def index_model(retriever, encoder):
    """The session index's model under torch: the model adapted to the corpus (qa/adaptation.py)
    when the index holds one, else the stock model."""
    from qa.embeddings import Encoder
    from qa.index import adapted_weights

    manifest = retriever.index.manifest
    if not adapted_weights(manifest):
        return encoder
    return Encoder.load(str(retriever.settings.models_dir / manifest["adaptation"]["folder"]))


@pytest.fixture(scope="session")
def assistant(retriever):
    from qa.answer import Assistant

    return Assistant(retriever)


TINY_CATALOGUE = {"documents": [
    {"doc_id": "a", "file": "a.txt", "title": "Report A about Alpha Council", "short_title": "Report A (2020)",
     "council": "Alpha Council", "publisher": "Inspector", "doc_type": "Inspection", "date": "2020-01-02",
     "date_text": "2 January 2020"},
    {"doc_id": "b", "file": "b.txt", "title": "Report B about Beta Council", "short_title": "Report B (2021)",
     "council": "Beta Council", "publisher": "Council", "doc_type": "Self-assessment", "date": "2021",
     "date_text": "2021"},
]}


@pytest.fixture
def tiny_corpus(tmp_path):
    """Two small reports in two heading styles, written fresh for each test."""
    import json

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "catalogue.json").write_text(json.dumps(TINY_CATALOGUE))
    (folder / "a.txt").write_text(
        "# Safeguarding\n\nThe council had a backlog of 42 safeguarding enquiries.\n\n"
        "## Carers\n\nCarers told us the respite offer was too small.\n")
    (folder / "b.txt").write_text(
        "Overall summary\n\nThe council reviewed 310 care packages in the year and found most were right.\n\n"
        "Workforce\n\nStaff turnover fell to 9% after a recruitment campaign.\n")
    return folder
