"""Sections: find the heading structure of a normalised report.

Four heading styles occur in the corpus, and one parser handles them all:
- Markdown `#` headings, and lines that are bold and nothing else (peer-challenge letter, Westminster);
- bare lines of the CQC format: "Theme 2: Providing support", a quality statement name followed
  by "Indicative score:", and plain short lines such as "Financial facts";
- upper-case lines ("THEME 1- HOW THE LOCAL AUTHORITY WORKS WITH PEOPLE", "FOREWORD");
- numbered sub-sections ("2. Supporting People to Live Healthier Lives"), told apart from numbered
  list items by their sequence within the theme and by having no closing punctuation.

Each `Section` keeps its heading path and its body as `TrackedText`, so chunks can cite source lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.corpus import LABELS, TrackedText

_MD = re.compile(r"^(#{1,6})[ ]+(.+?)[ ]*#*$")
_BOLD = re.compile(r"^\*\*([^*]{2,120})\*\*:?$")
_THEME = re.compile(r"^theme\s+\d+\s*[:\-\u2013\u2014]", re.IGNORECASE)
_NUMBERED = re.compile(r"^(\d{1,2})\.[ ]+(\S.*)$")
_LIST = re.compile(r"^([-*+\u2022]|\d{1,2}[.)])[ ]")
# CQC's rating scale: "3 - Evidence shows a good standard", "Good: Evidence shows a good standard".
RATING = re.compile(r"^(?:(\d)\s*-\s*|(Outstanding|Good|Requires improvement|Inadequate):\s*)(Evidence shows .+)$",
                    re.IGNORECASE)
_SCORE = re.compile(r"^(?:Indicative score|Score):\s*(\d)?\s*$", re.IGNORECASE)
_TRAILING = re.compile(r"[\s:\-\u2013\u2014]+$")


@dataclass(frozen=True)
class Section:
    """A heading path and the text under it (up to the next heading)."""

    path: tuple[str, ...]
    body: TrackedText
    score: str = ""  # the quality statement's indicative score, e.g. "3 - Evidence shows a good standard"

    @property
    def heading(self) -> str:
        return self.path[-1] if self.path else ""


@dataclass
class _Line:
    text: str
    start: int  # offset in the normalised text
    end: int
    kind: str = "body"  # body | heading | blank
    level: int = 0
    title: str = ""


def _clean_heading(text: str) -> str:
    text = text.replace("**", "").strip()
    return _TRAILING.sub("", text).strip()


def _is_caps(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and all(c.isupper() for c in letters)


def _is_bare_heading(text: str) -> bool:
    """A short stand-alone line that reads like a title, not like a sentence or a label."""
    if not 2 <= len(text) <= 90 or len(text.split()) > 14:
        return False
    if not (text[0].isupper() or text[0].isdigit()) or _LIST.match(text) and not _NUMBERED.match(text):
        return False
    if re.search(r"[.,;:!?'\")\]]$", text) or "@" in text or "](" in text or "**" in text:
        return False
    if LABELS.match(text) or RATING.match(text) or _SCORE.match(text):
        return False
    if ":" in text and not _THEME.match(text):
        after = text.split(":", 1)[1]
        if re.search(r"\d", after):  # "Assessment published: 17 November 2023" is a fact, not a title
            return False
    if re.fullmatch(r"[\d\s/.-]+|\d{1,2} \w+ \d{4}", text):  # a bare date
        return False
    return True


def parse_sections(text: TrackedText, title: str) -> list[Section]:
    """Split a document's normalised text into sections with full heading paths.

    `title` becomes the first element of every path, so a path reads like
    "CQC assessment of Birmingham City Council › Theme 3 › Safeguarding".
    """
    lines = _split_lines(text.text)
    markdown = sum(1 for ln in lines if _MD.match(ln.text)) >= 2
    _classify(lines, markdown)
    return _assemble(text, lines, title)


def _split_lines(text: str) -> list[_Line]:
    out = []
    pos = 0
    for raw in text.split("\n"):
        out.append(_Line(raw.strip(), pos, pos + len(raw), "blank" if not raw.strip() else "body"))
        pos += len(raw) + 1
    return out


def _next_content(lines: list[_Line], i: int) -> _Line | None:
    for ln in lines[i + 1 :]:
        if ln.kind != "blank":
            return ln
    return None


def _classify(lines: list[_Line], markdown: bool) -> None:
    """Mark heading lines and give each a level (1 = top)."""
    seen_body = False
    last_number = 0  # numbered sub-sections run 1, 2, 3 ... within a theme
    group_level = 0  # level of the open heading that only groups other headings
    open_level = 0  # level of the deepest open structural heading (theme, statement, numbered)
    for i, ln in enumerate(lines):
        if ln.kind == "blank":
            continue
        nxt = _next_content(lines, i)
        prev_blank = i == 0 or lines[i - 1].kind == "blank"
        md = _MD.match(ln.text)
        if md:
            ln.kind, ln.level, ln.title = "heading", len(md.group(1)), _clean_heading(md.group(2))
            continue
        bold = _BOLD.match(ln.text)
        if bold and prev_blank and markdown:
            ln.kind, ln.level, ln.title = "heading", 3, _clean_heading(bold.group(1))
            continue
        if markdown or not prev_blank or not _is_bare_heading(ln.text):
            seen_body = seen_body or ln.kind == "body" and len(ln.text) > 90
            continue
        if not seen_body and nxt is not None and _is_bare_heading(nxt.text) and not _THEME.match(ln.text):
            continue  # front matter: a title block of short lines before the first paragraph
        followed_by_heading = nxt is not None and _is_bare_heading(nxt.text)
        number = _NUMBERED.match(ln.text)
        if _THEME.match(ln.text) or _is_caps(ln.text):
            level, last_number, group_level, open_level = 1, 0, 0, 1
        elif nxt is not None and _SCORE.match(nxt.text):  # a CQC quality statement
            level, group_level, open_level = 2, 0, 2
        elif number:
            if int(number.group(1)) != last_number + 1:
                continue  # a numbered list item, not the next sub-section
            last_number = max(int(n) for n in re.findall(r"(?:^|\s)(\d{1,2})\.\s+[A-Z]", ln.text))
            level, group_level, open_level = 2, 0, 2
        elif followed_by_heading:
            level = group_level or open_level + 1
            group_level = level
        else:
            level = (group_level or open_level) + 1
        ln.kind, ln.level, ln.title = "heading", level, _clean_heading(ln.text)
        seen_body = True
    _nest_empty_headings(lines)


def _nest_empty_headings(lines: list[_Line]) -> None:
    """A heading with no text before the next heading either groups it or continues its title.

    "**National priorities**" directly followed by "## Areas for consideration" groups it (the
    second becomes a child); two upper-case lines in a row are one title split over two lines.
    """
    heads = [i for i, ln in enumerate(lines) if ln.kind == "heading"]
    for a, b in zip(heads, heads[1:]):
        between = [ln for ln in lines[a + 1 : b] if ln.kind != "blank"]
        if between:
            continue
        first, second = lines[a], lines[b]
        if second.level <= first.level and second.title.startswith(("\u2013", "-", "\u2014")):
            second.title = f"{first.title} {second.title}"
            first.kind, first.title = "merged", ""
            second.level = first.level
        elif second.level <= first.level:
            second.level = first.level + 1


def _assemble(text: TrackedText, lines: list[_Line], title: str) -> list[Section]:
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []  # (level, title)
    scores: dict[tuple[str, ...], str] = {}
    body_start = 0

    def flush(end: int) -> None:
        body = text.slice(body_start, end).strip()
        path = (title, *(t for _, t in stack))
        if body.text:
            score = _find_score(body.text) or next((scores[path[:n]] for n in range(len(path), 0, -1)
                                                     if path[:n] in scores), "")
            if score:
                scores.setdefault(path, score)
            sections.append(Section(path, body, score))

    for ln in lines:
        if ln.kind == "merged":
            flush(ln.start)
            body_start = ln.end + 1
            continue
        if ln.kind != "heading":
            continue
        flush(ln.start)
        while stack and stack[-1][0] >= ln.level:
            stack.pop()
        stack.append((ln.level, ln.title))
        body_start = ln.end + 1
    flush(len(text.text))
    return sections


def _find_score(body: str) -> str:
    """The indicative score stated at the top of a quality statement, if any."""
    lines = [ln.strip() for ln in body.split("\n")[:8] if ln.strip()]
    for a, b in zip(lines, lines[1:]):
        if _SCORE.match(a):
            rating = RATING.match(b)
            if rating:
                return b
            number = _SCORE.match(a).group(1)
            if number:
                return number
    return ""
