"""Index backends: where a query's candidate chunks come from.

The retriever asks a backend for each query's candidates, then scores those candidates exactly
(dense: the mean of the chunk's and its best sentence's cosine; BM25) and fuses, groups duplicates
and cites them itself, so every backend is ranked the same way. One module per backend:

    exact.py      every chunk (the reference; the default below `FULL_SCAN_LIMIT` chunks), or the
                  exact top candidates of each source when `full_scan=False`
    faiss_ann.py  HNSW over chunk vectors, IVF-SQ8 over sentence vectors rescored exactly, BM25 top-k;
                  filters that keep few chunks are scanned exactly instead
    qdrant.py     the same candidates from a Qdrant collection (local mode or a server)

Chosen by `Settings.backend` (`QA_BACKEND`): auto (exact up to `FULL_SCAN_LIMIT` chunks, faiss above),
exact, faiss or qdrant.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qa.errors import QAError

BACKENDS = ("auto", "exact", "faiss", "qdrant")
#: Up to this many chunks an exact scan of everything costs about what encoding the question costs.
FULL_SCAN_LIMIT = 20_000
#: Candidates taken from each source (chunk vectors, sentence vectors, BM25) before exact rescoring.
CANDIDATES = 100
#: Threads reading a memory-mapped store's sentence vectors at once (see `VectorStore.sentence_vectors`).
READERS = 8
#: Above this many runs of rows, read through the map: a 1% filter's exact scan at 100k chunks
#: (~1,000 runs) took 20.8 ms median with positional reads, 14.5 ms through the map.
MAPPED_RUNS = 512


@dataclass(frozen=True)
class Candidates:
    """The chunks one query is scored on: sorted chunk numbers, or None for every chunk."""

    chunks: np.ndarray | None
    lexical: np.ndarray | None = None  # the query's BM25 score of every chunk, if the backend computed it
    chunk_lexical: np.ndarray | None = None  # or the BM25 score of each candidate only (aligned with `chunks`)


class Backend(Protocol):
    name: str

    def candidates(self, vectors: np.ndarray | None, queries: list[str], allowed: np.ndarray | None,
                   method: str) -> list[Candidates]:
        """Candidates of each query; `allowed` masks the chunks the filters keep (None: all)."""
        ...


class VectorStore:
    """Chunk and sentence vectors in index order, and exact dense scores of any chunks.

    `sentences` are stored chunk by chunk (`sentence_chunk` is sorted), as the index writes them.
    """

    def __init__(self, chunks: np.ndarray, sentences: np.ndarray, sentence_chunk: np.ndarray) -> None:
        self.chunks = chunks
        self.sentences = sentences
        self.sentence_chunk = np.asarray(sentence_chunk)
        n = len(chunks)
        self.count = np.bincount(self.sentence_chunk, minlength=n).astype(np.int64)
        self.first = np.zeros(n, dtype=np.int64)
        np.cumsum(self.count[:-1], out=self.first[1:])
        self._fd = None  # for positional reads of a memory-mapped `sentences`
        self._pool = None

    @classmethod
    def of_index(cls, index) -> VectorStore:
        import faiss

        dense = index.dense
        chunks = faiss.rev_swig_ptr(dense.get_xb(), dense.ntotal * dense.d).reshape(dense.ntotal, dense.d)
        return cls(np.array(chunks, dtype=np.float32), index.sentences.vectors, index.sentences.chunk)

    def sentence_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The sentence vectors of `rows` (sorted), in order.

        From a memory map, each run of consecutive rows (a chunk's sentences are consecutive) is
        read with one positional read instead of through the map: on this machine the page faults
        of touching rows through a fresh map cost 3-4 times the reads (1,400 rows: 9-28 ms against
        2.5-6.7 ms), and at 1M chunks nearly every query touches pages it has not touched before.
        """
        rows = np.asarray(rows, dtype=np.int64)
        filename = getattr(self.sentences, "filename", None)
        if not isinstance(self.sentences, np.memmap) or filename is None or not len(rows):
            return self.sentences[rows]
        runs = 1 + int(np.count_nonzero(np.diff(rows) != 1))
        if runs > MAPPED_RUNS:  # many runs (a filter's exact scan): neighbouring pages faulted in together cost less
            return np.asarray(self.sentences[rows])
        if self._fd is None:
            import weakref

            self._fd = os.open(filename, os.O_RDONLY)
            weakref.finalize(self, os.close, self._fd)
        width = self.sentences.shape[1] * self.sentences.itemsize
        out = np.empty((len(rows), self.sentences.shape[1]), dtype=self.sentences.dtype)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = np.r_[0, breaks]
        ends = np.r_[breaks, len(rows)]
        view = memoryview(out).cast("B")
        base = self.sentences.offset
        runs = list(zip(starts.tolist(), ends.tolist(), rows[starts].tolist()))

        def read(part) -> None:
            for a, b, row in part:
                os.preadv(self._fd, [view[a * width:b * width]], base + row * width)

        if len(runs) < 2 * READERS:
            read(runs)
        else:  # reads that miss the page cache wait on the disk: several in flight (the GIL is released)
            list(self._readers().map(read, [runs[k::READERS] for k in range(READERS)]))
        return out

    def _readers(self):
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(READERS, thread_name_prefix="qa-vectors")
        return self._pool

    def sentence_rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sentence rows of chunks `ids`, and where each chunk's run starts in them."""
        counts = self.count[ids]
        offsets = np.zeros(len(ids), dtype=np.int64)
        np.cumsum(counts[:-1], out=offsets[1:])
        rows = np.repeat(self.first[ids] - offsets, counts) + np.arange(int(counts.sum()))
        return rows, offsets

    def dense_scores(self, vector: np.ndarray, ids: np.ndarray, sentence_scores=None) -> np.ndarray:
        """Dense score of chunks `ids`: the mean of the chunk's and its best sentence's cosine.

        `sentence_scores(rows)`, if given, scores the sentences instead of their float vectors."""
        every = len(ids) == len(self.chunks)  # ids are every chunk in order: no copies
        chunk_sims = (self.chunks if every else self.chunks[ids]) @ vector
        rows, offsets = self.sentence_rows(ids)
        has = self.count[ids] > 0
        if not len(rows):
            return chunk_sims
        if sentence_scores is not None:
            sims = sentence_scores(rows)
        else:
            sims = (self.sentences if every else self.sentence_vectors(rows)) @ vector
        best = np.full(len(ids), -1.0, dtype=np.float32)
        best[has] = np.maximum.reduceat(sims, offsets[has])
        return np.where(has, 0.5 * chunk_sims + 0.5 * best, chunk_sims).astype(np.float32)


def top(scores: np.ndarray, n: int, ids: np.ndarray | None = None) -> np.ndarray:
    """The positions (or `ids`) of the `n` highest `scores`, unordered."""
    if len(scores) <= n:
        chosen = np.arange(len(scores))
    else:
        chosen = np.argpartition(-scores, n - 1, kind="introselect")[:n]
    return chosen if ids is None else ids[chosen]


def make_backend(name: str, index, settings, store: VectorStore | None = None) -> Backend:
    """The backend `name` over a loaded index."""
    if name not in BACKENDS:
        raise QAError(f"QA_BACKEND must be one of {', '.join(BACKENDS)}. Currently, it is {name!r}")
    n = len(index.chunks)
    if name == "auto":
        name = "exact" if n <= FULL_SCAN_LIMIT else "faiss"
    if name == "exact":
        from qa.backends.exact import ExactBackend

        return ExactBackend(store or VectorStore.of_index(index), index.lexical, full_scan=True)
    if name == "faiss":
        from qa.backends.faiss_ann import FaissAnnBackend

        threads = getattr(settings, "search_threads", None)
        options = {} if threads is None else {"threads": threads}
        return FaissAnnBackend.build(store or VectorStore.of_index(index), index.lexical, **options)
    from qa.backends.qdrant import QdrantBackend

    return QdrantBackend.open(index, settings, store or VectorStore.of_index(index))
