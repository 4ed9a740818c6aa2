"""Approximate candidates with FAISS: sublinear in the number of chunks and sentences.

Each query's candidates are the union of
  - the best `candidates` chunks by an HNSW graph over the chunk vectors (exact inner products),
  - the chunks of the best `candidates` sentences from an IVF index over the sentence vectors,
    compressed to 8 bits a dimension (SQ8): twice as many are fetched and rescored exactly from the
    float vectors (which may be a memory map), so compression only decides which ones are fetched,
  - the best `candidates` chunks by BM25 (bm25s scores only the chunks holding a query word).
The retriever then scores the union exactly and fuses it as for every backend.

Filters: a selection of at most `exact_below` chunks (e.g. one council in a national corpus) is
scanned exactly, because graph and inverted-list search with a selector loses recall when the
selection is a small part of the whole; larger selections search the ANN indexes with a bitmap
selector.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from qa.backends import CANDIDATES, FULL_SCAN_LIMIT, Candidates, VectorStore, top
from qa.backends.exact import exact_dense, lexical_top

log = logging.getLogger(__name__)

HNSW_FILE = "chunks.hnsw.faiss"
IVF_FILE = "sentences.ivf.faiss"
FLOOR_CANDIDATES = 32


class FaissAnnBackend:
    name = "faiss"

    def __init__(self, store: VectorStore, lexical, hnsw, ivf, *, candidates: int = CANDIDATES,
                 ef_search: int = 128, nprobe: int = 32, oversample: int = 2,
                 exact_below: int = FULL_SCAN_LIMIT) -> None:
        self.store = store
        self.lexical = lexical
        self.hnsw = hnsw
        self.ivf = ivf
        self.n_candidates = candidates
        self.ef_search = ef_search
        self.nprobe = nprobe
        self.oversample = oversample
        self.exact_below = exact_below
        self._selectors: dict[bytes, tuple] = {}

    @classmethod
    def build(cls, store: VectorStore, lexical, *, m: int = 32, ef_construction: int = 80,
              nlist: int | None = None, **options) -> FaissAnnBackend:
        """Build both ANN indexes from the vectors (seconds for the five reports, minutes at 1M chunks)."""
        import faiss

        d = store.chunks.shape[1]
        hnsw = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = ef_construction
        for start in range(0, len(store.chunks), 100_000):
            hnsw.add(np.ascontiguousarray(store.chunks[start:start + 100_000], dtype=np.float32))
        s = len(store.sentences)
        nlist = nlist or max(1, min(int(2 * math.sqrt(s)), s // 39))
        ivf = faiss.index_factory(d, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(s, size=min(s, max(nlist * 40, 20_000)), replace=False))
        ivf.train(np.ascontiguousarray(store.sentences[sample], dtype=np.float32))
        for start in range(0, s, 200_000):
            ivf.add(np.ascontiguousarray(store.sentences[start:start + 200_000], dtype=np.float32))
        log.info("built HNSW over %d chunks and IVF%d,SQ8 over %d sentences", len(store.chunks), nlist, s)
        return cls(store, lexical, hnsw, ivf, **options)

    def save(self, folder: Path) -> None:
        import faiss

        Path(folder).mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.hnsw, str(Path(folder) / HNSW_FILE))
        faiss.write_index(self.ivf, str(Path(folder) / IVF_FILE))

    @classmethod
    def load(cls, folder: Path, store: VectorStore, lexical, **options) -> FaissAnnBackend:
        import faiss

        hnsw = faiss.read_index(str(Path(folder) / HNSW_FILE))
        ivf = faiss.read_index(str(Path(folder) / IVF_FILE))
        return cls(store, lexical, hnsw, ivf, **options)

    def candidates(self, vectors: np.ndarray | None, queries: list[str], allowed: np.ndarray | None,
                   method: str) -> list[Candidates]:
        n = self.n_candidates
        ids = None if allowed is None else np.flatnonzero(allowed)
        small = ids is not None and len(ids) <= self.exact_below  # a small selection: scan it exactly
        found: list[list[np.ndarray]] = [[] for _ in queries]
        if method != "bm25":
            if small:
                for i, v in enumerate(vectors):
                    found[i].append(exact_dense(self.store, v, ids, n))
            else:
                self._dense_candidates(vectors, n, allowed, found)
            # The fusion rescales each score over every chunk, filtered or not: the chunks nearest
            # to and farthest from the query, searched without the filters, stand for the highest
            # and lowest dense score of all.
            if allowed is not None:
                self._dense_candidates(vectors, FLOOR_CANDIDATES, None, found)
            _, far_ids = self.hnsw.search(-vectors, FLOOR_CANDIDATES, params=self._params(None)[0])
            for i in range(len(vectors)):
                found[i].append(far_ids[i][far_ids[i] >= 0])
        out = []
        for i, q in enumerate(queries):
            scores = None
            if method != "dense":
                scores = self.lexical.scores(q)
                found[i].append(lexical_top(scores, n, ids))
                found[i].append(np.array([int(np.argmin(scores)), int(np.argmax(scores))]))  # BM25's range
            out.append(Candidates(np.unique(np.concatenate(found[i])).astype(np.int64), scores))
        return out

    def _dense_candidates(self, vectors: np.ndarray, n: int, allowed: np.ndarray | None,
                          found: list[list[np.ndarray]]) -> None:
        chunk_params, sentence_params = self._params(allowed)
        _, chunk_ids = self.hnsw.search(vectors, n, params=chunk_params)
        _, sentence_ids = self.ivf.search(vectors, n * self.oversample, params=sentence_params)
        for i, v in enumerate(vectors):
            found[i].append(chunk_ids[i][chunk_ids[i] >= 0])
            rows = sentence_ids[i][sentence_ids[i] >= 0]
            if len(rows):
                exact = self.store.sentences[rows] @ v  # rescored from the float vectors
                found[i].append(self.store.sentence_chunk[top(exact, n, rows)])

    def _params(self, allowed: np.ndarray | None):
        import faiss

        if allowed is None:
            return (faiss.SearchParametersHNSW(efSearch=self.ef_search),
                    faiss.SearchParametersIVF(nprobe=self.nprobe))
        key = np.packbits(allowed, bitorder="little").tobytes()
        if key not in self._selectors:
            if len(self._selectors) > 32:
                self._selectors.clear()
            chunk_bits = np.frombuffer(key, dtype=np.uint8).copy()
            sentence_bits = np.packbits(allowed[self.store.sentence_chunk], bitorder="little")
            chunk_sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(chunk_bits))
            sentence_sel = faiss.IDSelectorBitmap(len(self.store.sentence_chunk), faiss.swig_ptr(sentence_bits))
            self._selectors[key] = (chunk_bits, sentence_bits, chunk_sel, sentence_sel)  # bitmaps kept alive
        _, _, chunk_sel, sentence_sel = self._selectors[key]
        # a graph walk meets allowed chunks at the rate the filter keeps them: widen it to match
        share = max(float(allowed.mean()), 1e-6)
        ef = int(min(len(allowed), max(self.ef_search, 2 * self.n_candidates / share)))
        nprobe = int(min(self.ivf.nlist, max(self.nprobe, self.nprobe / share)))
        return (faiss.SearchParametersHNSW(sel=chunk_sel, efSearch=ef),
                faiss.SearchParametersIVF(sel=sentence_sel, nprobe=nprobe))
