"""A guard in front of the browser app: checks every request before Gradio sees it.

    from qa.web_guard import RequestGuard
    guard = RequestGuard(app, allowed_hosts={"localhost", "127.0.0.1"}, max_body_bytes=4_000_000)

It is a plain ASGI middleware (`qa.ui.launch_kwargs` installs it through FastAPI's `middleware`
argument) that

- answers 400 to a request whose `Host` header is not an allowed name, so a page on another site
  that rebinds its DNS name to this machine cannot use the app (DNS rebinding);
- refuses Gradio's upload routes with 403: the page has no upload component, and the routes would
  otherwise write files to disk that are never removed;
- answers 413 to a request body larger than `max_body_bytes`, from the `Content-Length` header
  before anything is read, or as soon as a chunked body passes the limit;
- counts failed logins per client address: after `login_attempts` failures within
  `login_window` seconds, further logins from that address get 429 (with `Retry-After`) until the
  oldest failure is older than the window. Each failure is logged with the client's address.

Behind a reverse proxy every request comes from the proxy's address, so the login limit then
applies to all users together; see docs/app.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

#: Gradio routes that accept files. The app has no upload component, so none is needed.
REFUSED_PATHS = ("/gradio_api/upload", "/gradio_api/upload_progress", "/gradio_api/process_recording",
                 "/upload", "/process_recording")
LOGIN_PATHS = ("/login",)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def host_name(header: str) -> str:
    """The name in a `Host` header, lower-cased, without port or trailing dot ("[::1]:80" -> "::1")."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name = value[1:end] if end > 0 else value
    elif value.count(":") == 1:
        name = value.split(":", 1)[0]
    else:
        name = value
    return name.rstrip(".")


#: Always accepted: a page can only send these names from this machine itself (no DNS rebinding),
#: and Gradio checks its own start-up through them.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def allowed_hosts(bind_host: str, configured: Iterable[str] = ()) -> frozenset[str]:
    """The host names accepted: this machine's, the address the app binds, and the configured ones."""
    bind = bind_host.strip().lower().strip("[]")
    return LOOPBACK_HOSTS | {bind} | {h.strip().lower().strip("[]").rstrip(".") for h in configured if h.strip()}


class LoginLimiter:
    """Failed logins per client within a sliding window (thread-safe, memory bounded)."""

    def __init__(self, attempts: int = 5, window: float = 60.0, max_clients: int = 10_000) -> None:
        self.attempts = attempts
        self.window = window
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds until `client` may try again; 0 when it may try now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.attempts:
                return 0.0
            return max(0.0, self.window - (now - times[0]))

    def failed(self, client: str, now: float | None = None) -> int:
        """Record a failure; returns the failures of `client` within the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(client, now)
            times.append(now)
            self._failures[client] = times
            if len(self._failures) > self.max_clients:  # forget the clients idle longest
                idle = sorted(self._failures, key=lambda c: self._failures[c][-1] if self._failures[c] else 0)
                for old in idle[: len(self._failures) - self.max_clients]:
                    del self._failures[old]
            return len(times)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


class RequestGuard:
    """ASGI middleware: allowed hosts, no uploads, bounded bodies, slowed repeated failed logins."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, allowed_hosts: Iterable[str],
                 max_body_bytes: int, login_attempts: int = 5, login_window: float = 60.0) -> None:
        self.app = app
        hosts = {h.strip().lower().strip("[]").rstrip(".") for h in allowed_hosts if h.strip()}
        self.any_host = "*" in hosts
        self.allowed_hosts = frozenset(hosts - {"*"})
        self.max_body_bytes = max_body_bytes
        self.limiter = LoginLimiter(login_attempts, login_window)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.any_host and host_name(host) not in self.allowed_hosts:
            log.warning("refused a request for host %r (allowed: %s; set QA_APP_ALLOWED_HOSTS)",
                        host[:100], ", ".join(sorted(self.allowed_hosts)))
            await _refuse(scope, send, 400, "This host name is not served here.")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        path = _normal_path(scope)
        if path in REFUSED_PATHS:
            await _refuse(scope, send, 403, "This app accepts no uploads.")
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body_bytes
            except ValueError:
                await _refuse(scope, send, 400, "Bad Content-Length.")
                return
            if too_big:
                await _refuse(scope, send, 413, f"The request is larger than {self.max_body_bytes:,} bytes.")
                return
        if path in LOGIN_PATHS and scope.get("method") == "POST":
            await self._login(scope, receive, send)
            return
        await self._bounded(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, stopping a (chunked) body at the limit.

        Past the limit the client gets 413 at once and the app sees the client disconnect (an
        exception raised here would be turned into a 400 by FastAPI's body parsing).
        """
        seen = 0
        started = refused = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    refused = True
                    if not started:
                        await _refuse(scope, send, 413, f"The request is larger than {self.max_body_bytes:,} bytes.")
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            if refused:  # the client already has its answer
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, watched_send)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.limiter.retry_after(client)
        if wait > 0:
            log.warning("login refused for %s: %d failed logins within %.0f s", client, self.limiter.attempts,
                        self.limiter.window)
            await _refuse(scope, send, 429, "Too many failed logins. Please wait a minute and try again.",
                          [(b"retry-after", str(int(wait) + 1).encode())])
            return
        status = 0

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self._bounded(scope, receive, watched_send)
        if status == 200:
            self.limiter.succeeded(client)
        elif 400 <= status < 500:
            count = self.limiter.failed(client)
            log.warning("failed login from %s (%d within %.0f s)", client, count, self.limiter.window)


def _normal_path(scope: Scope) -> str:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    while "//" in path:
        path = path.replace("//", "/")
    return path.rstrip("/") or "/"


async def _refuse(scope: Scope, send: Send, status: int, text: str,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = text.encode("utf-8")
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
