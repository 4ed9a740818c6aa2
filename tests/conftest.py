"""Shared fixtures: the real model and a real index of the corpus, loaded once per session.

The index is built in a session temporary folder, so tests never depend on (or touch) the
developer's `index/`. A network guard makes any attempt to reach a non-loopback address fail
loudly instead of hanging.
"""

from __future__ import annotations

import ipaddress
import os
import socket

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
def assistant(retriever):
    from qa.answer import Assistant

    return Assistant(retriever)
