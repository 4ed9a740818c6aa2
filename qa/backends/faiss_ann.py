"""Approximate candidates with FAISS: sublinear in the number of chunks and sentences.

Each query's candidates are the union of
  - the best `candidates` chunks by an HNSW graph over the chunk vectors (exact inner products),
  - the chunks of the best `candidates` sentences from an IVF index over the sentence vectors,
    compressed to 8 bits a dimension (SQ8): twice as many are fetched and rescored exactly from the
    float vectors (which may be a memory map), so compression only decides which ones are fetched,
  - the best `candidates` chunks by BM25, exact, without scoring every chunk (`LexicalIndex.top`).
The retriever then scores the union exactly and fuses it as for every backend.

Chunk vectors for exact rescoring are the HNSW graph's own float copy (in memory); sentence
vectors are read from the store, which may be a memory map (`np.load(..., mmap_mode="r")`): at 1M
chunks the 4.7M float sentence vectors (7 GB) stay on disk, and only 8-bit codes are held in memory
(the IVF index's, 1.8 GB, and a copy in sentence order, 1.8 GB). With the float vectors on disk, a
candidate's best sentence is first scored from the 8-bit codes (cosine within ~0.004 of the
float one), and only the `EXACT_CHUNKS` best chunks by that score read their float rows for the
exact score: ~150 rows a query instead of ~1,600, most of which were disk reads when the page
cache did not hold the file.

Filters, by the size of the selection:
  - at most `exact_below` chunks (e.g. one council in a national corpus): the selection's chunk
    vectors are scored exactly (a graph walk with a selector must pass about 1/share chunks to meet
    enough allowed ones, and loses recall doing so), and so are its sentences if there are at most
    `sentence_scan_below`; more sentences are searched in the IVF index with the filter's bitmap
    and nprobe widened by 1/share, at most `WIDEN` times;
  - larger selections: both ANN indexes with the bitmap, efSearch widened by 1/share and nprobe as
    above;
  - BM25: a small selection's chunks are looked up one by one, a larger one goes through the
    same top-k as without a filter, keeping allowed chunks.

Above `PARALLEL_ABOVE` chunks a hybrid query's BM25 candidates are found in a helper thread while
the caller's thread searches the vector indexes (`SEARCH_THREADS`, `Settings.search_threads`): the
two take about as long at 1M chunks, and both release the GIL for most of it. The helper serves
one query at a time: a query that finds it busy does its BM25 itself, as with one thread, so
concurrent queries on a busy server do not queue behind it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path

import numpy as np

from qa.backends import CANDIDATES, FULL_SCAN_LIMIT, Candidates, VectorStore, top

log = logging.getLogger(__name__)

HNSW_FILE = "chunks.hnsw.faiss"
IVF_FILE = "sentences.ivf.faiss"
FLOOR_CANDIDATES = 32
#: The walk to the far end of the chunk graph (the lowest dense scores, which the fusion rescales
#: against) explores this many nodes: the graph is built for near neighbours and finds far ones less
#: surely. At the nearest walk's 128, one eval question of 312 ranked its top 10 differently from the
#: exact path with the model adapted to the corpus (the lowest dense score was missed); at 256, none.
FAR_EF_SEARCH = 256
#: A small selection's sentences are scored exactly up to this many (~15 MB of float32 rows), else
#: searched in the IVF index with the filter's bitmap and widened nprobe.
SENTENCE_SCAN_LIMIT = 10_000
#: A filtered IVF search probes nprobe x min(1/share, WIDEN) lists. Widening by the whole 1/share
#: (every list at a 1% filter) found the same top 10 as widening at most 4 times (recall@10 0.988 at
#: 100k chunks, 1% filter, sentences all from the IVF index; 10% filter 0.989 both), at up to twice the cost.
WIDEN = 8
#: Chunks looked up for the lowest BM25 score, first few then more (see `FaissAnnBackend._lowest`).
PROBES = (64, 4096)
#: With the float sentence vectors on disk, the chunks (by dense score from the 8-bit codes) whose
#: float rows are read for their exact dense score; the others keep the 8-bit score.
EXACT_CHUNKS = 32
#: Threads one query's search may use (`Settings.search_threads`): with 2, BM25 (numpy, which
#: releases the GIL on its large arrays) runs in a helper thread while the HNSW and IVF searches
#: (FAISS, which releases it too) run in the caller's. Search p50/p95, eval questions, alternating
#: 1 and 2 threads query by query on an idle 2-core machine: 1M chunks 14.4/23.3 -> 9.5/18.9 ms
#: (1% filter 24.2/32.9 -> 17.3/21.4 ms), 100k chunks 4.8/6.6 -> 4.1/5.4 ms; same candidates.
SEARCH_THREADS = 2
#: Below this many chunks a query searches in one thread: a search takes a few ms and handing BM25
#: over costs about what it saves (20k chunks: 2.81 -> 2.61 ms unfiltered, 4.15 -> 4.41 ms with a
#: 1% filter).
PARALLEL_ABOVE = 50_000
CODES_FILE = "sentences.sq8.npy"
CODEC_FILE = "sentences.sq8.trained.npy"


class FaissAnnBackend:
    name = "faiss"

    def __init__(self, store: VectorStore, lexical, hnsw, ivf, *, candidates: int = CANDIDATES,
                 ef_search: int = 128, nprobe: int = 32, oversample: int = 2,
                 exact_below: int = FULL_SCAN_LIMIT, sentence_scan_below: int = SENTENCE_SCAN_LIMIT,
                 widen: float = WIDEN, threads: int = SEARCH_THREADS,
                 parallel_above: int = PARALLEL_ABOVE) -> None:
        self.store = store
        self.lexical = lexical
        self.hnsw = hnsw
        self.ivf = ivf
        self.n_candidates = candidates
        self.ef_search = ef_search
        self.nprobe = nprobe
        self.oversample = oversample
        self.exact_below = exact_below
        self.sentence_scan_below = sentence_scan_below
        self.widen = widen
        self._selectors: dict[bytes, tuple] = {}
        self.threads = max(1, min(threads, _cores()))  # a helper without a core of its own only waits
        self.parallel_above = parallel_above
        self._idle = threading.BoundedSemaphore(max(1, self.threads - 1))  # helpers free for a query
        self._helpers = None  # the helper threads, started on the first query that uses them
        self._starting = threading.Lock()

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
        lexical.best_scores()
        view = in_graph(store, hnsw)
        if isinstance(store.sentences, np.memmap):
            view = QuantisedStore.encode(view, store.sentences[sample])
        return cls(view, lexical, hnsw, ivf, **options)

    def save(self, folder: Path) -> None:
        import faiss

        Path(folder).mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.hnsw, str(Path(folder) / HNSW_FILE))
        faiss.write_index(self.ivf, str(Path(folder) / IVF_FILE))
        if isinstance(self.store, QuantisedStore):
            np.save(Path(folder) / CODES_FILE, self.store.codes)
            np.save(Path(folder) / CODEC_FILE, self.store.trained)

    @classmethod
    def load(cls, folder: Path, store: VectorStore, lexical, **options) -> FaissAnnBackend:
        import faiss

        hnsw = faiss.read_index(str(Path(folder) / HNSW_FILE))
        ivf = faiss.read_index(str(Path(folder) / IVF_FILE))
        view = in_graph(store, hnsw)
        if isinstance(store.sentences, np.memmap) and (Path(folder) / CODES_FILE).is_file():
            view = QuantisedStore(view, np.load(Path(folder) / CODES_FILE), np.load(Path(folder) / CODEC_FILE))
        return cls(view, lexical, hnsw, ivf, **options)

    def candidates(self, vectors: np.ndarray | None, queries: list[str], allowed: np.ndarray | None,
                   method: str) -> list[Candidates]:
        import faiss

        n = self.n_candidates
        ids = None if allowed is None else np.flatnonzero(allowed)
        small = ids is not None and len(ids) <= self.exact_below  # a small selection: scan it exactly
        found: list[list[np.ndarray]] = [[] for _ in queries]
        lexical = None
        if method == "hybrid":  # BM25 (numpy) in a helper thread while FAISS searches in this one
            lexical = self._in_helper(self._lexical_candidates, queries, n, allowed, ids if small else None)
        if method != "bm25":
            self._dense_candidates(vectors, n, allowed, found, ids if small else None)
            # The fusion rescales each score over every chunk, filtered or not: the chunks nearest
            # to and farthest from the query, searched without the filters, stand for the highest
            # and lowest dense score of all.
            if allowed is not None:
                self._dense_candidates(vectors, FLOOR_CANDIDATES, None, found)
            far = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, FAR_EF_SEARCH))
            _, far_ids = self.hnsw.search(-vectors, FLOOR_CANDIDATES, params=far)
            for i in range(len(vectors)):
                found[i].append(far_ids[i][far_ids[i] >= 0])
        if method != "dense":
            lexical = (lexical.result() if lexical is not None
                       else self._lexical_candidates(queries, n, allowed, ids if small else None))
        out = []
        for i in range(len(queries)):
            if lexical is not None:
                found[i].extend(lexical[i][1])
            chunks = np.unique(np.concatenate(found[i])).astype(np.int64)
            scores = None if lexical is None else self.lexical.scores_of(lexical[i][0], chunks)
            out.append(Candidates(chunks, chunk_lexical=scores))
        return out

    def _lexical_candidates(self, queries: list[str], n: int, allowed: np.ndarray | None,
                            scan: np.ndarray | None) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """Each query's word ids and its BM25 candidates: the best `n` chunks among `allowed` (looked
        up one by one among `scan`, a small selection's chunks, if given), and BM25's range over
        every chunk, as for the dense score: its best chunk, and the lowest-scoring of a spread of chunks."""
        out = []
        for q in queries:
            words = self.lexical.word_ids(q)
            if scan is not None:
                found = [self.lexical.top_among(words, n, scan)[0]]
            else:
                found = [self.lexical.top(words, n, allowed)[0]]
            if allowed is not None:
                found.append(self.lexical.top(words, 1)[0])
            found.append(self._lowest(words))
            out.append((words, found))
        return out

    def _in_helper(self, work, *args):
        """`work(*args)` started in the helper thread, as a future; None (run it in the caller) when
        this backend searches with one thread, the corpus is below `parallel_above` chunks, or the
        helper is busy with another query's work (concurrent queries then each use their own thread,
        as without a helper, instead of queueing behind one)."""
        if self.threads < 2 or len(self.store.chunks) < self.parallel_above:
            return None
        if not self._idle.acquire(blocking=False):
            return None
        try:
            with self._starting:
                if self._helpers is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._helpers = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="qa-search")
                    log.debug("search helper threads: %d", self.threads - 1)

            def run():
                try:
                    return work(*args)
                finally:
                    self._idle.release()
            return self._helpers.submit(run)
        except BaseException:
            self._idle.release()
            raise

    def _lowest(self, words: np.ndarray) -> np.ndarray:
        """A chunk with the lowest BM25 score of all, or nearly: the lowest of `PROBES[0]` chunks spread
        over the index, or if none of them lacks every query word (scores 0, the lowest possible),
        of `PROBES[1]`. Exact up to that many chunks; beyond, exact whenever one in a few thousand
        chunks lacks every query word, else the lowest seen stands in for it."""
        size = len(self.store.chunks)
        for count in PROBES:
            probe = np.unique(np.linspace(0, size - 1, min(size, count)).astype(np.int64))
            scores = self.lexical.scores_of(words, probe)
            lowest = int(np.argmin(scores))
            if scores[lowest] <= 0 or len(probe) == size:
                break
        return probe[[lowest]]

    def _dense_candidates(self, vectors: np.ndarray, n: int, allowed: np.ndarray | None,
                          found: list[list[np.ndarray]], scan: np.ndarray | None = None) -> None:
        """The best `n` chunks by chunk vector and the chunks of the best `n` sentences, among `allowed`.

        `scan`: the allowed chunks, when few enough to score their chunk vectors exactly (from
        memory: cheaper than a graph walk that must pass ~1/share chunks to meet n allowed ones);
        their sentences are scored exactly too if they are at most `sentence_scan_below` (rows read
        from the store, a memory map at scale), else found by the IVF index with the filter's bitmap.
        """
        chunk_params, sentence_params = self._params(allowed)
        scan_sentences = None
        if scan is None:
            _, chunk_ids = self.hnsw.search(vectors, n, params=chunk_params)
        else:
            chunk_ids = [top(self.store.chunks[scan] @ v, n, scan) for v in vectors]
            rows, _ = self.store.sentence_rows(scan)
            if len(rows) <= self.sentence_scan_below:
                scan_sentences = rows
        # From a memory map each rescored row is a read (from the disk when the page cache does not
        # hold the 7 GB of vectors at 1M chunks): there the IVF's 8-bit scores choose the sentences,
        # and only the union's chunks are read for their exact scores.
        on_disk = isinstance(self.store.sentences, np.memmap)
        if scan_sentences is None:
            fetch = n if on_disk else n * self.oversample
            _, sentence_ids = self.ivf.search(vectors, fetch, params=sentence_params)
        for i, v in enumerate(vectors):
            found[i].append(chunk_ids[i][chunk_ids[i] >= 0])
            if scan_sentences is None and on_disk:
                found[i].append(self.store.sentence_chunk[sentence_ids[i][sentence_ids[i] >= 0]])
                continue
            rows = scan_sentences if scan_sentences is not None else np.sort(sentence_ids[i][sentence_ids[i] >= 0])
            if len(rows):
                exact = self.store.sentence_vectors(rows) @ v  # rescored from the float vectors
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
        nprobe = int(min(self.ivf.nlist, max(self.nprobe, self.nprobe * min(1 / share, self.widen))))
        return (faiss.SearchParametersHNSW(sel=chunk_sel, efSearch=ef),
                faiss.SearchParametersIVF(sel=sentence_sel, nprobe=nprobe))


def _cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def in_graph(store: VectorStore, hnsw) -> VectorStore:
    """The store with its chunk vectors read from the HNSW graph's own float copy, so that they are
    held once (1.5 GB at 1M chunks) and rescoring does not fault them in from a memory map."""
    import faiss

    flat = faiss.downcast_index(hnsw.storage)
    chunks = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)
    view = VectorStore(chunks, store.sentences, store.sentence_chunk)
    view.owner = hnsw  # the array is a view into the index's memory: keep the index alive with it
    return view


class QuantisedStore(VectorStore):
    """A store whose float sentence vectors are on disk, with an 8-bit copy in memory (FAISS's
    scalar quantiser, one byte a dimension: x = lo + (code + 0.5) / 255 * width per dimension).

    `dense_scores` scores every chunk's best sentence from the codes, then reads the float rows of
    the `exact_chunks` best chunks by that score and gives them their exact score.
    """

    def __init__(self, store: VectorStore, codes: np.ndarray, trained: np.ndarray,
                 exact_chunks: int = EXACT_CHUNKS) -> None:
        super().__init__(store.chunks, store.sentences, store.sentence_chunk)
        self.owner = getattr(store, "owner", None)  # keeps the HNSW graph that holds the chunk vectors alive
        d = store.chunks.shape[1]
        self.codes = codes
        self.trained = np.asarray(trained, dtype=np.float32)
        self._step = self.trained[d:] / 255.0  # width per code step
        self._lo = self.trained[:d] + 0.5 * self._step  # the value of code 0 (the middle of its step)
        self.exact_chunks = exact_chunks

    @classmethod
    def encode(cls, store: VectorStore, sample: np.ndarray, block: int = 200_000) -> QuantisedStore:
        """8-bit codes of every sentence vector (the quantiser trained on `sample`), in blocks."""
        import faiss

        d = store.chunks.shape[1]
        sq = faiss.ScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit)
        sq.train(np.ascontiguousarray(sample, dtype=np.float32))
        codes = np.empty((len(store.sentences), sq.code_size), dtype=np.uint8)
        for start in range(0, len(codes), block):
            codes[start:start + block] = sq.compute_codes(
                np.ascontiguousarray(store.sentences[start:start + block], dtype=np.float32))
        return cls(store, codes, faiss.vector_to_array(sq.trained))

    def approximate_sentence_scores(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Cosine of `vector` with the sentences `rows`, from their 8-bit codes."""
        return self.codes[rows].astype(np.float32) @ (vector * self._step) + float(vector @ self._lo)

    def dense_scores(self, vector: np.ndarray, ids: np.ndarray, sentence_scores=None) -> np.ndarray:
        ids = np.asarray(ids)
        if sentence_scores is not None or len(ids) <= self.exact_chunks:
            return super().dense_scores(vector, ids, sentence_scores)
        scores = super().dense_scores(vector, ids, lambda rows: self.approximate_sentence_scores(vector, rows))
        exact = np.sort(top(scores, self.exact_chunks))  # positions in `ids`
        scores[exact] = super().dense_scores(vector, ids[exact])
        return scores
