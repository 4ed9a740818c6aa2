"""sha256 of files: the corpus, the model weights and every index file are checked by it.

Hashing the index and the model on every start costs time that grows with them (a third of a
second for the five reports' index and the 90 MB model; seconds at national scale), so a digest,
once computed, is kept in a record file (`.verified.json` in the index generation's folder) with
the file's identity: device, inode, size, modification and change times. A later process that
finds the file with the same identity uses the recorded digest instead of reading the file again.

Why that is safe: index generations are written once into a new folder and never modified in place,
and the model is installed whole, so any later write to a checked file, by the project or by a
person, changes its change time (ctime), which ordinary tools cannot set back; the file is then
hashed again and a damaged or edited file is refused as before. What a record cannot see is damage
below the file system (a failing disk returning other bytes for an unchanged file); a build, or
deleting the record, checks everything again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

#: The record of digests already verified, kept in the folder whose files it vouches for.
VERIFIED_FILE = ".verified.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _identity(path: Path) -> list[int]:
    st = os.stat(path)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def verified_sha256(path: Path, record: Path | None) -> str:
    """sha256 of `path`, read from `record` when an earlier process hashed the file and it is
    unchanged since (same identity); otherwise hashed, and remembered in `record` if it can be
    written (a read-only folder only costs the next process a hash)."""
    path = Path(path)
    if record is None:
        return sha256_file(path)
    key = str(path.resolve())
    before = _identity(path)
    known = _read(record).get(key)
    if isinstance(known, dict) and known.get("identity") == before and isinstance(known.get("sha256"), str):
        return known["sha256"]
    digest = sha256_file(path)
    if _identity(path) == before:  # not written to while it was read
        _remember(record, key, {"sha256": digest, "identity": before})
    return digest


def _read(record: Path) -> dict:
    try:
        data = json.loads(Path(record).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(record: Path, key: str, entry: dict) -> None:
    """Add `entry` to `record` (rewritten whole and renamed into place: readers never see half of it)."""
    record = Path(record)
    tmp = None
    try:
        data = _read(record)
        data[key] = entry
        fd, tmp = tempfile.mkstemp(prefix=f".{record.name}.", dir=record.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, record)
    except OSError as exc:
        log.debug("could not record the digest of %s in %s (%s)", key, record, exc)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
