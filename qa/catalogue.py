"""The catalogue's reports, indexed for the lookups every question makes.

A search asks which reports a filter selects (`select`); a question, which councils it names
(`named_councils`) and which reports it names by what they are called (`phrases`, read by
`qa.sides`); an answer, which councils and years the reports cover. With five reports a loop over
them costs nothing. With a national catalogue it cost more than the search itself
(`bench/catalogue_scale.py`: 20,000 reports, half of them care providers' inspections, 1M chunks):
a question's comparison sides 1.5 ms, the words naming reports taken out of a comparison's
question 205 ms, the chunks a filter keeps 101 ms. A `Catalogue` is built once for a set of reports
(when a retriever is made, 0.3 s for those 20,000), and each lookup then costs what the question
names, not how many reports there are: 0.02, 0.02 and 0.7 ms.

    catalogue = Catalogue(documents)            # qa.corpus.DocumentInfo entries
    catalogue.select(council="westminster")     # positions of the reports a filter keeps
    catalogue.named_councils("Compare Birmingham and Westminster on ...")
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable, Iterator, Sequence

#: Words of a council's name that do not tell one council from another.
GENERIC_COUNCIL_WORDS = {"the", "a", "this", "that", "which", "each", "every", "city", "county", "borough", "local",
                         "district", "metropolitan", "what", "how", "did", "does", "is", "was", "of", "and", "royal"}

#: Words that name a council, not a kind of report: "CQC local authority assessment" names no report
#: by "local authority" (staff write it for the council).
INSTITUTION_WORDS = {"local", "authority", "council", "city", "county", "borough"}

Phrase = tuple[str, ...]


def distinctive(council: str) -> set[str]:
    """The words that tell one council from another: "westminster" for "Westminster City Council"."""
    return set(re.findall(r"\w+", council.lower())) - GENERIC_COUNCIL_WORDS - {"council"}


def words(text: str) -> list[str]:
    """`text`'s words in lower case, as report names are matched."""
    return re.findall(r"[a-z0-9]+", text.lower())


def report_phrases(document) -> frozenset[Phrase]:
    """The phrases that name `document`'s kind of report, from what the catalogue calls it (its
    `doc_type` and `short_title`): each pair of adjacent words naming no council ("peer challenge",
    "self assessment", "quality statement", "cqc assessment"), and each acronym ("CQC")."""
    return _phrases(getattr(document, "doc_type", ""), getattr(document, "short_title", ""))


@functools.lru_cache(maxsize=4096)
def _phrases(doc_type: str, short_title: str) -> frozenset[Phrase]:
    phrases: set[Phrase] = set()
    for name in (doc_type, re.sub(r"\(.*?\)", " ", short_title)):
        said = words(name)
        phrases |= {(a, b) for a, b in zip(said, said[1:])
                    if a not in INSTITUTION_WORDS and b not in INSTITUTION_WORDS}
        phrases |= {(w.lower(),) for w in re.findall(r"\b[A-Z]{2,}\b", name)}
    return frozenset(phrases)


class Catalogue(Sequence):
    """Catalogue entries (`qa.corpus.DocumentInfo`, in order), with the lookups built once.

    It is a sequence of the entries, so it stands wherever a list of them did."""

    def __init__(self, documents: Iterable) -> None:
        self.documents = list(documents)
        self.councils: list[str] = sorted({d.council for d in self.documents})
        self.years: list[int] = sorted({d.year for d in self.documents})
        self._by_council: dict[str, list[int]] = {}
        self._by_year: dict[int, list[int]] = {}
        for i, d in enumerate(self.documents):
            self._by_council.setdefault(d.council, []).append(i)
            self._by_year.setdefault(d.year, []).append(i)
        self.council_years = {c: frozenset(self.documents[i].year for i in at) for c, at in self._by_council.items()}
        self._ids = sorted((d.doc_id, i) for i, d in enumerate(self.documents))
        self._councils_of_word: dict[str, set[str]] = {}
        for c in self.councils:
            for w in distinctive(c):
                self._councils_of_word.setdefault(w, set()).add(c)
        #: each report phrase (`report_phrases`), and the years of the reports it names, by council
        self.phrases: dict[Phrase, dict[str, set[int]]] = {}
        for d in self.documents:
            for phrase in report_phrases(d):
                self.phrases.setdefault(phrase, {}).setdefault(d.council, set()).add(d.year)

    @classmethod
    def of(cls, documents: Iterable) -> Catalogue:
        """`documents` as a Catalogue: itself if it is one already."""
        return documents if isinstance(documents, Catalogue) else cls(documents)

    def __len__(self) -> int:
        return len(self.documents)

    def __getitem__(self, i):
        return self.documents[i]

    def __iter__(self) -> Iterator:
        return iter(self.documents)

    def named_councils(self, question: str) -> set[str]:
        """The councils that `question` names by a word that tells them apart ("Westminster")."""
        said = set(re.findall(r"\w+", question.lower()))
        return {c for w in said & self._councils_of_word.keys() for c in self._councils_of_word[w]}

    def covers(self, council: str | None, year: int | None) -> bool:
        """Whether a report is about `council` and from `year` (None: any)."""
        if council is None:
            return bool(self.documents) if year is None else year in self._by_year
        return council in self.council_years and (year is None or year in self.council_years[council])

    def first_year(self, council: str | None, year: int | None) -> int | None:
        """The earliest year of the reports about `council` from `year` (None: any); None if none is."""
        if not self.covers(council, year):
            return None
        return year if year is not None else min(self.council_years[council]) if council else self.years[0]

    def about(self, council: str | None, year: int | None) -> list:
        """The entries about exactly `council` and from `year` (None: any), in catalogue order."""
        if council is None:
            at = range(len(self.documents)) if year is None else self._by_year.get(year, [])
        else:
            at = [i for i in self._by_council.get(council, []) if year is None or self.documents[i].year == year]
        return [self.documents[i] for i in at]

    def select(self, council: str | None = None, doc_id: str | None = None, year: int | None = None) -> list[int]:
        """Positions of the reports that every given filter keeps, in catalogue order: `council` is
        matched whole or in part, ignoring case ("westminster"); `doc_id` whole or by its start."""
        keep: set[int] | None = None
        if council is not None:
            want = str(council).strip().casefold()
            keep = {i for c in self.councils if want and want in c.casefold() for i in self._by_council[c]}
        if doc_id is not None:
            start = bisect.bisect_left(self._ids, (str(doc_id),))
            found = set()
            for d, i in self._ids[start:]:
                if not doc_id or not d.startswith(str(doc_id)):
                    break
                found.add(i)
            keep = found if keep is None else keep & found
        if year is not None:
            found = set(self._by_year.get(year, ()))
            keep = found if keep is None else keep & found
        return sorted(range(len(self.documents)) if keep is None else keep)
