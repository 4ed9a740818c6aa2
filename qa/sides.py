"""Which councils and years a question names, and the sides of a question that compares reports.

"How did the DoLS backlog change between the 2016 peer challenge and the 2023 assessment?" has two
sides, (None, 2016) and (None, 2023); "Compare Birmingham and Westminster on ..." has two,
(Birmingham City Council, None) and (Westminster City Council, None). Search gives such a question
passages from each side (`qa.retriever`), and the answer a quote from each (`qa.answer`).
"""

from __future__ import annotations

import re

#: A year or a financial year: 2016, 2023/24, 2024-25, 2021/2022.
YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?:\s*[/\-\u2013]\s*((?:19|20)?\d\d))?(?!\d|s\b)")  # not "the 2030s"
#: Words of a council's name that do not tell one council from another.
GENERIC_COUNCIL_WORDS = {"the", "a", "this", "that", "which", "each", "every", "city", "county", "borough", "local",
                         "district", "metropolitan", "what", "how", "did", "does", "is", "was"}

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


def comparison_sides(question: str, documents: list, council: str | None = None,
                     year: int | None = None) -> list[Side]:
    """The (council, year) sides of a question that compares reports, oldest first; [] if it does not.

    A question compares when it names two of the councils the `documents` (catalogue entries) are
    about ("Birmingham and Westminster"), or two years that reports are from ("between the 2016 peer
    challenge and the 2023 assessment"). `council` and `year` are filters already set: a side
    cannot widen them.
    """
    named = sorted(named_councils(question, sorted({d.council for d in documents})))
    asked = sorted({int(y[0]) for y in years(question) if len(y) == 1 and any(int(y[0]) == d.year for d in documents)})
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
