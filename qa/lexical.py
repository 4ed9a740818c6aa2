"""Lexical index: BM25 over stemmed English words (bm25s with the Snowball stemmer).

Question words and other function words are dropped (bm25s's longer English list: "what", "how",
"did" would otherwise match half the corpus), and acronyms learnt from the corpus are expanded in
chunks and queries alike (see `qa.acronyms`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

import numpy as np

from qa.acronyms import expand

log = logging.getLogger(__name__)

STOPWORDS = "en_plus"
#: How `bm25s.tokenize` splits a lower-cased text into words (its default pattern).
_WORD = re.compile(r"(?u)\b\w\w+\b")
ACRONYMS = "acronyms.json"
#: Texts whose tokens `LexicalIndex.tokens` remembers (a corpus's sentences and headings, and recent questions).
MEMO_SIZE = 50_000


def _stemmer():
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer("english")


class LexicalIndex:
    """BM25 scores of every chunk for a query.

    Example:
        >>> lex = LexicalIndex.build(["care homes in Birmingham", "safeguarding enquiries"])
        >>> int(lex.scores("care home").argmax())
        0
    """

    #: `top` scores every chunk when the query's words have fewer postings than this, all told:
    #: below it one pass over them (bm25s) beats MaxScore's bookkeeping. On the synthetic corpora of
    #: bench/scale.py, CPU median per query for the eval questions: 100k chunks (~170k postings a
    #: query) MaxScore 1.64 ms, every chunk 1.35, this rule 1.34; 1M chunks (~1.7M postings)
    #: MaxScore 9.0 ms, every chunk 10.4, this rule 8.5.
    score_all_below = 500_000

    def __init__(self, bm25, size: int, acronyms: dict[str, str]) -> None:
        from bm25s.stopwords import STOPWORDS_EN_PLUS  # the list STOPWORDS names

        self._bm25 = bm25
        self._stem = _stemmer()
        self._stop_words = frozenset(STOPWORDS_EN_PLUS)
        self._lock = threading.Lock()  # PyStemmer's stemmers are not thread-safe
        # tokens of texts seen before: answers re-read the same corpus sentences and headings for
        # question after question (through bm25s's tokenizer a call cost ~0.1 ms, a fifth of an
        # answer's CPU under load; read directly, 0.008 ms for a corpus sentence); bounded, emptied when full
        self._memo: dict[tuple[str, bool], tuple[str, ...]] = {}
        self.size = size
        self.acronyms = acronyms

    @classmethod
    def build(cls, texts: list[str], acronyms: dict[str, str] | None = None) -> LexicalIndex:
        import bm25s

        acronyms = acronyms or {}
        tokens = bm25s.tokenize([expand(t, acronyms) for t in texts], stopwords=STOPWORDS, stemmer=_stemmer(),
                                show_progress=False)
        bm25 = bm25s.BM25(k1=1.2, b=0.75)
        bm25.index(tokens, show_progress=False)
        return cls(bm25, len(texts), acronyms)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)
        (Path(folder) / ACRONYMS).write_text(json.dumps(self.acronyms, indent=1, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        import bm25s

        bm25 = bm25s.BM25.load(str(folder), allow_pickle=False, show_progress=False)
        acronyms = json.loads((Path(folder) / ACRONYMS).read_text(encoding="utf-8"))
        return cls(bm25, size, acronyms)

    def tokens(self, text: str, expand_acronyms: bool = False) -> list[str]:
        """Stemmed content words of `text`, as the index sees them: `bm25s.tokenize`'s words, stop words
        and stems, without its per-call set-up (0.31 ms a question against 0.06, acronyms expanded; the
        tests check both give the same words on the whole corpus)."""
        key = (text, expand_acronyms)
        known = self._memo.get(key)
        if known is not None:
            return list(known)
        if expand_acronyms:
            text = expand(text, self.acronyms)
        words = [w for w in _WORD.findall(text.lower()) if w not in self._stop_words]
        with self._lock:
            found = self._stem.stemWords(words)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = tuple(found)
        return list(found)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk (the reference: costs the total length of the query words' postings)."""
        tokens = [t for t in self.tokens(query, expand_acronyms=True) if t in self._bm25.vocab_dict]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def word_ids(self, query: str) -> np.ndarray:
        """The query's word ids in the index, in order and repeated as the query repeats them."""
        vocab = self._bm25.vocab_dict
        return np.array([vocab[t] for t in self.tokens(query, expand_acronyms=True) if t in vocab], dtype=np.int64)

    def scores_of(self, query: str | np.ndarray, ids: np.ndarray) -> np.ndarray:
        """BM25 score of chunks `ids` only, equal to `scores(query)[ids]` to the bit.

        Each word's postings are ordered by chunk, so a binary search finds a chunk's entry; the
        words are added in the query's order in float32, as bm25s adds them, so that ties and
        rounding match the full scores exactly.
        """
        words = self.word_ids(query) if isinstance(query, str) else query
        s = self._bm25.scores
        indptr, indices, data = s["indptr"], s["indices"], s["data"]
        out = np.zeros(len(ids), dtype=np.float32)
        if not len(ids):
            return out
        ids = np.asarray(ids, dtype=indices.dtype)
        for t in words:
            start, end = int(indptr[t]), int(indptr[t + 1])
            if start == end:
                continue
            postings = indices[start:end]
            at = np.minimum(np.searchsorted(postings, ids), end - start - 1)
            hit = postings[at] == ids
            out[hit] += data[start:end][at[hit]]
        return out

    def best_scores(self) -> np.ndarray:
        """Each word's highest score in any chunk (computed on first use: one pass over the postings)."""
        if getattr(self, "_best", None) is None:
            s = self._bm25.scores
            indptr, data = s["indptr"], s["data"]
            best = np.zeros(len(indptr) - 1, dtype=np.float32)
            present = np.flatnonzero(np.diff(indptr))
            if len(present):
                best[present] = np.maximum.reduceat(data, indptr[present])
            self._best = best
        return self._best

    def top(self, query: str | np.ndarray, n: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The best `n` chunks by BM25 (among the `allowed` mask, if given) and their scores, unordered.

        Exact, without reading every posting of the query's words (MaxScore, term at a time): words
        are added in order of their best score, highest first (rare words, short postings). Once
        `n` chunks have been touched, the n-th best partial score, theta, is a floor for the n-th
        best full score; when the words not yet added could together add less than theta, a chunk
        that none of the added words touched cannot reach the best n, so those words' postings (the
        common words: long, low-scoring) are never read in full: only the touched chunks whose
        partial score plus that remainder reaches theta are scored exactly. As `lexical_top` in the
        exact backend, chunks that match no query word are taken only to make up `n`, first in
        index order. Scores are bit-equal to `scores(query)`. Queries whose words have few postings
        in all (`score_all_below`) score every chunk instead.
        """
        words = self.word_ids(query) if isinstance(query, str) else query
        if self._bm25.nonoccurrence_array is not None:  # BM25L/BM25+: absent words score too
            return self._top_of_all(self._scores_of_words(words), n, allowed)
        s = self._bm25.scores
        indptr, indices, data = s["indptr"], s["indices"], s["data"]
        unique = np.unique(words)
        if int((indptr[unique + 1] - indptr[unique]).sum()) < self.score_all_below:
            return self._top_of_all(self._scores_of_words(words), n, allowed)
        weight = np.array([np.count_nonzero(words == t) for t in unique], dtype=np.float32)
        best = weight * self.best_scores()[unique]
        partial = np.zeros(self.size, dtype=np.float32)
        remaining = float(best.sum())
        theta = 0.0
        leaders = np.zeros(0, dtype=indices.dtype)  # the (at most n) touched chunks with the best partial scores
        order = np.argsort(-best, kind="stable")
        added = 0
        for i in order:
            a, b = int(indptr[unique[i]]), int(indptr[unique[i] + 1])
            docs = indices[a:b]
            np.add.at(partial, docs, weight[i] * data[a:b])  # numpy 2: faster than fancy +=
            remaining -= float(best[i])
            added += 1
            # only this word's chunks gained: the new leaders are among them and the old leaders
            at = np.minimum(np.searchsorted(docs, leaders), max(len(docs) - 1, 0))
            rivals = np.concatenate([leaders[docs[at] != leaders] if len(docs) else leaders,
                                     docs if allowed is None else docs[allowed[docs]]])
            if len(rivals) > n:
                rivals = rivals[np.argpartition(-partial[rivals], n - 1)[:n]]
            leaders = rivals
            if len(leaders) == n:
                # the leaders' full scores (n lookups a word) are a higher floor than their partial ones
                theta = max(theta, float(self.scores_of(words, np.sort(leaders)).min()))
                if remaining < theta:
                    break
        if len(leaders) < n:  # every chunk with a query word is touched: make up n with others
            pool = np.flatnonzero(partial > 0 if allowed is None else (partial > 0) & allowed)
            scores = self.scores_of(words, pool)
            pad = _first_missing(pool, n - len(pool), self.size, allowed)
            return np.concatenate([pool, pad]).astype(np.int64), np.concatenate([scores, np.zeros(len(pad), np.float32)])
        # Only chunks whose partial score plus the most the other words could add reaches theta
        # (one pass over the partial scores, cheaper than keeping a list of the chunks touched)
        slack = 1e-4 * max(1.0, theta)  # float32 sums in another order than bm25s's
        keep = partial >= theta - max(remaining, 0.0) - slack
        pool = np.flatnonzero(keep if allowed is None else keep & allowed)
        # The words not added: look up only the pool's chunks in their postings, one word at a time,
        # dropping the chunks that can no longer reach theta after each.
        part = partial[pool]
        for i in order[added:]:
            slack = 1e-4 * max(1.0, theta)  # float32 sums in another order than bm25s's
            keep = part >= theta - remaining - slack
            pool, part = pool[keep], part[keep]
            a, b = int(indptr[unique[i]]), int(indptr[unique[i] + 1])
            postings = indices[a:b]
            if 16 * len(pool) < b - a:  # a binary search a chunk costs less than reading the postings
                at = np.minimum(np.searchsorted(postings, pool.astype(postings.dtype)), b - a - 1)
                hit = postings[at] == pool
                partial[pool[hit]] += weight[i] * data[a:b][at[hit]]
            else:
                np.add.at(partial, postings, weight[i] * data[a:b])
            part = partial[pool]
            remaining -= float(best[i])
            theta = max(theta, float(np.partition(part, len(part) - n)[len(part) - n]))
        keep = np.argpartition(-part, n - 1)[:n] if len(part) > n else np.arange(len(part))
        # near-ties at the n-th place are settled by the exact scores: keep every chunk within slack
        cut = part[keep].min() - 1e-4 * max(1.0, theta)
        pool = pool[part >= cut]
        scores = self.scores_of(words, pool)
        chosen = np.argpartition(-scores, n - 1)[:n]
        return pool[chosen].astype(np.int64), scores[chosen]

    def top_among(self, query: str | np.ndarray, n: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`top` among the chunks `ids` (sorted), by looking each of them up: for a small selection."""
        scores = self.scores_of(query, ids)
        pool = np.flatnonzero(scores > 0)
        if len(pool) > n:
            pool = pool[np.argpartition(-scores[pool], n - 1)[:n]]
        elif len(pool) < n:  # made up with chunks matching no word, first in index order
            pool = np.concatenate([pool, np.flatnonzero(scores <= 0)[: n - len(pool)]])
        return np.asarray(ids)[pool].astype(np.int64), scores[pool]

    def _scores_of_words(self, words: np.ndarray) -> np.ndarray:
        if not len(words):
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(words.tolist()), dtype=np.float32)

    def _top_of_all(self, scores: np.ndarray, n: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The best `n` of every chunk's `scores` (among `allowed`), made up with chunks scoring 0."""
        pool = np.flatnonzero(scores > 0 if allowed is None else (scores > 0) & allowed)
        if len(pool) > n:
            pool = pool[np.argpartition(-scores[pool], n - 1)[:n]]
        elif len(pool) < n:
            pool = np.concatenate([pool, _first_missing(pool, n - len(pool), self.size, allowed)])
        return pool, scores[pool]


def _first_missing(seen: np.ndarray, k: int, size: int, allowed: np.ndarray | None) -> np.ndarray:
    """The first `k` chunks in index order that are not in `seen` (and are `allowed`)."""
    pool = np.arange(min(size, k + len(seen))) if allowed is None else np.flatnonzero(allowed)
    return np.setdiff1d(pool, seen, assume_unique=True)[:k].astype(np.int64)
