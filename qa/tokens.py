"""Token counting for the language-model prompt: tiktoken from a local file, or a stated approximation.

tiktoken normally downloads its encoding files on first use, which cannot happen here (and must
never happen silently). So an encoding is only ever built from a file already on disk:

1. `QA_TIKTOKEN_FILE`: a `.tiktoken` BPE ranks file (one `base64-token rank` pair per line), split
   with the pattern of `QA_TIKTOKEN_ENCODING` (default `cl100k_base`); or
2. tiktoken's own cache (`TIKTOKEN_CACHE_DIR`, `DATA_GYM_CACHE_DIR` or `<tmp>/data-gym-cache`) when it
   already holds the file of `QA_TIKTOKEN_ENCODING` with the expected sha256.

Otherwise counts are approximate: `ceil(characters / 4)` per text, plus 3 tokens per chat message
and 3 for the reply's priming (the same overheads as exact counting). One warning is logged, once
per process. Nothing is loaded at import time; tiktoken itself is imported only when a file is used.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import math
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import QAError

if TYPE_CHECKING:
    import tiktoken

log = logging.getLogger(__name__)

#: Characters per token of the approximation (English prose in GPT- and Llama-3-style BPE vocabularies).
CHARS_PER_TOKEN = 4
#: Tokens a chat template adds around each message (role, separators), as in OpenAI's counting guide.
TOKENS_PER_MESSAGE = 3
#: Tokens that prime the assistant's reply.
TOKENS_PER_REPLY = 3

# Split patterns of tiktoken's encodings, copied from tiktoken_ext/openai_public.py (tiktoken 0.14):
# the patterns live in functions that download the ranks, so they cannot be read from there offline.
_R50K = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
_CL100K = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$"""
           r"""|\s*[\r\n]|\s+(?!\S)|\s""")
_O200K = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
PATTERNS: dict[str, str] = {
    "r50k_base": _R50K, "p50k_base": _R50K, "p50k_edit": _R50K, "gpt2": _R50K,
    "cl100k_base": _CL100K, "o200k_base": _O200K, "o200k_harmony": _O200K,
}

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/"
#: Where tiktoken fetches each encoding's ranks file and its sha256 (tiktoken_ext/openai_public.py). The
#: URL is only used to find the file in tiktoken's cache (keyed by sha1 of the URL); it is never fetched.
TIKTOKEN_BLOBS: dict[str, tuple[str, str]] = {
    "r50k_base": (_BLOB + "r50k_base.tiktoken", "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"),
    "p50k_base": (_BLOB + "p50k_base.tiktoken", "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069"),
    "cl100k_base": (_BLOB + "cl100k_base.tiktoken",
                    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
    "o200k_base": (_BLOB + "o200k_base.tiktoken", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
}
TIKTOKEN_BLOBS["p50k_edit"] = TIKTOKEN_BLOBS["p50k_base"]
TIKTOKEN_BLOBS["o200k_harmony"] = TIKTOKEN_BLOBS["o200k_base"]

DEFAULT_ENCODING = "cl100k_base"


class TokenizerError(QAError):
    """A tiktoken ranks file that cannot be used (missing, malformed, or an unknown split pattern)."""


class _Once:
    """A flag set once per process, so a repeated fallback logs one warning, not one per call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False

    def first(self) -> bool:
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True


_APPROXIMATION_WARNING = _Once()


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens with a tiktoken encoding, or approximately when none is available.

    Example:
        >>> counter = TokenCounter.load()   # QA_TIKTOKEN_FILE, else tiktoken's cache, else approximate
        >>> TokenCounter.approximate().count("How many complaints?")   # 20 characters
        5
        >>> TokenCounter.approximate().count_messages([{"role": "user", "content": "Hi"}])   # 3 + 3 + 1 + 1
        8
    """

    encoding: tiktoken.Encoding | None = None
    name: str = f"approximate (ceil(characters / {CHARS_PER_TOKEN}))"

    @property
    def exact(self) -> bool:
        """Whether counts come from a real tiktoken encoding."""
        return self.encoding is not None

    def count(self, text: str) -> int:
        """Tokens in `text`. Special-token text such as `<|endoftext|>` is counted as ordinary text."""
        if self.encoding is None:
            return math.ceil(len(text) / CHARS_PER_TOKEN)
        # encode_ordinary: a report quoting "<|endoftext|>" must be counted, not rejected
        return len(self.encoding.encode_ordinary(text))

    def count_messages(self, messages: Sequence[Mapping[str, str]]) -> int:
        """Tokens a chat request's messages take, including the template overhead and reply priming."""
        return TOKENS_PER_REPLY + sum(TOKENS_PER_MESSAGE + self.count(m["role"]) + self.count(m["content"])
                                      for m in messages)

    @classmethod
    def approximate(cls) -> TokenCounter:
        """The approximate counter (no warning; `load` warns when it has to fall back to this)."""
        return cls()

    @classmethod
    def from_file(cls, path: str | os.PathLike, encoding: str = DEFAULT_ENCODING) -> TokenCounter:
        """An exact counter from a `.tiktoken` ranks file, split with `encoding`'s pattern.

        Raises:
            TokenizerError: the file is unreadable or malformed, or `encoding` is not a known pattern.
        """
        path = Path(path).expanduser()
        try:
            stat = path.stat()
        except OSError as e:
            raise TokenizerError(f"Cannot read the tiktoken file {path}: {e.strerror or e}") from None
        return _from_file_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, encoding)

    @classmethod
    def from_cache(cls, encoding: str = DEFAULT_ENCODING) -> TokenCounter | None:
        """An exact counter from tiktoken's cache if it already holds `encoding`'s file, else None.

        The file's sha256 is checked first: tiktoken itself would delete a mismatching file and
        download it again, so this never hands anything to tiktoken's loader.
        """
        cached = cached_encoding_file(encoding)
        if cached is None:
            return None
        return cls.from_file(cached, encoding)

    @classmethod
    def load(cls, file: str | os.PathLike | None = None, encoding: str | None = None) -> TokenCounter:
        """The best counter available offline: `file`, else tiktoken's cache, else the approximation.

        Never raises and never downloads: a bad file or a missing cache logs one warning per process
        and gives the approximate counter.
        """
        encoding = encoding or DEFAULT_ENCODING
        reason = ""
        try:
            if file:
                return cls.from_file(file, encoding)
            cached = cls.from_cache(encoding)
            if cached is not None:
                return cached
            reason = (f"no tiktoken file is configured (QA_TIKTOKEN_FILE) and tiktoken's cache does not hold "
                      f"{encoding!r}")
        except TokenizerError as e:
            reason = str(e)
        if _APPROXIMATION_WARNING.first():
            log.warning("Counting prompt tokens approximately (ceil(characters / %d) per text): %s.",
                        CHARS_PER_TOKEN, reason)
        return cls.approximate()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TokenCounter:
        """`load` with `QA_TIKTOKEN_FILE` and `QA_TIKTOKEN_ENCODING` from the environment."""
        env = os.environ if env is None else env
        return cls.load(env.get("QA_TIKTOKEN_FILE") or None, env.get("QA_TIKTOKEN_ENCODING") or None)


def read_ranks(data: bytes, source: str = "the tiktoken file") -> dict[bytes, int]:
    """Mergeable ranks from the bytes of a `.tiktoken` file, in `tiktoken.load.load_tiktoken_bpe`'s format.

    Parsed here rather than with `load_tiktoken_bpe`: that function copies a local file into
    tiktoken's cache under a key made from its path and afterwards serves the copy, so edits to the
    file would be silently ignored.

    Raises:
        TokenizerError: a malformed line, or not every single byte has a rank (tiktoken would panic
            on such text with an exception that is not an `Exception`).
    """
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except (ValueError, binascii.Error):
            raise TokenizerError(f"Line {number} of {source} is not 'base64-token rank': {line[:60]!r}") from None
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise TokenizerError(f"{source} has no rank for {len(missing)} of the 256 single bytes "
                             f"(e.g. {bytes([missing[0]])!r}); it is not a complete byte-level BPE vocabulary.")
    return ranks


def cached_encoding_file(encoding: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The path of `encoding`'s ranks file in tiktoken's cache if it is there with the right sha256."""
    if encoding not in TIKTOKEN_BLOBS:
        return None
    env = os.environ if env is None else env
    # the same lookup as tiktoken.load.read_file_cached; an empty TIKTOKEN_CACHE_DIR disables the cache
    if "TIKTOKEN_CACHE_DIR" in env:
        cache_dir = env["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in env:
        cache_dir = env["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:
        return None
    url, sha256 = TIKTOKEN_BLOBS[encoding]
    path = Path(cache_dir) / hashlib.sha1(url.encode()).hexdigest()
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != sha256:
        log.warning("Ignoring %s in tiktoken's cache: its sha256 is not that of %s.", path, encoding)
        return None
    return path


@functools.lru_cache(maxsize=8)
def _from_file_cached(path: str, mtime_ns: int, size: int, encoding: str) -> TokenCounter:
    """Build the encoding once per file version (the key includes mtime and size, so edits are seen)."""
    if encoding not in PATTERNS:
        raise TokenizerError(f"QA_TIKTOKEN_ENCODING must be one of {', '.join(sorted(PATTERNS))}. "
                             f"Currently, it is {encoding!r}")
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TokenizerError(f"Cannot read the tiktoken file {path}: {e.strerror or e}") from None
    ranks = read_ranks(data, path)
    import tiktoken  # here, not at module level: importing qa.tokens must stay free

    # no special tokens: counting uses encode_ordinary, and a foreign vocabulary's ids could collide
    enc = tiktoken.Encoding(f"{encoding}@{Path(path).name}", pat_str=PATTERNS[encoding], mergeable_ranks=ranks,
                            special_tokens={})
    log.info("Counting prompt tokens with tiktoken: %d ranks from %s, %s split pattern.", len(ranks), path, encoding)
    return TokenCounter(enc, f"tiktoken {encoding} pattern, ranks from {path}")


def fit_passages(blocks: Sequence[str], budget: int, counter: TokenCounter) -> list[str]:
    """The highest-ranked blocks (best first) whose tokens together fit `budget`.

    The lowest-ranked blocks are dropped first, even when a higher-ranked one is larger: rank, not
    size, decides what the model sees.

    Example:
        >>> [len(b) for b in fit_passages(["a" * 80, "b" * 40, "c" * 40], 25, TokenCounter.approximate())]
        [80]
    """
    kept: list[str] = []
    used = 0
    for block in blocks:
        cost = counter.count(block)
        if used + cost > budget:
            break  # everything after this ranks lower still
        kept.append(block)
        used += cost
    return kept
