"""The browser app with a language model: streamed, checked answers, the mode shown, extractive fallback.

The app runs in-process on loopback over the session's index, with an Assistant whose language-model
server is the scripted OpenAI-compatible server of tests/test_generate.py (127.0.0.1, no real model).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from served_app import free_port
from test_generate import serving

pytestmark = pytest.mark.slow

COMPLAINTS = "How many complaints about adult social care did Birmingham receive?"
CQC_BIRMINGHAM = "CQC assessment of Birmingham City Council"
#: A good answer citing [1]; its numbers are all in the best passage for COMPLAINTS (checked below).
MODEL_REPLY = ("In the 12 months to May 2023, Birmingham City Council received 663 complaints about adult "
               "social care [1].")
MODEL = "fake-model"


@pytest.fixture(scope="module")
def fake():
    """The scripted model server, shared by the module's tests; each test sets `behaviour` and `reply`."""
    with serving() as server:
        yield server


@pytest.fixture
def model(fake):
    """A well-behaved model for this test (answering MODEL_REPLY), whatever the previous test set."""
    fake.behaviour, fake.reply, fake.delay = "answer", MODEL_REPLY, 0.0
    return fake


@pytest.fixture(scope="module")
def served(assistant, fake, tmp_path_factory):
    from qa.answer import Assistant
    from qa.app_settings import AppSettings
    from qa.generate import LLMSettings
    from qa.ui import build_app, launch

    llm_assistant = Assistant(assistant.retriever, llm=LLMSettings(base_url=fake.url, model=MODEL, timeout=10))
    log_path = tmp_path_factory.mktemp("app-llm") / "feedback.jsonl"
    settings = AppSettings(port=free_port(), feedback_log=log_path)
    demo = build_app(llm_assistant, settings)
    _, url, _ = launch(demo, llm_assistant, settings, prevent_thread_lock=True, quiet=True)
    yield SimpleNamespace(url=url.rstrip("/"), assistant=llm_assistant, log=log_path, demo=demo)
    demo.close()


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def _text(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def _chat(client, message: str, council: str = "", report: str = "") -> tuple[str, str, list[str]]:
    """Send a chat message; return (final reply, final sources HTML, every reply shown on the way)."""
    job = client.submit(message, council, report, api_name="/chat")
    box, messages, sources = job.result(timeout=120)
    assert box == ""
    assert messages[-1]["role"] == "assistant"
    shown = [_text(out[1][-1]) for out in job.outputs() if out[1] and out[1][-1]["role"] == "assistant"]
    return _text(messages[-1]), sources, shown


def _log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_the_best_passage_supports_the_scripted_answer(served):
    """Guards the scripted reply: the model's checks would reject numbers its passage [1] lacks."""
    _, passages = served.assistant.ask_extractive(COMPLAINTS)
    assert passages and passages[0].title == CQC_BIRMINGHAM
    assert all(n in passages[0].text for n in ("663", "12 months", "May 2023"))


def test_the_chat_streams_the_model_answer_then_shows_it_checked_with_its_mode(served, model):
    import inspect

    from qa.ui import WRITING, escape_markdown

    chat = next(f for f in served.demo.fns.values() if f.api_name == "chat")
    assert inspect.isgeneratorfunction(chat.fn)

    requests = len(model.requests)
    reply, sources, shown = _chat(_client(served.url), COMPLAINTS)
    assert escape_markdown(MODEL_REPLY) in reply and "\\[1\\]" in reply
    assert escape_markdown(f"Answered by: {MODEL}") in reply and "extractive" not in reply
    assert "Note:" not in reply
    assert "**Sources**" in reply and CQC_BIRMINGHAM in reply
    # the sources of a model's answer: the cited passage, nothing highlighted
    assert CQC_BIRMINGHAM in sources and "663 complaints" in sources and "<mark>" not in sources
    # streamed: provisional replies growing towards the answer came before the final one
    provisional = [s for s in shown if escape_markdown(WRITING) in s]
    assert len(provisional) >= 2, shown
    texts = [s.split("\n\n")[0] for s in provisional]
    assert all(escape_markdown(MODEL_REPLY).startswith(t) for t in texts)
    assert len(texts[0]) < len(texts[-1]) and shown[-1] == reply
    assert len(model.requests) == requests + 1 and model.requests[-1]["stream"] is True


def test_the_api_returns_the_model_answer_with_its_mode(served, model):
    text, payload = _client(served.url).predict(COMPLAINTS, "", "", api_name="/ask")
    assert text == MODEL_REPLY and payload["error"] is None
    assert payload["mode"] == MODEL and payload["note"] == "" and payload["abstained"] is False
    assert payload["citations"][0]["title"] == CQC_BIRMINGHAM and payload["citations"][0]["quotes"] == []


def test_a_server_error_gives_the_extractive_answer_with_the_fallback_note(served, model, caplog):
    from qa.ui import escape_markdown

    model.behaviour = "http500"
    with caplog.at_level(logging.WARNING, logger="qa.generate"):
        reply, sources, _ = _chat(_client(served.url), COMPLAINTS)
    assert "663" in reply and "\\[1\\]" in reply
    assert escape_markdown("Answered by: extractive quotes") in reply and MODEL not in reply
    note = escape_markdown("The language model server returned HTTP 500; showing the extractive answer instead.")
    assert f"*Note: {note}*" in reply
    assert "model crashed" not in reply and "Traceback" not in reply  # the server's detail is logged only
    assert any("model crashed" in r.getMessage() for r in caplog.records)
    assert "<mark>" in sources  # extractive quotes are highlighted again

    text, payload = _client(served.url).predict(COMPLAINTS, "", "", api_name="/ask")
    assert "663" in text and payload["mode"] == "extractive" and "HTTP 500" in payload["note"]


def test_a_rejected_model_answer_falls_back_with_a_note(served, model):
    from qa.ui import escape_markdown

    model.reply = "Birmingham City Council received 9999 complaints about adult social care [1]."
    reply, _, shown = _chat(_client(served.url), COMPLAINTS)
    assert any("9999" in s for s in shown[:-1])  # it was streamed, provisionally...
    answer, note = reply.split("*Note: ")
    assert "9999" not in answer and "663" in answer  # ...then replaced by the extractive answer
    assert "states 9999" in note and escape_markdown("showing the extractive answer instead.") in note
    assert escape_markdown("Answered by: extractive quotes") in note  # the mode line comes after the note


def test_model_text_is_escaped_while_streaming_and_after(served, model):
    model.reply = ('<img src=x onerror="alert(x)"><script>alert("x")</script> Birmingham City Council received '
                   "663 complaints about adult social care [1]. ![t](http://evil.example/a.png)")
    reply, sources, shown = _chat(_client(served.url), COMPLAINTS)
    assert len(shown) > 2
    for text in (*shown, sources):
        assert "<script" not in text and "<img" not in text and "](http" not in text
    assert "&lt;script&gt;" in reply and "!\\[t\\]\\(http" in reply


def test_a_turn_records_the_mode_for_feedback(served, model):
    client = _client(served.url)
    _chat(client, COMPLAINTS)
    status, _, _ = client.predict("helpful", "", api_name="/feedback")
    assert status.startswith("Thank you")
    line = _log_lines(served.log)[-1]
    assert line["mode"] == MODEL and line["answer"] == MODEL_REPLY and line["chunk_ids"]


def test_checks_run_before_the_model_and_errors_stay_hidden(served, model, monkeypatch, caplog):
    from qa.ui import GENERIC_ERROR

    client = _client(served.url)
    calls = []
    real = served.assistant.ask_extractive
    monkeypatch.setattr(served.assistant, "ask_extractive", lambda *a, **k: calls.append(a) or real(*a, **k))
    requests = len(model.requests)
    for message, expected in (("x" * 100_000, "too long"), ("", "type a question")):
        reply, sources, shown = _chat(client, message)
        assert expected in reply and "Traceback" not in reply and "<mark>" not in sources
        assert len(shown) == 1  # no provisional text: nothing was streamed
    assert calls == [] and len(model.requests) == requests

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail /etc/shadow")

    monkeypatch.setattr(served.assistant, "ask_extractive", broken)
    with caplog.at_level(logging.ERROR, logger="qa.ui"):
        reply, sources, _ = _chat(client, COMPLAINTS)
    assert GENERIC_ERROR.split(";")[0] in reply and "secret" not in reply + sources
    assert any(r.exc_info for r in caplog.records)
    monkeypatch.undo()
    reply, _, _ = _chat(client, COMPLAINTS)  # the app keeps answering
    assert "663" in reply


def test_the_streaming_handler_yields_one_reply_for_refused_questions(served, model, tmp_path):
    """The page's dropdowns refuse unknown filters before the handler; the handler checks them too."""
    from qa.app_settings import AppSettings
    from qa.ui import ChatHandlers

    handlers = ChatHandlers(served.assistant, AppSettings(feedback_log=tmp_path / "f.jsonl"))
    assert handlers.streaming
    requests = len(model.requests)
    for message, council, report, expected in ((COMPLAINTS, "Leeds City Council", "", "Unknown council"),
                                               (COMPLAINTS, "", "no-such-report", "Unknown report"),
                                               (12345, "", "", "must be text")):
        replies = list(handlers.respond_stream(message, council, report, None))
        assert len(replies) == 1
        box, messages, _, session = replies[0]
        assert box == "" and expected in messages[-1]["content"] and session.latest_record() is None
    assert len(model.requests) == requests
