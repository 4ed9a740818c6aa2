"""Candidates from Qdrant: for a corpus that one machine cannot hold, or a shared search service.

One point per chunk, with
  - "chunk": the chunk's vector (dot product of normalised vectors = cosine),
  - "sentences": its sentences' vectors as a multivector compared by MaxSim, so a point's score is
    its best sentence's cosine, the second half of the project's dense score,
  - "bm25": sparse BM25 weights computed here from the bm25s index, one per (word, chunk), so the
    dot product with the query's word counts is exactly bm25s's score,
  - payload doc_id, council and year, with payload indexes, for the filters.
Each query takes the best `candidates` points of each of the three and, as the FAISS backend does,
the nearest points without filters and the farthest (the negated query) so that the retriever's
min-max fusion sees each score's range; the retriever then rescores the union exactly and fuses it.

`Settings.qdrant_url` (QA_QDRANT_URL) names a server; empty runs the official client's local mode
in memory (tests, small corpora). The collection is named after the index's creation time and
chunk count, so a rebuilt index uploads a new one; see docs/qdrant.md for a cluster.
"""

from __future__ import annotations

import logging

import numpy as np

from qa.backends import CANDIDATES, Candidates, VectorStore
from qa.errors import QAError

log = logging.getLogger(__name__)

FLOOR_CANDIDATES = 8


def sparse_bm25(lexical) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each chunk's BM25 weights as (word ids, weights): bm25s's per-word score matrix, by chunk."""
    import scipy.sparse

    bm25 = lexical._bm25
    s = bm25.scores
    by_word = scipy.sparse.csc_matrix((s["data"], s["indices"], s["indptr"]),
                                      shape=(s["num_docs"], len(s["indptr"]) - 1))
    by_chunk = by_word.tocsr()
    by_chunk.sort_indices()
    return [(by_chunk.indices[a:b].astype(np.int64), by_chunk.data[a:b].astype(np.float32))
            for a, b in zip(by_chunk.indptr[:-1], by_chunk.indptr[1:])]


class QdrantBackend:
    name = "qdrant"

    def __init__(self, client, collection: str, store: VectorStore, lexical, doc_of: np.ndarray,
                 *, candidates: int = CANDIDATES) -> None:
        self.client = client
        self.collection = collection
        self.store = store
        self.lexical = lexical
        self.doc_of = doc_of
        self.n_candidates = candidates

    @classmethod
    def open(cls, index, settings, store: VectorStore, client=None, **options) -> QdrantBackend:
        """Connect (or start local mode) and upload the index unless the collection already holds it."""
        try:
            from qdrant_client import QdrantClient
        except ImportError:
            raise QAError("QA_BACKEND=qdrant needs the qdrant-client package: pip install -r requirements.txt") from None
        if client is None:
            client = QdrantClient(url=settings.qdrant_url) if settings.qdrant_url else QdrantClient(":memory:")
        created = str(index.manifest.get("created", "")).replace(":", "").replace("-", "")
        collection = f"qa-chunks-{len(index.chunks)}-{created or 'unsaved'}"
        try:
            exists = client.collection_exists(collection)
            if exists and client.count(collection, exact=True).count != len(index.chunks):
                client.delete_collection(collection)
                exists = False
            if not exists:
                from qa.corpus import read_catalogue

                upload(client, collection, index, store, {d.doc_id: d for d in read_catalogue(settings.corpus_dir)},
                       payload_indexes=bool(settings.qdrant_url))
        except Exception as exc:  # the client raises transport and API errors of many kinds
            where = settings.qdrant_url or "local mode"
            raise QAError(f"Cannot use Qdrant at {where} ({type(exc).__name__}: {exc}). "
                          "Check QA_QDRANT_URL, or unset QA_BACKEND to search the embedded index.") from exc
        doc_of = np.array([c.doc_id for c in index.chunks])
        return cls(client, collection, store, index.lexical, doc_of, **options)

    def candidates(self, vectors: np.ndarray | None, queries: list[str], allowed: np.ndarray | None,
                   method: str) -> list[Candidates]:
        from qdrant_client import models

        n = self.n_candidates
        where = None
        if allowed is not None:
            docs = sorted(set(self.doc_of[allowed].tolist()))
            where = models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=docs))])
        out = []
        for i, q in enumerate(queries):
            found: list[np.ndarray] = []
            scores = None
            if method != "bm25":
                v = vectors[i].tolist()
                found.append(self._ids(v, "chunk", n, where))
                found.append(self._ids([v], "sentences", n, where))
                if where is not None:  # the highest dense scores of all, for the fusion's range
                    found.append(self._ids(v, "chunk", FLOOR_CANDIDATES, None))
                    found.append(self._ids([v], "sentences", FLOOR_CANDIDATES, None))
                found.append(self._ids((-vectors[i]).tolist(), "chunk", FLOOR_CANDIDATES, None))  # the lowest
            if method != "dense":
                scores = self.lexical.scores(q)
                words = self._query_words(q)
                matched = np.zeros(0, np.int64)
                if len(words[0]):
                    matched = self._ids(models.SparseVector(indices=words[0].tolist(), values=words[1].tolist()),
                                        "bm25", n, where)
                found.append(matched)
                if len(matched) < n:  # as the exact path, chunks matching no word make up the number
                    zero = np.flatnonzero(scores <= 0) if allowed is None else np.flatnonzero(allowed & (scores <= 0))
                    found.append(zero[: n - len(matched)])
                found.append(np.array([int(np.argmin(scores)), int(np.argmax(scores))]))  # BM25's range
            out.append(Candidates(np.unique(np.concatenate(found)).astype(np.int64) if found else
                                  np.zeros(0, np.int64), scores))
        return out

    def _ids(self, query, using: str, limit: int, where) -> np.ndarray:
        points = self.client.query_points(self.collection, query=query, using=using, limit=limit,
                                          query_filter=where, with_payload=False).points
        return np.array([p.id for p in points], dtype=np.int64)

    def _query_words(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        vocab = self.lexical._bm25.vocab_dict
        ids = [vocab[t] for t in self.lexical.tokens(query, expand_acronyms=True) if t in vocab]
        if not ids:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        words, counts = np.unique(ids, return_counts=True)
        return words, counts.astype(np.float32)


def upload(client, collection: str, index, store: VectorStore, documents: dict, batch: int = 256,
           payload_indexes: bool = True) -> None:
    """Create `collection` and upload every chunk of `index` to it (payload indexes: servers only)."""
    from qdrant_client import models

    d = store.chunks.shape[1]
    client.create_collection(
        collection,
        vectors_config={
            "chunk": models.VectorParams(size=d, distance=models.Distance.DOT),
            "sentences": models.VectorParams(size=d, distance=models.Distance.DOT, multivector_config=models.MultiVectorConfig(
                comparator=models.MultiVectorComparator.MAX_SIM)),
        },
        sparse_vectors_config={"bm25": models.SparseVectorParams()},
    )
    for key, kind in (("doc_id", models.PayloadSchemaType.KEYWORD), ("council", models.PayloadSchemaType.KEYWORD),
                      ("year", models.PayloadSchemaType.INTEGER)):
        if payload_indexes:  # local mode has none (it scans), and warns if asked
            client.create_payload_index(collection, key, field_schema=kind)
    sparse = sparse_bm25(index.lexical)
    points = []
    for i, chunk in enumerate(index.chunks):
        rows = np.arange(store.first[i], store.first[i] + store.count[i])
        sentences = store.sentences[rows] if len(rows) else store.chunks[i:i + 1]
        words, weights = sparse[i]
        points.append(models.PointStruct(
            id=i,
            vector={"chunk": store.chunks[i].tolist(), "sentences": np.asarray(sentences).tolist(),
                    "bm25": models.SparseVector(indices=words.tolist(), values=weights.tolist())},
            payload={"doc_id": chunk.doc_id, "council": documents[chunk.doc_id].council,
                     "year": documents[chunk.doc_id].year}))
        if len(points) == batch:
            client.upsert(collection, points)
            points = []
    if points:
        client.upsert(collection, points)
    log.info("uploaded %d chunks to Qdrant collection %s", len(index.chunks), collection)
