"""The browser app, served in-process on loopback and driven with gradio_client and plain HTTP.

Covers: answers with citations of the right report, abstention, the length limit enforced on the
server, bad input (empty, huge, control and zero-width characters, HTML, other languages),
internal errors hidden from users, filters, feedback appended to a log, and Gradio's file routes
refusing the index, the corpus, the feedback log and system files.
"""

from __future__ import annotations

import dataclasses
import html
import http.client
import json
import logging
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from served_app import free_port, serve

pytestmark = pytest.mark.slow

COMPLAINTS = "How many complaints about adult social care did Birmingham receive?"
CQC_BIRMINGHAM = "CQC assessment of Birmingham City Council"


@pytest.fixture(scope="module")
def served(assistant, tmp_path_factory):
    from qa.app_settings import AppSettings

    # The feedback folder does not exist yet: the app must create it.
    log_path = tmp_path_factory.mktemp("app") / "feedback" / "feedback.jsonl"
    settings = AppSettings(port=free_port(), feedback_log=log_path)
    demo, url = serve(assistant, settings)
    yield SimpleNamespace(url=url, settings=settings, log=log_path, port=settings.port)
    demo.close()


def _client(url: str, **kwargs):
    from gradio_client import Client

    return Client(url, verbose=False, **kwargs)


@pytest.fixture(scope="module")
def client(served):
    return _client(served.url)


def _chat(client, message: str, council: str = "", report: str = "") -> tuple[str, str, list]:
    """Send a chat message; return (assistant reply, sources HTML, all messages)."""
    box, messages, sources = client.predict(message, council, report, api_name="/chat")
    assert box == ""  # the question box is cleared
    reply = messages[-1]
    assert reply["role"] == "assistant"
    return "".join(part["text"] for part in reply["content"]), sources, messages


def _log_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- answers -------------------------------------------------------------------------------------
def test_corpus_question_is_answered_with_a_citation_of_the_right_report(client):
    text, payload = client.predict(COMPLAINTS, "", "", api_name="/ask")
    assert payload["error"] is None and payload["abstained"] is False
    assert payload["mode"] == "extractive" and payload["note"] == ""
    assert "663" in text and "[1]" in text
    first = payload["citations"][0]
    assert first["title"] == CQC_BIRMINGHAM and first["council"] == "Birmingham City Council"
    quote_ = first["quotes"][0]
    assert first["text"][quote_["start"] : quote_["end"]] == quote_["text"]


def test_out_of_corpus_question_gets_the_abstention(client):
    from qa.answer import NOT_FOUND

    text, payload = client.predict("What is the capital of France?", "", "", api_name="/ask")
    assert payload["abstained"] is True and payload["citations"] == []
    assert text.startswith(NOT_FOUND)
    assert "[1]" not in text


def test_two_megabyte_question_is_refused_fast_without_running_the_model(client, assistant, monkeypatch):
    calls = []
    real_ask = assistant.ask
    monkeypatch.setattr(assistant, "ask", lambda *a, **k: calls.append(a) or real_ask(*a, **k))
    start = time.monotonic()
    text, payload = client.predict("a" * 2_000_000, "", "", api_name="/ask")
    assert time.monotonic() - start < 10
    assert "too long" in text and "2,000,000" in text
    assert payload["error"] == text and payload["citations"] == []
    assert calls == []


def test_filters_restrict_the_reports_searched(client, assistant):
    _, payload = client.predict("What score did Westminster get for governance?", "Westminster City Council", "",
                                api_name="/ask")
    cited = payload["citations"] or payload["nearest"]
    assert cited and {c["council"] for c in cited} == {"Westminster City Council"}

    peer = next(d for d in assistant.retriever.documents.values() if d.date.startswith("2016"))
    _, payload = client.predict("What did the peer challenge say about leadership?", "", peer.doc_id, api_name="/ask")
    cited = payload["citations"] or payload["nearest"]
    assert cited and {c["doc_id"] for c in cited} == {peer.doc_id}


def test_unknown_filters_get_a_short_clear_message(client):
    text, payload = client.predict(COMPLAINTS, "Leeds City Council" * 1000, "", api_name="/ask")
    assert text.startswith("Unknown council") and "Birmingham City Council" in text
    assert len(text) < 500 and payload["citations"] == []
    text, _ = client.predict(COMPLAINTS, "", "no-such-report", api_name="/ask")
    assert text.startswith("Unknown report")
    _, payload = client.predict("", "", "", api_name="/ask")
    assert payload["error"] and payload["mode"] is None and payload["note"] == ""


def test_example_questions_are_answered_from_the_reports(assistant):
    from qa.ui import EXAMPLES

    for question in EXAMPLES:
        answer = assistant.ask(question)
        assert not answer.abstained and "[1]" in answer.text, question


# -- the chat and bad input ------------------------------------------------------------------------
def test_chat_shows_answer_with_markers_and_highlighted_sources(served):
    reply, sources, messages = _chat(_client(served.url), COMPLAINTS)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert "663" in reply and "\\[1\\]" in reply  # Markdown-escaped marker: renders as [1]
    assert "**Sources**" in reply and CQC_BIRMINGHAM in reply
    assert "*Answered by: extractive quotes*" in reply and "Note:" not in reply
    assert reply.index("Answered by") < reply.index("**Sources**")  # under the answer, above its sources
    marked = [part.split("</mark>")[0] for part in sources.split("<mark>")[1:]]
    assert any("663 complaints" in m for m in marked)  # the quoted sentence is highlighted in its passage
    assert "Birmingham City Council" in sources and "17 November 2023" in sources
    assert "Theme 4: Leadership" in sources  # the section path


def test_chat_keeps_history_per_session(served):
    one, two = _client(served.url), _client(served.url)
    _chat(one, COMPLAINTS)
    _, _, messages = _chat(one, "What score did Westminster get for governance?")
    assert len(messages) == 4
    _, _, messages = _chat(two, "What is the capital of France?")
    assert len(messages) == 2  # another session does not see the first one's history


def test_a_follow_up_is_read_against_the_turn_before_and_new_topic_forgets_it(served):
    client = _client(served.url)  # a session of its own
    reply, _, _ = _chat(client, "What score did Birmingham get for governance?")
    assert "Searching for" not in reply
    reply, sources, messages = _chat(client, "And Westminster?")
    assert len(messages) == 4 and messages[2]["content"][0]["text"] == "And Westminster?"  # as asked
    searching = next(line for line in reply.splitlines() if "Searching for:" in line)
    assert "Westminster" in searching and "governance" in searching  # the standalone question searched
    assert reply.index("Searching for:") < reply.index("\\[1\\]")  # under the question, above the answer
    # the answer cites Westminster's report, not Birmingham's
    assert "Westminster City Council" in sources and "Birmingham City Council" not in sources
    assert "CQC assessment of Westminster City Council" in reply

    chat, sources, *_ = client.predict(api_name="/new_topic")
    assert chat == [] and "New topic" in sources
    reply, _, messages = _chat(client, "And Westminster?")
    assert len(messages) == 2 and "Searching for" not in reply  # read on its own now


def test_follow_ups_are_per_session_and_the_ask_api_has_no_memory(served):
    one, two = _client(served.url), _client(served.url)
    _chat(one, COMPLAINTS)
    reply, _, _ = _chat(two, "And in 2016?")  # the other session's topic is not carried over
    assert "Searching for" not in reply
    _, payload = one.predict("And in 2016?", "", "", api_name="/ask")
    assert payload["query"] == "And in 2016?"


def test_streamed_follow_up_sends_the_standalone_question_to_the_model(assistant, tmp_path):
    from test_generate import serving

    from qa.answer import Assistant
    from qa.app_settings import AppSettings
    from qa.generate import LLMSettings
    from qa.ui import ChatHandlers

    with serving() as fake:
        fake.behaviour, fake.reply = "answer", "Westminster's governance was rated 3 out of 4 [1]."
        llm_assistant = Assistant(assistant.retriever, llm=LLMSettings(base_url=fake.url, model="fake", timeout=10))
        h = ChatHandlers(llm_assistant, AppSettings(feedback_log=tmp_path / "f.jsonl"))
        assert h.streaming
        *_, (_, _, _, session) = h.respond_stream("What score did Birmingham get for governance?", "", "", None)
        *_, (_, messages, _, session) = h.respond_stream("And Westminster?", "", "", session)
        sent = fake.requests[-1]["messages"][-1]["content"]
        assert "Westminster" in sent and "governance" in sent and "And Westminster?" not in sent
        assert "Searching for:" in messages[-1]["content"]
        last = session.conversation.turns[-1]
        assert last.question == "And Westminster?" and "Westminster" in last.answer.query
        assert len(session.conversation.turns) == 2


BAD_INPUTS = {
    "empty": ("", "type a question"),
    "blank": ("   \n\t ", "type a question"),
    "only zero-width": ("\u200b\u200c\u200d\ufeff", "empty"),
    "100 KB": ("x" * 100_000, "too long"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_gets_a_sensible_reply(served, name):
    message, expected = BAD_INPUTS[name]
    reply, sources, messages = _chat(_client(served.url), message)
    assert expected in reply.lower()
    assert "Traceback" not in reply and "<mark>" not in sources
    assert len(json.dumps(messages)) < 5_000  # a huge question is not echoed back whole


def test_control_and_zero_width_characters_are_ignored(client):
    for message in ("How many\x00 complaints\x07 about adult social care did Birmingham receive?\x1b[0m",
                    "How\u200b many complaints\u200d about adult\ufeff social care did Birmingham receive?"):
        text, payload = client.predict(message, "", "", api_name="/ask")
        assert payload["error"] is None and "663" in text


def test_html_in_a_question_is_shown_as_text_never_markup(served):
    attack = '<img src=x onerror="alert(1)"><script>alert("x")</script> What score did Westminster get?'
    reply, sources, messages = _chat(_client(served.url), attack)
    shown = messages[0]["content"][0]["text"]
    assert "&lt;script&gt;" in shown and "&lt;img" in shown
    for text in (shown, reply, sources):
        assert "<script" not in text and "<img" not in text


def test_question_in_another_language_gets_a_reply(client):
    for message in ("¿Cuántas quejas sobre la atención social de adultos recibió Birmingham?",
                    "伯明翰收到了多少投诉？", "كم عدد الشكاوى التي تلقتها برمنغهام؟"):
        text, payload = client.predict(message, "", "", api_name="/ask")
        assert text and payload["error"] is None


def test_app_keeps_answering_after_bad_input(served):
    client = _client(served.url)
    for message in ("", "x" * 100_000, "\x00\x01", "<script>alert(1)</script>", "\u200b"):
        _chat(client, message)
    reply, sources, _ = _chat(client, COMPLAINTS)
    assert "663" in reply and "<mark>" in sources


def test_internal_errors_are_logged_not_shown(client, assistant, monkeypatch, caplog):
    from qa.ui import GENERIC_ERROR

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail /etc/shadow")

    monkeypatch.setattr(assistant, "ask", broken)
    with caplog.at_level(logging.ERROR, logger="qa.ui"):
        text, payload = client.predict(COMPLAINTS, "", "", api_name="/ask")
    assert text == GENERIC_ERROR and payload["error"] == GENERIC_ERROR
    assert "secret" not in json.dumps(payload)
    assert any("secret detail" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    monkeypatch.undo()
    text, _ = client.predict(COMPLAINTS, "", "", api_name="/ask")
    assert "663" in text


# -- feedback --------------------------------------------------------------------------------------
def test_feedback_is_appended_to_the_log(served):
    from qa.ui import NO_ANSWER_YET

    client = _client(served.url)
    before = _log_lines(served.log)
    status, _, _ = client.predict("helpful", "", api_name="/feedback")
    assert status == NO_ANSWER_YET and _log_lines(served.log) == before

    _chat(client, COMPLAINTS)
    with pytest.raises(Exception, match="not in the list of choices"):  # refused by the Radio itself
        client.predict("excellent", "", api_name="/feedback")
    status, _, _ = client.predict(None, "no rating", api_name="/feedback")
    assert "Choose" in status and _log_lines(served.log) == before

    status, rating, comment = client.predict("wrong source", "Quote is right,\nbut see 2025 <b>too</b>",
                                             api_name="/feedback")
    assert status.startswith("Thank you") and rating is None and comment == ""
    lines = _log_lines(served.log)
    assert lines[: len(before)] == before and len(lines) == len(before) + 1
    line = lines[-1]
    assert line["question"] == COMPLAINTS and "663" in line["answer"]
    assert line["rating"] == "wrong source" and line["comment"] == "Quote is right,\nbut see 2025 <b>too</b>"
    assert line["chunk_ids"] and all(isinstance(c, str) for c in line["chunk_ids"])
    assert line["timestamp"].endswith("+00:00")

    client.predict("helpful", "", api_name="/feedback")
    again = _log_lines(served.log)
    assert again[: len(lines)] == lines and again[-1]["rating"] == "helpful"


def test_feedback_per_answer_is_bounded(served):
    from qa.ui import MAX_FEEDBACK_PER_ANSWER

    client = _client(served.url)
    _chat(client, COMPLAINTS)
    before = len(_log_lines(served.log))
    for _ in range(MAX_FEEDBACK_PER_ANSWER + 3):
        client.predict("helpful", "", api_name="/feedback")
    assert len(_log_lines(served.log)) == before + MAX_FEEDBACK_PER_ANSWER


def test_thumbs_on_a_chat_message_rate_that_answer(assistant, tmp_path):
    import gradio as gr

    from qa.app_settings import AppSettings
    from qa.ui import ChatHandlers, ChatSession

    handlers = ChatHandlers(assistant, AppSettings(feedback_log=tmp_path / "f.jsonl"))
    session = ChatSession()
    session.add_turn("q1", "a1", {"question": "q1", "answer": "a1", "chunk_ids": ["c1"], "feedback_count": 0})
    session.add_turn("q2", "a2", {"question": "q2", "answer": "a2", "chunk_ids": ["c2"], "feedback_count": 0})
    status = handlers.like(session, gr.LikeData(None, {"index": 1, "value": "a1", "liked": "Wrong source"}))
    assert status.startswith("Thank you")
    handlers.like(session, gr.LikeData(None, {"index": 3, "value": "a2", "liked": False}))
    assert "not an answer" in handlers.like(session, gr.LikeData(None, {"index": 0, "value": "q1", "liked": True}))
    lines = _log_lines(tmp_path / "f.jsonl")
    assert [(x["chunk_ids"], x["rating"], x["via"]) for x in lines] == [
        (["c1"], "wrong source", "chat"), (["c2"], "not helpful", "chat")]


def test_feedback_log_appends_whole_lines_and_keeps_earlier_ones(tmp_path):
    from qa.ui import FeedbackLog

    path = tmp_path / "new" / "folder" / "log.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"earlier": 1}\n', encoding="utf-8")
    log = FeedbackLog(path)
    long_comment = "é\u2028\u2029\n" + "x" * 20_000  # longer than an I/O buffer, with line separators

    def write(worker: int) -> None:
        for i in range(50):
            log.append({"worker": worker, "i": i, "comment": long_comment})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    raw = path.read_text(encoding="utf-8")
    lines = raw.split("\n")
    assert lines[0] == '{"earlier": 1}' and lines[-1] == ""
    records = [json.loads(line) for line in lines[1:-1]]
    assert len(records) == 400 and all(r["comment"] == long_comment for r in records)
    assert {(r["worker"], r["i"]) for r in records} == {(w, i) for w in range(8) for i in range(50)}


def test_feedback_folder_is_created(tmp_path):
    from qa.ui import FeedbackLog

    path = tmp_path / "a" / "b" / "feedback.jsonl"
    FeedbackLog(path).append({"rating": "helpful"})
    assert _log_lines(path) == [{"rating": "helpful"}]


# -- rendering -------------------------------------------------------------------------------------
def test_sources_escape_report_text_and_mark_the_quote(assistant):
    from qa.ui import render_sources

    answer = assistant.ask(COMPLAINTS)
    quote_ = answer.quotes[0]
    evil = dataclasses.replace(
        answer.citations[0], title='<img src=x onerror="alert(1)">', council="<b>C</b>",
        text='<script>alert(1)</script> ' + answer.citations[0].text,
    )
    shifted = dataclasses.replace(quote_, start=quote_.start + 26, end=quote_.end + 26)
    html_ = render_sources(dataclasses.replace(answer, citations=[evil], quotes=[shifted]))
    assert "<script" not in html_ and "<img" not in html_ and "<b>" not in html_
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_ and "&lt;img src=x" in html_
    marked = html_.split("<mark>")[1].split("</mark>")[0]
    assert marked == html.escape(quote_.text)


def test_chat_reply_shows_the_mode_and_the_note_escaped(assistant):
    from qa.ui import chat_reply, escape_markdown, mode_line, render_sources

    answer = assistant.ask(COMPLAINTS)
    assert answer.mode == "extractive" and mode_line(answer) == "Answered by: extractive quotes"
    reply = chat_reply(answer)
    assert "*Answered by: extractive quotes*" in reply and "Note:" not in reply

    fallback = dataclasses.replace(answer, note="The language model server returned HTTP 500; showing the "
                                                "extractive answer instead.")
    reply = chat_reply(fallback)
    assert "*Note: The language model server returned HTTP 500; showing the extractive answer instead\\.*" in reply
    assert reply.index("Note:") < reply.index("Answered by: extractive quotes") < reply.index("**Sources**")

    # a model's answer: its name (from the server, so escaped and kept to one line), no quotes to mark
    model = dataclasses.replace(answer, text="Birmingham received 663 complaints [1].", quotes=[],
                                mode="<b>llama*3.1</b>\nsecond line", note="Some <i>note</i>\nacross lines")
    reply = chat_reply(model)
    assert escape_markdown("Answered by: <b>llama*3.1</b> second line") in reply
    assert f"*Note: {escape_markdown('Some <i>note</i> across lines')}*" in reply
    assert "<b>" not in reply and "<i>" not in reply and "\\[1\\]" in reply
    sources = render_sources(model)
    assert "<mark>" not in sources and "nothing is highlighted" in sources and CQC_BIRMINGHAM in sources


def test_without_a_model_the_chat_is_not_streamed(assistant, tmp_path):
    import inspect

    from qa.app_settings import AppSettings
    from qa.ui import ChatHandlers, build_app

    settings = AppSettings(feedback_log=tmp_path / "f.jsonl")
    assert not assistant.llm.enabled and not ChatHandlers(assistant, settings).streaming
    chat = next(f for f in build_app(assistant, settings).fns.values() if f.api_name == "chat")
    assert not inspect.isgeneratorfunction(chat.fn)


def test_highlight_merges_overlaps_and_escapes():
    from qa.ui import highlight

    assert highlight("a<b>c d", [(1, 4), (3, 5), (50, 60)]) == "a<mark>&lt;b&gt;c</mark> d"
    assert highlight("x & y", []) == "x &amp; y"


def test_escape_markdown_neutralises_markup():
    from qa.ui import escape_markdown

    out = escape_markdown("![x](http://evil/a.png) <b>*hi*</b> [1]\u200b")
    assert "<b>" not in out and "\u200b" not in out
    assert "!\\[x\\]\\(http://evil/a\\.png\\)" in out and "\\*hi\\*" in out and "\\[1\\]" in out


# -- settings and launch ---------------------------------------------------------------------------
def test_app_settings_from_env():
    from qa.app_settings import AppSettings
    from qa.errors import QAError

    s = AppSettings.from_env({})
    assert (s.host, s.port, s.auth) == ("127.0.0.1", 7860, None)
    assert s.feedback_log.parts[-2:] == ("feedback", "feedback.jsonl")
    s = AppSettings.from_env({"QA_APP_HOST": "::1", "QA_APP_PORT": "8081", "QA_APP_USER": "staff",
                              "QA_APP_PASSWORD": "s3cret", "QA_APP_QUEUE_SIZE": "5", "QA_APP_CONCURRENCY": "2"})
    assert (s.host, s.port, s.auth, s.queue_max_size, s.concurrency_limit) == ("::1", 8081, ("staff", "s3cret"), 5, 2)
    assert s.is_loopback and "s3cret" not in repr(s)
    for bad in ({"QA_APP_PORT": "http"}, {"QA_APP_PORT": "70000"}, {"QA_APP_USER": "staff"},
                {"QA_APP_QUEUE_SIZE": "0"}):
        with pytest.raises(QAError):
            AppSettings.from_env(bad)
    assert not AppSettings(host="0.0.0.0").is_loopback


def test_launch_defaults_are_safe(assistant, tmp_path):
    from qa.app_settings import AppSettings
    from qa.config import PROJECT_ROOT
    from qa.ui import launch_kwargs

    settings = AppSettings(feedback_log=tmp_path / "fb" / "log.jsonl")
    kw = launch_kwargs(assistant, settings)
    assert kw["server_name"] == "127.0.0.1" and kw["share"] is False and kw["show_error"] is False
    assert kw["allowed_paths"] == [] and kw["auth"] is None
    blocked = set(kw["blocked_paths"])
    for folder in (assistant.retriever.settings.index_dir, assistant.retriever.settings.corpus_dir,
                   tmp_path / "fb", PROJECT_ROOT):
        assert str(folder.resolve()) in blocked


def test_queue_is_bounded_and_cannot_be_skipped(assistant, served):
    from qa.app_settings import AppSettings
    from qa.ui import build_app

    demo = build_app(assistant, AppSettings(queue_max_size=7, concurrency_limit=3))
    assert demo._queue.max_size == 7
    assert demo._queue.default_concurrency_limit == 3
    # A direct REST call would bypass the queue's bounds: it must be refused.
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        conn.request("POST", "/gradio_api/run/ask", body=json.dumps({"data": [COMPLAINTS, "", ""]}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status != 200 and b"663" not in response.read()
    finally:
        conn.close()


def test_api_lists_only_the_ask_endpoint(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/ask"]
    assert [p["parameter_name"] for p in api["named_endpoints"]["/ask"]["parameters"]] == [
        "question", "council", "report"]


# -- security over plain HTTP ----------------------------------------------------------------------
def _get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    """GET `path` exactly as written (no client-side normalisation of ../ or %-escapes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


FILE_ROUTES = ("/file=", "/gradio_api/file=", "/gradio_api/file/", "/file/")


def _variants(path: Path, cwd: Path) -> list[str]:
    """Ways of naming `path` in a file URL: plain, relative, ../ walks, %-encoded and double-encoded."""
    absolute = str(path)
    rel = absolute.lstrip("/")
    out = [absolute, quote(absolute, safe=""), "../" * 12 + rel, "..%2F" * 12 + quote(rel, safe=""),
           "%2e%2e/" * 12 + rel, "%252e%252e%252f" * 12 + quote(rel, safe=""), "....//" * 12 + rel,
           "/tmp/gradio/" + "../" * 12 + rel, "/tmp/gradio/" + "%2e%2e%2f" * 12 + quote(rel, safe="")]
    try:
        out.append(str(path.relative_to(cwd)))
    except ValueError:
        pass
    return out


def _leaks(port: int, route: str, target: str, secret: bytes) -> bool:
    status, body = _get(port, route + target)
    return status == 200 and secret in body


def _secret(path: Path) -> bytes:
    """A distinctive piece of the file's real content."""
    data = path.read_bytes()
    return data[:48] if len(data) >= 48 else data


def test_file_routes_would_detect_a_served_file(tmp_path):
    """Control: the URL forms used below do fetch a file Gradio is allowed to serve."""
    import gradio as gr

    folder = tmp_path / "public"
    folder.mkdir()
    shared = folder / "allowed.txt"
    shared.write_text("this file is meant to be served " * 4, encoding="utf-8")
    with gr.Blocks(analytics_enabled=False) as demo:
        gr.Markdown("control")
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                allowed_paths=[str(folder)], ssr_mode=False)
    try:
        assert _leaks(port, "/gradio_api/file=", str(shared), _secret(shared))
    finally:
        demo.close()


def test_file_routes_refuse_index_corpus_feedback_and_system_files(served, assistant):
    from qa.config import PROJECT_ROOT

    status, body = _get(served.port, "/")
    assert status == 200 and b"<html" in body.lower()  # the server is up; refusals below are real

    served.log.parent.mkdir(parents=True, exist_ok=True)
    if not served.log.exists():
        served.log.write_text('{"question": "private staff question about feedback"}\n', encoding="utf-8")
    qa_settings = assistant.retriever.settings
    targets = [
        *sorted(p for p in qa_settings.index_dir.rglob("*") if p.is_file())[:4],
        qa_settings.corpus_dir / "catalogue.json",
        *sorted(qa_settings.corpus_dir.glob("*.txt"))[:2],
        served.log,
        PROJECT_ROOT / "qa" / "config.py",
        Path("/etc/passwd"),
    ]
    real_index = PROJECT_ROOT / "index" / "manifest.json"
    if real_index.exists():
        targets.append(real_index)
    leaks = []
    for target in targets:
        assert target.is_file(), target
        secret = _secret(target)
        for route in FILE_ROUTES:
            for name in _variants(target, PROJECT_ROOT):
                if _leaks(served.port, route, name, secret):
                    leaks.append(route + name)
    assert leaks == []


def test_monitoring_is_off_and_uploads_are_refused(served):
    for path in ("/monitoring", "/gradio_api/monitoring"):
        status, _ = _get(served.port, path)
        assert status != 200
    boundary = "qa-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode() + b"x" * 1000 + f"\r\n--{boundary}--\r\n".encode()
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        conn.request("POST", "/gradio_api/upload", body=body,
                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert conn.getresponse().status == 403  # the page has no upload component (see test_app_security)
    finally:
        conn.close()


def test_login_is_required_when_configured(assistant, tmp_path):
    from qa.app_settings import AppSettings

    settings = AppSettings(port=free_port(), user="staff", password="correct horse",
                           feedback_log=tmp_path / "fb.jsonl")
    demo, url = serve(assistant, settings)
    try:
        status, body = _get(settings.port, "/config")
        assert status == 401 and b"Birmingham" not in body
        status, _ = _get(settings.port, "/gradio_api/file=/etc/passwd")
        assert status in (401, 403)
        with pytest.raises(Exception):
            _client(url, auth=("staff", "wrong")).predict(COMPLAINTS, "", "", api_name="/ask")
        text, _ = _client(url, auth=("staff", "correct horse")).predict(COMPLAINTS, "", "", api_name="/ask")
        assert "663" in text
    finally:
        demo.close()
