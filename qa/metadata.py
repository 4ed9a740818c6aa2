"""Catalogue metadata of a new report, inferred from its text and file, each value with its source.

    from qa.metadata import infer_metadata
    found = infer_metadata(extracted)
    found["date"].value, found["date"].source    # "2023-11-17", 'text, page 1: "Assessment published: ..."'

A value that cannot be inferred with confidence is `None`; the caller asks for it or refuses with
a message naming the option. A date written in the text beats the file's creation date (for a
PDF exported from Word, that is the time of the export, not of publication), which is only
offered as a hint.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date as _date

from qa.readers import Extracted

FIELDS = ("title", "council", "date", "doc_type", "publisher")
#: Option of `python -m qa add` for each field.
OPTIONS = {"title": "--title", "council": "--council", "date": "--date", "doc_type": "--type",
           "publisher": "--publisher", "short_title": "--short-title"}
CQC = "Care Quality Commission (CQC)"
#: Short names accepted by --type, and the catalogue's names for them.
DOC_TYPES = {"cqc assessment": "CQC local authority assessment", "cqc": "CQC local authority assessment",
             "quality statement": "CQC quality statement", "cqc quality statement": "CQC quality statement",
             "self-assessment": "Council self-assessment", "self assessment": "Council self-assessment",
             "peer challenge": "Peer challenge feedback letter", "other": "Other report"}
_SHORT_TYPES = {"CQC local authority assessment": "CQC assessment", "CQC quality statement": "CQC quality statement",
                "Council self-assessment": "Self-assessment", "Peer challenge feedback letter": "Peer challenge letter"}
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
_MONTH = r"(January|February|March|April|May|June|July|August|September|October|November|December)"
_FULL_DATE = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH}\s+(\d{{4}})\b", re.IGNORECASE)
_MONTH_YEAR = re.compile(rf"\b{_MONTH}\s+(\d{{4}})\b", re.IGNORECASE)
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
# "published: 17 November 2023" first; a plain "Date:" only at the start of a line ("start date" is not it)
_PUBLISHED = (re.compile(r"(published|publication date|date of publication|date published|issued)( on)?\s*:?\s*",
                         re.IGNORECASE),
              re.compile(r"(^|\n)[ ]*(dated?|report date)\s*:?\s*", re.IGNORECASE))
_PLACE = r"[A-Z][A-Za-z'&\-]+"
_COUNCIL = re.compile(rf"\b((?:City of |London Borough of |Royal Borough of )?{_PLACE}(?: (?:and |upon |on )?{_PLACE})"
                      rf"{{0,3}} (?:City|County|Borough|District|Metropolitan Borough|Metropolitan District) Council"
                      rf"|(?:City of |London Borough of |Royal Borough of ){_PLACE}(?: {_PLACE}){{0,2}} Council"
                      rf"|{_PLACE} Council)\b")
_NOT_PLACES = {"The", "This", "Our", "A", "An", "Each", "Every", "Local", "County", "City", "Borough", "District",
               "Town", "Parish", "Care", "Voluntary", "Opposition", "Administration", "Service", "Services", "Full"}


@dataclass(frozen=True)
class Inferred:
    """One metadata value and where it came from, in words."""

    value: str
    source: str


def infer_metadata(doc: Extracted) -> dict[str, Inferred | None]:
    found: dict[str, Inferred | None] = {f: None for f in FIELDS}
    found["title"] = _title(doc)
    title = found["title"].value if found["title"] else ""
    found["council"] = _council(doc, title)
    found["date"] = _date_in_text(doc)
    found["doc_type"] = _doc_type(doc, title)
    found["publisher"] = publisher_for(found["doc_type"].value if found["doc_type"] else "",
                                       found["council"].value if found["council"] else "")
    return found


def creation_date_hint(doc: Extracted) -> str:
    """The file's own creation date, for messages only (it is the conversion time, not the publication)."""
    return doc.metadata.get("creation_date", "")


def _title(doc: Extracted) -> Inferred | None:
    top = [h for h in doc.headings if h.level == 1]
    if top:
        where = f", page {top[0].page}" if top[0].page else ""
        return Inferred(top[0].title, f"first top-level heading{where}")
    m = re.search(r"^#[ ]+(.+?)[ ]*#*$", doc.text, re.MULTILINE)
    if m:
        return Inferred(m.group(1).strip(), "first '#' heading of the text")
    if doc.metadata.get("title"):
        return Inferred(doc.metadata["title"], f"the {doc.format.upper()} file's own title property")
    return None


def _council(doc: Extracted, title: str) -> Inferred | None:
    in_title = [m.group(1) for m in _COUNCIL.finditer(title) if _is_place(m.group(1))]
    if in_title:
        return Inferred(_clean_council(in_title[-1]), "the title")
    counts = Counter(_clean_council(m.group(1)) for m in _COUNCIL.finditer(doc.text) if _is_place(m.group(1)))
    if not counts:
        return None
    (best, n), *rest = counts.most_common(2)
    second = rest[0][1] if rest else 0
    if n >= 2 and n >= 2 * second:
        others = f"; next {rest[0][0]}, {second}" if rest else ""
        return Inferred(best, f"named {n} times in the text{others}")
    return None


def _is_place(name: str) -> bool:
    return name.split()[0] not in _NOT_PLACES


def _clean_council(name: str) -> str:
    return " ".join(name.split())


def _date_in_text(doc: Extracted) -> Inferred | None:
    text = doc.text
    head = text[:6000]
    for rx in _PUBLISHED:
        for m in rx.finditer(head):
            parsed = _parse_date(head[m.end() : m.end() + 40], anchored=True)
            if parsed:
                line = _line_at(text, m.end() - 1)
                return Inferred(parsed, f"text{_page(doc, m.start())}: \"{line}\"")
    # a letter's date on a line of its own near the top
    for m in re.finditer(r"^[ ]*(.{6,24}?)[ ]*$", text[:3000], re.MULTILINE):
        parsed = _parse_date(m.group(1), anchored=True, whole=True)
        if parsed:
            return Inferred(parsed, f"date line near the top{_page(doc, m.start())}: \"{m.group(1).strip()}\"")
    # a month and year in a heading or title: "Self-Assessment (September 2025)"
    for h in doc.headings[:12]:
        parsed = _parse_date(h.title)
        if parsed:
            return Inferred(parsed, f"heading \"{h.title}\"")
    for m in re.finditer(rf"\(\s*{_MONTH}\s+(\d{{4}})\s*\)", head):
        return Inferred(_parse_date(m.group(0)), f"text{_page(doc, m.start())}: \"{_line_at(text, m.start())}\"")
    return None


def _page(doc: Extracted, offset: int) -> str:
    label = doc.page_at(offset)
    return f", page {label}" if label else ""


def _line_at(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    line = text[start : end if end >= 0 else len(text)].strip().lstrip("#").strip()
    return line if len(line) <= 80 else line[:77] + "..."


def _parse_date(text: str, anchored: bool = False, whole: bool = False) -> str:
    """ISO date (or year-month) of the first date written in `text`; '' if none."""
    for rx, kind in ((_FULL_DATE, "full"), (_ISO, "iso"), (_MONTH_YEAR, "month")):
        m = rx.match(text.strip()) if anchored else rx.search(text)
        if not m or whole and m.group(0) != text.strip():
            continue
        try:
            if kind == "full":
                return _date(int(m.group(3)), MONTHS.index(m.group(2).lower()) + 1, int(m.group(1))).isoformat()
            if kind == "iso":
                return _date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
            return f"{int(m.group(2)):04d}-{MONTHS.index(m.group(1).lower()) + 1:02d}"
        except ValueError:
            continue
    return ""


def _doc_type(doc: Extracted, title: str) -> Inferred:
    t = title.lower()
    opening = doc.text[:4000].lower()
    if "self-assessment" in t or "self assessment" in t:
        return Inferred("Council self-assessment", "the title says \"self-assessment\"")
    if "peer challenge" in t or "peer review" in t:
        return Inferred("Peer challenge feedback letter", "the title says \"peer challenge\"")
    if "cqc" in t or "care quality commission" in t:
        if ":" in title or "quality statement" in opening and "theme 1" not in opening:
            return Inferred("CQC quality statement", "a CQC title naming one quality statement")
        return Inferred("CQC local authority assessment", "the title names CQC")
    if "peer challenge" in opening:
        return Inferred("Peer challenge feedback letter", "the opening text says \"peer challenge\"")
    if "self-assessment" in opening:
        return Inferred("Council self-assessment", "the opening text says \"self-assessment\"")
    return Inferred("Other report", "no words of a known report type in the title or opening")


def publisher_for(doc_type: str, council: str) -> Inferred | None:
    if doc_type.startswith("CQC"):
        return Inferred(CQC, "CQC publishes its assessments")
    if doc_type == "Council self-assessment" and council:
        return Inferred(council, "a council publishes its own self-assessment")
    return None


def normalise_doc_type(value: str) -> str:
    return DOC_TYPES.get(value.strip().lower(), value.strip())


def parse_date_option(value: str) -> str:
    """--date accepts YYYY, YYYY-MM or YYYY-MM-DD (checked as a real date)."""
    value = value.strip()
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", value)
    if not m:
        raise ValueError(f"--date must be YYYY-MM-DD, YYYY-MM or YYYY. Currently, it is {value!r}")
    y, mo, d = (int(g) if g else None for g in m.groups())
    try:
        _date(y, mo or 1, d or 1)
    except ValueError:
        raise ValueError(f"--date {value!r} is not a real date") from None
    return value


def date_text(iso: str) -> str:
    """'2023-11-17' -> '17 November 2023'; '2025-09' -> 'September 2025'; '2024' -> '2024'."""
    parts = iso.split("-")
    if len(parts) == 3:
        return f"{int(parts[2])} {MONTHS[int(parts[1]) - 1].title()} {parts[0]}"
    if len(parts) == 2:
        return f"{MONTHS[int(parts[1]) - 1].title()} {parts[0]}"
    return iso


def short_title(doc_type: str, council: str, iso_date: str, title: str) -> str:
    kind = _SHORT_TYPES.get(doc_type) or (title if len(title) <= 40 else title[:37].rstrip() + "...")
    place = re.sub(r"^(City of|London Borough of|Royal Borough of) ", "", council)
    place = re.sub(r" (City|County|Borough|District|Metropolitan Borough|Metropolitan District)? ?Council$", "",
                   place).strip()
    return f"{kind} ({place or council}, {iso_date[:4]})"
