"""Plain text and Markdown reports: the text is kept exactly as written.

The corpus's section parser already understands Markdown `#` headings, bold-line headings and
the bare headings of text extracted from PDFs, so this reader only decodes the bytes.
"""

from __future__ import annotations

from qa.readers import Extracted, decode_text


def read_text(data: bytes, fmt: str = "text") -> Extracted:
    text = decode_text(data)
    return Extracted(fmt, text)
