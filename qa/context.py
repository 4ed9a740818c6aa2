"""The browser app's own routes: a cited passage in its section, and the conversation exported.

    from qa.context import ExportStore, app_routes
    routes = app_routes(lambda: assistant.retriever, ExportStore())   # Starlette routes for FastAPI

- `GET /qa/passage/{chunk_id}?q=<quoted sentence>` (q repeatable) answers an HTML page with the
  whole section of the report the passage belongs to, each quoted sentence in `<mark>` (underlined
  and preceded by a visually hidden "quoted:" label, so the cue is not only colour), and where the
  section sits in the report (lines, or pages for a report added from a PDF). Without `q` the cited
  passage itself is marked.
- `GET /qa/export/{token}.md` and `/qa/export/{token}.docx` answer the conversation that the page's
  "Export" button saved under `token`: each question, its answer, who answered, and each citation
  with its quoted sentences.

Everything that comes from a report or a user is HTML-escaped. When the app has a login the routes
answer 401 without the app's login cookie. They never touch Gradio's file routes (which refuse
the corpus).
"""

from __future__ import annotations

import html
import io
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable
from urllib.parse import quote

log = logging.getLogger(__name__)

#: Exports kept at once (oldest dropped first) and how long one stays downloadable.
MAX_EXPORTS = 500
EXPORT_TTL_SECONDS = 3600
MAX_QUOTES = 20
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]!|#])")


@dataclass(frozen=True)
class ExportTurn:
    """One turn of a conversation as exported: the question, and its answer or why there is none."""

    question: str
    answer: Any = None  # a qa.answer.Answer
    error: str = ""


@dataclass(frozen=True)
class Section:
    """A section of a report, stitched from its chunks, and where it sits."""

    text: str
    title: str
    council: str
    date_text: str
    path: tuple[str, ...]
    location: str
    passage: str  # the cited chunk's own text


# -- passage in context --------------------------------------------------------------------------
def stitch(texts: list[str], min_overlap: int = 20) -> str:
    """Neighbouring chunk texts joined into one, each overlap (a suffix repeated as a prefix) kept once."""
    out = ""
    for t in texts:
        if not out:
            out = t
            continue
        best = 0
        for k in range(min(len(out), len(t)), min_overlap - 1, -1):
            if out.endswith(t[:k]):
                best = k
                break
        out = out + t[best:] if best else f"{out}\n\n{t}"
    return out


def find_section(retriever, chunk_id: str) -> Section | None:
    """The section holding chunk `chunk_id` (None for an unknown id)."""
    chunks = retriever.index.chunks
    chunk = next((c for c in chunks if c.chunk_id == chunk_id), None)
    if chunk is None:
        return None
    same = sorted((c for c in chunks if c.doc_id == chunk.doc_id and c.section_path == chunk.section_path),
                  key=lambda c: c.ordinal)
    # only the run of consecutive chunks around the cited one: a heading may repeat elsewhere
    run, last = [], None
    for c in same:
        if last is not None and c.ordinal != last + 1:
            if any(x.chunk_id == chunk_id for x in run):
                break
            run = []
        run.append(c)
        last = c.ordinal
    info = retriever.documents[chunk.doc_id]
    first, end = run[0], run[-1]
    if first.page_start:
        location = (f"page {first.page_start}" if first.page_start == end.page_end
                    else f"pages {first.page_start}-{end.page_end}")
    else:
        location = f"lines {first.line_start}-{end.line_end}"
    return Section(text=stitch([c.text for c in run]), title=info.title, council=info.council,
                   date_text=info.date_text, path=tuple(s for s in chunk.section_path[1:] if s),
                   location=location, passage=chunk.text)


def marked(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` HTML-escaped with each span in `<mark>`, preceded by a visually hidden "quoted:" label."""
    out, pos = [], 0
    for s, e in sorted(spans):
        if s < pos:
            continue
        out.append(html.escape(text[pos:s]))
        out.append(f'<span class="sr-only">quoted: </span><mark>{html.escape(text[s:e])}</mark>')
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)


PAGE_CSS = """
body { font-family: system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #111; background: #fff; }
.meta { color: #444; }
.section { white-space: pre-wrap; border-left: 3px solid #555; padding-left: 1rem; }
mark { background: #fde68a; color: #111; text-decoration: underline; text-decoration-thickness: 2px; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
           clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
"""


def passage_page(section: Section, quotes: list[str]) -> str:
    """The HTML page of `section` with `quotes` (or, without quotes, the cited passage) marked."""
    e = html.escape
    wanted = [q for q in quotes if q.strip()][:MAX_QUOTES] or [section.passage]
    spans, missing = [], []
    for q in wanted:
        at = section.text.find(q)
        if at >= 0:
            spans.append((at, at + len(q)))
        else:
            missing.append(q)
    note = ""
    if missing:
        note = ('<p class="meta">Not found word for word in this section: '
                + "; ".join(f"“{e(q)}”" for q in missing) + "</p>")
    path = " › ".join(section.path) or "Introduction"
    return ("<!doctype html>\n"
            f'<html lang="en"><head><meta charset="utf-8"><title>{e(section.title)}: {e(path)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{PAGE_CSS}</style>'
            f"</head><body><main><h1>{e(section.title)}</h1>"
            f'<p class="meta">{e(section.council)} · {e(section.date_text)}</p>'
            f'<h2>{e(path)}</h2><p class="meta">Section at {e(section.location)} of the report; '
            f"{len(spans)} quoted passage(s) marked.</p>{note}"
            f'<div class="section" id="section">{marked(section.text, spans)}</div></main></body></html>')


def passage_link(chunk_id: str, quotes: list[str]) -> str:
    """The page's relative link to a passage in context (relative, so it works under a proxy's prefix)."""
    query = "&".join(f"q={quote(q, safe='')}" for q in quotes[:MAX_QUOTES])
    return f"qa/passage/{quote(chunk_id, safe='')}" + (f"?{query}" if query else "")


# -- export --------------------------------------------------------------------------------------
def _quotes_of(answer, n: int) -> list[str]:
    return [q.text for q in answer.quotes if q.n == n]


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(str(text).split()), quote=False))


def export_markdown(turns: list[ExportTurn]) -> str:
    """The conversation as Markdown: report and user text HTML- and Markdown-escaped."""
    stamp = datetime.now(UTC).strftime("%d %B %Y %H:%M UTC")
    lines = ["# Adult social care reports: conversation", "", f"Exported {stamp}.", ""]
    for i, turn in enumerate(turns, 1):
        lines += [f"## Question {i}", "", _md(turn.question), ""]
        a = turn.answer
        if a is None:
            lines += [f"*{_md(turn.error or 'No answer.')}*", ""]
            continue
        lines += ["**Answer**", "", _md(a.text), ""]
        lines.append(f"*Answered by: {_md('extractive quotes' if (a.mode or 'extractive') == 'extractive' else a.mode)}*")
        if a.note:
            lines.append(f"*Note: {_md(a.note)}*")
        lines.append("")
        if a.citations:
            lines += ["**Sources**", ""]
            for n, p in enumerate(a.citations, 1):
                lines.append(f"{n}. \\[{n}\\] {_md(p.citation)}")
                for q in _quotes_of(a, n):
                    lines.append(f"    > {_md(q)}")
            lines.append("")
    return "\n".join(lines) + "\n"


def export_docx(turns: list[ExportTurn]) -> bytes:
    """The conversation as a Word document (python-docx)."""
    from docx import Document

    doc = Document()
    doc.add_heading("Adult social care reports: conversation", level=1)
    doc.add_paragraph(f"Exported {datetime.now(UTC).strftime('%d %B %Y %H:%M UTC')}.")
    for i, turn in enumerate(turns, 1):
        doc.add_heading(f"Question {i}", level=2)
        doc.add_paragraph(_plain(turn.question))
        a = turn.answer
        if a is None:
            doc.add_paragraph(_plain(turn.error or "No answer.")).runs[0].italic = True
            continue
        doc.add_paragraph(_plain(a.text))
        by = "extractive quotes" if (a.mode or "extractive") == "extractive" else a.mode
        doc.add_paragraph(_plain(f"Answered by: {by}")).runs[0].italic = True
        if a.note:
            doc.add_paragraph(_plain(f"Note: {a.note}")).runs[0].italic = True
        if a.citations:
            doc.add_heading("Sources", level=3)
            for n, p in enumerate(a.citations, 1):
                doc.add_paragraph(_plain(f"[{n}] {p.citation}"), style="List Number")
                for q in _quotes_of(a, n):
                    doc.add_paragraph(_plain(q), style="Quote")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


_XML_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _plain(text: str) -> str:
    """Text Word's XML accepts (control characters and lone surrogates removed)."""
    return _XML_BAD.sub("", str(text))


class ExportStore:
    """Conversations saved for download under random tokens; bounded in number and age (thread-safe)."""

    def __init__(self, max_items: int = MAX_EXPORTS, ttl: float = EXPORT_TTL_SECONDS) -> None:
        self.max_items = max_items
        self.ttl = ttl
        self._items: OrderedDict[str, tuple[float, list[ExportTurn]]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, turns: list[ExportTurn]) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._items[token] = (time.monotonic(), list(turns))
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return token

    def get(self, token: str) -> list[ExportTurn] | None:
        if not _TOKEN.match(token):
            return None
        with self._lock:
            item = self._items.get(token)
            if item is None or time.monotonic() - item[0] > self.ttl:
                self._items.pop(token, None)
                return None
            return item[1]


# -- routes --------------------------------------------------------------------------------------
def logged_in(request) -> bool:
    """Whether `request` may see the app: no login configured, or the app's login cookie is valid."""
    app = request.app
    if getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None:
        return True
    cookie_id = getattr(app, "cookie_id", "")
    token = (request.cookies.get(f"access-token-{cookie_id}")
             or request.cookies.get(f"access-token-unsecure-{cookie_id}"))
    return token is not None and getattr(app, "tokens", {}).get(token) is not None


HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
           "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}


def app_routes(get_retriever: Callable[[], Any], store: ExportStore) -> list:
    """Starlette routes for the passage pages and the exports."""
    from starlette.responses import HTMLResponse, PlainTextResponse, Response
    from starlette.routing import Route

    def refuse(status: int, text: str):
        return PlainTextResponse(text, status_code=status, headers=HEADERS)

    async def passage(request):
        if not logged_in(request):
            return refuse(401, "Log in to the app first.")
        chunk_id = request.path_params["chunk_id"]
        try:
            section = find_section(get_retriever(), chunk_id)
        except Exception:  # a bug must not show a traceback
            log.exception("showing passage %r failed", chunk_id[:80])
            return refuse(500, "Something went wrong; it has been logged.")
        if section is None:
            return refuse(404, "No such passage (the index may have been rebuilt since the answer).")
        quotes = [q for q in request.query_params.getlist("q") if isinstance(q, str)]
        return HTMLResponse(passage_page(section, quotes), headers=HEADERS)

    async def export(request):
        if not logged_in(request):
            return refuse(401, "Log in to the app first.")
        turns = store.get(request.path_params["token"])
        if turns is None:
            return refuse(404, "This export has expired; press Export again.")
        fmt = request.path_params["fmt"]
        name = f"conversation-{datetime.now(UTC).strftime('%Y%m%d-%H%M')}"
        if fmt == "md":
            body, kind = export_markdown(turns).encode("utf-8"), "text/markdown; charset=utf-8"
        elif fmt == "docx":
            body = export_docx(turns)
            kind = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        else:
            return refuse(404, "Unknown format: use .md or .docx.")
        return Response(body, media_type=kind, headers={
            **HEADERS, "Content-Disposition": f'attachment; filename="{name}.{fmt}"'})

    return [Route("/qa/passage/{chunk_id}", passage, methods=["GET"]),
            Route("/qa/export/{token}.{fmt}", export, methods=["GET"])]
