"""MCP server: the reports as read-only tools for other assistants (`qa mcp`).

    qa mcp                         # stdio: an MCP client starts it as a subprocess
    qa mcp --http                  # streamable HTTP on http://127.0.0.1:8765/mcp
    QA_MCP_TOKEN=... qa mcp --http --host 0.0.0.0   # other machines only with a bearer token

Two tools, both annotated read-only, idempotent and closed-world, with bounded inputs:

- `search_reports(query, k=5, council=None, year=None)`: the passages that best match `query`,
  each with its text, score and citation (title, council, date, section path, source lines);
- `ask(question, council=None, report=None)`: the cited answer (`answer`, `abstained`,
  `citations`, `nearest`, `mode`, `note`), or "I could not find this in these reports".

Built on the official MCP Python SDK (`mcp` 2.x, `MCPServer`). The assistant loads on the first
tool call, so listing tools is instant. Bad input comes back as a tool error naming the problem;
other failures are logged (to stderr) and reported without details. Gradio's own MCP server stays
off: it pins an older SDK and would answer without the app's login.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
from typing import Annotated, Any

from pydantic import Field

from qa.errors import QAError

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 2000
MAX_K = 20
MAX_FILTER_CHARS = 200

Query = Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS,
                             description="The question or search words, in English.")]
K = Annotated[int, Field(ge=1, le=MAX_K, description=f"How many passages (1-{MAX_K}).")]
Council = Annotated[str | None, Field(max_length=MAX_FILTER_CHARS,
                                      description="Only reports about this council, e.g. 'Westminster'.")]
Year = Annotated[int | None, Field(ge=1900, le=2100, description="Only reports published in this year.")]
Report = Annotated[str | None, Field(max_length=MAX_FILTER_CHARS,
                                     description="Only this report: its id, or the first digits such as '001'.")]


class LazyAssistant:
    """Loads the assistant on first use, once, whatever the number of concurrent calls."""

    def __init__(self, factory=None) -> None:
        self._factory = factory
        self._assistant = None
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            if self._assistant is None:
                if self._factory is None:
                    from qa.answer import Assistant

                    self._assistant = Assistant.load()
                else:
                    self._assistant = self._factory()
            return self._assistant


def build_server(assistant: LazyAssistant | None = None):
    """The `MCPServer` with the two read-only tools over `assistant` (loaded on first use)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    get = assistant or LazyAssistant()
    server = MCPServer(
        "care-reports-qa",
        instructions="Search and quote public reports on English councils' adult social care (CQC "
                     "assessments, self-assessments, peer challenges). Every passage and answer carries "
                     "its citation; an answer the reports do not support is refused (abstained=true).",
        log_level="WARNING",
    )
    read_only = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True,
                                openWorldHint=False)

    def run(what: str, fn):
        try:
            return fn()
        except QAError as exc:  # bad input or index problem: the message says what to change
            raise ToolError(str(exc)) from None
        except Exception:
            log.exception("the %s tool failed", what)
            raise ToolError("Something went wrong; it has been logged.") from None

    @server.tool(title="Search the reports", annotations=read_only)
    def search_reports(query: Query, k: K = 5, council: Council = None, year: Year = None) -> dict[str, Any]:
        """The passages of the reports that best match `query`, best first, each with its citation.
        A query comparing reports or councils gets the best passages of each side in turn."""
        hits = run("search_reports", lambda: get().retriever.search(query, k=k, council=council, year=year))
        return {"passages": [h.to_json() for h in hits]}

    @server.tool(title="Ask the reports", annotations=read_only)
    def ask(question: Query, council: Council = None, report: Report = None) -> dict[str, Any]:
        """A short answer quoted from the reports with [n] citations, or an abstention
        ("I could not find this in these reports", abstained=true) with the nearest sections."""
        answer = run("ask", lambda: get().ask(question, council=council, doc_id=report))
        return answer.to_json()

    return server


def check_http_binding(host: str, token: str) -> str:
    """Why serving HTTP on `host` is refused ("" if allowed): only loopback without a token."""
    if token:
        return ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return ""
    return (f"serving MCP on {host} would let other machines use it: set QA_MCP_TOKEN to a secret that "
            "clients send as 'Authorization: Bearer <token>', or use --host 127.0.0.1.")


class BearerToken:
    """ASGI middleware: every HTTP request must carry `Authorization: Bearer <token>`."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers", [])).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = b"A bearer token is required (QA_MCP_TOKEN)."
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def serve_http(server, host: str, port: int, token: str) -> None:
    """Serve streamable HTTP at http://host:port/mcp (refused off loopback without a token)."""
    import uvicorn

    problem = check_http_binding(host, token)
    if problem:
        raise QAError(problem)
    app = server.streamable_http_app(host=host)
    if token:
        app = BearerToken(app, token)
    print(f"MCP server listening on http://{host}:{port}/mcp "
          f"({'bearer token required' if token else 'this machine only'})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
