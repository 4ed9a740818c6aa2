"""The exact backend: every chunk is a candidate, or each source's exact top candidates.

With `full_scan=True` (the default for corpora up to `FULL_SCAN_LIMIT` chunks) the retriever
scores every chunk, as it always has. With `full_scan=False` the candidates are the exact top
`candidates` of each source (chunk vectors, chunks of the best sentences, BM25), found by scanning
everything: the reference the approximate backends are measured against.
"""

from __future__ import annotations

import numpy as np

from qa.backends import CANDIDATES, Candidates, VectorStore, top


class ExactBackend:
    name = "exact"

    def __init__(self, store: VectorStore, lexical, *, full_scan: bool = True, candidates: int = CANDIDATES) -> None:
        self.store = store
        self.lexical = lexical
        self.full_scan = full_scan
        self.n_candidates = candidates

    def candidates(self, vectors: np.ndarray | None, queries: list[str], allowed: np.ndarray | None,
                   method: str) -> list[Candidates]:
        if self.full_scan:
            return [Candidates(None) for _ in queries]
        ids = None if allowed is None else np.flatnonzero(allowed)
        return [exact_candidates(self.store, self.lexical, None if vectors is None else vectors[i], q, ids,
                                 method, self.n_candidates) for i, q in enumerate(queries)]


def exact_candidates(store: VectorStore, lexical, vector: np.ndarray | None, query: str, ids: np.ndarray | None,
                     method: str, n: int) -> Candidates:
    """The exact top `n` of each source among chunks `ids` (None: all), by scanning them."""
    found = []
    if method != "bm25":
        found.append(exact_dense(store, vector, ids, n))
        # the fusion rescales each score over every chunk, filtered or not: the chunks with the lowest
        # and highest dense score of all are candidates too, so the union has the same range
        every = store.dense_scores(vector, np.arange(len(store.chunks)))
        found.append(np.array([int(np.argmin(every)), int(np.argmax(every))]))
    scores = None
    if method != "dense":
        scores = lexical.scores(query)
        found.append(lexical_top(scores, n, ids))
        found.append(np.array([int(np.argmin(scores)), int(np.argmax(scores))]))  # BM25's range, as above
    return Candidates(np.unique(np.concatenate(found)).astype(np.int64), scores)


def exact_dense(store: VectorStore, vector: np.ndarray, ids: np.ndarray | None, n: int) -> np.ndarray:
    """The best `n` chunks by their vector and the chunks of the best `n` sentences, among `ids`."""
    if ids is None:
        sims = store.sentences @ vector
        return np.concatenate([top(store.chunks @ vector, n), store.sentence_chunk[top(sims, n)]])
    found = [top(store.chunks[ids] @ vector, n, ids)]
    rows, _ = store.sentence_rows(ids)
    if len(rows):
        found.append(store.sentence_chunk[top(store.sentences[rows] @ vector, n, rows)])
    return np.concatenate(found)


def lexical_top(scores: np.ndarray, n: int, ids: np.ndarray | None) -> np.ndarray:
    """The best `n` chunks by BM25 among `ids` (None: all). Chunks that match no query word are
    taken only to make up `n`, first in index order (as a stable sort of every chunk orders them)."""
    pool = np.flatnonzero(scores > 0) if ids is None else ids[scores[ids] > 0]
    chosen = top(scores[pool], n, pool)
    if len(chosen) < n:
        zero = np.flatnonzero(scores <= 0) if ids is None else ids[scores[ids] <= 0]
        chosen = np.concatenate([chosen, zero[: n - len(chosen)]])
    return chosen
