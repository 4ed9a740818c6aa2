"""Lexical index: BM25 over stemmed English words (bm25s with the Snowball stemmer)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _stemmer():
    import Stemmer  # PyStemmer

    return Stemmer.Stemmer("english")


class LexicalIndex:
    """BM25 scores of every chunk for a query.

    Example:
        >>> lex = LexicalIndex.build(["care homes in Birmingham", "safeguarding enquiries"])
        >>> lex.scores("care home").argmax()
        0
    """

    def __init__(self, bm25, size: int) -> None:
        self._bm25 = bm25
        self._stem = _stemmer()
        self.size = size

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        import bm25s

        tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=_stemmer(), show_progress=False)
        bm25 = bm25s.BM25(k1=1.2, b=0.75)
        bm25.index(tokens, show_progress=False)
        return cls(bm25, len(texts))

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        import bm25s

        bm25 = bm25s.BM25.load(str(folder), allow_pickle=False, show_progress=False)
        return cls(bm25, size)

    def tokens(self, query: str) -> list[str]:
        import bm25s

        return bm25s.tokenize([query], stopwords="en", stemmer=self._stem, return_ids=False,
                              show_progress=False)[0]

    def scores(self, query: str) -> np.ndarray:
        tokens = [t for t in self.tokens(query) if t in self._bm25.vocab_dict]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
