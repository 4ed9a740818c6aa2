"""The saved index: a folder that describes itself.

    index/
      manifest.json   model name and weights hash, dimension, chunking settings, corpus file hashes,
                      library versions, and the sha256 of every other file in the folder
      chunks.jsonl    one chunk per line, in index order
      dense.faiss     FAISS inner-product index of normalised embeddings
      bm25/           bm25s arrays (.npy, loaded without pickle) and vocabulary (.json)
      sentences.npz   every chunk's sentences: chunk number, span in the chunk text, embedding
                      (the answer engine scores sentences without running the model on them)
      encoder.onnx    the embedding model exported to ONNX, and its tokenizer.json (default model
                      only): questions are encoded with it, without torch (see qa/onnx_encoder.py);
                      unless `adapt_model` is off, it is the model adapted to the corpus (see
                      qa/adaptation.py), which the manifest's "adaptation" entry describes
      tokens.npy      every chunk's word-piece vectors (8-bit codes), with token_offsets.npy,
                      token_weights.npy, token_projection.npy and token_quantiser.npy, for
                      token-level reranking (see qa/late_interaction.py)

Writes are atomic: a new index is built in a sibling folder, moved into `.index.generations/`,
and `index` (a symbolic link) is switched to it with one rename, so a failed build leaves the
previous index as it was and a running app sees either the old generation or the new one.
Builders take the lock `.index.build.lock` beside the folder (one build at a time; `build_lock`);
readers hold `.index.lock` shared while they read a generation, and an old generation is deleted
only under that lock held exclusively, so no reader loses its files. Leftovers of a killed build
(`.index.building-*`, `.index.old-*`) are removed by the next builder. Loading verifies every
file's sha256 (FAISS files carry no checksum of their own) and compares the manifest with the
running settings and corpus; the ONNX model's sha256 is checked when it is first used, so a
BM25-only search does not hash it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from qa.acronyms import find_acronyms
from qa.checksums import VERIFIED_FILE, sha256_file, verified_sha256
from qa.chunks import Chunk, Chunker, mark_duplicates
from qa.config import DEFAULT_MODEL, Settings
from qa.corpus import corpus_hashes, load_corpus
from qa.embedding_cache import CACHE_DIR_NAME, EmbeddingCache, TokenCache
from qa.embeddings import Encoder
from qa.errors import IndexCorruptError, IndexMissingError, IndexStaleError
from qa.late_interaction import TOKENS, TokenTable
from qa.lexical import LexicalIndex
from qa.locks import LockTimeout, file_lock
from qa.sentences import split_sentences

log = logging.getLogger(__name__)

FORMAT_VERSION = 6  # 3: the ONNX query encoder is stored with the index; 4: and the chunks' word pieces;
#                    5: the model adapted to the corpus; 6: word-piece codes stored chunk by chunk,
#                    dimension by dimension
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
DENSE = "dense.faiss"
LEXICAL = "bm25"
SENTENCES = "sentences.npz"
_LIBRARIES = ("sentence-transformers", "faiss-cpu", "bm25s", "langchain-text-splitters", "torch", "transformers",
              "onnxruntime", "tokenizers")
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
    #: every chunk's word-piece vectors, for token-level reranking (None: not built for this model)
    tokens: TokenTable | None = None
    #: files written with the index, by name: source path to copy (e.g. the exported ONNX model)
    extra_files: dict[str, Path] = field(default_factory=dict)

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
                  "dimension": encoder.dimension, "max_tokens": encoder.max_tokens,
                  "document_encoder": document_encoder_name(settings), "adapted_to_corpus": adapts(settings)},
        "chunking": {"chunk_tokens": settings.chunk_tokens, "chunk_overlap_tokens": settings.chunk_overlap_tokens,
                     "contextual_chunks": settings.contextual_chunks, "token_unit": "model word pieces"},
        "corpus": corpus,
    }


def adapts(settings: Settings) -> bool:
    """Whether an index built with `settings` holds the bundled model adapted to its corpus."""
    return settings.adapt_model and settings.model == DEFAULT_MODEL


def adapted_weights(manifest: dict) -> str | None:
    """The sha256 of the adapted model an index was built with, from its manifest; None for the stock
    model (adaptation off, another model, or too few pairs to adapt on)."""
    return (manifest.get("adaptation") or {}).get("weights_sha256")


def build_index(settings: Settings, encoder: Encoder, progress: bool = False, readapt: bool = False) -> SearchIndex:
    """Chunk, embed and index the corpus in memory.

    With `adapt_model` on, the model adapted for the index already in `settings.index_dir` is kept
    (adding or removing a report does not adapt it again); `readapt` adapts it to the corpus as it is
    now (reusing a kept model trained on the same pairs).
    """
    import faiss
    from tqdm.auto import tqdm

    corpus = corpus_hashes(settings.corpus_dir)
    expected = expected_settings(settings, encoder, corpus)  # of the stock model: what a reader compares
    docs = load_corpus(settings.corpus_dir)
    staging, extra_files, extra_manifest, export = None, {}, {}, None
    if settings.model == DEFAULT_MODEL:  # documents and queries go through the ONNX export
        from qa.embeddings import bundled_model_dir
        from qa.onnx_encoder import (ONNX_FILE, ONNX_INT8_FILE, TOKENIZER_FILE, ModelIdentity, OnnxEncoder,
                                     prepare_export, query_encoder_manifest, quantize_int8)

        identity = ModelIdentity.of_default_model()
        staging = tempfile.TemporaryDirectory(prefix="qa-onnx-")
        folder = Path(staging.name)

        def start_export(identity: ModelIdentity, weights: Path | None = None):
            exports = Path(settings.index_dir).parent / CACHE_DIR_NAME / f"onnx-{identity.weights_sha256[:16]}"
            return prepare_export(settings.index_dir, folder, identity, encoder, cache_dir=exports, weights=weights)

        if not adapts(settings):  # the stock export runs while the reports are chunked
            export = start_export(identity)

        def onnx_encoder(identity: ModelIdentity) -> OnnxEncoder:
            # the bundled tokenizer (the file the export copies) counts tokens while an export runs
            return OnnxEncoder(folder / ONNX_FILE, bundled_model_dir() / TOKENIZER_FILE, identity, threads=0,
                               document_model_path=folder / ONNX_INT8_FILE if settings.embed_int8 else None)

        encoder = onnx_encoder(identity)
        extra_files = {ONNX_FILE: folder / ONNX_FILE, TOKENIZER_FILE: folder / TOKENIZER_FILE}
    try:  # everything that needs no embedding first, while a new export runs
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
        lexical = LexicalIndex.build(texts, find_acronyms([d.text.text for d in docs]))
        sentences = SentenceTable.of(chunks)
        if staging is not None:
            if adapts(settings):
                adaptation, weights = _adaptation(settings, chunks, identity, readapt, progress)
                extra_manifest["adaptation"] = adaptation
                if "weights_sha256" in adaptation:
                    identity = ModelIdentity(DEFAULT_MODEL, adaptation["weights_sha256"], identity.dimension,
                                             identity.max_tokens)
                    encoder = onnx_encoder(identity)  # its weights' digest keys the embedding cache
                export = start_export(identity, weights)
            extra_manifest["query_encoder"] = query_encoder_manifest(identity)
            log.info("ONNX encoder %s", export.wait())
            if settings.embed_int8:
                quantize_int8(folder / ONNX_FILE, folder / ONNX_INT8_FILE)
    finally:
        if export is not None:
            export.cancel()  # nothing left to stop unless something above failed
    if progress:
        print(f"Embedding {len(chunks)} chunks with {settings.model}", flush=True)
    cache = EmbeddingCache.for_settings(settings, encoder)
    tokens = None
    if hasattr(encoder, "encode_documents_with_tokens"):  # word pieces from the same model run
        vectors, pieces, stats = TokenCache(cache).encode(encoder, texts, progress=progress)
        tokens = TokenTable.build(pieces, encoder.vocabulary(), encoder.dimension)
    else:
        vectors, stats = cache.encode(encoder, texts, progress=progress)
    dense = faiss.IndexFlatIP(encoder.dimension)
    dense.add(vectors)
    if progress:
        print(f"Embedding {len(sentences.chunk)} sentences for answer selection", flush=True)
    sentences.vectors, sentence_stats = cache.encode(encoder, sentences.texts(chunks), progress=progress)
    stats.add(sentence_stats)
    log.info("embedded %d texts, %d read from the cache %s", stats.embedded, stats.cached, cache.folder)
    manifest = expected | {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "normalised_embeddings": True,
        "metric": "inner_product",
        "chunks": len(chunks),
        "sentences": len(sentences.chunk),
        "documents": len(docs),
        "libraries": {name: _version(name) for name in _LIBRARIES},
        "embedding_cache": {"embedded": stats.embedded, "cached": stats.cached},
    } | extra_manifest
    index = SearchIndex(chunks, dense, lexical, sentences, manifest, tokens, extra_files)
    index._staging = staging  # the exported files live as long as the index object that saves them
    return index


def _adaptation(settings: Settings, chunks: list[Chunk], base, readapt: bool, progress: bool
                ) -> tuple[dict, Path | None]:
    """The manifest's "adaptation" entry, and the adapted weights' folder when they must be exported:
    the previous index's adaptation if it has one of this recipe and base model (and not `readapt`),
    else the model adapted on these chunks' pairs (kept in `settings.models_dir`, trained if new).
    Too few pairs to learn from give the stock model, and the entry says why."""
    from qa.adaptation import RECIPE, adapted_model, training_pairs, verified_weights
    from qa.errors import ModelError

    try:
        previous = read_manifest(settings.index_dir).get("adaptation") or {}
    except (IndexMissingError, IndexCorruptError):
        previous = {}
    if (not readapt and previous.get("recipe") == RECIPE and previous.get("base_sha256") == base.weights_sha256
            and "weights_sha256" in previous):
        kept = Path(settings.models_dir) / str(previous.get("folder"))
        if (verified_weights(kept) or {}).get("weights_sha256") == previous["weights_sha256"]:
            log.info("keeping the model adapted for the previous index (%s)", kept.name)
            return previous, kept
        log.warning("the model adapted for the previous index is no longer in %s: adapting again", kept.parent)
    pairs = training_pairs(chunks)
    try:
        folder, record = adapted_model(pairs, settings.models_dir, progress=progress)
    except ModelError as exc:
        log.warning("the embedding model is not adapted: %s", exc)
        return {"skipped": str(exc)}, None
    return {"recipe": RECIPE, "base_sha256": base.weights_sha256, "pairs": len(pairs), "folder": folder.name,
            "weights_sha256": record["weights_sha256"], "train_seconds": record["train_seconds"]}, folder


def document_encoder_name(settings: Settings) -> str:
    """How document vectors are computed: it changes the vectors, so it is part of the manifest."""
    if settings.model != DEFAULT_MODEL:
        return "sentence-transformers"
    return "onnxruntime int8" if settings.embed_int8 else "onnxruntime float32"


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
    """Write the index as a new generation beside `folder`, then switch `folder` to it atomically.

    `folder` becomes a symbolic link to `.<name>.generations/gen-<time>`; replacing a link is one
    atomic rename, so a reader sees the old index or the new one, never neither or a mix. The
    previous generation is kept for readers that resolved the link just before the switch.
    """
    folder = Path(folder)
    with build_lock(folder):
        _save_generation(index, folder)


def _save_generation(index: SearchIndex, folder: Path) -> None:
    import faiss

    tmp = folder.parent / f".{folder.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        with open(tmp / CHUNKS, "w", encoding="utf-8") as fh:
            for chunk in index.chunks:
                fh.write(json.dumps(chunk.to_json(), ensure_ascii=False) + "\n")
        (tmp / DENSE).write_bytes(faiss.serialize_index(index.dense).tobytes())
        index.lexical.save(tmp / LEXICAL)
        for name, source in index.extra_files.items():
            shutil.copyfile(source, tmp / name)
        st = index.sentences
        with open(tmp / SENTENCES, "wb") as fh:
            np.savez(fh, chunk=st.chunk, start=st.start, end=st.end, vectors=st.vectors)
        if index.tokens is not None:
            index.tokens.save(tmp)
        files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = index.manifest | {"files": files}
        _write_synced(tmp / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _switch_generation(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    index.manifest = manifest
    log.info("saved index of %d chunks to %s", len(index.chunks), folder)


def generations_dir(folder: Path) -> Path:
    """Where the generations of the index at `folder` live (a sibling folder)."""
    return Path(folder).parent / f".{Path(folder).name}.generations"


def _switch_generation(built: Path, folder: Path) -> None:
    gens = generations_dir(folder)
    gens.mkdir(exist_ok=True)
    gen = gens / f"gen-{time.time_ns():020d}-{os.getpid()}"
    built.rename(gen)
    link = folder.parent / f".{folder.name}.link-{os.getpid()}"
    try:
        link.unlink(missing_ok=True)
        os.symlink(os.path.relpath(gen, folder.parent), link, target_is_directory=True)
        if folder.is_symlink() or not folder.exists():
            os.replace(link, folder)  # the atomic switch
        else:  # a plain folder written by an older version: moved aside once
            old = folder.parent / f".{folder.name}.old-{os.getpid()}"
            folder.rename(old)
            os.replace(link, folder)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        link.unlink(missing_ok=True)
        if not (folder.is_symlink() and folder.resolve() == gen.resolve()):
            shutil.rmtree(gen, ignore_errors=True)
        raise
    # keep the new generation and the one before it; older ones go once no reader holds the lock
    stale = sorted(p for p in gens.iterdir() if p.name.startswith("gen-"))[:-2]
    if stale:
        with file_lock(_gate_path(folder)), file_lock(_swap_lock_path(folder)):
            for p in stale:
                shutil.rmtree(p, ignore_errors=True)


def index_stamp(folder: Path) -> tuple | None:
    """Identifies the index generation at `folder` (None if there is none); changes when a new one is saved."""
    folder = Path(folder)
    try:
        st = (folder / MANIFEST).stat()
    except OSError:
        return None
    return (os.path.realpath(folder), st.st_ino, st.st_mtime_ns, st.st_size)


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

    folder = Path(folder)
    if folder.is_symlink():  # read every file from one generation, even if a new one is switched in meanwhile
        folder = folder.resolve()
    manifest = read_manifest(folder)
    reasons = stale_reasons(manifest, expected)
    if reasons:
        raise IndexStaleError(f"The index in {folder} is out of date: {'; '.join(reasons)}. {REBUILD_HINT}")
    for name in (CHUNKS, DENSE, SENTENCES):
        if name not in manifest["files"]:
            raise IndexCorruptError(f"The manifest of {folder} does not list {name}. {REBUILD_HINT}")
    lazy = {(manifest.get("query_encoder") or {}).get("file")}  # checked on first use (OnnxEncoder)
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise IndexCorruptError(f"{path} is missing. {REBUILD_HINT}")
        if name not in lazy and verified_sha256(path, folder / VERIFIED_FILE) != digest:
            raise IndexCorruptError(f"{path} does not match its checksum in the manifest (damaged or edited). "
                                    f"{REBUILD_HINT}")
    try:
        shared: dict = {}  # one section path and report id object for all their chunks
        chunks = [Chunk.from_json(json.loads(line), shared) for line in
                  (folder / CHUNKS).read_text(encoding="utf-8").splitlines() if line.strip()]
        dense = faiss.deserialize_index(np.frombuffer((folder / DENSE).read_bytes(), dtype=np.uint8))
        lexical = LexicalIndex.load(folder / LEXICAL, len(chunks))
        with np.load(folder / SENTENCES, allow_pickle=False) as arrays:
            sentences = SentenceTable(*(np.asarray(arrays[k]) for k in ("chunk", "start", "end", "vectors")))
        tokens = (TokenTable.load(folder, len(chunks), expected["model"]["dimension"])
                  if TOKENS in manifest["files"] else None)
    except Exception as exc:  # checksums matched, so this is a writer bug or a foreign file
        raise IndexCorruptError(f"Cannot read the index in {folder} ({type(exc).__name__}: {exc}). "
                                f"{REBUILD_HINT}") from exc
    dimension = expected["model"]["dimension"]
    if (dense.d != dimension or dense.ntotal != len(chunks) or manifest.get("chunks") != len(chunks)
            or sentences.vectors.shape != (manifest.get("sentences"), dimension)):
        raise IndexCorruptError(f"The index in {folder} holds {dense.ntotal} vectors of dimension {dense.d} for "
                                f"{len(chunks)} chunks; expected dimension {dimension}. {REBUILD_HINT}")
    return SearchIndex(chunks, dense, lexical, sentences, manifest, tokens)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
