"""Lexical index: BM25 over stemmed English words (bm25s with the Snowball stemmer).

Question words and other function words are dropped (bm25s's longer English list: "what", "how",
"did" would otherwise match half the corpus), and acronyms learnt from the corpus are expanded in
chunks and queries alike (see `qa.acronyms`).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np

from qa.acronyms import expand

log = logging.getLogger(__name__)

STOPWORDS = "en_plus"
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

    def __init__(self, bm25, size: int, acronyms: dict[str, str]) -> None:
        self._bm25 = bm25
        self._stem = _stemmer()
        self._lock = threading.Lock()  # PyStemmer's stemmers are not thread-safe
        # tokens of texts seen before: answers re-read the same corpus sentences and headings for
        # question after question, and bm25s's tokenizer costs ~0.1 ms a call (a fifth of an answer's
        # CPU under load); bounded, emptied when full
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
        """Stemmed content words of `text`, as the index sees them."""
        import bm25s

        key = (text, expand_acronyms)
        known = self._memo.get(key)
        if known is not None:
            return list(known)
        if expand_acronyms:
            text = expand(text, self.acronyms)
        with self._lock:
            found = bm25s.tokenize([text], stopwords=STOPWORDS, stemmer=self._stem, return_ids=False,
                                   show_progress=False)[0]
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = tuple(found)
        return list(found)

    def scores(self, query: str) -> np.ndarray:
        tokens = [t for t in self.tokens(query, expand_acronyms=True) if t in self._bm25.vocab_dict]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
