"""BEIR-format evaluation: the project's three retrievers over another corpus, built in memory.

A BEIR folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`) and
`qrels/<split>.tsv` (header `query-id  corpus-id  score`). Each document is indexed whole (title
and text), with qa's own pieces: `LexicalIndex` for BM25, the project's embedding model into a
FAISS inner-product index, and the retriever's fusion (per query, min-max rescaled dense and BM25
scores mixed by `dense_weight`). Nothing is written to disk.

Metrics follow BEIR (pytrec_eval): nDCG@10 with the qrels score as linear gain, recall@100 over
documents with a positive score; queries without a positive judgement are left out.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.harness import METHODS, EvalError
from qa.retriever import fuse, query_dense_weight, rerank_head, similarities

if TYPE_CHECKING:
    import numpy as np

    from qa.config import Settings
    from qa.embeddings import Encoder
    from qa.lexical import LexicalIndex

log = logging.getLogger(__name__)

NDCG_K = 10
RECALL_K = 100
#: Queries scored per block, so the dense score matrix stays small on large corpora.
_QUERY_BLOCK = 64


@dataclass(frozen=True)
class BeirData:
    """A BEIR corpus, the judged queries and their relevance judgements."""

    doc_ids: list[str]
    texts: list[str]  # what is indexed: title and text
    queries: dict[str, str]  # only queries with a positive judgement, in file order
    qrels: dict[str, dict[str, int]]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise EvalError(f"The BEIR folder lacks {path.name} (looked for {path})")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path.name} line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or "_id" not in row:
            raise EvalError(f"{path.name} line {number}: each line must be an object with an _id")
        rows.append(row)
    return rows


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """`query-id -> corpus-id -> score` from a BEIR qrels TSV (with its header line)."""
    if not path.is_file():
        raise EvalError(f"The BEIR folder lacks qrels/{path.name} (looked for {path})")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise EvalError(f"{path} must start with the header 'query-id<TAB>corpus-id<TAB>score'. "
                            f"Currently, it starts with {header!r}")
        for number, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            try:
                qid, did, score = row[0].strip(), row[1].strip(), int(float(row[2]))
            except (IndexError, ValueError):
                raise EvalError(f"{path.name} line {number}: expected query-id, corpus-id, score; "
                                f"got {row!r}") from None
            qrels.setdefault(qid, {})[did] = score
    return qrels


def load_beir(folder: str | Path, split: str = "test") -> BeirData:
    """Read a BEIR folder. Judgements of unknown documents or queries are dropped with a warning.

    Raises:
        EvalError: a file is missing or malformed, or no query has a positive judgement.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise EvalError(f"No BEIR folder at {folder}")
    docs = _read_jsonl(folder / "corpus.jsonl")
    doc_ids = [str(d["_id"]) for d in docs]
    if len(set(doc_ids)) != len(doc_ids):
        raise EvalError(f"{folder / 'corpus.jsonl'} repeats an _id")
    texts = [" ".join(p for p in (str(d.get("title") or "").strip(), str(d.get("text") or "").strip()) if p)
             for d in docs]
    all_queries = {str(q["_id"]): str(q.get("text") or "") for q in _read_jsonl(folder / "queries.jsonl")}
    raw_qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    known = set(doc_ids)
    qrels: dict[str, dict[str, int]] = {}
    dropped_docs = 0
    for qid, judged in raw_qrels.items():
        kept = {d: s for d, s in judged.items() if d in known}
        dropped_docs += len(judged) - len(kept)
        if qid in all_queries and all_queries[qid].strip() and any(s > 0 for s in kept.values()):
            qrels[qid] = kept
    if dropped_docs:
        log.warning("%d judgements name documents missing from the corpus; ignored", dropped_docs)
    if len(qrels) < len(raw_qrels):
        log.warning("%d judged queries have no text or no relevant document in the corpus; ignored",
                    len(raw_qrels) - len(qrels))
    if not qrels:
        raise EvalError(f"No query in {folder} has a positive judgement in qrels/{split}.tsv")
    queries = {qid: text for qid, text in all_queries.items() if qid in qrels}
    return BeirData(doc_ids, texts, queries, qrels)


# -- metrics -----------------------------------------------------------------------------------
def ndcg_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = NDCG_K) -> float:
    """nDCG@k with linear gain (the qrels score), as pytrec_eval computes it for BEIR."""
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if judged.get(d, 0) > 0)
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = RECALL_K) -> float:
    """Share of the relevant documents (score > 0) ranked in the top k."""
    relevant = {d for d, g in judged.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


# -- the in-memory index -------------------------------------------------------------------------
class BeirIndex:
    """Dense, BM25 and hybrid search over a BEIR corpus, held in memory."""

    def __init__(self, doc_ids: list[str], lexical: LexicalIndex, dense: Any, encoder: Encoder,
                 settings: Settings, tokens: Any = None) -> None:
        self.doc_ids = doc_ids
        self.lexical = lexical
        self.dense = dense  # faiss.IndexFlatIP of normalised document embeddings
        self.encoder = encoder
        self.settings = settings
        self.tokens = tokens  # the documents' word pieces (qa.late_interaction.TokenTable), for the hybrid's reranking

    @classmethod
    def build(cls, data: BeirData, encoder: Encoder, settings: Settings, progress: bool = False) -> BeirIndex:
        import faiss

        from qa.lexical import LexicalIndex

        lexical = LexicalIndex.build(data.texts)
        tokens = None
        if settings.rerank_weight > 0 and hasattr(encoder, "encode_documents_with_tokens"):
            from qa.late_interaction import TokenTable

            vectors, pieces = encoder.encode_documents_with_tokens(data.texts, progress=progress)
            tokens = TokenTable.build(pieces, encoder.vocabulary(), vectors.shape[1])
        else:
            vectors = encoder.encode_documents(data.texts, progress=progress)
        dense = faiss.IndexFlatIP(vectors.shape[1])
        dense.add(vectors)
        return cls(data.doc_ids, lexical, dense, encoder, settings, tokens)

    def rank(self, queries: list[str], method: str, depth: int = RECALL_K) -> list[list[str]]:
        """The `depth` best document ids for each query, best first (ties keep corpus order)."""
        import numpy as np

        from qa.retriever import clean_query

        if method not in METHODS:
            raise EvalError(f"method must be one of {', '.join(METHODS)}. Currently, it is {method!r}")
        cleaned = [clean_query(q, self.settings.max_query_chars) for q in queries]
        out: list[list[str]] = []
        for start in range(0, len(cleaned), _QUERY_BLOCK):
            block = cleaned[start : start + _QUERY_BLOCK]
            pieces = None
            if method == "hybrid" and self.tokens is not None:  # reranked by word pieces, as qa's retriever does
                vectors, pieces = self.encoder.encode_queries_with_tokens(block)
                dense = similarities(self.dense, vectors)
            else:
                dense = similarities(self.dense, self.encoder.encode_queries(block)) if method != "bm25" else None
            for i, query in enumerate(block):
                if method == "dense":
                    scores = dense[i]
                else:
                    lexical = self.lexical.scores(query)
                    weight = query_dense_weight(self.lexical, query, float(lexical.max()), self.settings)
                    scores = lexical if method == "bm25" else fuse(dense[i], lexical, weight)
                order = np.argsort(-scores, kind="stable")
                if pieces is not None:
                    head = order[: self.settings.rerank_depth]
                    reranked = rerank_head(head, dense[i][head], lexical[head], self.settings.dense_weight,
                                           self.tokens, pieces[i], self.settings.rerank_weight)
                    if reranked is not None:
                        order = np.concatenate([reranked[0], order[len(head):]])
                out.append([self.doc_ids[j] for j in order[:depth]])
        return out


# -- running -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BeirMetrics:
    ndcg_at_10: float
    recall_at_100: float


@dataclass(frozen=True)
class BeirRun:
    """BEIR metrics per retriever, and per query for inspection."""

    folder: str
    split: str
    n_docs: int
    n_queries: int
    methods: list[str]
    metrics: dict[str, BeirMetrics]
    per_query: dict[str, dict[str, BeirMetrics]] = field(default_factory=dict)  # method -> query id -> metrics
    settings: dict[str, Any] = field(default_factory=dict)
    build_s: float = 0.0
    duration_s: float = 0.0

    def to_json(self) -> dict:
        return {"beir": asdict(self)}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        return path


def run_beir(folder: str | Path, *, methods: Sequence[str] = METHODS, encoder: Encoder | None = None,
             settings: Settings | None = None, split: str = "test", progress: bool = False) -> BeirRun:
    """Build the three retrievers over a BEIR corpus in memory and score its judged queries.

    Args:
        folder: the BEIR folder.
        methods: retrievers to evaluate.
        encoder: a loaded embedding model (loaded from `settings.model` if None).
        settings: qa settings for the model name, `dense_weight` and query limit (environment if None).
        split: which qrels file to read.
        progress: show a progress bar while embedding the corpus.
    """
    from qa.config import Settings
    from qa.embeddings import Encoder

    t0 = time.perf_counter()
    settings = settings or Settings.from_env()
    data = load_beir(folder, split)
    encoder = encoder or Encoder.load(settings.model)
    index = BeirIndex.build(data, encoder, settings, progress=progress)
    build_s = time.perf_counter() - t0
    qids = list(data.queries)
    texts = [data.queries[q] for q in qids]
    metrics: dict[str, BeirMetrics] = {}
    per_query: dict[str, dict[str, BeirMetrics]] = {}
    for method in methods:
        ranked = index.rank(texts, method, RECALL_K)
        per_query[method] = {q: BeirMetrics(ndcg_at_k(r, data.qrels[q]), recall_at_k(r, data.qrels[q]))
                             for q, r in zip(qids, ranked)}
        scores = list(per_query[method].values())
        metrics[method] = BeirMetrics(sum(s.ndcg_at_10 for s in scores) / len(scores),
                                      sum(s.recall_at_100 for s in scores) / len(scores))
    import torch

    info = {"model": settings.model, "dense_weight": settings.dense_weight, "torch_threads": torch.get_num_threads()}
    return BeirRun(str(folder), split, len(data.doc_ids), len(qids), list(methods), metrics, per_query, info,
                   round(build_s, 2), round(time.perf_counter() - t0, 2))
