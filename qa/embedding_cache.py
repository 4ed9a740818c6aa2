"""Embedding cache: vectors of texts already embedded, keyed by the model's weights hash and the text.

Adding or removing one report changes few of the texts to embed; with the cache, a rebuild
embeds only those and reads the rest back, so it gives the same index as a build from scratch
in a fraction of the time. The cache lives beside the index folder (`.index-embeddings/`), one
folder per model, in shards written atomically (temporary file, then rename), so two builds never
corrupt it and a damaged shard is skipped (its texts are embedded again). The model's ONNX export
is kept there too (`onnx-<weights hash>/`, checked against its checksums before use), so a build
into a new index folder needs no torch.

    cache = EmbeddingCache.for_settings(settings, encoder)
    vectors, stats = cache.encode(encoder, texts)       # stats.embedded, stats.cached
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CACHE_DIR_NAME = ".index-embeddings"
_MAX_SHARDS = 64  # merged into one when there are more


@dataclass
class CacheStats:
    embedded: int = 0
    cached: int = 0

    def add(self, other: CacheStats) -> None:
        self.embedded += other.embedded
        self.cached += other.cached


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Document-side embeddings of one model, on disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._vectors: dict[bytes, np.ndarray] | None = None

    @classmethod
    def for_settings(cls, settings, encoder) -> EmbeddingCache:
        from qa.index import document_encoder_name  # int8 and float32 document vectors differ

        model = hashlib.sha256(f"{settings.model}\0{encoder.weights_sha256}\0{encoder.dimension}\0"
                               f"{encoder.max_tokens}\0{document_encoder_name(settings)}\0document"
                               .encode()).hexdigest()[:24]
        return cls(Path(settings.index_dir).parent / CACHE_DIR_NAME / model)

    def _load(self) -> dict[bytes, np.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            for shard in sorted(self.folder.glob("shard-*.npz")):
                try:
                    with np.load(shard, allow_pickle=False) as data:
                        keys, vectors = data["keys"], data["vectors"]
                    if keys.ndim != 2 or keys.shape[1] != 32 or len(keys) != len(vectors):
                        raise ValueError("bad shape")
                except Exception as exc:  # a damaged shard only costs re-embedding its texts
                    log.warning("skipping damaged embedding cache shard %s (%s)", shard, exc)
                    continue
                for k, v in zip(keys, vectors):
                    self._vectors[k.tobytes()] = v
        return self._vectors

    def encode(self, encoder, texts: list[str], progress: bool = False) -> tuple[np.ndarray, CacheStats]:
        """Vectors of `texts` (normalised float32, in order), embedding only the ones not cached."""
        vectors = self._load()
        keys = [text_key(t) for t in texts]
        missing: dict[bytes, str] = {}
        for k, t in zip(keys, texts):
            if k not in vectors and k not in missing:
                missing[k] = t
        if missing:
            new = encoder.encode_documents(list(missing.values()), progress=progress)
            for k, v in zip(missing, new):
                vectors[k] = v
            self._save(list(missing), new)
        dim = encoder.dimension
        out = np.stack([vectors[k] for k in keys]).astype(np.float32) if keys else np.zeros((0, dim), np.float32)
        return np.ascontiguousarray(out), CacheStats(embedded=len(missing), cached=len(texts) - len(missing))

    def _save(self, keys: list[bytes], vectors: np.ndarray) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            shards = sorted(self.folder.glob("shard-*.npz"))
            if len(shards) >= _MAX_SHARDS:  # merge everything known into one shard
                all_vectors = self._load()
                keys, vectors = list(all_vectors), np.stack(list(all_vectors.values()))
            name = f"shard-{time.time_ns():020d}-{os.getpid()}.npz"
            tmp = self.folder / f".{name}.tmp"
            key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=key_array, vectors=np.asarray(vectors, dtype=np.float32))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.folder / name)
            if len(shards) >= _MAX_SHARDS:
                for old in shards:
                    old.unlink(missing_ok=True)
        except OSError as exc:  # the cache only saves time: a read-only disk must not fail the build
            log.warning("could not write the embedding cache in %s (%s)", self.folder, exc)
