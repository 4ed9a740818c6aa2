"""The saved index: a folder that describes itself.

    index/
      manifest.json   model name and weights hash, dimension, chunking settings, corpus file hashes,
                      library versions, and the sha256 of every other file in the folder
      chunks.jsonl    one chunk per line, in index order
      dense.faiss     FAISS inner-product index of normalised embeddings
      bm25/           bm25s arrays (.npy, loaded without pickle) and vocabulary (.json)
      sentences.npz   every chunk's sentences: chunk number, span in the chunk text, embedding
                      (the answer engine scores sentences without running the model on them)

Writes are atomic: a new index is built in a sibling folder and renamed into place, so a failed
build leaves the previous index as it was. Builders take the lock `.index.build.lock` beside the
folder (one build at a time; `build_lock`), and the swap takes `.index.lock` exclusively while
readers hold it shared, so no reader sees the folder missing or half-swapped. Leftovers of a killed
build (`.index.building-*`, `.index.old-*`) are removed by the next builder. Loading verifies every
file's sha256 (FAISS files carry no checksum of their own) and compares the manifest with the
running settings and corpus.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from qa.acronyms import find_acronyms
from qa.checksums import sha256_file
from qa.chunks import Chunk, Chunker, mark_duplicates
from qa.config import Settings
from qa.corpus import corpus_hashes, load_corpus
from qa.embeddings import Encoder
from qa.errors import IndexCorruptError, IndexMissingError, IndexStaleError
from qa.lexical import LexicalIndex
from qa.locks import LockTimeout, file_lock
from qa.sentences import split_sentences

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
DENSE = "dense.faiss"
LEXICAL = "bm25"
SENTENCES = "sentences.npz"
_LIBRARIES = ("sentence-transformers", "faiss-cpu", "bm25s", "langchain-text-splitters", "torch", "transformers")
REBUILD_HINT = "Rebuild it with: python -m qa build"
#: How long a reader waits for a swap in progress (a swap is two renames; this is generous).
READ_LOCK_TIMEOUT = 60.0


@dataclass
class SearchIndex:
    """Chunks with their dense and lexical indexes, as built or loaded."""

    chunks: list[Chunk]
    dense: object  # faiss.Index
    lexical: LexicalIndex
    sentences: SentenceTable
    manifest: dict

    @property
    def dimension(self) -> int:
        return int(self.dense.d)


@dataclass
class SentenceTable:
    """The sentences of all chunks: `chunk[i]` holds sentence i, at `start[i]:end[i]` of its text."""

    chunk: np.ndarray  # int32
    start: np.ndarray  # int32
    end: np.ndarray  # int32
    vectors: np.ndarray  # float32, normalised

    @classmethod
    def of(cls, chunks: list[Chunk]) -> SentenceTable:
        rows = [(i, a, b) for i, c in enumerate(chunks) for a, b in split_sentences(c.text)]
        arr = np.array(rows, dtype=np.int32).reshape(-1, 3)
        return cls(arr[:, 0], arr[:, 1], arr[:, 2], np.zeros((len(rows), 0), dtype=np.float32))

    def texts(self, chunks: list[Chunk]) -> list[str]:
        return [chunks[c].text[a:b] for c, a, b in zip(self.chunk, self.start, self.end)]


def expected_settings(settings: Settings, encoder: Encoder, corpus: dict[str, str]) -> dict:
    """The part of a manifest that must match for an index to be used."""
    return {
        "format_version": FORMAT_VERSION,
        "model": {"name": settings.model, "weights_sha256": encoder.weights_sha256,
                  "dimension": encoder.dimension, "max_tokens": encoder.max_tokens},
        "chunking": {"chunk_tokens": settings.chunk_tokens, "chunk_overlap_tokens": settings.chunk_overlap_tokens,
                     "contextual_chunks": settings.contextual_chunks, "token_unit": "model word pieces"},
        "corpus": corpus,
    }


def build_index(settings: Settings, encoder: Encoder, progress: bool = False) -> SearchIndex:
    """Chunk, embed and index the corpus in memory."""
    import faiss
    from tqdm.auto import tqdm

    corpus = corpus_hashes(settings.corpus_dir)
    docs = load_corpus(settings.corpus_dir)
    chunker = Chunker(encoder.count_tokens, encoder.max_tokens, settings.chunk_tokens,
                      settings.chunk_overlap_tokens, settings.contextual_chunks)
    chunks: list[Chunk] = []
    for doc in tqdm(docs, desc="Chunking", unit="doc", disable=not progress):
        chunks.extend(chunker.chunk_document(doc))
    fuller_first = [d.doc_id for d in sorted(docs, key=lambda d: -len(d.raw))]
    chunks = mark_duplicates(chunks, fuller_first)
    texts = [c.indexed_text(settings.contextual_chunks) for c in chunks]
    too_long = [c.chunk_id for c in chunks if not chunker.fits(c)]
    if too_long:  # the splitter sizes pieces in tokens; this guards against a tokenizer that is not additive
        raise RuntimeError(f"{len(too_long)} chunks exceed {encoder.max_tokens} tokens: {too_long[:3]}")
    if progress:
        print(f"Embedding {len(chunks)} chunks with {settings.model}", flush=True)
    vectors = encoder.encode_documents(texts, progress=progress)
    dense = faiss.IndexFlatIP(encoder.dimension)
    dense.add(vectors)
    lexical = LexicalIndex.build(texts, find_acronyms([d.text.text for d in docs]))
    sentences = SentenceTable.of(chunks)
    if progress:
        print(f"Embedding {len(sentences.chunk)} sentences for answer selection", flush=True)
    sentences.vectors = encoder.encode_documents(sentences.texts(chunks), progress=progress)
    manifest = expected_settings(settings, encoder, corpus) | {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "normalised_embeddings": True,
        "metric": "inner_product",
        "chunks": len(chunks),
        "sentences": len(sentences.chunk),
        "documents": len(docs),
        "libraries": {name: _version(name) for name in _LIBRARIES},
    }
    return SearchIndex(chunks, dense, lexical, sentences, manifest)


def _swap_lock_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.lock"


def _gate_path(folder: Path) -> Path:
    """A turnstile: a waiting swap holds it, so new readers queue behind the swap instead of
    overlapping their shared locks forever (which would starve it)."""
    return folder.parent / f".{folder.name}.gate"


@contextmanager
def build_lock(folder: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the lock that lets one builder at a time write `folder`; leftovers are cleaned on entry.

    `on_wait` is called once if another build holds the lock (this one then waits for it).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(folder.parent / f".{folder.name}.build.lock", on_wait=on_wait):
        remove_leftovers(folder)
        yield


def remove_leftovers(folder: Path) -> list[Path]:
    """Remove the temporary folders of builds that were killed; call only while holding `build_lock`.

    A build killed between its two renames leaves no index but a complete `.old-*` one: that
    one is put back first.
    """
    folder = Path(folder)
    olds = sorted(folder.parent.glob(f".{folder.name}.old-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    if not folder.exists():
        for old in olds:
            if (old / MANIFEST).is_file():
                with file_lock(_swap_lock_path(folder)):
                    old.rename(folder)
                log.warning("restored the index %s from %s, left by a build that was stopped", folder, old.name)
                break
    removed = [p for p in (*folder.parent.glob(f".{folder.name}.building-*"),
                           *folder.parent.glob(f".{folder.name}.old-*")) if p.is_dir()]
    for p in removed:
        shutil.rmtree(p, ignore_errors=True)
        log.info("removed %s, left by a build that was stopped", p)
    return removed


def save_index(index: SearchIndex, folder: Path) -> None:
    """Write the index beside `folder`, then swap it into place (one builder at a time)."""
    import faiss

    folder = Path(folder)
    with build_lock(folder):
        unique = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp = folder.parent / f".{folder.name}.building-{unique}"
        old = folder.parent / f".{folder.name}.old-{unique}"
        try:
            tmp.mkdir()
            with open(tmp / CHUNKS, "w", encoding="utf-8") as fh:
                for chunk in index.chunks:
                    fh.write(json.dumps(chunk.to_json(), ensure_ascii=False) + "\n")
            (tmp / DENSE).write_bytes(faiss.serialize_index(index.dense).tobytes())
            index.lexical.save(tmp / LEXICAL)
            st = index.sentences
            with open(tmp / SENTENCES, "wb") as fh:
                np.savez(fh, chunk=st.chunk, start=st.start, end=st.end, vectors=st.vectors)
            files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
            manifest = index.manifest | {"files": files}
            _write_synced(tmp / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            # readers hold the swap lock shared while they read; the gate stops new ones meanwhile
            with file_lock(_gate_path(folder)), file_lock(_swap_lock_path(folder)):
                if folder.exists():
                    folder.rename(old)
                tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if old.exists() and not folder.exists():
                old.rename(folder)
            raise
        shutil.rmtree(old, ignore_errors=True)
    index.manifest = manifest
    log.info("saved index of %d chunks to %s", len(index.chunks), folder)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def read_manifest(folder: Path) -> dict:
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        if folder.is_dir() and any(folder.iterdir()):
            raise IndexCorruptError(f"{folder} has no {MANIFEST}, so it cannot be trusted. {REBUILD_HINT}")
        raise IndexMissingError(f"No index in {folder}. Build it with: python -m qa build")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError("no file list")
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is not a valid manifest ({exc}). {REBUILD_HINT}") from None
    return manifest


def stale_reasons(manifest: dict, expected: dict) -> list[str]:
    """What differs between a saved manifest and the running settings, in words."""
    reasons = []
    for key in ("format_version", "model", "chunking"):
        if manifest.get(key) != expected[key]:
            reasons.append(f"{key} was {manifest.get(key)!r}, now {expected[key]!r}")
    saved, now = manifest.get("corpus") or {}, expected["corpus"]
    for name in sorted(set(saved) | set(now)):
        if name not in now:
            reasons.append(f"corpus file {name} was removed")
        elif name not in saved:
            reasons.append(f"corpus file {name} was added")
        elif saved[name] != now[name]:
            reasons.append(f"corpus file {name} changed")
    return reasons


def load_index(folder: Path, expected: dict) -> SearchIndex:
    """Load and verify an index; raise a clear error if it is missing, corrupt or stale.

    Waits while a build swaps a new index into place (up to `READ_LOCK_TIMEOUT` seconds).
    """
    folder = Path(folder)
    if not folder.parent.is_dir():
        return _load_index(folder, expected)
    try:
        with file_lock(_gate_path(folder), timeout=READ_LOCK_TIMEOUT):
            pass  # wait here while a swap is waiting or in progress
        with file_lock(_swap_lock_path(folder), shared=True, timeout=READ_LOCK_TIMEOUT):
            return _load_index(folder, expected)
    except LockTimeout:
        raise IndexCorruptError(f"{folder} is still being replaced after {READ_LOCK_TIMEOUT:g} s; "
                                "try again, or remove a stuck build.") from None


def _load_index(folder: Path, expected: dict) -> SearchIndex:
    import faiss

    manifest = read_manifest(folder)
    reasons = stale_reasons(manifest, expected)
    if reasons:
        raise IndexStaleError(f"The index in {folder} is out of date: {'; '.join(reasons)}. {REBUILD_HINT}")
    for name in (CHUNKS, DENSE, SENTENCES):
        if name not in manifest["files"]:
            raise IndexCorruptError(f"The manifest of {folder} does not list {name}. {REBUILD_HINT}")
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise IndexCorruptError(f"{path} is missing. {REBUILD_HINT}")
        if sha256_file(path) != digest:
            raise IndexCorruptError(f"{path} does not match its checksum in the manifest (damaged or edited). "
                                    f"{REBUILD_HINT}")
    try:
        chunks = [Chunk.from_json(json.loads(line)) for line in
                  (folder / CHUNKS).read_text(encoding="utf-8").splitlines() if line.strip()]
        dense = faiss.deserialize_index(np.frombuffer((folder / DENSE).read_bytes(), dtype=np.uint8))
        lexical = LexicalIndex.load(folder / LEXICAL, len(chunks))
        with np.load(folder / SENTENCES, allow_pickle=False) as arrays:
            sentences = SentenceTable(*(np.asarray(arrays[k]) for k in ("chunk", "start", "end", "vectors")))
    except Exception as exc:  # checksums matched, so this is a writer bug or a foreign file
        raise IndexCorruptError(f"Cannot read the index in {folder} ({type(exc).__name__}: {exc}). "
                                f"{REBUILD_HINT}") from exc
    dimension = expected["model"]["dimension"]
    if (dense.d != dimension or dense.ntotal != len(chunks) or manifest.get("chunks") != len(chunks)
            or sentences.vectors.shape != (manifest.get("sentences"), dimension)):
        raise IndexCorruptError(f"The index in {folder} holds {dense.ntotal} vectors of dimension {dense.d} for "
                                f"{len(chunks)} chunks; expected dimension {dimension}. {REBUILD_HINT}")
    return SearchIndex(chunks, dense, lexical, sentences, manifest)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
