"""The browser chat app: a Gradio Blocks page over an `Assistant`.

    from qa import Assistant
    from qa.config import AppSettings
    from qa.ui import build_app, launch
    settings = AppSettings.from_env()
    launch(build_app(Assistant.load(), settings), settings)

The page has a chat (answers keep their `[n]` markers), the sources of the latest answer with the
quoted sentences highlighted, council and report filters, example questions, and feedback buttons
whose ratings are appended to a JSON-lines log. Developers can call the named endpoint `/ask`
from `gradio_client`.

Each answer ends with a line saying what answered ("Answered by: extractive quotes", or the language
model's name) and shows `Answer.note` when set, e.g. why the model's answer was not used. With a
model server configured (`assistant.llm.enabled`), the chat streams the model's text as it arrives,
then replaces it with the checked final answer (see `qa.generate.stream`).

Everything shown in the page that comes from a report or a user is HTML-escaped before any markup
of ours is added, so a `<script>` in a question or a report shows as text and never runs.
Each browser session keeps its conversation in a `gr.State`; nothing per-user lives in module
globals. A follow-up ("And Westminster?") is read in the light of the session's earlier turns by
a `qa.Conversation`: the reply shows "Searching for: ..." with the standalone question searched,
and the "New topic" button forgets the earlier turns.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gradio as gr

from qa.answer import Answer
from qa.config import AppSettings
from qa.config import PROJECT_ROOT
from qa.context import ExportStore, ExportTurn, app_routes, passage_link
from qa.conversation import Conversation
from qa.errors import QAError, QueryError
from qa.generate import fallback, stream
from qa.retriever import Passage

log = logging.getLogger(__name__)

GENERIC_ERROR = "Something went wrong; it has been logged. Please try again or rephrase the question."
EMPTY_QUESTION = "Please type a question about the reports."
NO_ANSWER_YET = "Ask a question first: feedback is about the latest answer."
#: One question per kind of report; each is answered from the reports (checked in tests).
EXAMPLES = [
    "How many complaints about adult social care did Birmingham receive?",
    "How many young people were waiting for a transition assessment?",
    "What was Birmingham adult social care's gross expenditure in 2024-2025?",
    "What was the focus of the 2016 Birmingham adult social care peer challenge?",
    "What was Westminster's adult social care workforce turnover rate in 2023/24?",
]
EXTRACTIVE = "extractive"
#: Shown while the model writes: its text is provisional until checked against the sources.
WRITING = "Writing… the answer is checked against the sources when it is complete."
RATINGS = {"helpful": "Helpful", "not helpful": "Not helpful", "wrong source": "Wrong source"}
#: Turns (question + reply) kept per session: bounds the memory a session can hold.
MAX_TURNS = 40
#: Turns (with their answers and passages) a session's Conversation keeps for reading follow-ups.
CONVERSATION_TURNS = 5
#: Characters of an over-long question echoed back in the chat.
PREVIEW_CHARS = 300
MAX_COMMENT_CHARS = 2000
#: Feedback lines one answer may add: a client clicking in a loop cannot fill the disk.
MAX_FEEDBACK_PER_ANSWER = 5
_INVISIBLE = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
#: Lone UTF-16 surrogates arrive from JSON ("\ud800"); no reply containing one can be encoded.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")

SOURCES_CSS = """
.qa-sources { font-size: 0.95rem; line-height: 1.45; }
.qa-sources h2 { margin: 0 0 0.5rem 0; font-size: 1.05rem; }
.qa-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.6rem 0.8rem;
             margin-bottom: 0.7rem; background: var(--background-fill-primary); }
.qa-source header { font-weight: 600; }
.qa-n { color: var(--body-text-color); margin-right: 0.3rem; }
.qa-meta, .qa-path, .qa-also { color: var(--body-text-color); font-size: 0.85rem; margin-top: 0.15rem; }
.qa-passage { white-space: pre-wrap; margin: 0.5rem 0 0 0; padding: 0.4rem 0.6rem;
              border-left: 3px solid var(--border-color-accent); }
.qa-passage mark { background: #fde68a; color: #111; padding: 0 1px; border-radius: 2px;
                   text-decoration: underline; text-decoration-thickness: 2px; }
.qa-context { font-size: 0.85rem; margin-top: 0.3rem; }
.qa-sr { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
         clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
.qa-note { color: var(--body-text-color); font-style: italic; }
"""


#: Page-wide: Gradio's footer link is too faint for WCAG AA contrast.
PAGE_CSS = "footer a, footer .show-api { color: var(--body-text-color) !important; }"
SOURCES_LIVE_JS = ("element = element.closest('#qa-sources') || element; element.setAttribute('aria-live', 'polite'); element.setAttribute('role', 'region');"
                   "element.setAttribute('aria-label', 'Sources of the latest answer');")


# -- rendering (pure functions: everything user- or report-supplied is escaped) ------------------
def escape_markdown(text: str) -> str:
    """Text shown as itself in a Markdown message: HTML-escaped, then Markdown punctuation escaped.

    The chat renders Markdown, so `*`, `[x](url)` or `![](url)` in a question or a report would
    otherwise format text or load remote images.
    """
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n"))
    # quote=False: the entities for < > & contain no Markdown punctuation that the next step would break.
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def without_surrogates(value: object) -> object:
    """`value` without lone surrogates if it is text (they would break the JSON reply), else unchanged."""
    return _SURROGATES.sub("", value) if isinstance(value, str) else value


def preview(question: str, limit: int = PREVIEW_CHARS) -> str:
    """The question as echoed in the chat, shortened if it is very long."""
    if len(question) <= limit:
        return question
    return f"{question[:limit]}… ({len(question):,} characters in all)"


def section_label(p: Passage) -> str:
    """The section path without the report's own short title, e.g. "Theme 4: Leadership › Governance"."""
    path = [s for s in p.section_path[1:] if s]
    return " › ".join(path) if path else (p.section or "Introduction")


def highlight(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` HTML-escaped, with each (start, end) span wrapped in `<mark>`; overlapping spans merge."""
    clean = sorted((max(0, s), min(len(text), e)) for s, e in spans if s < e and s < len(text) and e > 0)
    merged: list[list[int]] = []
    for s, e in clean:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out: list[str] = []
    pos = 0
    for s, e in merged:
        out.append(html.escape(text[pos:s]))
        out.append(f"<mark>{html.escape(text[s:e])}</mark>")
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)


def quote_spans(answer: Answer, n: int) -> list[tuple[int, int]]:
    """Where the answer's sentences with marker `[n]` sit in `answer.citations[n - 1].text`."""
    text = answer.citations[n - 1].text
    spans = []
    for q in answer.quotes:
        if q.n != n:
            continue
        if text[q.start : q.end] == q.text:
            spans.append((q.start, q.end))
        elif (at := text.find(q.text)) >= 0:  # offsets disagree: fall back to finding the sentence
            spans.append((at, at + len(q.text)))
    return spans


def source_card(p: Passage, n: int | None, spans: list[tuple[int, int]]) -> str:
    """One source as HTML: title, council, date, section path, and the passage with its quotes marked."""
    e = html.escape
    marker = f'<span class="qa-n">[{n}]</span>' if n is not None else ""
    meta = " · ".join(e(x) for x in (p.council, p.date_text, p.doc_type) if x)
    also = ""
    if p.also_in:
        also = '<div class="qa-also">The same text is also in: ' + "; ".join(e(c) for c in p.also_in) + "</div>"
    return (f'<article class="qa-source" data-chunk="{e(p.chunk_id)}">'
            f"<header>{marker}{e(p.title)}</header>"
            f'<div class="qa-meta">{meta}</div>'
            f'<div class="qa-path">{e(section_label(p))} ({e(p.location)})</div>'
            f'<blockquote class="qa-passage">{highlight(p.text, spans)}</blockquote>{also}'
            f'<div class="qa-context"><a href="{e(passage_link(p.chunk_id, [p.text[s:t] for s, t in spans]))}" '
            f'target="_blank" rel="noopener">Open in context<span class="qa-sr"> (the whole section, '
            f'new tab)</span></a></div></article>')


def render_sources(answer: Answer | None, note: str = "") -> str:
    """The sources panel for an answer: cited passages with quotes marked, or the nearest sections."""
    if answer is None:
        text = note or "The sources of the latest answer appear here, with the quoted sentences highlighted."
        return f'<div class="qa-sources"><p class="qa-note">{html.escape(text)}</p></div>'
    if answer.citations:
        cards = [source_card(p, i + 1, quote_spans(answer, i + 1)) for i, p in enumerate(answer.citations)]
        intro = ""
        if (answer.mode or EXTRACTIVE) != EXTRACTIVE:  # a model's answer has no quotes to mark
            intro = ('<p class="qa-note">The answer is written in its own words from these passages; '
                     "nothing is highlighted.</p>")
        return '<div class="qa-sources"><h2>Sources</h2>' + intro + "".join(cards) + "</div>"
    if answer.nearest:
        cards = [source_card(p, None, []) for p in answer.nearest]
        return ('<div class="qa-sources"><h2>Nearest sections</h2><p class="qa-note">Not an answer: the closest '
                "passages found, for you to check.</p>" + "".join(cards) + "</div>")
    return render_sources(None, "No report matched; there are no sources to show.")


def mode_line(answer: Answer) -> str:
    """Who answered, e.g. "Answered by: extractive quotes" or "Answered by: llama3.1" (plain text)."""
    mode = " ".join((answer.mode or EXTRACTIVE).split())  # a name from the server: one line
    return f"Answered by: {'extractive quotes' if mode == EXTRACTIVE else mode}"


def chat_reply(answer: Answer) -> str:
    """The assistant's chat message (Markdown): the answer with its `[n]` markers, who answered (and
    the answer's note, if any), then its sources."""
    lines = [escape_markdown(answer.text), ""]
    if answer.query and answer.query != answer.question:  # a follow-up, rewritten to stand alone
        lines.insert(0, f"*{escape_markdown(searching_line(answer))}*\n")
    if answer.note:
        lines.append(f"*Note: {escape_markdown(' '.join(answer.note.split()))}*  ")
    lines.append(f"*{escape_markdown(mode_line(answer))}*")
    if answer.citations:
        lines.append("")
        lines.append("**Sources**")
        for i, p in enumerate(answer.citations, 1):
            lines.append(escape_markdown(f"[{i}] {p.title} ({p.council}, {p.date_text}), {section_label(p)}"))
    return "\n".join(lines)


def searching_line(answer: Answer) -> str:
    """What a rewritten follow-up searched for, e.g. "Searching for: What score did Westminster get ...?"."""
    return f"Searching for: {' '.join(answer.query.split())}"


def provisional_reply(text: str) -> str:
    """The chat message while the model writes: its text so far, escaped, and that it is not checked yet."""
    return f"{escape_markdown(text)}\n\n*{escape_markdown(WRITING)}*"


# -- feedback log ----------------------------------------------------------------------------------
class FeedbackLog:
    """Appends one JSON object per line to a file, safely from many threads and processes.

    Example:
        >>> FeedbackLog(Path("feedback/feedback.jsonl")).append({"rating": "helpful"})
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        """Write `record` as one line. Earlier lines are never rewritten or truncated."""
        line = json.dumps(record, ensure_ascii=False, sort_keys=True)
        # JSON keeps these raw, but some readers split lines on them.
        line = line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"
        data = line.encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            # O_APPEND + a single write: the line lands whole at the end, even with other writers.
            # 0o600: the log holds staff questions and comments.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                written = os.write(fd, data)
                while written < len(data):  # regular files write everything at once; be safe anyway
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            finally:
                os.close(fd)


# -- per-session state -----------------------------------------------------------------------------
@dataclass
class ChatSession:
    """One browser session: the chat messages and, per message, what feedback would refer to."""

    messages: list[dict[str, str]] = field(default_factory=list)
    records: list[dict[str, Any] | None] = field(default_factory=list)  # parallel to messages
    conversation: Conversation | None = None  # the turns follow-ups are read against, made on first use
    exports: list[ExportTurn] = field(default_factory=list)  # one per turn, for "Export"

    def add_turn(self, question: str, reply: str, record: dict[str, Any] | None,
                 export: ExportTurn | None = None) -> None:
        self.messages += [{"role": "user", "content": question}, {"role": "assistant", "content": reply}]
        self.records += [None, record]
        self.exports.append(export or ExportTurn(question, None, "No answer."))
        excess = len(self.messages) - 2 * MAX_TURNS
        if excess > 0:  # drop whole turns from the front so messages and records stay aligned
            del self.messages[:excess]
            del self.records[:excess]
            del self.exports[: excess // 2]

    def latest_record(self) -> dict[str, Any] | None:
        return next((r for r in reversed(self.records) if r is not None), None)


#: What the chat event returns: (question box, chat messages, sources HTML, session).
ChatReply = tuple[str, list[dict[str, str]], str, ChatSession]


@dataclass(frozen=True)
class Outcome:
    """What answering one message produced: an answer, or a message saying why there is none."""

    answer: Answer | None = None
    error: str = ""


# -- handlers --------------------------------------------------------------------------------------
class ChatHandlers:
    """The functions behind the page's events; each takes plain values and calls the library."""

    def __init__(self, assistant, app_settings: AppSettings, feedback_log: FeedbackLog | None = None) -> None:
        self.assistant = assistant
        self.settings = app_settings
        self.feedback_log = feedback_log or FeedbackLog(app_settings.feedback_log)
        self.max_chars: int = assistant.retriever.settings.max_query_chars
        documents = assistant.retriever.documents
        self.councils: list[str] = list(assistant.retriever.councils)
        self.reports: dict[str, Any] = dict(sorted(documents.items(), key=lambda kv: (kv[1].council, kv[1].date)))
        self.exports = ExportStore()  # conversations saved for the page's own export route

    # -- answering ---------------------------------------------------------------------------
    def check_question(self, question: object) -> str:
        """Why `question` cannot be asked ("" if it can). Runs before the model, so it is fast."""
        if not isinstance(question, str):
            return "The question must be text."
        if len(question) > self.max_chars:
            return (f"Your question is too long: {len(question):,} characters; the limit is {self.max_chars:,}. "
                    "Please ask a shorter question.")
        if not question.strip():
            return EMPTY_QUESTION
        return ""

    def filters(self, council: object, report: object) -> dict[str, str | None]:
        """Keyword filters for `Assistant.ask`; raises QueryError for a council or report not offered."""
        council = council or ""
        report = report or ""
        if not isinstance(council, str) or not isinstance(report, str):
            raise QueryError("The council and report filters must be text.")
        by_name = {c.casefold(): c for c in self.councils}
        if council and council.strip().casefold() not in by_name:
            raise QueryError(f"Unknown council {council[:80]!r}. Choose one of: {', '.join(self.councils)}.")
        if report and report not in self.reports:
            raise QueryError(f"Unknown report {report[:80]!r}. Report ids: {', '.join(self.reports)}.")
        return {"council": by_name[council.strip().casefold()] if council else None, "doc_id": report or None}

    def run(self, question: object, council: object = "", report: object = "",
            conversation: Conversation | None = None) -> Outcome:
        """Answer a question with the filters (as a follow-up in `conversation`, if given); never raises."""
        question = without_surrogates(question)
        problem = self.check_question(question)
        if problem:
            return Outcome(error=problem)
        try:
            kwargs = self.filters(council, report)
            ask = conversation.ask if conversation is not None else self.assistant.ask
            return Outcome(answer=ask(question, **kwargs))
        except QAError as exc:
            return Outcome(error=str(exc))
        except Exception:
            log.exception("answering a question failed")
            return Outcome(error=GENERIC_ERROR)

    @property
    def streaming(self) -> bool:
        """Whether a language model answers, so the chat streams (`respond_stream`) instead of `respond`."""
        return bool(getattr(getattr(self.assistant, "llm", None), "enabled", False))

    def respond(self, message: str, council: str, report: str, session: ChatSession | None) -> ChatReply:
        """Chat event: answer `message`, add the turn to the session. Returns (box, chat, sources, session)."""
        session = session if isinstance(session, ChatSession) else ChatSession()
        message = without_surrogates(message)
        return self._finish(message, council, report, session,
                            self.run(message, council, report, self._conversation(session)))

    def _conversation(self, session: ChatSession) -> Conversation:
        if session.conversation is None:  # follow-ups read only the latest turn: keep few, as sessions are many
            session.conversation = Conversation(self.assistant, max_turns=CONVERSATION_TURNS)
        return session.conversation

    def new_topic(self, session: ChatSession | None) -> tuple[list[dict[str, str]], str, ChatSession]:
        """"New topic" button: forget the earlier turns (and clear the chat). Returns (chat, sources, session)."""
        if isinstance(session, ChatSession) and session.conversation is not None:
            session.conversation.reset()
        return [], render_sources(None, "New topic: the next question is read on its own."), ChatSession()

    def respond_stream(self, message: str, council: str, report: str,
                       session: ChatSession | None) -> Iterator[ChatReply]:
        """Chat event with a language model: yields the model's text as it arrives, then the final answer.

        Checks run first, as in `respond` (the length before anything else). The streamed text is
        provisional and leaves the session unchanged; the last yield is the checked answer (or the
        extractive one with its note), rendered and recorded exactly as `respond` does. Never raises.
        """
        session = session if isinstance(session, ChatSession) else ChatSession()
        message = without_surrogates(message)
        problem = self.check_question(message)
        if problem:
            yield self._finish(message, council, report, session, Outcome(error=problem))
            return
        conversation = self._conversation(session)
        try:
            extractive, passages = conversation.ask_extractive(message, **self.filters(council, report))
        except QAError as exc:
            yield self._finish(message, council, report, session, Outcome(error=str(exc)))
            return
        except Exception:
            log.exception("answering a question failed")
            yield self._finish(message, council, report, session, Outcome(error=GENERIC_ERROR))
            return
        final = extractive
        try:
            shown, text = self._shown(message), ""
            waiting = render_sources(None, "The sources appear when the answer is complete.")
            # closing: a client that goes away mid-answer also closes the connection to the model server
            query = extractive.query or message  # a follow-up is sent to the model as its standalone question
            with closing(stream(query, passages, extractive, self.assistant.llm)) as events:
                for event in events:
                    if isinstance(event, str):
                        text += event
                        chat = [*session.messages, {"role": "user", "content": shown},
                                {"role": "assistant", "content": provisional_reply(text)}]
                        yield "", chat, waiting, session
                    else:
                        final = event
        except Exception as exc:  # `stream` never raises; a bug here must still leave the user an answer
            log.exception("streaming the language model's answer failed")
            final = fallback(extractive, exc)
        final = replace(final, question=message, query=extractive.query)
        conversation.update_last(final)
        yield self._finish(message, council, report, session, Outcome(answer=final))

    @staticmethod
    def _shown(message: object) -> str:
        """The question as echoed in the chat: escaped and shortened."""
        shown = escape_markdown(preview(message if isinstance(message, str) else ""))
        return shown if shown.strip() else "*(empty message)*"

    def _finish(self, message: object, council: str, report: str, session: ChatSession,
                outcome: Outcome) -> ChatReply:
        """Render an outcome and add the turn to the session. Never raises."""
        try:
            if outcome.answer is None:
                reply, sources, record = escape_markdown(outcome.error), render_sources(None, outcome.error), None
            else:
                reply, sources = chat_reply(outcome.answer), render_sources(outcome.answer)
                record = self._record(outcome.answer, council, report)
            asked = preview(message if isinstance(message, str) else "")
            session.add_turn(self._shown(message), reply, record,
                             ExportTurn(asked, outcome.answer, outcome.error))
        except Exception:  # rendering failed: still reply, never show a traceback
            log.exception("rendering a reply failed")
            session.add_turn("…", escape_markdown(GENERIC_ERROR), None)
            sources = render_sources(None, GENERIC_ERROR)
        return "", list(session.messages), sources, session

    def ask_api(self, question: str, council: str = "", report: str = "") -> tuple[str, dict]:
        """Answer a question from the reports, with citations.

        Args:
            question: the question, up to 2,000 characters.
            council: "" for every council, or a council name such as "Birmingham City Council".
            report: "" for every report, or a report id (see the "report" filter in the page).

        Returns:
            The answer text (each quoted sentence ends with its [n] marker) and a JSON object with
            "abstained", "citations" (citations[n-1] is the passage behind [n], with the quoted
            sentences' offsets), "nearest" (offered when abstaining), "mode" ("extractive", or the
            language model's name when it answered), "note" ("" or, e.g., why the model's answer
            was not used) and "error" (null, or why the question could not be answered).
        """
        outcome = self.run(question, council, report)
        if outcome.answer is None:
            return outcome.error, {"answer": None, "abstained": None, "error": outcome.error, "citations": [],
                                   "nearest": [], "mode": None, "note": ""}
        return outcome.answer.text, {**outcome.answer.to_json(), "error": None}

    # -- export ------------------------------------------------------------------------------
    def export(self, session: ChatSession | None) -> str:
        """"Export" button: save the conversation for download; returns the links (HTML)."""
        if not isinstance(session, ChatSession) or not session.exports:
            return '<p class="qa-note">Ask a question first: there is nothing to export yet.</p>'
        token = self.exports.put(session.exports)
        return ('<p class="qa-export">Download the conversation: '
                f'<a href="qa/export/{token}.md" download>Markdown (.md)</a> · '
                f'<a href="qa/export/{token}.docx" download>Word (.docx)</a></p>')

    # -- filters -----------------------------------------------------------------------------
    def council_choices(self) -> list[tuple[str, str]]:
        return [("All councils", "")] + [(c, c) for c in self.councils]

    def report_choices(self, council: str = "") -> list[tuple[str, str]]:
        """(label, doc id) of the reports about `council` (all reports for ""), newest last."""
        chosen = [d for d in self.reports.values() if not council or d.council == council]
        return [("All reports", "")] + [(d.short_title, d.doc_id) for d in chosen]

    def on_council_change(self, council: str) -> Any:
        return gr.Dropdown(choices=self.report_choices(council if council in self.councils else ""), value="")

    # -- feedback ----------------------------------------------------------------------------
    @staticmethod
    def _record(answer: Answer, council: str, report: str) -> dict[str, Any]:
        return {"question": answer.question, "query": answer.query or answer.question, "answer": answer.text,
                "abstained": answer.abstained,
                "mode": answer.mode, "chunk_ids": [p.chunk_id for p in answer.citations],
                "nearest_chunk_ids": [p.chunk_id for p in answer.nearest],
                "filters": {"council": council or "", "report": report or ""}, "feedback_count": 0}

    def _log_feedback(self, record: dict[str, Any], rating: str, comment: str, via: str) -> str:
        if record["feedback_count"] >= MAX_FEEDBACK_PER_ANSWER:
            return "Thank you: feedback on this answer is already recorded."
        line = {k: v for k, v in record.items() if k != "feedback_count"}
        line.update(rating=rating, comment=comment, via=via,
                    timestamp=datetime.now(UTC).isoformat(timespec="seconds"))
        try:
            self.feedback_log.append(line)
        except OSError:
            log.exception("could not write feedback to %s", self.feedback_log.path)
            return "Sorry, the feedback could not be saved; the problem has been logged."
        record["feedback_count"] += 1
        return f"Thank you: recorded “{RATINGS[rating]}” for the latest answer."

    def feedback(self, rating: str | None, comment: str | None, session: ChatSession | None) -> tuple[str, Any, Any]:
        """Feedback panel: rate the latest answer. Returns (status, rating box, comment box)."""
        record = session.latest_record() if isinstance(session, ChatSession) else None
        if record is None:
            return NO_ANSWER_YET, gr.update(), gr.update()
        if rating not in RATINGS:
            return "Choose Helpful, Not helpful or Wrong source first.", gr.update(), gr.update()
        comment = _INVISIBLE.sub("", comment if isinstance(comment, str) else "").strip()[:MAX_COMMENT_CHARS]
        status = self._log_feedback(record, rating, comment, "panel")
        return status, None, ""

    def like(self, session: ChatSession | None, data: gr.LikeData) -> str:
        """Thumbs / flag on a chat message: rate that answer."""
        if not isinstance(session, ChatSession):
            return NO_ANSWER_YET
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        record = session.records[index] if isinstance(index, int) and 0 <= index < len(session.records) else None
        if record is None:
            return "That message is not an answer; there is nothing to rate."
        if isinstance(data.liked, bool):
            rating = "helpful" if data.liked else "not helpful"
        elif str(data.liked).casefold() == "wrong source":
            rating = "wrong source"
        else:
            return "Unknown rating."
        return self._log_feedback(record, rating, "", "chat").replace("the latest answer", "that answer")


# -- the page --------------------------------------------------------------------------------------
def build_app(assistant, app_settings: AppSettings | None = None) -> gr.Blocks:
    """The Gradio Blocks page over `assistant`, with its queue bounded as `app_settings` says."""
    app_settings = app_settings or AppSettings()
    h = ChatHandlers(assistant, app_settings)
    # analytics off: the app must not contact gradio.app (nor tell it that it runs).
    with gr.Blocks(title="Adult social care reports: ask a question", analytics_enabled=False) as demo:
        how = ("Answers are written by a language model from the reports and checked against them; each fact "
               "ends with a marker such as [1]" if h.streaming else
               "Answers quote the reports word for word; each quote ends with a marker such as [1]")
        gr.Markdown("# Ask the adult social care reports\n"
                    f"{how} that points to its source on the right. If the reports do not say, the assistant "
                    "says so. A line under each answer says what answered.")
        session = gr.State(None)  # a ChatSession, created on the first message
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=360):
                chatbot = gr.Chatbot(label="Conversation", height=560, latex_delimiters=[], buttons=["copy"],
                                     feedback_options=("Like", "Dislike", "Wrong source"), elem_id="qa-chat",
                                     placeholder="Ask about CQC assessments, self-assessments and peer "
                                                 "challenges of councils' adult social care.")
                with gr.Row():
                    message = gr.Textbox(show_label=False, placeholder="Type a question and press Enter",
                                         lines=1, max_lines=5, scale=5, elem_id="qa-question", autofocus=True)
                    ask = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="qa-ask")
                    new_topic = gr.Button("New topic", scale=1, min_width=80, elem_id="qa-new-topic")
                with gr.Row():
                    export = gr.Button("Export conversation", size="sm", scale=0, min_width=160, elem_id="qa-export")
                    export_links = gr.HTML("", elem_id="qa-export-links")
                gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[message], label="Example questions",
                            api_visibility="private")
                with gr.Accordion("Feedback on the latest answer", open=False):
                    rating = gr.Radio(choices=[(label, value) for value, label in RATINGS.items()],
                                      label="Was it useful?", elem_id="qa-rating")
                    comment = gr.Textbox(label="Comment (optional)", lines=2, max_lines=6, elem_id="qa-comment")
                    send = gr.Button("Send feedback", elem_id="qa-send-feedback")
                    status = gr.Markdown(elem_id="qa-feedback-status")
            with gr.Column(scale=2, min_width=320):
                with gr.Row():
                    council = gr.Dropdown(choices=h.council_choices(), value="", label="Council",
                                          elem_id="qa-council")
                    report = gr.Dropdown(choices=h.report_choices(), value="", label="Report (and so year)",
                                         elem_id="qa-report")
                # aria-live on the lasting container: screen readers announce each new answer's sources
        sources = gr.HTML(render_sources(None), css_template=SOURCES_CSS, js_on_load=SOURCES_LIVE_JS,
                                  elem_id="qa-sources", padding=True)

        # a generator function when a model answers: Gradio then sends each yield as it comes
        chat = h.respond_stream if h.streaming else h.respond
        gr.on([message.submit, ask.click], chat, inputs=[message, council, report, session],
              outputs=[message, chatbot, sources, session], api_name="chat", api_visibility="undocumented",
              show_progress="minimal")
        new_topic.click(h.new_topic, inputs=[session], outputs=[chatbot, sources, session], api_name="new_topic",
                        api_visibility="undocumented")
        send.click(h.feedback, inputs=[rating, comment, session], outputs=[status, rating, comment],
                   api_name="feedback", api_visibility="undocumented")
        chatbot.like(h.like, inputs=[session], outputs=[status], api_visibility="private")
        council.change(h.on_council_change, inputs=[council], outputs=[report], api_visibility="private",
                       queue=False)
        gr.api(h.ask_api, api_name="ask")
        export.click(h.export, inputs=[session], outputs=[export_links], api_name="export",
                     api_visibility="undocumented")
    demo.qa_exports = h.exports  # read by `launch` for the export route
    # api_open=False: direct POSTs to /gradio_api/run/... would otherwise skip the bounded queue.
    demo.queue(max_size=app_settings.queue_max_size, default_concurrency_limit=app_settings.concurrency_limit,
               api_open=False)
    return demo


def blocked_paths(assistant, app_settings: AppSettings) -> list[str]:
    """Folders Gradio's file routes must never serve: the index, the corpus, feedback, the project."""
    qa_settings = assistant.retriever.settings
    paths = [qa_settings.index_dir, qa_settings.corpus_dir, app_settings.feedback_log.parent, PROJECT_ROOT,
             qa_settings.index_dir.parent / f".{qa_settings.index_dir.name}.generations"]
    extra = [p.strip() for p in os.environ.get("GRADIO_BLOCKED_PATHS", "").split(",") if p.strip()]
    return sorted({str(Path(p).expanduser().resolve()) for p in paths} | set(extra))


def launch_kwargs(assistant, app_settings: AppSettings) -> dict[str, Any]:
    """The keyword arguments of `Blocks.launch` for a safe local deployment."""
    return {
        "server_name": app_settings.host,
        "server_port": app_settings.port,
        "share": False,
        "auth": app_settings.auth,
        "auth_message": "Log in to ask the adult social care reports." if app_settings.auth else None,
        "show_error": False,  # details go to the log, not to the browser
        "allowed_paths": [],  # the page serves no files of ours
        "blocked_paths": blocked_paths(assistant, app_settings),
        "max_file_size": "1mb",  # nothing is uploaded; bound what the upload route accepts
        "ssr_mode": False,
        "mcp_server": False,
        "enable_monitoring": False,
        "run_history": False,  # do not keep questions in the browser's storage
        "footer_links": ["api"],
        "state_session_capacity": 2000,
        "strict_cors": True,
        "theme": accessible_theme(),
        "css": PAGE_CSS,
        # checked before Gradio sees a request: Host header, uploads, body size, failed logins
        "app_kwargs": {"middleware": [guard_middleware(app_settings)]},
    }


def accessible_theme() -> gr.themes.Base:
    """Gradio's default theme with primary buttons dark enough for white text (WCAG AA contrast)."""
    return gr.themes.Default().set(button_primary_background_fill="*primary_700",
                                   button_primary_background_fill_hover="*primary_800",
                                   button_primary_text_color="white")


def guard_middleware(app_settings: AppSettings) -> Any:
    """The `RequestGuard` of `qa.web_guard`, configured from the app settings."""
    from starlette.middleware import Middleware

    from qa.web_guard import RequestGuard

    return Middleware(RequestGuard, allowed_hosts=app_settings.hosts, max_body_bytes=app_settings.max_body_bytes,
                      login_attempts=app_settings.login_attempts)


def launch(demo: gr.Blocks, assistant, app_settings: AppSettings, **overrides: Any) -> tuple[Any, str, str]:
    """Serve `demo` with secure defaults; `overrides` (e.g. prevent_thread_lock) win."""
    if not app_settings.is_loopback:
        log.warning("serving on %s: other machines can reach the app%s", app_settings.host,
                    "" if app_settings.auth else " and no login is set (QA_APP_USER / QA_APP_PASSWORD)")
        if not app_settings.allowed_hosts:
            log.warning("only requests for %s are answered; add the name staff use to QA_APP_ALLOWED_HOSTS",
                        ", ".join(sorted(app_settings.hosts)))
    kwargs = launch_kwargs(assistant, app_settings)
    # the page's own routes: passages in context and exports (behind the app's login, if any)
    store = getattr(demo, "qa_exports", None) or ExportStore()
    kwargs["app_kwargs"] = {**kwargs["app_kwargs"], "routes": app_routes(lambda: assistant.retriever, store)}
    return demo.launch(**{**kwargs, **overrides})
