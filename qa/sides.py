"""Which councils and years a question names, and the sides of a question that compares reports.

"How did the DoLS backlog change between the 2016 peer challenge and the 2023 assessment?" has two
sides, (None, 2016) and (None, 2023); "Compare Birmingham and Westminster on ..." has two,
(Birmingham City Council, None) and (Westminster City Council, None). A report may be named without
its year, by what the catalogue calls it: "Has the backlog improved since the peer challenge?
What did the peer challenge say vs the CQC assessment?" compares 2016 with 2023. Search gives such a
question passages from each side (`qa.retriever`), and the answer a quote from each (`qa.answer`).
"""

from __future__ import annotations

import re

from qa.catalogue import Catalogue, distinctive, words

#: A year or a financial year: 2016, 2023/24, 2024-25, 2021/2022.
YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?:\s*[/\-\u2013]\s*((?:19|20)?\d\d))?(?!\d|s\b)")  # not "the 2030s"

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


def named_councils(question: str, councils: list[str]) -> set[str]:
    """The councils among `councils` that the question names ("Westminster")."""
    said = set(re.findall(r"\w+", question.lower()))
    return {c for c in councils if distinctive(c) & said}


def named_report_years(text: str, documents, council: str | None = None) -> set[int]:
    """The years of the reports that `text` names by what they are called, without their year ("the
    peer challenge" -> 2016), among `documents` (catalogue entries, or a `Catalogue`) about `council`
    (any when None). A name that fits reports of several years ("CQC" for Birmingham's 2023 and
    Westminster's 2024) names none, unless the reports named outright are all one council's: then it
    is read among that council's ("the peer challenge ... the CQC report" -> 2016 and 2023)."""
    catalogue = Catalogue.of(documents)
    said = words(text)
    by_phrase: dict[tuple[str, ...], set[tuple[str, int]]] = {}
    for phrase in (set(zip(said, said[1:])) | {(w,) for w in said}) & catalogue.phrases.keys():
        found = {(c, y) for c, years_ in catalogue.phrases[phrase].items() if council in (None, c) for y in years_}
        if found:
            by_phrase[phrase] = found
    named = [found for found in by_phrase.values() if len({year for _, year in found}) == 1]
    councils = {c for found in named for c, _ in found}
    if council is None and len(councils) == 1 and len(named) < len(by_phrase):
        # the reports named outright are one council's ("the peer challenge"): a name that fits
        # several years ("CQC") is read among that council's reports
        return named_report_years(text, catalogue, councils.pop())
    return {year for found in named for _, year in found}


def comparison_sides(question: str, documents, council: str | None = None,
                     year: int | None = None) -> list[Side]:
    """The (council, year) sides of a question that compares reports, oldest first; [] if it does not.

    A question compares when it names two of the councils the `documents` (catalogue entries, or a
    `Catalogue`) are about ("Birmingham and Westminster"), or two years that reports are from
    ("between the 2016 peer challenge and the 2023 assessment"), by their years or by what the
    reports are called (`named_report_years`: "the peer challenge" and "the self-assessment").
    `council` and `year` are filters already set: a side cannot widen them.
    """
    catalogue = Catalogue.of(documents)
    named = sorted(catalogue.named_councils(question))
    asked = sorted({int(y[0]) for y in years(question) if len(y) == 1 and catalogue.covers(None, int(y[0]))})
    if len(asked) < 2 and len(named) < 2 and year is None:
        within = council or (named[0] if named else None)
        asked = sorted(set(asked) | named_report_years(question, catalogue, within))
    if len(named) >= 2 and council is None and year is None:
        sides = [(c, y) for c in named for y in (asked or [None])]
    elif len(asked) >= 2 and year is None:
        sides = [(council or (named[0] if len(named) == 1 else None), y) for y in asked]
    else:
        return []
    sides = [side for side in sides if catalogue.covers(*side)]
    return sorted(sides, key=lambda side: (catalogue.first_year(*side), side[0] or "")) if len(sides) >= 2 else []


#: A word a name leaves dangling when it goes: "the" of "the peer challenge", "our" of "our self-assessment".
_DANGLING = {"the", "a", "an", "our", "its", "their", "your", "his", "her"}


def without_side_names(text: str, documents) -> str:
    """`text` without the words that name a report (`qa.catalogue.report_phrases`: "the 2016 peer challenge", "our
    self-assessment", "CQC"), with a year and an article or possessive they leave dangling. Within
    one side's reports those words tell its sentences apart no better than chance, and they draw the
    search to the sentences about the report itself ("I was pleased to lead the peer challenge ...").
    Councils' names and other years stay: "Birmingham's population in 2023" asks about the city
    and the year."""
    found = list(re.finditer(r"[A-Za-z0-9]+(?:['\u2019]s\b)?", text))
    plain = [re.sub(r"['\u2019]s$", "", m.group(0)).lower() for m in found]
    phrases = Catalogue.of(documents).phrases.keys()
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
    for m, gone in zip(found, drop):
        if gone:
            gap = text[at:m.start()]
            if not (before and not gap.strip(" -\u2013/'")):  # "self-assessment" goes whole
                out.append(gap)
            at = m.end()
        before = gone
    out.append(text[at:])
    return re.sub(r"\s+([?,.;:])", r"\1", re.sub(r"\s{2,}", " ", "".join(out))).strip(" ,;-")
