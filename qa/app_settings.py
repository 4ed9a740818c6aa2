"""Settings of the browser app: where it listens, who may log in, where feedback goes.

Read from `QA_APP_*` environment variables only when `AppSettings.from_env()` is called, never at
import, so tests and scripts can build settings in code.

    QA_APP_HOST          address to bind (default 127.0.0.1: this machine only)
    QA_APP_PORT          port (default 7860)
    QA_APP_USER          login name; set together with QA_APP_PASSWORD to require a login
    QA_APP_PASSWORD      login password
    QA_APP_FEEDBACK_LOG  JSON-lines file that feedback is appended to (default feedback/feedback.jsonl)
    QA_APP_QUEUE_SIZE    most requests waiting at once; more are refused (default 64)
    QA_APP_CONCURRENCY   requests handled at once (default 4)
    QA_APP_ALLOWED_HOSTS comma-separated host names the app answers to besides localhost,
                         127.0.0.1, ::1 and QA_APP_HOST (always accepted); other Host headers get 400
    QA_APP_MAX_BODY_BYTES largest request body accepted (default 4,000,000); larger gets 413
    QA_APP_LOGIN_ATTEMPTS failed logins per client per minute before it must wait (default 5)
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from qa.config import PROJECT_ROOT
from qa.errors import QAError

DEFAULT_FEEDBACK_LOG = PROJECT_ROOT / "feedback" / "feedback.jsonl"


@dataclass(frozen=True)
class AppSettings:
    """How the Gradio app is served.

    Example:
        >>> AppSettings.from_env({"QA_APP_PORT": "8080"}).port
        8080
    """

    host: str = "127.0.0.1"
    port: int = 7860
    user: str = ""
    # repr=False: the password must never end up in a log line or a traceback.
    password: str = field(default="", repr=False)
    feedback_log: Path = DEFAULT_FEEDBACK_LOG
    queue_max_size: int = 64
    concurrency_limit: int = 4
    #: Host names the app answers to besides localhost, 127.0.0.1, ::1 and `host` (e.g. the name staff use).
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 4_000_000
    login_attempts: int = 5

    def __post_init__(self) -> None:
        if not self.host.strip():
            raise QAError("QA_APP_HOST must not be empty. Use 127.0.0.1 to serve this machine only.")
        if not 1 <= self.port <= 65535:
            raise QAError(f"QA_APP_PORT must be from 1 to 65535. Currently, it is {self.port}")
        if bool(self.user) != bool(self.password):
            raise QAError("Set both QA_APP_USER and QA_APP_PASSWORD to require a login, or neither.")
        if self.queue_max_size < 1:
            raise QAError(f"QA_APP_QUEUE_SIZE must be positive. Currently, it is {self.queue_max_size}")
        if self.concurrency_limit < 1:
            raise QAError(f"QA_APP_CONCURRENCY must be positive. Currently, it is {self.concurrency_limit}")
        if self.max_body_bytes < 1024:
            raise QAError(f"QA_APP_MAX_BODY_BYTES must be at least 1024. Currently, it is {self.max_body_bytes}")
        if self.login_attempts < 1:
            raise QAError(f"QA_APP_LOGIN_ATTEMPTS must be positive. Currently, it is {self.login_attempts}")

    @property
    def hosts(self) -> frozenset[str]:
        """The host names accepted in a request's Host header (loopback names and `host` always)."""
        from qa.web_guard import allowed_hosts

        return allowed_hosts(self.host, self.allowed_hosts)

    @property
    def auth(self) -> tuple[str, str] | None:
        """The (user, password) pair for Gradio's login page, or None when no login is set."""
        return (self.user, self.password) if self.user else None

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can reach the app."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> AppSettings:
        """Settings from `QA_APP_*` environment variables, then keyword overrides."""
        env = os.environ if env is None else env
        values: dict = {}
        text = {"host": "QA_APP_HOST", "user": "QA_APP_USER", "password": "QA_APP_PASSWORD"}
        for name, var in text.items():
            if env.get(var):
                values[name] = env[var]
        numbers = {"port": "QA_APP_PORT", "queue_max_size": "QA_APP_QUEUE_SIZE",
                   "concurrency_limit": "QA_APP_CONCURRENCY", "max_body_bytes": "QA_APP_MAX_BODY_BYTES",
                   "login_attempts": "QA_APP_LOGIN_ATTEMPTS"}
        for name, var in numbers.items():
            raw = env.get(var, "").strip()
            if raw:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise QAError(f"{var} must be a whole number. Currently, it is {raw!r}") from None
        if env.get("QA_APP_ALLOWED_HOSTS", "").strip():
            values["allowed_hosts"] = tuple(h.strip() for h in env["QA_APP_ALLOWED_HOSTS"].split(",") if h.strip())
        if env.get("QA_APP_FEEDBACK_LOG"):
            values["feedback_log"] = Path(env["QA_APP_FEEDBACK_LOG"]).expanduser()
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes) -> AppSettings:
        return replace(self, **changes)
