"""Retriever: hybrid dense + BM25 search over the saved index, returning cited passages.

Scores from the two indexes live on different scales (cosine similarity vs. BM25), so each is
rescaled per query to [0, 1] over the candidates and the two are mixed by `dense_weight`
(a convex combination). On the project's question set this beat either index alone and
reciprocal rank fusion; `python -m eval` prints the comparison.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from qa.catalogue import Catalogue
from qa.chunks import Chunk
from qa.config import DEFAULT_MODEL, Settings
from qa.corpus import DocumentInfo, corpus_hashes, read_catalogue
from qa.embeddings import Encoder
from qa.errors import IndexError_, IndexMissingError, IndexStaleError, QueryError
from qa.index import (SearchIndex, adapted_weights, build_index, build_lock, expected_settings, load_index,
                      save_index)
from qa.sides import comparison_sides

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

METHODS = ("hybrid", "dense", "bm25")
#: How many filters' chunk masks a retriever keeps (`Retriever._mask`): 1M chunks take 1 MB each.
_MASKS_KEPT = 16
MAX_K = 100
#: Lone UTF-16 surrogates (e.g. "\ud800" from JSON): not text, and the tokenizer cannot encode them.
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
# English contractions typed without their apostrophe ("whats", "dont", "theyre"), a closed class:
# without it "whats" is read as a word the reports never use, the rarest kind of key word there is.
# Words that are also words of their own ("its", "lets", "were", "well", "hell") are not in it.
_CONTRACTIONS = re.compile(r"\b(?:(what|who|where|when|how|that|there|here|she)(s)|"
                           r"(do|does|did|is|was|are|were|ca|wo|could|should|would|has|have|had|ai|need)(nt)|"
                           r"(they|you)(re|ve|ll)|(i)(m|ve))\b", re.IGNORECASE)


# a financial year typed short ("21/22", "22-23"): two consecutive years' last two digits
_SHORT_FINANCIAL_YEAR = re.compile(r"(?<![\w/£$.,\-–])(\d\d)([/\-–])(\d\d)(?![\w/%]|[.,]\d)")


def _financial_year(m: re.Match) -> str:
    """ "21/22" -> "2021/22" (the reports write financial years in full); other pairs as they are."""
    first, sep, second = m.groups()
    return f"20{first}{sep}{second}" if (int(first) + 1) % 100 == int(second) else m.group(0)


def _with_apostrophe(m: re.Match) -> str:
    head, tail = m.group(m.lastindex - 1), m.group(m.lastindex)  # each alternative's two groups
    if tail.lower() == "nt":  # "dont" -> "don't", "cant" -> "can't"
        return f"{head}n'{tail[-1]}"
    return f"{head}'{tail}"


@dataclass(frozen=True)
class Passage:
    """One search result: a chunk's text, its score, and everything needed to cite it.

    Example:
        >>> hit = Retriever.load().search("How many complaints?", k=1)[0]
        >>> hit.citation
        'CQC assessment of Birmingham City Council (Birmingham City Council, published 17 November 2023), ...'
    """

    text: str
    score: float
    doc_id: str
    title: str
    council: str
    date: str
    date_text: str
    doc_type: str
    section: str
    section_path: tuple[str, ...]
    chunk_id: str
    file: str
    line_start: int
    line_end: int
    indicative_score: str = ""
    also_in: tuple[str, ...] = field(default=())  # citations of the same text in other reports
    page_start: str = ""  # page labels, for a report added from a PDF
    page_end: str = ""

    @property
    def year(self) -> int:
        return int(self.date[:4])

    @property
    def citation(self) -> str:
        """Report title, council, date and section path, e.g. for a footnote."""
        where = f", {self.section}" if self.section else ""
        return f"{self.title} ({self.council}, {self.date_text}){where}, {self.location}"

    @property
    def location(self) -> str:
        """Where in the report: "pages 12-13" (or "page 12") in a PDF, else "lines 3-9" of the text file."""
        if self.page_start:
            same = self.page_start == self.page_end
            return f"page {self.page_start}" if same else f"pages {self.page_start}-{self.page_end}"
        return f"lines {self.line_start}-{self.line_end}"

    def to_json(self) -> dict:
        return {"text": self.text, "score": round(self.score, 6), "doc_id": self.doc_id, "title": self.title,
                "council": self.council, "date": self.date, "date_text": self.date_text,
                "doc_type": self.doc_type, "section": self.section, "section_path": list(self.section_path),
                "chunk_id": self.chunk_id, "file": self.file, "line_start": self.line_start,
                "line_end": self.line_end, "indicative_score": self.indicative_score,
                "also_in": list(self.also_in), "citation": self.citation,
                **({"page_start": self.page_start, "page_end": self.page_end} if self.page_start else {})}


@dataclass(frozen=True)
class Retrieval:
    """What one query found: the cleaned query, its vector, the passages and their chunk numbers."""

    query: str
    vector: np.ndarray | None
    passages: list[Passage]
    chunk_ids: list[int]
    dense_scores: np.ndarray | None = None  # dense score of every chunk (chunk and best-sentence cosine),
    # when the backend scored every chunk (None when it chose candidates)
    pieces: object | None = None  # the query's word pieces and their vectors (TokenVectors), when encoded
    #: The best dense score of a chunk the filters allow: over every chunk, or over the backend's
    #: candidates, which hold the dense side's best (None for BM25 alone). How near the reports come.
    top_dense: float | None = None


@dataclass(frozen=True)
class Filters:
    """Restrict a search to some reports. Every given field must match."""

    council: str | None = None
    doc_id: str | None = None
    year: int | None = None


def clean_query(query: object, max_chars: int) -> str:
    """The query with control and invisible characters removed, the apostrophe put back in a
    contraction typed without it ("whats" -> "what's") and a financial year typed short written in
    full ("21/22" -> "2021/22"); raises QueryError if unusable."""
    if not isinstance(query, str):
        raise QueryError(f"The question must be text. Currently, it is {type(query).__name__}")
    if len(query) > max_chars:
        raise QueryError(f"The question is {len(query):,} characters long; the limit is {max_chars:,}. "
                         "Ask a shorter question.")
    text = unicodedata.normalize("NFKC", _SURROGATES.sub("", query))
    text = _CONTROL.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise QueryError("The question is empty. Type a question about the reports.")
    return _SHORT_FINANCIAL_YEAR.sub(_financial_year, _CONTRACTIONS.sub(_with_apostrophe, text))


class Retriever:
    """Hybrid search over the adult social care reports.

    Example:
        >>> from qa import Retriever
        >>> r = Retriever.load()                      # builds index/ from corpus/ if missing
        >>> hits = r.search("How many young people were waiting for a transition assessment?", k=3)
        >>> hits[0].text, hits[0].score, hits[0].citation
    """

    def __init__(self, index: SearchIndex, encoder: Encoder, documents: list[DocumentInfo],
                 settings: Settings) -> None:
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self.documents = {d.doc_id: d for d in documents}
        self.catalogue = Catalogue(self.documents.values())
        self._chunks = index.chunks
        self._position = {c.chunk_id: i for i, c in enumerate(self._chunks)}
        self._members: dict[str, list[int]] = {}
        for i, c in enumerate(self._chunks):
            self._members.setdefault(c.duplicate_of or c.chunk_id, []).append(i)
        number = {d.doc_id: i for i, d in enumerate(self.catalogue)}  # each chunk's report, as its catalogue position
        self._report_of = np.array([number.get(c.doc_id, -1) for c in self._chunks], dtype=np.int64)
        self._masks: dict[tuple, np.ndarray] = {}  # the chunks each filter keeps, for the filters used last
        # sentences are stored chunk by chunk: where each chunk's run of sentences starts
        chunk_of = index.sentences.chunk
        self._starts = np.r_[0, np.flatnonzero(np.diff(chunk_of)) + 1] if len(chunk_of) else np.zeros(0, int)
        self._first_chunk = chunk_of[self._starts] if len(chunk_of) else np.zeros(0, int)
        self._backend = None

    @property
    def backend(self):
        """Where candidates come from (`qa.backends`); chosen by `settings.backend`, made on first use."""
        if self._backend is None:
            from qa.backends import make_backend

            self._backend = make_backend(self.settings.backend, self.index, self.settings)
        return self._backend

    @backend.setter
    def backend(self, backend) -> None:
        self._backend = backend

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, index_dir: str | Path | None = None, *, settings: Settings | None = None,
             build_if_missing: bool = True, progress: bool = False, encoder: Encoder | None = None) -> Retriever:
        """Load the index (building it first if it is missing, or stale and `auto_rebuild` is on).

        Raises IndexMissingError / IndexStaleError / IndexCorruptError with the command to fix it.
        """
        settings = settings or Settings.from_env()
        if index_dir is not None:
            settings = settings.with_(index_dir=Path(index_dir))
        encoder = encoder or default_encoder(settings)
        expected = expected_settings(settings, encoder, corpus_hashes(settings.corpus_dir))
        try:
            index = load_index(settings.index_dir, expected)
        except IndexMissingError:
            if not build_if_missing:
                raise
            log.warning("no index in %s; building it from %s", settings.index_dir, settings.corpus_dir)
            index = cls._build(settings, encoder, progress, reuse=expected)
        except IndexStaleError as exc:
            if not (build_if_missing and settings.auto_rebuild):
                raise
            log.warning("%s Rebuilding it now.", exc)
            index = cls._build(settings, encoder, progress, reuse=expected)
        encoder = _attach(encoder, settings, index)
        return cls(index, encoder, read_catalogue(settings.corpus_dir), settings)

    @classmethod
    def build(cls, settings: Settings | None = None, *, progress: bool = False,
              encoder: Encoder | None = None, readapt: bool = False) -> Retriever:
        """Build the index from the corpus, save it, and return a retriever over it. The model adapted
        for the previous index is kept unless `readapt` (see `qa.index.build_index`)."""
        settings = settings or Settings.from_env()
        encoder = encoder or default_encoder(settings)
        index = cls._build(settings, encoder, progress, readapt=readapt)
        encoder = _attach(encoder, settings, index)
        return cls(index, encoder, read_catalogue(settings.corpus_dir), settings)

    @staticmethod
    def _build(settings: Settings, encoder: Encoder, progress: bool, reuse: dict | None = None,
               readapt: bool = False) -> SearchIndex:
        """Build and save under the build lock; with `reuse` (the expected manifest), first take an
        index that another process finished while this one waited for the lock."""
        def waiting() -> None:
            log.warning("Another build of %s is running; waiting for it to finish.", settings.index_dir)

        with build_lock(settings.index_dir, on_wait=waiting):
            if reuse is not None:
                try:
                    return load_index(settings.index_dir, reuse)
                except IndexError_:
                    pass
            index = build_index(settings, encoder, progress=progress, readapt=readapt)
            save_index(index, settings.index_dir)
        return index

    # -- searching -------------------------------------------------------------------------
    @property
    def councils(self) -> list[str]:
        return self.catalogue.councils

    def search(self, query: str, k: int = 5, *, method: str = "hybrid", council: str | None = None,
               doc_id: str | None = None, year: int | None = None) -> list[Passage]:
        """The `k` best passages for `query`, best first. Filters narrow the reports searched.

        A query comparing reports gets the best passages of each side in turn (`retrieve_batch`)."""
        return self.search_batch([query], k, method=method, council=council, doc_id=doc_id, year=year)[0]

    def search_batch(self, queries: list[str], k: int = 5, *, method: str = "hybrid",
                     council: str | None = None, doc_id: str | None = None,
                     year: int | None = None) -> list[list[Passage]]:
        """`search` for many queries at once (one call to the embedding model)."""
        found = self.retrieve_batch(queries, k, method=method, filters=Filters(council, doc_id, year))
        return [r.passages for r in found]

    def retrieve_batch(self, queries: list[str], k: int = 5, *, method: str = "hybrid",
                       filters: Filters | None = None, each_side: bool = True) -> list[Retrieval]:
        """Like `search_batch`, also returning each query's vector and the chunks behind the passages.

        A query that compares reports ("... between the 2016 peer challenge and the 2023 assessment",
        "Compare Birmingham and Westminster on ...") gets passages from each side in turn, when no
        filter narrows the search and `each_side` is set (`_from_each_side`)."""
        if method not in METHODS:
            raise QueryError(f"method must be one of {', '.join(METHODS)}. Currently, it is {method!r}")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise QueryError(f"k must be a whole number from 1 to {MAX_K}. Currently, k is {k!r}")
        cleaned = [clean_query(q, self.settings.max_query_chars) for q in queries]
        vectors, pieces = self._encode_for(cleaned, method)
        found = self._retrieve(cleaned, vectors, pieces, k, method, filters)
        if not each_side or filters is not None and (filters.council or filters.doc_id or filters.year is not None):
            return found
        return [self._from_each_side(r, None if vectors is None else vectors[i:i + 1],
                                     None if pieces is None else pieces[i:i + 1], k, method)
                for i, r in enumerate(found)]

    def _from_each_side(self, found: Retrieval, vectors: np.ndarray | None, pieces: list | None, k: int,
                        method: str) -> Retrieval:
        """For a query comparing reports (`qa.sides.comparison_sides`), each side searched on its own
        (filtered to its council and year) and their passages taken in turn, first from the side whose
        passages the plain search ranked higher; any other query's `found` as it is. Each passage keeps
        its side's score, so scores need not fall in order. The sides reuse the query's encoding
        (`vectors`, `pieces`: its rows of `_encode_for`).

        On the question set, hybrid hit@5 went from 0.861 to 0.873 (cross-report questions 0.533 ->
        0.667), MRR@10 from 0.743 to 0.749; one comparison fell from 5th to 6th place."""
        sides = comparison_sides(found.query, self.catalogue)
        if len(sides) < 2:
            return found
        per_side = [self._retrieve([found.query], vectors, pieces, k, method, Filters(council, None, year))[0]
                    for council, year in sides]
        plain = {chunk: rank for rank, chunk in enumerate(found.chunk_ids)}
        per_side.sort(key=lambda side: min((plain.get(chunk, k) for chunk in side.chunk_ids), default=k))
        passages, chunk_ids = [], []
        for rank in range(k):
            for side in per_side:
                if rank < len(side.chunk_ids) and side.chunk_ids[rank] not in chunk_ids:
                    passages.append(side.passages[rank])
                    chunk_ids.append(side.chunk_ids[rank])
        return replace(found, passages=passages[:k], chunk_ids=chunk_ids[:k])

    def _encode_for(self, cleaned: list[str], method: str) -> tuple[np.ndarray | None, list | None]:
        """The queries' vectors (None for BM25) and, when the hybrid reranks, their word pieces (else None)."""
        if method == "bm25":
            return None, None
        if method == "hybrid" and self._reranks:
            vectors, pieces = self.encoder.encode_queries_with_tokens(cleaned)
            self._check_dimension(vectors)
            return vectors, pieces
        return self._encode(cleaned), None

    def _retrieve(self, cleaned: list[str], vectors: np.ndarray | None, pieces: list | None, k: int, method: str,
                  filters: Filters | None) -> list[Retrieval]:
        """The search itself, for cleaned queries already encoded (`_encode_for`)."""
        allowed = self._mask(filters or Filters())
        candidates = self.backend.candidates(vectors, cleaned, allowed, method)
        full = vectors is not None and any(c.chunks is None for c in candidates)
        dense = self._dense_scores(vectors) if full else None
        results = []
        for i, query in enumerate(cleaned):
            ids = candidates[i].chunks  # None: every chunk is a candidate
            lexical = candidates[i].lexical
            if lexical is None and method != "dense" and (ids is None or candidates[i].chunk_lexical is None):
                lexical = self.index.lexical.scores(query)
            if ids is None:
                scores = self._fuse(None if dense is None else dense[i], lexical, query)
                order = at = np.argsort(-scores, kind="stable")
                dense_i = None if dense is None else dense[i]
                parts = (dense_i, lexical)
            else:  # the backend's candidates, scored exactly and fused among themselves
                dense_i = None if vectors is None else self.backend.store.dense_scores(vectors[i], ids)
                lexical_i = candidates[i].chunk_lexical if lexical is None else lexical[ids]
                fused = self._fuse(dense_i, lexical_i if method != "dense" else None, query)
                at = np.argsort(-fused, kind="stable")
                order = ids[at]
                scores = dict(zip(ids.tolist(), fused.tolist()))
                parts = (dense_i, lexical_i)
            if pieces is not None:
                order, scores = self._rerank(order, scores, allowed, pieces[i], parts, at)
            chunk_ids = self._top(order, allowed, k)
            passages = [self._passage(self._chunks[j], float(scores[best]), self._also_in(j))
                        for j, best in chunk_ids]
            top_dense = None
            if dense_i is not None and len(dense_i):
                near = dense_i if ids is not None or allowed is None else dense_i[allowed]
                top_dense = float(near.max()) if len(near) else None
            results.append(Retrieval(query, None if vectors is None else vectors[i], passages,
                                     [shown for shown, _ in chunk_ids], dense_i if ids is None else None,
                                     None if pieces is None else pieces[i], top_dense))
        return results

    def _encode(self, queries: list[str]) -> np.ndarray:
        vectors = self.encoder.encode_queries(queries)
        self._check_dimension(vectors)
        return vectors

    def _check_dimension(self, vectors: np.ndarray) -> None:
        if vectors.shape[1] != self.index.dimension:  # FAISS only asserts this, and not under -O
            raise QueryError(f"The query vectors have dimension {vectors.shape[1]}, the index "
                             f"{self.index.dimension}; the index was built with another model.")

    @property
    def _reranks(self) -> bool:
        """Hybrid search reranks: it is on, the index holds the chunks' word pieces and the encoder
        gives the question's."""
        return (self.settings.rerank_weight > 0 and self.index.tokens is not None
                and hasattr(self.encoder, "encode_queries_with_tokens"))

    def _rerank(self, order: np.ndarray, scores, allowed: np.ndarray | None, question,
                parts: tuple[np.ndarray, np.ndarray], at: np.ndarray) -> tuple[np.ndarray, object]:
        """Reorder the best `rerank_depth` chunks of `order` (those the filters allow) by word pieces
        (`rerank_head`); the rest follow, as they were.

        `parts` are the dense and BM25 scores, where the chunks of `order` are at `at`.
        `scores` (every chunk's array, or a dict of the candidates') become the blended scores, which
        keep the order: the others get their rescaled hybrid score at the same weight (below 0).
        """
        depth = self.settings.rerank_depth
        positions = np.arange(min(depth, len(order))) if allowed is None else np.flatnonzero(allowed[order])[:depth]
        head, where = order[positions], at[positions]
        if len(head) < 2:  # nothing to reorder (the filters may leave no chunk at all)
            return order, scores
        a = self.settings.rerank_weight
        reranked = rerank_head(head, parts[0][where], parts[1][where], self.settings.dense_weight,
                               self.index.tokens, question, a)
        if reranked is None:
            return order, scores
        ranked, blended = reranked
        order = np.concatenate([ranked, np.delete(order, positions)])
        hybrid = scores[head] if isinstance(scores, np.ndarray) else np.array([scores[j] for j in head.tolist()])
        lo, hi = float(hybrid.min()), float(hybrid.max())
        span = hi - lo if hi - lo >= 1e-9 else 1.0
        if isinstance(scores, np.ndarray):
            new = (1 - a) * (scores - lo) / span
            new[ranked] = blended
        else:
            new = ({j: (1 - a) * (s - lo) / span for j, s in scores.items()}
                   | dict(zip(ranked.tolist(), blended.tolist())))
        return order, new

    def _dense_scores(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine similarity of each chunk: the mean of the whole chunk's and its best sentence's.

        A chunk's single vector blurs the several facts it holds; its best sentence catches a fact
        asked about directly. Together they ranked better than either on the question set.
        """
        chunk_sims = similarities(self.index.dense, vectors)
        sentences = self.index.sentences
        best = np.full_like(chunk_sims, -1.0)
        best[:, self._first_chunk] = np.maximum.reduceat(vectors @ sentences.vectors.T, self._starts, axis=1)
        has_sentences = best > -1.0
        return np.where(has_sentences, 0.5 * chunk_sims + 0.5 * best, chunk_sims)

    def _fuse(self, dense: np.ndarray | None, lexical: np.ndarray | None, query: str) -> np.ndarray:
        if lexical is None:
            return dense
        if dense is None:
            return lexical
        return fuse(dense, lexical, self._dense_weight(query, float(lexical.max()) if len(lexical) else 0.0))

    def _dense_weight(self, query: str, best_lexical: float) -> float:
        """How much the fusion trusts the dense side for this query: `dense_weight` when BM25's best
        chunk holds every query word at that word's highest score in any chunk (its ceiling), rising by
        `dense_weight_gain` times the share of the ceiling it falls short of, up to 1.

        A question in the reports' words has a chunk that BM25 scores near its ceiling; a question in
        lay words scatters its words over chunks that each match one or two of them, where BM25's
        ranking says little and the dense one more (median share of the ceiling on the question set:
        0.70 for facts in the reports' words, 0.40 for lay questions). `best_lexical` is the highest BM25
        score of all chunks: the candidates of every backend include BM25's best chunk.

        On the 402-question set (`python -m eval`), gain 0.8 against a fixed 0.4: dev hybrid hit@5
        0.868 -> 0.880, MRR@10 0.747 -> 0.754, answers 0.796 -> 0.812; held-out hit@5 0.700 -> 0.733,
        answers 0.500 -> 0.533; lay hit@5 0.600 -> 0.637. The gain is the best on the dev questions
        of 0.2, 0.3, 0.45, 0.6, 0.8 and 1.0 (hit@5 0.872-0.880). On 60 new questions written after
        it was chosen, it changed one question's rank.
        """
        return query_dense_weight(self.index.lexical, query, best_lexical, self.settings)

    def _mask(self, f: Filters) -> np.ndarray | None:
        """The chunks the filters keep (read-only), None when there is no filter; QueryError naming
        what is known when a filter matches no report. The masks of the last `_MASKS_KEPT` filters
        are kept: staff set a filter and ask several questions under it."""
        if f.council is None and f.doc_id is None and f.year is None:
            return None
        year = f.year
        if year is not None:
            try:
                year = int(year)
            except (TypeError, ValueError):
                raise QueryError(f"year must be a whole number. Currently, it is {f.year!r}") from None
        key = tuple(None if x is None else str(x) for x in (f.council, f.doc_id)) + (year,)
        if key in self._masks:
            return self._masks[key]
        catalogue = self.catalogue
        if f.council is not None and not catalogue.select(council=f.council):
            raise QueryError(f"No report is about council {f.council!r}. Known councils: "
                             f"{_listed(catalogue.councils)}")
        if f.doc_id is not None and not catalogue.select(doc_id=f.doc_id):
            raise QueryError(f"No report has id {f.doc_id!r}. Known ids: {_listed(list(self.documents))}")
        if year is not None and year not in catalogue.years:
            raise QueryError(f"No report is from {year}. Years covered: {_listed(catalogue.years)}")
        kept = np.zeros(len(catalogue) + 1, dtype=bool)  # the last place: chunks of no catalogued report
        kept[catalogue.select(f.council, f.doc_id, year)] = True
        mask = kept[self._report_of]
        mask.flags.writeable = False
        if len(self._masks) >= _MASKS_KEPT:  # the oldest goes (pop: another thread may have taken it)
            self._masks.pop(next(iter(self._masks), None), None)
        self._masks[key] = mask
        return mask

    def _top(self, order: np.ndarray, allowed: np.ndarray | None, k: int) -> list[tuple[int, int]]:
        """(chunk shown, chunk that scored) for the k best groups of duplicates, best first (`order`)."""
        picked: list[tuple[int, int]] = []
        seen: set[str] = set()
        for i in order:
            if allowed is not None and not allowed[i]:
                continue
            chunk = self._chunks[i]
            group = chunk.duplicate_of or chunk.chunk_id
            if group in seen:
                continue
            seen.add(group)
            # the fuller report's copy stands for the group, unless the filters exclude it
            canonical = self._position[group]
            shown = canonical if allowed is None or allowed[canonical] else int(i)
            picked.append((shown, int(i)))
            if len(picked) == k:
                break
        return picked

    def _also_in(self, i: int) -> tuple[str, ...]:
        chunk = self._chunks[i]
        return tuple(self._cite(self._chunks[j]) for j in self._members[chunk.duplicate_of or chunk.chunk_id] if j != i)

    def _passage(self, chunk: Chunk, score: float, also_in: tuple[str, ...]) -> Passage:
        info = self.documents[chunk.doc_id]
        return Passage(text=chunk.text, score=score, doc_id=chunk.doc_id, title=info.title, council=info.council,
                       date=info.date, date_text=info.date_text, doc_type=info.doc_type, section=chunk.section,
                       section_path=chunk.section_path, chunk_id=chunk.chunk_id, file=info.file,
                       line_start=chunk.line_start, line_end=chunk.line_end, indicative_score=chunk.score,
                       also_in=also_in, page_start=chunk.page_start, page_end=chunk.page_end)

    def _cite(self, chunk: Chunk) -> str:
        return self._passage(chunk, 0.0, ()).citation


def default_encoder(settings: Settings):
    """The bundled model runs under ONNX Runtime from the index's export (no torch); others load
    through sentence-transformers."""
    if settings.model == DEFAULT_MODEL:
        from qa.onnx_encoder import OnnxEncoder

        return OnnxEncoder.for_index(settings.index_dir, threads=settings.torch_threads)
    return Encoder.load(settings.model, threads=settings.torch_threads)


def _attach(encoder, settings: Settings, index: SearchIndex):
    """The encoder that questions go through: the index's own ONNX export when it has one. A model
    adapted to the corpus exists only there, so a torch encoder of the stock model gives way to it."""
    if "query_encoder" not in index.manifest:
        return encoder
    if not hasattr(encoder, "attach"):
        adapted = adapted_weights(index.manifest)
        if adapted is None or getattr(encoder, "weights_sha256", None) == adapted:
            return encoder
        from qa.onnx_encoder import OnnxEncoder

        encoder = OnnxEncoder.for_index(settings.index_dir, threads=settings.torch_threads)
    encoder.attach(settings.index_dir, index.manifest)
    return encoder


def _listed(items: list, limit: int = 20) -> str:
    """`items` for an error message: all of a few, the first `limit` of many."""
    shown = ", ".join(str(x) for x in items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit:,} more"


def similarities(dense_index, vectors: np.ndarray) -> np.ndarray:
    """Inner product of each query vector with every vector of a FAISS index, in index order.

    For a flat inner-product index (what `python -m qa build` writes), one matrix product with the
    index's own vectors: a FAISS search for all of them sorts them as well (273 chunks: 0.11 ms
    against 0.03 ms a question, medians of 300)."""
    import faiss

    n = dense_index.ntotal
    if not n:
        return np.zeros((len(vectors), 0), dtype=np.float32)
    if isinstance(dense_index, faiss.IndexFlat) and dense_index.metric_type == faiss.METRIC_INNER_PRODUCT:
        stored = faiss.rev_swig_ptr(dense_index.get_xb(), n * dense_index.d).reshape(n, dense_index.d)
        return np.asarray(vectors, dtype=np.float32) @ stored.T
    sims, ids = dense_index.search(vectors, n)
    out = np.zeros((len(vectors), n), dtype=np.float32)
    for row, (s, i) in enumerate(zip(sims, ids)):
        out[row, i[i >= 0]] = s[i >= 0]
    return out


def query_dense_weight(lexical_index, query: str, best_lexical: float, settings: Settings) -> float:
    """The fusion's dense weight for `query` (`Retriever._dense_weight`), over any BM25 index."""
    if not settings.dense_weight_gain:
        return settings.dense_weight
    words = lexical_index.word_ids(query)
    ceiling = float(lexical_index.best_scores()[words].sum()) if len(words) else 0.0
    share = min(1.0, best_lexical / ceiling) if ceiling > 0 else 0.0
    return min(1.0, settings.dense_weight + settings.dense_weight_gain * (1.0 - share))


def fuse(dense: np.ndarray, lexical: np.ndarray, dense_weight: float) -> np.ndarray:
    """The hybrid score: dense and BM25 scores each min-max rescaled over the candidates, then mixed."""
    return dense_weight * _rescale(dense) + (1.0 - dense_weight) * _rescale(lexical)


def rerank_head(head: np.ndarray, dense: np.ndarray, lexical: np.ndarray, dense_weight: float, tokens, question,
                weight: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The chunks `head` (best first, with their dense and BM25 scores) reordered by the blend of
    hybrid score and word-piece match (`tokens.scores`, qa/late_interaction.py), each min-max
    rescaled over the head, the token score weighted `weight`; with the blended scores, best first.
    None when there is nothing to rerank on (a question of punctuation only).

    The hybrid score is fused anew from the head's own dense and BM25 scores, each rescaled over the
    head alone: a fast path whose candidates give the scores' overall ranges only approximately
    blends exactly as a full scan."""
    token_scores = tokens.scores(question, head)
    if token_scores is None:
        return None
    blended = (1 - weight) * _rescale(fuse(dense, lexical, dense_weight)) + weight * _rescale(token_scores)
    order = np.argsort(-blended, kind="stable")
    return head[order], blended[order]


def _rescale(scores: np.ndarray) -> np.ndarray:
    lo, hi = float(scores.min()), float(scores.max())
    if hi - lo < 1e-9:
        return np.zeros_like(scores)
    return (scores - lo) / (hi - lo)
