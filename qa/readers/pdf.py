"""PDF reports, read with pdfium (pypdfium2): text lines with their font, outline, page labels.

Headings come from the outline (bookmarks) where its entries' titles are printed on the pages
they point to; entries that appear on no page (a mistitled outline) are dropped. Without a
usable outline, headings are the short lines set in a larger, bolder or different font from the
body text. Running headers and footers (the same line at the top or bottom of most pages) and
bare page numbers are left out. Lines are joined into paragraphs by the gaps between them.

pdfium is not thread-safe: every call into it happens under one process-wide lock.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass

from qa.errors import ReportError
from qa.readers import MAX_PAGES, Extracted, Heading, PageStart

log = logging.getLogger(__name__)

PDFIUM_LOCK = threading.Lock()
_SOFT_HYPHENS = "\x02\ufffe\u00ad"
_BULLET = re.compile(r"^[\u2022\u25e6\u25aa\u25cf\u2023\u2043\u2219\uf0b7\uf0a7\u25a0\u25a1]\s*")
_LIST_ITEM = re.compile(r"^(\d{1,2}|[a-z]|[ivx]{1,4})[.)]\s+\S")
_TERMINAL = re.compile(r"""[.!?:;]['"\u201d\u2019)\]]*$""")
_SECTION_NUMBER = re.compile(r"^(\d+(\.\d+)*\.?|[A-Z]\.|[IVX]+\.)\s+")
_ERRORS = {1: "it could not be read (pdfium: unknown error)", 2: "the file could not be opened",
           3: "it is damaged (not a complete PDF: truncated or corrupted)",
           4: "it is encrypted and needs a password (give it with --password)",
           5: "it uses an encryption scheme that cannot be opened here",
           6: "it is damaged (a page is unreadable)"}


@dataclass
class _Line:
    text: str
    page: int
    size: float
    font: str
    bold: bool
    italic: bool
    x: float
    y: float  # baseline, from the bottom of the page
    kind: str = "body"  # body | heading | drop
    level: int = 0

    @property
    def style(self) -> tuple:
        return (round(self.size), self.font.split("-")[0].split(",")[0], self.bold, self.italic)


def norm(text: str) -> str:
    """Text for comparing titles: NFKC, no soft hyphens, quotes unified, lower case, single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(f"[{_SOFT_HYPHENS}]", "-", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.lower().split())


def read_pdf(data: bytes, password: str | None = None) -> Extracted:
    """Read a PDF from bytes. Raises ReportError for encrypted, damaged or text-less files."""
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data, password=password)
        except pdfium.PdfiumError as exc:
            code = getattr(exc, "err_code", None)
            if code == 4 and password:
                raise ReportError("the password given does not open it") from None
            raise ReportError(_ERRORS.get(code, f"it could not be read ({exc})")) from None
        try:
            return _read(pdf)
        finally:
            pdf.close()


def _read(pdf) -> Extracted:
    import pypdfium2.raw as raw

    n = len(pdf)
    if n == 0:
        raise ReportError("it has no pages")
    if n > MAX_PAGES:
        raise ReportError(f"it has {n} pages; the limit is {MAX_PAGES}")
    labels = [_page_label(pdf, raw, i) or str(i + 1) for i in range(n)]
    lines: list[_Line] = []
    chars = 0
    empty_pages = 0
    for i in range(n):
        page = pdf[i]
        tp = page.get_textpage()
        try:
            page_lines, count = _page_lines(tp, raw, i)
        finally:
            tp.close()
            page.close()
        chars += count
        empty_pages += count == 0
        lines.extend(page_lines)
    found = sum(len(re.findall(r"\w+", ln.text)) for ln in lines)
    if chars == 0 or found < 20:
        where = "its pages are images only" if chars == 0 else f"only {found} words on {n} pages"
        raise ReportError(f"no text layer: is it a scan? ({where}); add a version with text "
                          "(run OCR first, or ask the publisher for the original)")
    meta = pdf.get_metadata_dict(skip_empty=True)
    metadata = {k.lower(): v.strip() for k, v in meta.items() if isinstance(v, str) and v.strip()}
    if "creationdate" in metadata:
        metadata["creation_date"] = _pdf_date(metadata.pop("creationdate"))
    metadata = {"creation_date" if k == "creation_date" else k: v for k, v in metadata.items() if v}
    _drop_running_lines(lines, n)
    _drop_repeated_title(lines)
    outline = _outline(pdf)
    used = _headings_from_outline(lines, outline) if outline else 0
    if outline and used == 0:
        log.info("none of the %d outline entries is printed on its page; finding headings from fonts", len(outline))
    if not used:
        _headings_from_fonts(lines)
    doc = _assemble(lines, labels)
    doc.metadata = metadata
    if empty_pages:
        doc.warnings.append(f"{empty_pages} of {n} pages have no text (images only?); their content is not read")
    doc.metadata["pages"] = str(n)
    doc.metadata["outline"] = "yes" if used else "no"
    return doc


def _page_label(pdf, raw, i: int) -> str:
    size = raw.FPDF_GetPageLabel(pdf, i, None, 0)
    if size <= 2:
        return ""
    buf = ctypes.create_string_buffer(size)
    raw.FPDF_GetPageLabel(pdf, i, buf, size)
    return buf.raw[: size - 2].decode("utf-16-le", errors="replace").strip()


def _pdf_date(value: str) -> str:
    m = re.match(r"D?:?(\d{4})(\d{2})?(\d{2})?", value)
    if not m:
        return ""
    return "-".join(g for g in m.groups() if g)


def _page_lines(tp, raw, page: int) -> tuple[list[_Line], int]:
    count = tp.count_chars()
    if count <= 0:
        return [], 0
    text = tp.get_text_range(0, count)
    aligned = len(text) == count  # one character per pdfium char index: styles can be looked up
    out = []
    pos = 0
    name = ctypes.create_string_buffer(128)
    flags = ctypes.c_int()
    x, y = ctypes.c_double(), ctypes.c_double()
    visible = 0
    for line in re.split(r"\r\n|\r|\n", text):
        start = pos
        pos += len(line) + (2 if text[pos + len(line): pos + len(line) + 2] == "\r\n" else 1)
        stripped = line.strip()
        if not stripped:
            continue
        visible += len(stripped)
        i = start + len(line) - len(line.lstrip())
        if aligned:
            size = raw.FPDFText_GetFontSize(tp, i)
            raw.FPDFText_GetFontInfo(tp, i, name, 128, ctypes.byref(flags))
            font = name.value.decode("latin-1")
            raw.FPDFText_GetCharOrigin(tp, i, x, y)
            lower = font.lower()
            bold = any(w in lower for w in ("bold", "black", "heavy", "semibold", "demi")) or bool(flags.value & 0x40000)
            italic = "italic" in lower or "oblique" in lower or bool(flags.value & 0x40)
            out.append(_Line(line.rstrip(), page, float(size), font.split("+")[-1], bold, italic, x.value, y.value))
        else:
            out.append(_Line(line.rstrip(), page, 0.0, "", False, False, 0.0, 0.0))
    return out, visible


def _drop_running_lines(lines: list[_Line], pages: int) -> None:
    """Leave out page numbers and headers/footers repeated at the top or bottom of most pages.

    A running line is the same text at a page's edge (first or last two lines) on at least half
    the pages, or a "Page 3 of 20" line; a heading that starts each page ("Part 1", "Part 2") is not.
    """
    by_page: dict[int, list[_Line]] = {}
    for ln in lines:
        by_page.setdefault(ln.page, []).append(ln)

    def edges(page_lines: list[_Line]) -> list[_Line]:
        return list({id(x): x for x in page_lines[:2] + page_lines[-2:]}.values())

    exact, numbered = Counter(), Counter()
    for page_lines in by_page.values():
        for ln in edges(page_lines):
            exact[norm(ln.text)] += 1
            numbered[re.sub(r"\d+", "#", norm(ln.text))] += 1
    least = max(3, 0.5 * pages)
    for page_lines in by_page.values():
        for ln in edges(page_lines):
            text = norm(ln.text)
            key = re.sub(r"\d+", "#", text)
            if pages >= 3 and (exact[text] >= least or "page" in key.split() and numbered[key] >= least) \
                    or re.fullmatch(r"(page\s*)?#(\s*(of|/)\s*#)?|-\s*#\s*-", key):
                ln.kind = "drop"


def _outline(pdf) -> list[tuple[int, str, int]]:
    out = []
    try:
        for item in pdf.get_toc(max_depth=8):
            dest = item.get_dest()
            index = dest.get_index() if dest is not None else None
            title = (item.get_title() or "").strip()
            if index is not None and title:
                out.append((item.level, title, index))
    except Exception as exc:  # a broken outline is no reason to refuse the text
        log.info("outline unreadable (%s); finding headings from fonts", exc)
        return []
    return out


def _headings_from_outline(lines: list[_Line], outline: list[tuple[int, str, int]]) -> int:
    """Mark the lines that print each outline title on its page; return how many entries matched."""
    by_page: dict[int, list[int]] = {}
    for i, ln in enumerate(lines):
        if ln.kind != "drop":
            by_page.setdefault(ln.page, []).append(i)
    matched = 0
    base = min(level for level, _, _ in outline)
    cursor: dict[int, int] = {}  # on each page, search after the previous match
    for level, title, page in outline:
        want = norm(title)
        want_bare = _SECTION_NUMBER.sub("", want)
        idx = by_page.get(page, [])
        found = None
        for k in range(cursor.get(page, 0), len(idx)):
            got = ""
            for m in range(k, min(k + 4, len(idx))):
                got = (got + " " + norm(lines[idx[m]].text)).strip()
                bare = _SECTION_NUMBER.sub("", got)
                if got == want or bare == want_bare or got.replace("- ", "-") == want:
                    found = (k, m)
                    break
                if not (want.startswith(got) or want_bare.startswith(bare)):
                    break
            if found:
                break
        if not found:
            continue
        k, m = found
        first = lines[idx[k]]
        first.kind, first.level, first.text = "heading", min(6, level - base + 1), title.strip()
        for extra in idx[k + 1 : m + 1]:
            lines[extra].kind = "drop"
        cursor[page] = m + 1
        matched += 1
    return matched


def _drop_repeated_title(lines: list[_Line]) -> None:
    """A title printed twice at the top (a title block, then the first heading) is read once.

    Either copy may wrap over up to three lines: the first of two identical runs of lines at the
    top of the first page is dropped, before headings are looked for.
    """
    content = [ln for ln in lines if ln.kind != "drop" and ln.page == lines[0].page][:12]
    for start in range(0, 4):
        for k in (1, 2, 3):
            for m in (1, 2, 3):
                first = content[start : start + k]
                second = content[start + k : start + k + m]
                if len(first) == k and len(second) == m and \
                        norm(" ".join(ln.text for ln in first)) == norm(" ".join(ln.text for ln in second)):
                    for ln in first:
                        ln.kind = "drop"
                    return


def _headings_from_fonts(lines: list[_Line]) -> None:
    """Short lines set apart from the body by size, weight or font become headings, ranked by style."""
    usable = [ln for ln in lines if ln.kind != "drop" and ln.size > 0]
    if not usable:
        return
    weight = Counter()
    for ln in usable:
        weight[ln.style] += len(ln.text)
    body = weight.most_common(1)[0][0]
    total = sum(weight.values())
    body_size = body[0]

    def distinct(style: tuple) -> bool:
        if style == body or weight[style] > 0.15 * total:
            return False
        size, family, bold, italic = style
        return size >= body_size + 1 or (size >= body_size - 0.5 and (bold and not body[2] or family != body[1]
                                                                        and not italic or italic and family != body[1]))

    # group consecutive lines of one style on one page: a heading may wrap over two or three lines
    groups: list[list[_Line]] = []
    for ln in usable:
        if groups and groups[-1][-1].style == ln.style and groups[-1][-1].page == ln.page \
                and 0 < groups[-1][-1].y - ln.y <= 1.6 * max(ln.size, 1):
            groups[-1].append(ln)
        else:
            groups.append([ln])
    candidates = []
    for g in groups:
        text = " ".join(x.text.strip() for x in g)
        if not distinct(g[0].style) or len(g) > 3 or len(text) > 160 or len(text) < 2:
            continue
        if re.search(r"[.,;]$", text) or not (text[0].isupper() or text[0].isdigit()) or re.fullmatch(r"[\d\s.]+", text):
            continue
        candidates.append(g)
    styles = sorted({g[0].style for g in candidates}, key=lambda s: (-s[0], not s[2], s[3]))
    rank = {s: min(6, i + 1) for i, s in enumerate(styles)}
    for g in candidates:
        g[0].kind, g[0].level = "heading", rank[g[0].style]
        g[0].text = " ".join(x.text.strip() for x in g)
        for extra in g[1:]:
            extra.kind = "drop"
    # the top style used once, for the title block above a first heading of the same words, is gone now:
    # close the gap so the first level is 1
    levels = sorted({ln.level for ln in lines if ln.kind == "heading"})
    remap = {lv: i + 1 for i, lv in enumerate(levels)}
    for ln in lines:
        if ln.kind == "heading":
            ln.level = remap[ln.level]


def _assemble(lines: list[_Line], labels: list[str]) -> Extracted:
    """Lines into Markdown text: headings as `#` lines, paragraphs from the gaps between lines."""
    out: list[str] = []  # pieces of the final text
    pos = 0
    pages: list[PageStart] = []
    headings: list[Heading] = []
    prev: _Line | None = None
    in_paragraph = False

    def emit(piece: str) -> None:
        nonlocal pos
        out.append(piece)
        pos += len(piece)

    for ln in lines:
        if ln.kind == "drop":
            continue
        label = labels[ln.page]
        text = unicodedata.normalize("NFKC", ln.text.strip())
        text = _BULLET.sub("- ", text)
        if ln.kind == "heading":
            if out:
                emit("\n\n")
            if not pages or pages[-1].label != label:
                pages.append(PageStart(pos, label))
            title = re.sub(f"[{_SOFT_HYPHENS}]", "-", " ".join(text.split()))
            emit("#" * ln.level + " ")
            headings.append(Heading(ln.level, title, pos, label))
            emit(title)
            prev, in_paragraph = ln, False
            continue
        new_paragraph = (not in_paragraph or prev is None or _BULLET.match(ln.text.strip()) is not None
                         or _LIST_ITEM.match(ln.text.strip()) is not None or _paragraph_break(prev, ln))
        ends_soft = bool(out) and out[-1] and out[-1][-1] in _SOFT_HYPHENS
        if ends_soft:  # a word hyphenated at the line end: re-join it
            out[-1] = out[-1][:-1]
            pos -= 1
            new_paragraph = False
        if not pages or pages[-1].label != label:
            if out and not new_paragraph and not ends_soft:
                emit(" ")
            pages.append(PageStart(pos if new_paragraph is False else pos + (2 if out else 0), label))
            if new_paragraph and out:
                emit("\n\n")
            emit(_soft(text))
        else:
            if new_paragraph:
                if out:
                    emit("\n\n")
            elif not ends_soft:
                emit(" ")
            emit(_soft(text))
        prev, in_paragraph = ln, True
    text = "".join(out).rstrip() + "\n"
    return Extracted("pdf", text, headings, pages)


def _soft(text: str) -> str:
    """Soft-hyphen markers inside a line are real hyphens; the one at the end is kept to re-join the word."""
    if not text:
        return text
    body, last = text[:-1], text[-1]
    return re.sub(f"[{_SOFT_HYPHENS}]", "-", body) + ("\x02" if last in _SOFT_HYPHENS else last)


def _paragraph_break(prev: _Line, ln: _Line) -> bool:
    if prev.kind == "heading":
        return True
    if prev.page != ln.page:  # across a page: a sentence left open continues
        return bool(_TERMINAL.search(prev.text.rstrip("\x02"))) and not ln.text[:1].islower()
    if ln.size == 0 or prev.size == 0:
        return bool(_TERMINAL.search(prev.text)) and not ln.text[:1].islower()
    gap = prev.y - ln.y
    if gap < 0 or gap > 1.5 * max(prev.size, ln.size):
        return True  # a new column, or more space than a line's
    if ln.style != prev.style and abs(ln.size - prev.size) >= 1:
        return True
    return False
