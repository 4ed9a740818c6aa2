"""Word (DOCX) reports, read with python-docx: paragraphs and tables in order, heading styles as levels.

A DOCX is a zip file. Before anything is unpacked, the sizes its members declare are checked, so
a "zip bomb" (a small file that unpacks to hundreds of megabytes) is refused in bounded memory.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile

from qa.errors import ReportError
from qa.readers import MAX_UNPACKED_BYTES, Extracted, markdown_from_blocks

log = logging.getLogger(__name__)

_HEADING = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def check_zip(data: bytes, limit: int = MAX_UNPACKED_BYTES) -> zipfile.ZipFile:
    """Open a zip file only if it is a Word document whose members unpack to less than `limit` bytes."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        members = zf.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ReportError(f"it is damaged (not a complete DOCX/zip file: {exc})") from None
    names = {m.filename for m in members}
    if "word/document.xml" not in names:
        kind = ("an Excel workbook" if any(n.startswith("xl/") for n in names) else
                "a PowerPoint presentation" if any(n.startswith("ppt/") for n in names) else
                "an OpenDocument file (save it as DOCX or PDF)" if "mimetype" in names else "a zip archive")
        raise ReportError(f"it is {kind}, not a Word document")
    total = sum(m.file_size for m in members)
    if total > limit or len(members) > 10_000:
        raise ReportError(f"it would unpack to {total / 2**20:,.0f} MB in {len(members)} parts (limit "
                          f"{limit / 2**20:,.0f} MB): refused as a possible zip bomb")
    for m in members:
        if m.file_size > 50 * 1024 * 1024 and m.file_size > 200 * max(1, m.compress_size):
            raise ReportError(f"its part {m.filename} is compressed {m.file_size // max(1, m.compress_size):,} "
                              "times: refused as a possible zip bomb")
    if any(m.flag_bits & 0x1 for m in members):
        raise ReportError("it is encrypted (password-protected Word files cannot be read); remove the password "
                          "in Word and add it again")
    return zf


def read_docx(data: bytes) -> Extracted:
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ReportError("it is an encrypted or old-format Word file; save it as DOCX without a password")
    check_zip(data)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several kinds for a broken package
        raise ReportError(f"it is damaged or not a valid Word document ({type(exc).__name__}: {exc})") from None
    blocks: list[tuple[int, str, str]] = []
    bold: list[bool] = []
    for child in document.element.body.iterchildren():
        if child.tag == _W + "p":
            para = Paragraph(child, document)
            text = para.text.strip()
            if not text:
                continue
            level = _level(para)
            blocks.append((level, text if level else _list_prefix(child) + text, ""))
            runs = [r for r in para.runs if r.text.strip()]
            bold.append(bool(runs) and all(r.bold for r in runs))
        elif child.tag == _W + "tbl":
            for row in Table(child, document).rows:
                cells = []
                for cell in row.cells:
                    t = " ".join(cell.text.split())
                    if t and (not cells or cells[-1] != t):  # merged cells repeat their text
                        cells.append(t)
                if cells:
                    blocks.append((0, " | ".join(cells), ""))
                    bold.append(False)
    if not any(level for level, _, _ in blocks):
        blocks = _bold_headings(blocks, bold)
    blocks = _drop_title_block(blocks)
    props = document.core_properties
    metadata = {"title": (props.title or "").strip(), "author": (props.author or "").strip()}
    if props.created:
        metadata["creation_date"] = props.created.date().isoformat()
    return markdown_from_blocks(blocks, "docx", {k: v for k, v in metadata.items() if v})


def _level(para) -> int:
    """Heading level of a paragraph: a "Heading N" style (or one based on it), or an outline level."""
    ppr = para._p.find(_W + "pPr")
    own = _outline_level(ppr)
    if own is not None:
        return own
    style = para.style
    for _ in range(10):  # the style, then the styles it is based on
        if style is None:
            break
        name = style.name or ""
        m = _HEADING.match(name)
        if m:
            return int(m.group(1))
        if name.lower() == "title":
            return 1
        level = _outline_level(style.element.find(_W + "pPr"))
        if level is not None:
            return level
        style = style.base_style
    return 0


def _outline_level(ppr) -> int | None:
    """w:outlineLvl (0-8; 9 means body text) as a heading level 1-6."""
    if ppr is None:
        return None
    lvl = ppr.find(_W + "outlineLvl")
    if lvl is None:
        return None
    try:
        value = int(lvl.get(_W + "val"))
    except (TypeError, ValueError):
        return None
    return min(6, value + 1) if 0 <= value < 9 else None


def _bold_headings(blocks: list[tuple[int, str, str]], bold: list[bool]) -> list[tuple[int, str, str]]:
    """Without any heading style, short paragraphs that are bold throughout are the headings."""
    out = []
    for (level, text, page), is_bold in zip(blocks, bold):
        if not level and is_bold and len(text) <= 120 and not re.search(r"[.,;:]$", text) and not text.startswith("- "):
            level = 2
        out.append((level, text, page))
    return out


def _list_prefix(p) -> str:
    ppr = p.find(_W + "pPr")
    return "- " if ppr is not None and ppr.find(_W + "numPr") is not None else ""


def _drop_title_block(blocks: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """A document title printed right before a first heading of the same words is one heading."""
    if len(blocks) >= 2 and blocks[0][0] and blocks[1][0] and " ".join(blocks[0][1].split()).lower() == \
            " ".join(blocks[1][1].split()).lower():
        return blocks[1:]
    return blocks
