"""The library of reports: add a report as published, remove one, list them, keep the index current.

    from qa import Library
    lib = Library()                                   # corpus/ and index/ from the settings
    added = lib.add("cqc-assessment.pdf")             # read, metadata inferred, catalogue updated, index updated
    print(added.info.doc_id, added.inferred["date"])  # Inferred(value='2023-11-17', source='text, page 1: ...')
    lib.add("letter.docx", publisher="LGA", date="2016-12-02")  # override or supply what cannot be inferred
    lib.remove("005")                                 # a report's id, or its first digits
    for info in lib.list():
        print(info.doc_id, info.title)

The original file is kept in the corpus folder beside its extracted text (`NNN_hash.txt`, with its
headings as Markdown lines), and a PDF's page map beside both (`NNN_hash.pages.json`), so a
re-extraction gives the same text. Nothing is written until the report has been read and its
metadata settled; the catalogue is then replaced atomically (written to a temporary file and
renamed), so a failure at any point leaves corpus, catalogue and index as they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa.config import Settings
from qa.corpus import CATALOGUE_FILE, DocumentInfo, read_catalogue
from qa.errors import CorpusError, ReportError
from qa.metadata import (
    FIELDS,
    OPTIONS,
    Inferred,
    creation_date_hint,
    date_text,
    infer_metadata,
    normalise_doc_type,
    parse_date_option,
    publisher_for,
    short_title,
)
from qa.readers import FORMAT_NAMES, Extracted, read_report

log = logging.getLogger(__name__)

_SUFFIX = {"pdf": ".pdf", "docx": ".docx", "html": ".html"}
_PROMPTS = {"title": "Title", "council": "Council (e.g. Birmingham City Council)", "date": "Date (YYYY-MM-DD)",
            "doc_type": "Type (CQC assessment, self-assessment, peer challenge, other)", "publisher": "Publisher",
            "short_title": "Short title"}


class MetadataMissingError(ReportError):
    """A catalogue field could not be inferred and was not given."""


@dataclass
class IndexUpdate:
    """What updating the index did: its size, and how many texts were embedded anew."""

    chunks: int
    documents: int
    embedded: int
    cached: int
    seconds: float
    folder: str


@dataclass
class AddResult:
    """A report added to the library: its catalogue entry, how each value was found, the files written."""

    info: DocumentInfo
    inferred: dict[str, Inferred]
    files: list[str]
    extracted: Extracted
    replaced: DocumentInfo | None = None
    warnings: list[str] = field(default_factory=list)
    index: IndexUpdate | None = None


class Library:
    """The reports in the corpus folder, and the index built from them.

    Example:
        >>> lib = Library()
        >>> [i.doc_id for i in lib.list()][:2]
        ['000_b9058c46466f8e55', '001_c361ffa2229f1d7f']
    """

    def __init__(self, settings: Settings | None = None, encoder=None) -> None:
        self.settings = settings or Settings.from_env()
        self._encoder = encoder

    @property
    def corpus_dir(self) -> Path:
        return Path(self.settings.corpus_dir)

    def list(self) -> list[DocumentInfo]:
        return read_catalogue(self.corpus_dir)

    def find(self, doc_id: str) -> DocumentInfo:
        """The report with this id, or the only one whose id starts with it."""
        infos = self.list()
        exact = [i for i in infos if i.doc_id == doc_id]
        match = exact or [i for i in infos if doc_id and i.doc_id.startswith(doc_id)]
        if len(match) != 1:
            known = ", ".join(i.doc_id for i in infos)
            what = "No report has" if not match else f"{len(match)} reports match"
            raise ReportError(f"{what} id {doc_id!r}. Known ids: {known}")
        return match[0]

    # -- adding --------------------------------------------------------------------------------
    def read(self, path: str | Path, password: str | None = None) -> Extracted:
        """Read a report file (any format), refusing bad files with a ReportError; writes nothing."""
        return read_report(Path(path), password=password, max_bytes=self.settings.max_report_mb * 2**20)

    def add(self, path: str | Path, *, title: str | None = None, council: str | None = None,
            date: str | None = None, doc_type: str | None = None, publisher: str | None = None,
            short_title: str | None = None, password: str | None = None, replace: str | None = None,
            ask: Callable[[str, str, str], str] | None = None, update_index: bool = True,
            progress: bool = False) -> AddResult:
        """Add one report. Given values override inferred ones; `ask(field, prompt, hint)` supplies missing ones.

        Raises ReportError (MetadataMissingError for a value neither inferred nor given) and
        changes nothing in that case.
        """
        path = Path(path)
        with self._locked():
            infos = self.list()
            old = self.find(replace) if replace else None
            data = self._read_bytes(path)
            digest = hashlib.sha256(data).hexdigest()
            for info in infos:
                if info.original_sha256 == digest or (not info.original_sha256 and
                                                      _file_sha(self.corpus_dir / info.file) == digest):
                    if old is None or info.doc_id != old.doc_id:
                        raise ReportError(f"{path.name}: this file is already in the library as {info.doc_id} "
                                          f"({info.title}); to add a new version of a report, use --replace DOC_ID")
                    raise ReportError(f"{path.name}: it is the same file as {old.doc_id}, nothing to replace")
            doc = self.read(path, password)
            given = {"title": title, "council": council, "date": date, "doc_type": doc_type,
                     "publisher": publisher, "short_title": short_title}
            info, inferred = self._settle(doc, given, path, ask, infos, old, digest)
            files = self._write(info, doc, data, infos, old)
        result = AddResult(info, inferred, files, doc, old, list(doc.warnings))
        log.info("added %s (%s) from %s", info.doc_id, info.title, path)
        if update_index:
            result.index = self.update_index(progress=progress)
        return result

    def _read_bytes(self, path: Path) -> bytes:
        try:
            size = path.stat().st_size
            if not path.is_file():
                raise ReportError(f"{path}: not a file")
        except OSError as exc:
            raise ReportError(f"{path}: cannot read it ({exc.strerror})") from None
        limit = self.settings.max_report_mb * 2**20
        if size > limit:
            raise ReportError(f"{path.name}: {size / 2**20:.1f} MB is over the limit of "
                              f"{self.settings.max_report_mb} MB (QA_MAX_REPORT_MB)")
        return path.read_bytes()

    def _settle(self, doc: Extracted, given: dict, path: Path, ask, infos: list[DocumentInfo],
                old: DocumentInfo | None, digest: str) -> tuple[DocumentInfo, dict[str, Inferred]]:
        """Inferred metadata, overridden by given values; ask for or refuse what is still missing."""
        found = infer_metadata(doc)
        out: dict[str, Inferred] = {}
        missing: list[str] = []
        for name in (*FIELDS, "short_title"):
            value = given.get(name)
            if name == "publisher" and "doc_type" in out and "council" in out:  # from the values actually used
                found["publisher"] = publisher_for(out["doc_type"].value, out["council"].value)
            if name == "short_title" and not value:
                continue
            if value is not None and str(value).strip():
                out[name] = Inferred(self._check(name, str(value)), f"given with {OPTIONS[name]}")
            elif found.get(name) is not None:
                out[name] = found[name]
            elif ask is not None:
                answer = ask(name, _PROMPTS[name], self._hint(name, doc))
                if not answer or not answer.strip():
                    raise MetadataMissingError(f"{path.name}: no {name.replace('_', ' ')} given; nothing was added")
                out[name] = Inferred(self._check(name, answer), "typed in")
            else:
                missing.append(name)
        if missing:
            what = " and ".join(f"{n.replace('_', ' ')}{self._hint(n, doc, True)}" for n in missing)
            flags = " and ".join(OPTIONS[n] for n in missing)
            raise MetadataMissingError(f"{path.name}: cannot tell the report's {what} from the file. "
                                       f"Give {'it' if len(missing) == 1 else 'them'} with {flags}; nothing was added")
        if "short_title" not in out:
            out["short_title"] = Inferred(short_title(out["doc_type"].value, out["council"].value,
                                                      out["date"].value, out["title"].value),
                                          "made from the type, council and year")
        number = old.doc_id[:3] if old else f"{_next_number(infos):03d}"
        doc_id = f"{number}_{digest[:16]}"
        info = DocumentInfo(
            doc_id=doc_id, file=f"{doc_id}.txt", title=out["title"].value, short_title=out["short_title"].value,
            council=out["council"].value, publisher=out["publisher"].value, doc_type=out["doc_type"].value,
            date=out["date"].value, date_text=date_text(out["date"].value),
            notes=f"Added from {path.name} ({FORMAT_NAMES[doc.format]}) on {time.strftime('%Y-%m-%d')}.",
            original=f"{doc_id}{_SUFFIX[doc.format]}" if doc.format in _SUFFIX else "",
            original_sha256=digest, format=doc.format, pages=f"{doc_id}.pages.json" if doc.pages else "")
        return info, out

    @staticmethod
    def _check(name: str, value: str) -> str:
        value = " ".join(value.split())
        if name == "date":
            try:
                return parse_date_option(value)
            except ValueError as exc:
                raise ReportError(str(exc)) from None
        if name == "doc_type":
            return normalise_doc_type(value)
        if len(value) > 300:
            raise ReportError(f"{OPTIONS[name]} is {len(value)} characters long; the limit is 300")
        return value

    @staticmethod
    def _hint(name: str, doc: Extracted, sentence: bool = False) -> str:
        if name == "date" and creation_date_hint(doc):
            hint = (f"the only date found is the file's creation date {creation_date_hint(doc)}, which is when "
                    "it was made or converted, not when the report was published")
            return f" ({hint})" if sentence else hint
        if name == "publisher":
            hint = "only CQC reports and self-assessments say who published them"
            return f" ({hint})" if sentence else hint
        return ""

    def _write(self, info: DocumentInfo, doc: Extracted, data: bytes, infos: list[DocumentInfo],
               old: DocumentInfo | None) -> list[str]:
        """Write the new files, then the catalogue; remove the replaced report's files last."""
        folder = self.corpus_dir
        written: list[Path] = []
        text = data if doc.format in ("text", "markdown") else doc.text.encode("utf-8")
        outputs = [(info.file, text)]
        if info.original:
            outputs.append((info.original, data))
        if info.pages:
            outputs.append((info.pages, (json.dumps(doc.pages_json()) + "\n").encode()))
        try:
            for name, content in outputs:
                target = folder / name
                if target.exists():
                    raise CorpusError(f"{target} already exists; the catalogue does not list it. Move it away "
                                      "and add the report again")
                _write_atomic(target, content)
                written.append(target)
            entries = [_entry(i) for i in infos]
            if old is not None:
                at = next(n for n, i in enumerate(infos) if i.doc_id == old.doc_id)
                entries[at] = _entry(info)
            else:
                entries.append(_entry(info))
            self._write_catalogue(entries)
        except BaseException:
            for p in written:
                p.unlink(missing_ok=True)
            raise
        if old is not None:
            self._delete_files(old)
        return [p.name for p in written]

    def _write_catalogue(self, entries: list[dict]) -> None:
        path = self.corpus_dir / CATALOGUE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        data = {**data, "documents": entries}
        _write_atomic(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    def _delete_files(self, info: DocumentInfo) -> None:
        for name in {info.file, info.original, info.pages} - {""}:
            with contextlib.suppress(FileNotFoundError):
                (self.corpus_dir / name).unlink()

    # -- removing ------------------------------------------------------------------------------
    def remove(self, doc_id: str, *, update_index: bool = True, progress: bool = False) -> DocumentInfo:
        """Take a report out of the catalogue (atomically), delete its files, update the index."""
        with self._locked():
            info = self.find(doc_id)
            infos = self.list()
            if len(infos) == 1:
                raise ReportError(f"{info.doc_id} is the only report; the library cannot be empty")
            self._write_catalogue([_entry(i) for i in infos if i.doc_id != info.doc_id])
            self._delete_files(info)
        log.info("removed %s (%s)", info.doc_id, info.title)
        if update_index:
            self.update_index(progress=progress)
        return info

    # -- the index -----------------------------------------------------------------------------
    def update_index(self, progress: bool = False) -> IndexUpdate:
        """Bring the index up to date with the catalogue, embedding only texts not embedded before."""
        from qa.index import build_index, save_index

        t0 = time.perf_counter()
        encoder = self._load_encoder()
        index = build_index(self.settings, encoder, progress=progress)
        save_index(index, self.settings.index_dir)
        stats = index.manifest.get("embedding_cache", {})
        return IndexUpdate(len(index.chunks), index.manifest["documents"], stats.get("embedded", -1),
                           stats.get("cached", 0), time.perf_counter() - t0, str(self.settings.index_dir))

    def _load_encoder(self):
        if self._encoder is None:
            from qa.embeddings import Encoder

            self._encoder = Encoder.load(self.settings.model, threads=self.settings.torch_threads)
        return self._encoder

    @contextlib.contextmanager
    def _locked(self):
        """One writer at a time in the corpus folder (an advisory lock; readers never wait)."""
        import fcntl

        if not self.corpus_dir.is_dir():
            raise CorpusError(f"The corpus folder {self.corpus_dir} does not exist")
        with open(self.corpus_dir / ".catalogue.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _entry(info: DocumentInfo) -> dict:
    """A catalogue entry: the required fields always, the optional ones only when set."""
    d = asdict(info)
    return {k: v for k, v in d.items() if v or k in ("doc_id", "file", "title", "short_title", "council",
                                                       "publisher", "doc_type", "date", "date_text", "notes")}


def _next_number(infos: list[DocumentInfo]) -> int:
    numbers = [int(m.group()) for i in infos if (m := re.match(r"\d+", i.doc_id))]
    return max(numbers, default=-1) + 1


def _file_sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _write_atomic(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
