"""Which councils and years a question names, and the sides of a question that compares reports.

"How did the DoLS backlog change between the 2016 peer challenge and the 2023 assessment?" has two
sides, (None, 2016) and (None, 2023); "Compare Birmingham and Westminster on ..." has two,
(Birmingham City Council, None) and (Westminster City Council, None). A report may be named without
its year, by what the catalogue calls it: "Has the backlog improved since the peer challenge?
What did the peer challenge say vs the CQC assessment?" compares 2016 with 2023. Search gives such a
question passages from each side (`qa.retriever`), and the answer a quote from each (`qa.answer`).
"""

from __future__ import annotations

import functools
import re

#: A year or a financial year: 2016, 2023/24, 2024-25, 2021/2022.
YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?:\s*[/\-\u2013]\s*((?:19|20)?\d\d))?(?!\d|s\b)")  # not "the 2030s"
#: Words of a council's name that do not tell one council from another.
GENERIC_COUNCIL_WORDS = {"the", "a", "this", "that", "which", "each", "every", "city", "county", "borough", "local",
                         "district", "metropolitan", "what", "how", "did", "does", "is", "was"}

#: Words that name a council, not a kind of report: "CQC local authority assessment" names no report
#: by "local authority" (staff write it for the council).
INSTITUTION_WORDS = {"local", "authority", "council", "city", "county", "borough"}

Side = tuple[str | None, int | None]  # (council, year); None: any


def year_mentions(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """Years named in `text`, in order: (as written, (first,) or (first, second year)),
    e.g. ("2023/24", ("2023", "2024"))."""
    out = []
    for m in YEAR.finditer(text):
        start, end = m.group(1), m.group(2)
        if end:
            end = end if len(end) == 4 else start[:2] + end
            out.append((m.group(0), (start, end) if int(end) == int(start) + 1 else (start,)))
        else:
            out.append((m.group(0), (start,)))
    return out


def years(text: str) -> set[tuple[str, ...]]:
    """Years and financial years named in `text`, as ("2016",) or ("2023", "2024")."""
    return {parsed for _, parsed in year_mentions(text)}


def distinctive(council: str) -> set[str]:
    """The words that tell one council from another: "westminster" for "Westminster City Council"."""
    return set(re.findall(r"\w+", council.lower())) - GENERIC_COUNCIL_WORDS - {"council"}


def named_councils(question: str, councils: list[str]) -> set[str]:
    """The councils among `councils` that the question names ("Westminster")."""
    words = set(re.findall(r"\w+", question.lower()))
    return {c for c in councils if distinctive(c) & words}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def report_phrases(document) -> frozenset[tuple[str, ...]]:
    """The phrases that name `document`'s kind of report, from what the catalogue calls it (its
    `doc_type` and `short_title`): each pair of adjacent words naming no council ("peer challenge",
    "self assessment", "quality statement", "cqc assessment"), and each acronym ("CQC")."""
    return _phrases(getattr(document, "doc_type", ""), getattr(document, "short_title", ""))


@functools.lru_cache(maxsize=4096)
def _phrases(doc_type: str, short_title: str) -> frozenset[tuple[str, ...]]:
    phrases: set[tuple[str, ...]] = set()
    for name in (doc_type, re.sub(r"\(.*?\)", " ", short_title)):
        words = _words(name)
        phrases |= {(a, b) for a, b in zip(words, words[1:])
                    if a not in INSTITUTION_WORDS and b not in INSTITUTION_WORDS}
        phrases |= {(w.lower(),) for w in re.findall(r"\b[A-Z]{2,}\b", name)}
    return frozenset(phrases)


def named_report_years(text: str, documents: list, council: str | None = None) -> set[int]:
    """The years of the reports that `text` names by what they are called, without their year ("the
    peer challenge" -> 2016), among `documents` about `council` (any when None). A name that fits
    reports of several years ("CQC" for Birmingham's 2023 and Westminster's 2024) names none, unless
    the reports named outright are all one council's: then it is read among that council's ("the
    peer challenge ... the CQC report" -> 2016 and 2023)."""
    words = _words(text)
    grams = set(zip(words, words[1:])) | {(w,) for w in words}
    by_phrase: dict[tuple[str, ...], set[tuple[str, int]]] = {}
    for d in documents:
        if council is None or d.council == council:
            for phrase in report_phrases(d):
                if phrase in grams:
                    by_phrase.setdefault(phrase, set()).add((d.council, d.year))
    named = [found for found in by_phrase.values() if len({year for _, year in found}) == 1]
    councils = {c for found in named for c, _ in found}
    if council is None and len(councils) == 1 and len(named) < len(by_phrase):
        # the reports named outright are one council's ("the peer challenge"): a name that fits
        # several years ("CQC") is read among that council's reports
        return named_report_years(text, documents, councils.pop())
    return {year for found in named for _, year in found}


def comparison_sides(question: str, documents: list, council: str | None = None,
                     year: int | None = None) -> list[Side]:
    """The (council, year) sides of a question that compares reports, oldest first; [] if it does not.

    A question compares when it names two of the councils the `documents` (catalogue entries) are
    about ("Birmingham and Westminster"), or two years that reports are from ("between the 2016 peer
    challenge and the 2023 assessment"), by their years or by what the reports are called
    (`named_report_years`: "the peer challenge" and "the self-assessment"). `council` and `year` are
    filters already set: a side cannot widen them.
    """
    named = sorted(named_councils(question, sorted({d.council for d in documents})))
    asked = sorted({int(y[0]) for y in years(question) if len(y) == 1 and any(int(y[0]) == d.year for d in documents)})
    if len(asked) < 2 and len(named) < 2 and year is None:
        within = council or (named[0] if named else None)
        asked = sorted(set(asked) | named_report_years(question, documents, within))
    if len(named) >= 2 and council is None and year is None:
        sides = [(c, y) for c in named for y in (asked or [None])]
    elif len(asked) >= 2 and year is None:
        sides = [(council or (named[0] if len(named) == 1 else None), y) for y in asked]
    else:
        return []

    def first_year(side: Side) -> int | None:
        covered = [d.year for d in documents if side[0] in (None, d.council) and side[1] in (None, d.year)]
        return min(covered) if covered else None

    sides = [side for side in sides if first_year(side) is not None]
    return sorted(sides, key=lambda side: (first_year(side), side[0] or "")) if len(sides) >= 2 else []


#: A word a name leaves dangling when it goes: "the" of "the peer challenge", "our" of "our self-assessment".
_DANGLING = {"the", "a", "an", "our", "its", "their", "your", "his", "her"}


def without_side_names(text: str, documents: list) -> str:
    """`text` without the words that name a report (`report_phrases`: "the 2016 peer challenge", "our
    self-assessment", "CQC"), with a year and an article or possessive they leave dangling. Within
    one side's reports those words tell its sentences apart no better than chance, and they draw the
    search to the sentences about the report itself ("I was pleased to lead the peer challenge ...").
    Councils' names and other years stay: "Birmingham's population in 2023" asks about the city
    and the year."""
    words = list(re.finditer(r"[A-Za-z0-9]+(?:['\u2019]s\b)?", text))
    plain = [re.sub(r"['\u2019]s$", "", m.group(0)).lower() for m in words]
    phrases = set().union(*(report_phrases(d) for d in documents)) if documents else set()
    drop = [(w,) in phrases for w in plain]
    for i in range(len(plain) - 1):
        if (plain[i], plain[i + 1]) in phrases:
            drop[i] = drop[i + 1] = True
    for i in range(len(plain) - 1):  # the year of a report named: "the 2016 peer challenge"
        if YEAR.fullmatch(plain[i]) and drop[i + 1]:
            drop[i] = True
    for i in range(len(plain) - 1):
        if plain[i] in _DANGLING and drop[i + 1]:
            drop[i] = True
    out, at, before = [], 0, False
    for m, gone in zip(words, drop):
        if gone:
            gap = text[at:m.start()]
            if not (before and not gap.strip(" -\u2013/'")):  # "self-assessment" goes whole
                out.append(gap)
            at = m.end()
        before = gone
    out.append(text[at:])
    return re.sub(r"\s+([?,.;:])", r"\1", re.sub(r"\s{2,}", " ", "".join(out))).strip(" ,;-")
