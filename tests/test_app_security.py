"""Security findings, each checked over loopback against a served app (issue 10, item 6).

Uploads refused, Host header checked (DNS rebinding), request bodies capped before they are read
in full, lone surrogates in a question answered instead of crashing the reply, and repeated failed
logins from one client slowed and logged.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from types import SimpleNamespace

import pytest
from served_app import free_port, serve

pytestmark = pytest.mark.slow

COMPLAINTS = "How many complaints about adult social care did Birmingham receive?"


@pytest.fixture(scope="module")
def served(assistant, tmp_path_factory):
    from qa.app_settings import AppSettings

    settings = AppSettings(port=free_port(), feedback_log=tmp_path_factory.mktemp("sec") / "fb.jsonl")
    demo, url = serve(assistant, settings)
    yield SimpleNamespace(url=url, port=settings.port, demo=demo)
    demo.close()


def _request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None,
             timeout: float = 30) -> tuple[int, bytes, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


# -- uploads -------------------------------------------------------------------------------------------
def test_the_upload_route_is_refused_and_writes_nothing(served):
    upload_dir = served.demo.server_app.uploaded_file_dir
    before = {p for p in __import__("pathlib").Path(upload_dir).rglob("*")} if upload_dir else set()
    boundary = "qa-test-boundary"
    parts = b"".join(
        (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"f{i}.txt\"\r\n"
         "Content-Type: text/plain\r\n\r\n").encode() + b"x" * 1000 + b"\r\n" for i in range(20))
    body = parts + f"--{boundary}--\r\n".encode()
    for path in ("/gradio_api/upload", "/gradio_api/upload/", "//gradio_api//upload"):
        status, reply, _ = _request(served.port, "POST", path, body,
                                    {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                     "Origin": "http://evil.example"})
        assert status == 403, (path, status, reply[:200])
    after = {p for p in __import__("pathlib").Path(upload_dir).rglob("*")} if upload_dir else set()
    assert after == before


# -- Host header ---------------------------------------------------------------------------------------
def test_requests_for_another_host_name_are_refused(served):
    status, body, _ = _request(served.port, "GET", "/config", headers={"Host": f"rebind.evil.example:{served.port}"})
    assert status in (400, 421) and b"Birmingham" not in body
    payload = json.dumps({"data": [COMPLAINTS, "", ""], "fn_index": 0, "session_hash": "x"}).encode()
    status, body, _ = _request(served.port, "POST", "/gradio_api/queue/join", payload,
                               {"Host": "rebind.evil.example", "Content-Type": "application/json"})
    assert status in (400, 421)
    for host in (f"127.0.0.1:{served.port}", f"localhost:{served.port}", "LOCALHOST."):
        status, body, _ = _request(served.port, "GET", "/config", headers={"Host": host})
        assert status == 200, host


def test_allowed_hosts_come_from_the_settings(assistant, tmp_path):
    from qa.app_settings import AppSettings

    settings = AppSettings.from_env({"QA_APP_ALLOWED_HOSTS": "qa.council.example, localhost"},
                                    port=free_port(), feedback_log=tmp_path / "fb.jsonl")
    assert settings.hosts == {"qa.council.example", "localhost", "127.0.0.1", "::1"}
    demo, url = serve(assistant, settings)
    try:
        assert _request(settings.port, "GET", "/config", headers={"Host": "qa.council.example"})[0] == 200
        assert _request(settings.port, "GET", "/config", headers={"Host": "intranet.example"})[0] in (400, 421)
    finally:
        demo.close()
    assert AppSettings().hosts == {"localhost", "127.0.0.1", "::1"}
    assert AppSettings(host="10.1.2.3").hosts == {"localhost", "127.0.0.1", "::1", "10.1.2.3"}


# -- request size ----------------------------------------------------------------------------------------
def test_a_huge_body_is_refused_before_it_is_read(served):
    """Declare 20 MB, send 64 KB: the answer must be 413 without the server waiting for the rest."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=15) as s:
        s.sendall((f"POST /gradio_api/queue/join HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
                   "Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n").encode() + b"a" * 65536)
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


def test_a_huge_chunked_body_is_cut_off(served):
    chunk = b"a" * 1_000_000
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as s:
        s.sendall((f"POST /gradio_api/queue/join HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
                   "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
        reply = b""
        try:
            for _ in range(20):  # 20 MB if the server kept reading
                s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            reply = s.recv(4096)
        except ConnectionResetError:
            pass
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


# -- lone surrogates -----------------------------------------------------------------------------------
def _call(port: int, api_name: str, data: list) -> dict:
    """Call an event through Gradio's queue over raw HTTP; the JSON body escapes lone surrogates
    as "\\ud800", which is valid JSON (a client library refuses to encode them)."""
    status, body, _ = _request(port, "GET", "/config")
    config = json.loads(body)
    fn_index = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == api_name)
    session = f"sec-{time.monotonic_ns()}"
    payload = json.dumps({"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                          "trigger_id": None}).encode()
    status, body, _ = _request(port, "POST", "/gradio_api/queue/join", payload, {"Content-Type": "application/json"})
    assert status == 200, body[:300]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET", f"/gradio_api/queue/data?session_hash={session}")
        response = conn.getresponse()
        while True:
            line = response.readline()
            assert line, "stream ended without a result"
            if line.startswith(b"data:"):
                event = json.loads(line[5:])
                if event.get("msg") == "process_completed":
                    return event
    finally:
        conn.close()


def test_a_lone_surrogate_in_a_question_gets_an_answer(served, caplog):
    with caplog.at_level(logging.ERROR):
        event = _call(served.port, "ask", ["\ud800 " + COMPLAINTS, "", ""])
        assert event["success"] is True, event
        text, payload = event["output"]["data"][0]
        assert payload["error"] is None and "663" in text
        event = _call(served.port, "chat", ["\ud800 complaints?\udfff", "", "", None])
        assert event["success"] is True, event
        reply = event["output"]["data"][1][-1]
        text = "".join(part["text"] for part in reply["content"]) if isinstance(reply["content"], list) \
            else reply["content"]
        assert text and "Something went wrong" not in text
    assert not [r for r in caplog.records if "UTF-8" in r.getMessage() or r.exc_info]


def test_clean_query_strips_lone_surrogates():
    from qa.retriever import clean_query

    assert clean_query("\ud800 complaints?\udc00", 2000) == "complaints?"
    assert clean_query("complaints \U0001F600", 2000) == "complaints \U0001F600"  # a real emoji stays


# -- failed logins ---------------------------------------------------------------------------------------
def test_repeated_failed_logins_are_slowed_and_logged(assistant, tmp_path, caplog):
    from qa.app_settings import AppSettings

    settings = AppSettings(port=free_port(), user="staff", password="correct horse",
                           feedback_log=tmp_path / "fb.jsonl")
    demo, url = serve(assistant, settings)

    def login(password: str) -> tuple[int, dict]:
        body = f"username=staff&password={password}".encode()
        status, _, headers = _request(settings.port, "POST", "/login", body,
                                      {"Content-Type": "application/x-www-form-urlencoded"})
        return status, headers

    try:
        with caplog.at_level(logging.WARNING, logger="qa.web_guard"):
            start = time.monotonic()
            statuses = [login(f"wrong{i}")[0] for i in range(30)]
            assert time.monotonic() - start < 30
        assert statuses[:5] == [400] * 5  # wrong passwords are answered "incorrect" at first
        assert set(statuses[5:]) == {429}  # then refused without checking, until the window passes
        status, headers = login("correct horse")
        assert status == 429 and int(headers["retry-after"]) > 0
        failures = [r for r in caplog.records if "failed login from 127.0.0.1" in r.getMessage()]
        assert len(failures) == 5
    finally:
        demo.close()


def test_a_successful_login_clears_the_count():
    from qa.web_guard import LoginLimiter

    limiter = LoginLimiter(attempts=3, window=60)
    for t in range(2):
        limiter.failed("10.0.0.1", now=float(t))
    limiter.succeeded("10.0.0.1")
    assert limiter.failed("10.0.0.1", now=3.0) == 1
    assert limiter.retry_after("10.0.0.1", now=3.0) == 0
    limiter.failed("10.0.0.1", now=4.0), limiter.failed("10.0.0.1", now=5.0)
    assert limiter.retry_after("10.0.0.1", now=6.0) == pytest.approx(57.0)
    assert limiter.retry_after("10.0.0.2", now=6.0) == 0  # per client
    assert limiter.retry_after("10.0.0.1", now=64.0) == 0  # the window passed
