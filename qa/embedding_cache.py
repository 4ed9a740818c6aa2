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
from collections.abc import Iterator
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
            for keys, vectors in _read_shards(self.folder, "embedding", ("keys", "vectors"),
                                              lambda keys, vectors: len(keys) == len(vectors)):
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
        return _stacked(vectors, keys, encoder.dimension), CacheStats(embedded=len(missing),
                                                                     cached=len(texts) - len(missing))

    def _save(self, keys: list[bytes], vectors: np.ndarray) -> None:
        shards = sorted(self.folder.glob("shard-*.npz"))
        if len(shards) >= _MAX_SHARDS:  # merge everything known into one shard
            all_vectors = self._load()
            keys, vectors = list(all_vectors), np.stack(list(all_vectors.values()))
        _write_shard(self.folder, shards if len(shards) >= _MAX_SHARDS else [],
                     keys=_key_array(keys), vectors=np.asarray(vectors, dtype=np.float32))


class TokenCache:
    """Word-piece vectors of texts already embedded (`qa/late_interaction.py`), beside the vector cache.

    Filled by the same model run as the texts' vectors: a text missing from either cache is
    embedded once, and both caches get its result. Shards hold the keys, each text's number of
    pieces, the piece ids and their vectors in float16 (as the index stores them).
    """

    def __init__(self, vectors: EmbeddingCache) -> None:
        self.vector_cache = vectors
        self.folder = vectors.folder.with_name(vectors.folder.name + "-tokens")
        self._pieces: dict[bytes, tuple[np.ndarray, np.ndarray]] | None = None

    def _load(self) -> dict[bytes, tuple[np.ndarray, np.ndarray]]:
        if self._pieces is None:
            self._pieces = {}
            for keys, lengths, ids, vectors in _read_shards(
                    self.folder, "word-piece", ("keys", "lengths", "ids", "vectors"),
                    lambda keys, lengths, ids, vectors: len(keys) == len(lengths) and
                    len(ids) == len(vectors) == int(lengths.sum())):
                ends = np.cumsum(lengths)
                for k, a, b in zip(keys, ends - lengths, ends):
                    self._pieces[k.tobytes()] = (ids[a:b], vectors[a:b])
        return self._pieces

    def encode(self, encoder, texts: list[str], progress: bool = False) -> tuple[np.ndarray, list, CacheStats]:
        """Vectors of `texts` and their word pieces (`TokenVectors`), embedding only what is not cached."""
        from qa.late_interaction import TokenVectors

        pieces, vectors = self._load(), self.vector_cache._load()
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts) if k not in pieces or k not in vectors}
        if missing:
            new_vectors, new_pieces = encoder.encode_documents_with_tokens(list(missing.values()), progress=progress)
            for k, v, p in zip(missing, new_vectors, new_pieces):
                vectors[k] = v
                pieces[k] = (p.ids, p.vectors.astype(np.float16))
            self.vector_cache._save(list(missing), new_vectors)
            self._save(list(missing))
        return (_stacked(vectors, keys, encoder.dimension), [TokenVectors(*pieces[k]) for k in keys],
                CacheStats(embedded=len(missing), cached=len(texts) - len(missing)))

    def _save(self, keys: list[bytes]) -> None:
        shards = sorted(self.folder.glob("shard-*.npz"))
        if len(shards) >= _MAX_SHARDS:
            keys = list(self._load())
        rows = [self._pieces[k] for k in keys]
        dim = rows[0][1].shape[1] if rows else 0
        _write_shard(self.folder, shards if len(shards) >= _MAX_SHARDS else [], keys=_key_array(keys),
                     lengths=np.array([len(i) for i, _ in rows], dtype=np.int64),
                     ids=np.concatenate([i for i, _ in rows]).astype(np.int32) if rows else np.zeros(0, np.int32),
                     vectors=np.concatenate([v for _, v in rows]) if rows else np.zeros((0, dim), np.float16))


def _read_shards(folder: Path, what: str, fields: tuple[str, ...], valid) -> Iterator[tuple[np.ndarray, ...]]:
    """The arrays `fields` of each shard in `folder` whose keys are sha256 digests and which `valid`
    accepts; a damaged shard is skipped with a warning (it only costs re-embedding its texts)."""
    for shard in sorted(folder.glob("shard-*.npz")):
        try:
            with np.load(shard, allow_pickle=False) as data:
                arrays = tuple(data[name] for name in fields)
            if arrays[0].ndim != 2 or arrays[0].shape[1] != 32 or not valid(*arrays):
                raise ValueError("bad shape")
        except Exception as exc:  # np.load raises many kinds on a damaged file
            log.warning("skipping damaged %s cache shard %s (%s)", what, shard, exc)
            continue
        yield arrays


def _stacked(vectors: dict[bytes, np.ndarray], keys: list[bytes], dimension: int) -> np.ndarray:
    """The vectors of `keys`, in order, as one contiguous float32 array."""
    if not keys:
        return np.zeros((0, dimension), np.float32)
    return np.ascontiguousarray(np.stack([vectors[k] for k in keys]).astype(np.float32))


def _key_array(keys: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)


def _write_shard(folder: Path, replaces: list[Path], **arrays: np.ndarray) -> None:
    """Write a new shard atomically (temporary file, then rename), then remove the shards it `replaces`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        name = f"shard-{time.time_ns():020d}-{os.getpid()}.npz"
        tmp = folder / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / name)
        for old in replaces:
            old.unlink(missing_ok=True)
    except OSError as exc:  # the cache only saves time: a read-only disk must not fail the build
        log.warning("could not write the embedding cache in %s (%s)", folder, exc)
