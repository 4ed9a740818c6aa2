"""Sentences: split passage text into sentences with character offsets.

Used to pick answer sentences (each quoted verbatim from its passage) and to check that chunking
loses no text. Abbreviations common in these reports ("e.g.", "St.", "No.") do not end a sentence;
list items and lines that end without punctuation (headings) stand alone; a short label line
ending in a colon is joined to the line after it ("Indicative score:" + "3 - Evidence shows ...").
"""

from __future__ import annotations

import re

_ABBREVIATIONS = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|approx|St|Dr|Mr|Mrs|Ms|No|Cllr|Prof|para|ref)\.|\b[A-Z]\.)$")
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9\u00a3])")
_BULLET = re.compile(r"^\s*(?:(?:[-*+\u2022]|\d{1,2}[.)])\s+)+")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """[start, end) spans of the sentences of `text`, in order, trimmed of white space and bullets."""
    spans: list[tuple[int, int]] = []
    # A short label line ending in a colon ("Indicative score:") belongs with the line after it.
    for line in re.finditer(r"(?:[^\n]{1,60}:[ ]*\n+(?=[^\n]))?[^\n]+", text):
        base, body = line.start(), line.group()
        bullet = _BULLET.match(body)
        start = bullet.end() if bullet else 0
        for m in _BOUNDARY.finditer(body, start):
            closers = len(m.group()) - len(m.group().lstrip("\"')]"))  # quotes closing the sentence
            end = m.start() + closers
            if _ABBREVIATIONS.search(body[start : m.start()]):
                continue
            _add(spans, body, base, start, end)
            start = m.end()
        _add(spans, body, base, start, len(body))
    return spans


def _add(spans: list[tuple[int, int]], body: str, base: int, start: int, end: int) -> None:
    piece = body[start:end]
    stripped = piece.strip()
    if stripped:
        lead = len(piece) - len(piece.lstrip())
        spans.append((base + start + lead, base + start + lead + len(stripped)))
