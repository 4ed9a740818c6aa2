"""Chunks: sections cut into passages that fit the embedding model, with their source spans.

Sizes are counted in the embedding model's own word pieces, so no chunk is ever truncated by the
model: the text that is embedded (document title and section path, then the chunk) must fit in
`max_tokens`, special tokens included. Long sections are split at paragraph, then sentence, then
clause boundaries by langchain-text-splitters.

Reports repeat each other (a quality statement published alone and inside the full assessment):
`mark_duplicates` links chunks of different documents that carry the same text, so the retriever
can return one of them and say where else it appears.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace

from qa.corpus import Document, page_range, strip_markup
from qa.sections import parse_sections

PATH_SEP = " \u203a "  # " › "
_SEPARATORS = ["\n\n", "\n", r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])", r"(?<=;)\s+", r"(?<=,)\s+", " "]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One passage of one report, the unit that is indexed and cited.

    Slots, and a section path shared by the chunks of one section (`from_json`'s `shared`), keep a
    loaded chunk at 1.16 KB instead of 1.48 (the five reports' 273 chunks, measured with tracemalloc;
    about 0.3 GB less at 1M chunks)."""

    doc_id: str
    ordinal: int  # position in the document, from 0
    section_path: tuple[str, ...]  # (document short title, heading, sub-heading, ...)
    text: str
    start: int  # [start, end) character span in the source file
    end: int
    line_start: int  # 1-based, inclusive
    line_end: int
    score: str = ""  # indicative score of the quality statement it belongs to
    duplicate_of: str = ""  # chunk_id of the copy that stands for this one in results
    chunk_id: str = field(default="")
    page_start: str = ""  # page labels, for a report added from a PDF
    page_end: str = ""

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError(f"chunk {self.ordinal} of {self.doc_id} has no text")
        if not (0 <= self.start <= self.end and 1 <= self.line_start <= self.line_end):
            raise ValueError(f"chunk {self.ordinal} of {self.doc_id} has a bad span {self.start}-{self.end}")
        if not self.chunk_id:
            digest = hashlib.sha256(f"{self.doc_id}\0{self.start}\0{self.text}".encode()).hexdigest()[:16]
            object.__setattr__(self, "chunk_id", f"{self.doc_id[:3]}-{digest}")

    @property
    def section(self) -> str:
        """The heading path below the document title, e.g. "Theme 3: ... › Safeguarding"."""
        return PATH_SEP.join(self.section_path[1:])

    @property
    def heading_text(self) -> str:
        return PATH_SEP.join(self.section_path)

    def indexed_text(self, contextual: bool) -> str:
        """The text given to the embedding model and to BM25."""
        return f"{self.heading_text}\n{self.text}" if contextual else self.text

    def to_json(self) -> dict:
        return {"chunk_id": self.chunk_id, "doc_id": self.doc_id, "ordinal": self.ordinal,
                "section_path": list(self.section_path), "text": self.text, "start": self.start,
                "end": self.end, "line_start": self.line_start, "line_end": self.line_end,
                "score": self.score, "duplicate_of": self.duplicate_of,
                **({"page_start": self.page_start, "page_end": self.page_end} if self.page_start else {})}

    @classmethod
    def from_json(cls, data: dict, shared: dict | None = None) -> Chunk:
        """A chunk from `to_json`'s dict; `shared` (a dict kept across the chunks read) makes equal
        section paths and report ids one object."""
        path, doc_id = tuple(data["section_path"]), data["doc_id"]
        if shared is not None:
            path = shared.setdefault(path, path)
            doc_id = shared.setdefault(doc_id, doc_id)
        return cls(**{**data, "section_path": path, "doc_id": doc_id})


class Chunker:
    """Cuts documents into chunks sized in a tokenizer's tokens.

    Args:
        count_tokens: counts a text's tokens as the model sees it, special tokens included.
        max_tokens: the model's limit; the indexed text of every chunk fits it.
        chunk_tokens: the largest chunk body wanted (smaller where the heading needs room).
        overlap_tokens: tokens shared by neighbouring chunks of one section.
        contextual: whether the indexed text carries the heading path.
    """

    def __init__(self, count_tokens, max_tokens: int, chunk_tokens: int, overlap_tokens: int,
                 contextual: bool = True) -> None:
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.contextual = contextual

    def _body_tokens(self, text: str) -> int:
        return max(0, self.count_tokens(text) - 2)  # without [CLS] and [SEP]

    def chunk_document(self, doc: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in parse_sections(doc.text, doc.info.short_title):
            section = _without_title(section, doc.info.title)
            body = strip_markup(section.body).strip()
            if not body.text:
                continue
            heading = PATH_SEP.join(section.path) + "\n" if self.contextual else ""
            budget = min(self.chunk_tokens, self.max_tokens - self.count_tokens(heading))
            if budget < 32:
                raise ValueError(f"the heading of {doc.doc_id} › {section.heading} leaves no room in "
                                 f"{self.max_tokens} tokens; raise the model limit or shorten the path")
            for piece_start, piece_end in self._split(body.text, budget):
                piece = body.slice(piece_start, piece_end)
                start, end = piece.source_span()
                first_page, last_page = page_range(doc.pages, start, end)
                chunks.append(Chunk(doc.doc_id, len(chunks), section.path, _tidy(piece.text), start, end,
                                    doc.line_of(start), doc.line_of(max(start, end - 1)), section.score,
                                    page_start=first_page, page_end=last_page))
        return chunks

    def _split(self, text: str, budget: int) -> list[tuple[int, int]]:
        """[start, end) spans of `text`, each fitting `budget` tokens with the heading."""
        from langchain_text_splitters import RecursiveCharacterTextSplitter  # imported when indexing only

        splitter = RecursiveCharacterTextSplitter(
            separators=_SEPARATORS, is_separator_regex=True, keep_separator="end",
            chunk_size=budget, chunk_overlap=min(self.overlap_tokens, budget // 4),
            length_function=self._body_tokens, strip_whitespace=True)
        spans = []
        cursor = 0
        for piece in splitter.split_text(text):
            found = text.find(piece, max(0, cursor - len(piece)))
            if found < 0:
                found = text.find(piece)
            if found < 0:
                raise ValueError(f"split piece not found in its section: {piece[:60]!r}")
            spans.append((found, found + len(piece)))
            cursor = found + len(piece)
        return spans

    def fits(self, chunk: Chunk) -> bool:
        return self.count_tokens(chunk.indexed_text(self.contextual)) <= self.max_tokens


def _without_title(section, title: str):
    """A heading that is the report's own title (a PDF's or Word file's first heading) is not a section:
    it would only repeat the title at the head of every path; the citation names the report already."""
    if len(section.path) > 1 and " ".join(section.path[1].split()).casefold() == " ".join(title.split()).casefold():
        return replace(section, path=(section.path[0], *section.path[2:]))
    return section


def _tidy(text: str) -> str:
    """Readable chunk text: single spaces inside lines, at most one blank line."""
    text = re.sub(r"[ ]{2,}", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def mark_duplicates(chunks: list[Chunk], canonical_order: list[str], threshold: float = 0.8) -> list[Chunk]:
    """Link chunks of different documents whose text is (nearly) the same.

    A chunk is a duplicate when at least `threshold` of its word 5-grams occur in one chunk of
    another document. The copy from the document listed first in `canonical_order` (the fuller
    report) stands for the group; the others point at it through `duplicate_of`.
    """
    rank = {doc_id: i for i, doc_id in enumerate(canonical_order)}
    grams = [_shingles(c.text) for c in chunks]
    by_gram: dict[tuple[str, ...], set[int]] = {}
    for i, gs in enumerate(grams):
        for g in gs:
            by_gram.setdefault(g, set()).add(i)
    out = list(chunks)
    for i, c in enumerate(chunks):
        counts: dict[int, int] = {}
        for g in grams[i]:
            for j in by_gram[g]:
                if chunks[j].doc_id != c.doc_id:
                    counts[j] = counts.get(j, 0) + 1
        best = max(counts, key=lambda j: (counts[j] / max(1, min(len(grams[i]), len(grams[j]))), -j), default=None)
        if best is None:
            continue
        overlap = counts[best] / max(1, min(len(grams[i]), len(grams[best])))
        if overlap >= threshold and rank.get(chunks[best].doc_id, 99) < rank.get(c.doc_id, 99):
            out[i] = replace(c, duplicate_of=chunks[best].chunk_id)
    return out
