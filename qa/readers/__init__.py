"""Readers: one module per file format, each turning a published report into the same `Extracted`.

    from qa.readers import read_report
    doc = read_report(Path("assessment.pdf"))     # format found from the bytes, not the name
    doc.text        # plain text, headings written as Markdown `#` lines, paragraphs split by blank lines
    doc.headings    # Heading(level, title, offset, page)
    doc.pages       # PageStart(offset, label): where each page begins in `text` (PDF only)

The extracted text is what the rest of the pipeline reads (corpus -> sections -> chunks), so the
section parser sees Markdown headings whatever the source format was. Every reader refuses a bad
file with a `ReportError` that says what is wrong, in bounded time and memory, before anything
is written.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import ReportError

log = logging.getLogger(__name__)

FORMATS = ("pdf", "docx", "html", "markdown", "text")
#: What each format is called in messages, and the file name endings that claim it.
FORMAT_NAMES = {"pdf": "a PDF document", "docx": "a Word (DOCX) document", "html": "a web page (HTML)",
                "markdown": "Markdown text", "text": "plain text"}
_EXTENSIONS = {".pdf": {"pdf"}, ".docx": {"docx"}, ".html": {"html"}, ".htm": {"html"}, ".xhtml": {"html"},
               ".md": {"markdown", "text"}, ".markdown": {"markdown", "text"},
               ".txt": {"text", "markdown"}, ".text": {"text", "markdown"}}
#: Default limits; `Settings.max_report_mb` overrides the size.
MAX_REPORT_BYTES = 50 * 1024 * 1024
MAX_UNPACKED_BYTES = 200 * 1024 * 1024  # a DOCX's members together, before unpacking
MAX_PAGES = 3000


@dataclass(frozen=True)
class Heading:
    """A heading found in a report: its level (1 = top), title, offset in `Extracted.text`, page label."""

    level: int
    title: str
    offset: int
    page: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.level <= 6:
            raise ValueError(f"heading level must be 1-6. Currently, it is {self.level} for {self.title!r}")


@dataclass(frozen=True)
class PageStart:
    """Page `label` (printed label, else physical number) starts at `offset` of `Extracted.text`."""

    offset: int
    label: str


@dataclass
class Extracted:
    """The text of one report as read from its file, whatever the format."""

    format: str
    text: str
    headings: list[Heading] = field(default_factory=list)
    pages: list[PageStart] = field(default_factory=list)
    #: What the file says about itself: title, creation_date (ISO), author, ... (all optional)
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}. Currently, it is {self.format!r}")

    def page_at(self, offset: int) -> str:
        """The label of the page holding character `offset` of `text` ('' without a page map)."""
        return page_at(self.pages, offset)

    def pages_json(self) -> list[list]:
        return [[p.offset, p.label] for p in self.pages]


def page_at(pages: list[PageStart], offset: int) -> str:
    if not pages:
        return ""
    i = bisect_right([p.offset for p in pages], offset) - 1
    return pages[max(i, 0)].label


def detect_format(data: bytes) -> str:
    """The format of a file from its first bytes; raises ReportError for anything unreadable."""
    head = data[:4096]
    if not data.strip():
        raise ReportError("the file is empty")
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "docx"  # the DOCX reader checks the members, and names other zip files (xlsx, odt)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise ReportError("it is an old binary Office file (.doc or .xls); save it as DOCX or PDF and add that")
    if head.startswith(b"{\\rtf"):
        raise ReportError("it is an RTF document; save it as DOCX or PDF and add that")
    if head[:8] in (b"\x89PNG\r\n\x1a\n",) or head[:3] == b"\xff\xd8\xff" or head[:4] in (b"GIF8", b"II*\x00",
                                                                                             b"MM\x00*"):
        raise ReportError("it is an image, not a report with text; add the report as PDF, DOCX, HTML or text")
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReportError("it is a binary file of an unknown kind, not PDF, DOCX, HTML or text")
    text = decode_text(data[:65536], partial=True)
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if lowered.startswith(("<!doctype html", "<html", "<?xml")) and "<html" in lowered[:2048] \
            or re.search(r"<(html|body|head)\b", lowered[:2048]):
        return "html"
    if re.search(r"^#{1,6}[ ]+\S", text, re.MULTILINE) or re.search(r"^\*\*[^*\n]+\*\*$", text, re.MULTILINE):
        return "markdown"
    return "text"


def check_name(path: Path, fmt: str) -> None:
    """Refuse a file whose name claims another format than its content (a mistake worth a look)."""
    claimed = _EXTENSIONS.get(path.suffix.lower())
    if claimed is not None and fmt not in claimed:
        raise ReportError(f"its name ends in {path.suffix} but its content is {FORMAT_NAMES[fmt]}, not "
                          f"{FORMAT_NAMES[sorted(claimed)[0]]}. Check it is the file you meant; if it is, rename "
                          f"it to end in .{_suffix(fmt)} and add it again")


def _suffix(fmt: str) -> str:
    return {"markdown": "md", "text": "txt"}.get(fmt, fmt)


def decode_text(data: bytes, partial: bool = False) -> str:
    """Bytes of a text file as str: UTF-8 (with or without BOM) or UTF-16 with BOM, else Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace" if partial else "strict")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if partial and exc.start >= len(data) - 4:  # a character cut by the 64 KB sample
            return data[: exc.start].decode("utf-8-sig")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise ReportError("it is neither UTF-8 nor Windows-1252 text") from None


def read_report(path: Path, password: str | None = None, max_bytes: int = MAX_REPORT_BYTES,
                check_extension: bool = True) -> Extracted:
    """Read a report file of any supported format; raises ReportError naming the problem."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ReportError(f"{path}: cannot read it ({exc.strerror})") from None
    if not path.is_file():
        raise ReportError(f"{path}: not a file")
    if size > max_bytes:
        raise ReportError(f"{path.name}: {size / 2**20:.1f} MB is over the limit of {max_bytes / 2**20:.0f} MB "
                          "(QA_MAX_REPORT_MB)")
    data = path.read_bytes()
    try:
        return read_bytes(data, path.name if check_extension else "", password)
    except ReportError as exc:
        raise ReportError(f"{path.name}: {exc}") from None


def read_bytes(data: bytes, name: str = "", password: str | None = None) -> Extracted:
    """Read a report from its bytes; `name` (if given) is checked against the detected format."""
    fmt = detect_format(data)
    if name:
        check_name(Path(name), fmt)
    if fmt == "pdf":
        from qa.readers.pdf import read_pdf

        doc = read_pdf(data, password)
    elif fmt == "docx":
        from qa.readers.docx import read_docx

        doc = read_docx(data)
    elif fmt == "html":
        from qa.readers.html import read_html

        doc = read_html(data)
    else:
        from qa.readers.text import read_text

        doc = read_text(data, fmt)
    if len(re.findall(r"\w+", doc.text)) < 20:
        raise ReportError(f"it holds no report text ({len(doc.text.split())} words found): "
                          "an empty document cannot be added")
    return doc


def markdown_from_blocks(blocks: list[tuple[int, str, str]], fmt: str, metadata: dict | None = None
                         ) -> Extracted:
    """Assemble `Extracted` from (heading level or 0, text, page label) blocks, in reading order.

    Headings are written as `#` lines; body blocks as paragraphs; a page map is kept when the
    blocks carry page labels.
    """
    parts: list[str] = []
    headings: list[Heading] = []
    pages: list[PageStart] = []
    pos = 0
    for level, text, page in blocks:
        text = text.strip()
        if not text:
            continue
        if level:
            text = " ".join(text.split())
            line = "#" * level + " " + text
            offset_of_title = pos + level + 1
        else:
            line = text
            offset_of_title = pos
        if page and (not pages or pages[-1].label != page):
            pages.append(PageStart(pos, page))
        if level:
            headings.append(Heading(level, text, offset_of_title, page))
        parts.append(line)
        pos += len(line) + 2
    return Extracted(fmt, "\n\n".join(parts) + "\n", headings, pages, dict(metadata or {}))
