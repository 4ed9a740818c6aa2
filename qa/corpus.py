"""Documents: the catalogue of source reports, and their text normalised in code.

The files in `corpus/` are never edited. Loading a document normalises its text (re-joins the
hard line wraps of PDF extractions, strips HTML tags, unifies quotes and white space) while
remembering, for every character, where it came from in the source file, so that a citation can
point at the exact lines of the original.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from qa.checksums import sha256_file
from qa.errors import CorpusError
from qa.paths import seed_corpus

log = logging.getLogger(__name__)

CATALOGUE_FILE = "catalogue.json"
_REQUIRED = ("doc_id", "file", "title", "short_title", "council", "publisher", "doc_type", "date", "date_text")


@dataclass(frozen=True)
class DocumentInfo:
    """What the catalogue says about one report."""

    doc_id: str
    file: str
    title: str
    short_title: str
    council: str
    publisher: str
    doc_type: str
    date: str  # ISO date, or year-month, or year
    date_text: str
    notes: str = ""
    #: For a report added from a PDF, DOCX or HTML file: the original beside the extracted text,
    #: its format and sha256, and (PDF) the page map of the text, `[[offset, label], ...]` in JSON.
    original: str = ""
    original_sha256: str = ""
    format: str = ""
    pages: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", self.date):
            raise CorpusError(f"date of {self.doc_id} must be YYYY, YYYY-MM or YYYY-MM-DD. "
                              f"Currently, it is {self.date!r}")

    @property
    def year(self) -> int:
        return int(self.date[:4])


class TrackedText:
    """A string that remembers, for each character, its offset in a source text.

    Every edit goes through `sub`, so offsets survive any number of normalisation steps.
    """

    __slots__ = ("text", "offsets")

    def __init__(self, text: str, offsets: list[int] | None = None) -> None:
        self.text = text
        self.offsets = list(range(len(text))) if offsets is None else offsets
        if len(self.offsets) != len(self.text):
            raise ValueError("TrackedText needs one offset per character")

    def sub(self, pattern: str | re.Pattern, repl, flags: int = 0) -> TrackedText:
        """Like `re.sub`; replacement characters take the source offset of the match start."""
        rx = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
        out: list[str] = []
        offs: list[int] = []
        pos = 0
        for m in rx.finditer(self.text):
            out.append(self.text[pos : m.start()])
            offs.extend(self.offsets[pos : m.start()])
            new = m.expand(repl) if isinstance(repl, str) else repl(m)
            out.append(new)
            anchor = self._anchor(m.start())
            offs.extend([anchor] * len(new))
            pos = m.end()
        out.append(self.text[pos:])
        offs.extend(self.offsets[pos:])
        return TrackedText("".join(out), offs)

    def _anchor(self, i: int) -> int:
        """Source offset of position i, or just past the end."""
        if i < len(self.offsets):
            return self.offsets[i]
        return self.offsets[-1] + 1 if self.offsets else 0

    def slice(self, start: int, end: int) -> TrackedText:
        return TrackedText(self.text[start:end], self.offsets[start:end])

    def strip(self) -> TrackedText:
        start = len(self.text) - len(self.text.lstrip())
        end = len(self.text.rstrip())
        return self.slice(start, max(start, end))

    def source_span(self, start: int = 0, end: int | None = None) -> tuple[int, int]:
        """The [start, end) character span in the source covered by text[start:end]."""
        end = len(self.text) if end is None else end
        if end <= start:
            return self._anchor(start), self._anchor(start)
        return self.offsets[start], self.offsets[end - 1] + 1


QUOTES = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
          "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"'}
_INVISIBLE = "[\u200b\u200c\u200d\u2060\ufeff\u00ad]"
_TERMINAL = re.compile(r"""[.!?:;]['")\]]*$""")
# Labels of the CQC report format: lines that stand alone but are not section headings.
LABELS = re.compile(r"^(Key findings for this quality statement|Indicative score:?|What people expect:?|"
                    r"The local authority commitment:?)$", re.IGNORECASE)


def unify_quotes(text: str) -> str:
    return text.translate(str.maketrans(QUOTES))


def normalise(raw: str) -> TrackedText:
    """Normalise a report's text, keeping track of source offsets.

    Markdown markers (`#`, `**`) are kept here because they tell the section parser where the
    headings are; `strip_markup` removes them from the text of each section.
    """
    t = TrackedText(raw)
    t = t.sub(r"\r\n?", "\n")
    t = t.sub(_INVISIBLE, "")
    t = t.sub("[\u00a0\u2007\u202f\t]", " ")
    t = t.sub("[" + "".join(QUOTES) + "]", lambda m: QUOTES[m.group()])
    t = t.sub(r"</?(sup|sub|span|br|b|i|em|strong|p)\b[^>]*>", "", re.IGNORECASE)
    t = t.sub(r"^-{3,}[ ]*$", "", re.MULTILINE)  # page separators
    t = t.sub(r"[ ]+$", "", re.MULTILINE)
    t = t.sub(r"^[ ]+(?=\S)(?![-*] )", "", re.MULTILINE)  # leading spaces (but keep nested list indents)
    t = join_hard_wraps(t)
    t = t.sub(r"\n{3,}", "\n\n")
    return t.strip()


def is_hard_wrapped(text: str) -> bool:
    """PDF extractions break lines mid-sentence: many mid-length lines end without punctuation."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(lines) < 10:
        return False
    open_ended = sum(1 for ln in lines if 40 <= len(ln) <= 110 and not _TERMINAL.search(ln))
    return open_ended / len(lines) > 0.3


def join_hard_wraps(t: TrackedText) -> TrackedText:
    """Re-join lines that a PDF extraction broke in the middle of a sentence.

    Everywhere, a line that ends without punctuation and is followed (after blank lines) by a line
    starting in lower case is one sentence. In a hard-wrapped document, a long line without
    punctuation also continues onto a following capitalised line (a name, "Chief Executive").
    """
    wrapped = is_hard_wrapped(t.text)

    def join(m: re.Match) -> str:
        line, nxt = m.group(1), m.group(3)
        if LABELS.match(line.strip()) or line.lstrip().startswith("#") or _TERMINAL.search(line):
            return m.group(0)
        if nxt[0].islower() and len(line) >= (1 if wrapped else 40):
            return line + " "
        if wrapped and len(line) >= 60 and not LABELS.match(nxt.strip()):
            return line + " "
        return m.group(0)

    # One match per line break; the lookahead keeps the next line available to the next match.
    rx = re.compile(r"^([^\n]+)(\n+)(?=([^\n]))", re.MULTILINE)
    out = t
    while True:
        new = _sub_once_per_line(out, rx, join)
        if new.text == out.text:
            return out
        out = new


def _sub_once_per_line(t: TrackedText, rx: re.Pattern, fn) -> TrackedText:
    """Apply `fn` to each line and the gap after it; the replacement keeps the line's own offsets."""
    out: list[str] = []
    offs: list[int] = []
    pos = 0
    for m in rx.finditer(t.text):
        out.append(t.text[pos : m.start()])
        offs.extend(t.offsets[pos : m.start()])
        new = fn(m)
        if new == m.group(0):
            out.append(new)
            offs.extend(t.offsets[m.start() : m.end()])
        else:  # the line itself, then one space standing for the line break
            line_end = m.start() + len(m.group(1))
            out.append(new)
            offs.extend(t.offsets[m.start() : line_end])
            offs.append(t.offsets[line_end])
        pos = m.end()
    out.append(t.text[pos:])
    offs.extend(t.offsets[pos:])
    return TrackedText("".join(out), offs)


def strip_markup(t: TrackedText) -> TrackedText:
    """Remove Markdown emphasis and heading markers and link targets from a section's text."""
    t = t.sub(r"\*\*|__", "")
    t = t.sub(r"^#{1,6}[ ]+", "", re.MULTILINE)
    t = t.sub(r"\[([^\]]+)\]\((#|https?://[^)]*)\)", r"\1")
    t = t.sub(r"\\([()\[\]*_#])", r"\1")
    return t


@dataclass(frozen=True)
class Document:
    """One report: its catalogue entry, raw text, normalised text and source hash."""

    info: DocumentInfo
    raw: str
    text: TrackedText
    sha256: str
    pages: tuple[tuple[int, str], ...] = ()  # (source offset where a page starts, its label)

    @property
    def doc_id(self) -> str:
        return self.info.doc_id

    def line_of(self, source_offset: int) -> int:
        """1-based line number in the source file of a source character offset."""
        starts = self._line_starts()
        return bisect_right(starts, source_offset)

    def _line_starts(self) -> list[int]:
        cached = self.__dict__.get("_starts")
        if cached is None:
            cached = [0] + [m.end() for m in re.finditer("\n", self.raw)]
            object.__setattr__(self, "_starts", cached)
        return cached


def read_catalogue(corpus_dir: Path) -> list[DocumentInfo]:
    path = Path(corpus_dir) / CATALOGUE_FILE
    if not path.is_file() and not seed_corpus(Path(corpus_dir)):  # an installed package's first run
        raise CorpusError(f"No catalogue at {path}. The corpus folder needs {CATALOGUE_FILE} listing its documents.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["documents"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CorpusError(f"{path} is not a valid catalogue ({exc}); it must hold {{\"documents\": [...]}}") from None
    infos = []
    for i, entry in enumerate(entries):
        missing = [k for k in _REQUIRED if not entry.get(k)]
        if missing:
            raise CorpusError(f"Catalogue entry {i} in {path} lacks {', '.join(missing)}")
        infos.append(DocumentInfo(**{k: entry[k] for k in entry if k in DocumentInfo.__dataclass_fields__}))
    ids = [d.doc_id for d in infos]
    if len(set(ids)) != len(ids):
        raise CorpusError(f"Duplicate doc_id in {path}")
    return infos


def load_corpus(corpus_dir: Path) -> list[Document]:
    """Read every document the catalogue lists, normalised, in catalogue order."""
    docs = []
    for info in read_catalogue(corpus_dir):
        path = Path(corpus_dir) / info.file
        if not path.is_file():
            raise CorpusError(f"The catalogue lists {info.file}, but {path} does not exist")
        data = path.read_bytes()
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"{path} is not UTF-8 text ({exc})") from None
        docs.append(Document(info, raw, normalise(raw), hashlib.sha256(data).hexdigest(),
                             read_page_map(Path(corpus_dir), info)))
    log.debug("loaded %d documents from %s", len(docs), corpus_dir)
    return docs


def read_page_map(corpus_dir: Path, info: DocumentInfo) -> tuple[tuple[int, str], ...]:
    """The page map of a report added from a PDF: where each page starts in its text file."""
    if not info.pages:
        return ()
    path = Path(corpus_dir) / info.pages
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return tuple((int(offset), str(label)) for offset, label in data)
    except (OSError, ValueError, TypeError) as exc:
        raise CorpusError(f"The page map {path} of {info.doc_id} cannot be read ({exc})") from None


def page_range(pages: tuple[tuple[int, str], ...], start: int, end: int) -> tuple[str, str]:
    """Labels of the first and last page of the source span [start, end); ('', '') without a page map."""
    if not pages:
        return "", ""
    offsets = [p[0] for p in pages]
    first = pages[max(0, bisect_right(offsets, start) - 1)][1]
    last = pages[max(0, bisect_right(offsets, max(start, end - 1)) - 1)][1]
    return first, last


def corpus_hashes(corpus_dir: Path) -> dict[str, str]:
    """sha256 of the catalogue and of every file it lists, for the index manifest."""
    corpus_dir = Path(corpus_dir)
    infos = read_catalogue(corpus_dir)
    hashes = {CATALOGUE_FILE: sha256_file(corpus_dir / CATALOGUE_FILE)}
    for info in infos:
        path = corpus_dir / info.file
        if not path.is_file():
            raise CorpusError(f"The catalogue lists {info.file}, but {path} does not exist")
        hashes[info.file] = sha256_file(path)
        if info.pages:  # the page map changes the chunks' citations
            if not (corpus_dir / info.pages).is_file():
                raise CorpusError(f"The catalogue lists the page map {info.pages}, but it does not exist")
            hashes[info.pages] = sha256_file(corpus_dir / info.pages)
    return hashes
