"""Whether a sentence names a person ("Linda Sanders", "Mark Godfrey"), not only a role ("Cabinet Member").

Reports capitalise role titles as consistently as names ("the Director of Adult Social Care"), so
capital letters alone cannot tell "Deputy Chief Executive" from "Peter Hay". A person's name is taken
to be a capitalised word that is a given name, followed by an optional initial and a capitalised
surname. Given names come from the US census lists shipped by the `names` package (5,163 of them;
public-domain data, not words of any report or question). A given name that is also an ordinary word
("May", "Will", "Grace", "Long") counts only where the corpus itself uses the word capitalised more
often than not, so the casing of the reports decides, not a list of exceptions.

    finder = NameFinder.from_texts(chunk_texts)
    finder.finds("Linda Sanders led the peer challenge.")  # True
    finder.finds("The Cabinet Member for Adult Social Care")  # False
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

_CANDIDATE = re.compile(r"\b([A-Z][a-z]+)\s+(?:[A-Z]\.?\s+)?[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?\b")
# a word, not part of an e-mail or web address ("linda.sanders@...", "www.birmingham.gov.uk")
_WORD = re.compile(r"(?<![\w.@/])[A-Za-z][a-z]*(?![\w@]|\.\w)")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)([A-Z][a-z]+)")


@lru_cache(maxsize=1)
def given_names() -> frozenset[str]:
    """The census lists' given names, lower case (read once, on first use)."""
    folder = resources.files("names")
    found: set[str] = set()
    for name in ("dist.male.first", "dist.female.first"):
        for line in folder.joinpath(name).read_text(encoding="ascii").splitlines():
            if line.strip():
                found.add(line.split()[0].lower())
    return frozenset(found)


class NameFinder:
    """Finds persons' names in text; `ordinary` are given names the corpus mostly writes in lower case."""

    def __init__(self, ordinary: frozenset[str]) -> None:
        self.ordinary = ordinary

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> NameFinder:
        """Learn from the corpus which given names are also ordinary words ("may", "will", "in")."""
        names = given_names()
        lower: Counter[str] = Counter()
        upper: Counter[str] = Counter()
        for text in texts:
            starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
            for m in _WORD.finditer(text):
                word = m.group(0)
                key = word.lower()
                if key not in names:
                    continue
                if word[0].islower():
                    lower[key] += 1
                elif m.start() not in starts:  # a capital at the start of a sentence says nothing
                    upper[key] += 1
        return cls(frozenset(w for w in lower if lower[w] >= upper[w]))

    def finds(self, text: str) -> bool:
        names = given_names()
        return any(m.group(1).lower() in names and m.group(1).lower() not in self.ordinary
                   for m in _CANDIDATE.finditer(text))
