"""Acronyms: learn "Deprivation of Liberty Safeguards (DoLS)" pairs from the corpus itself.

Reports define an acronym once and then use it ("DoLS", "EDT", "TEC"); staff ask with either form.
The lexical index adds the other form wherever one appears, in chunks and in queries alike, so
"DoLS backlog" finds "Deprivation of Liberty Safeguards" and the other way round.
"""

from __future__ import annotations

import re

_DEFINITION = re.compile(r"\(([A-Z][A-Za-z&+]{1,9})\)")
_MINOR = {"of", "and", "the", "for", "in", "&", "to", "on", "a"}


def find_acronyms(texts: list[str]) -> dict[str, str]:
    """{acronym: long form} for every "Long Form (LF)" whose initials spell the acronym's capitals."""
    found: dict[str, str] = {}
    for text in texts:
        for m in _DEFINITION.finditer(text):
            abbr = m.group(1)
            letters = [c.lower() for c in abbr if c.isupper()]
            if len(letters) < 2 or abbr in found:
                continue
            words = re.findall(r"[\w'&-]+", text[max(0, m.start() - 160) : m.start()])
            taken: list[str] = []
            for word in reversed(words):
                taken.insert(0, word)
                initials = [w[0].lower() for w in taken if w.lower() not in _MINOR and w[0].isalpha()]
                if len(initials) >= len(letters):
                    break
            initials = [w[0].lower() for w in taken if w.lower() not in _MINOR and w[0].isalpha()]
            while taken and taken[0].lower() in _MINOR:
                taken.pop(0)
            if initials == letters:
                found[abbr] = " ".join(taken)
    return found


def expand(text: str, acronyms: dict[str, str]) -> str:
    """`text` followed by the other form of every acronym or long form it contains."""
    extra = []
    lowered = text.lower()
    for abbr, long_form in acronyms.items():
        if re.search(rf"(?<![\w]){re.escape(abbr)}(?![\w])", text):
            extra.append(long_form)
        elif long_form.lower() in lowered:
            extra.append(abbr)
    return f"{text}\n{' '.join(extra)}" if extra else text
