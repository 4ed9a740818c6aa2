"""Web pages (HTML), read with lxml: `h1`-`h6` as headings, navigation, headers and footers left out.

Only the page's main content is read when it says where that is (`<main>`, `role="main"` or a
single `<article>`); scripts, styles, forms, `nav`, `header`, `footer` and `aside` never count as
report text.
"""

from __future__ import annotations

import re

from qa.errors import ReportError
from qa.readers import Extracted, decode_text, markdown_from_blocks

_SKIP = {"script", "style", "noscript", "template", "nav", "footer", "header", "aside", "form", "button",
         "select", "svg", "iframe", "head", "title", "meta", "link"}
_SKIP_ROLES = {"navigation", "contentinfo", "banner", "search", "complementary"}
_BLOCKS = {"p", "div", "section", "article", "main", "li", "blockquote", "pre", "td", "th", "tr", "table",
           "ul", "ol", "dl", "dt", "dd", "figure", "figcaption", "caption", "body", "br", "hr", "address"}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}


def read_html(data: bytes) -> Extracted:
    import lxml.etree
    import lxml.html

    text = decode_text(data)
    try:
        root = lxml.html.document_fromstring(text.encode("utf-8"),
                                             parser=lxml.html.HTMLParser(encoding="utf-8", huge_tree=False))
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ReportError(f"it is not a readable web page ({exc})") from None
    title = " ".join((root.findtext(".//title") or "").split())
    mains = root.xpath("//main | //*[@role='main']") or root.xpath("//article")
    top = mains[0] if len(mains) == 1 else root
    blocks: list[tuple[int, str, str]] = []
    buf: list[str] = []
    prefix = [""]

    def flush() -> None:
        t = " ".join("".join(buf).split())
        if t:
            blocks.append((0, prefix[0] + t, ""))
        buf.clear()
        prefix[0] = ""

    def walk(el) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        tag = tag.lower()
        if not tag:  # comments, processing instructions
            if el.tail:
                buf.append(el.tail)
            return
        if tag in _SKIP or (el.get("role") or "").lower() in _SKIP_ROLES or el.get("hidden") is not None \
                or re.search(r"display:\s*none", el.get("style") or ""):
            if el.tail:
                buf.append(el.tail)
            return
        if tag in _HEADINGS:
            flush()
            heading = " ".join(el.text_content().split())
            if heading:
                blocks.append((_HEADINGS[tag], heading, ""))
        else:
            block = tag in _BLOCKS
            if block:
                flush()
                if tag == "li":
                    prefix[0] = "- "
            if el.text:
                buf.append(el.text)
            for child in el:
                walk(child)
            if block:
                flush()
            elif tag in ("td", "th"):
                buf.append(" | ")
        if el.tail:
            buf.append(el.tail)

    walk(top)
    flush()
    if len(blocks) >= 2 and blocks[0][0] and blocks[1][0] and blocks[0][1].lower() == blocks[1][1].lower():
        blocks = blocks[1:]
    return markdown_from_blocks(blocks, "html", {"title": title} if title else {})
