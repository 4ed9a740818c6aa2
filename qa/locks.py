"""Advisory file locks that keep index builders and readers apart (POSIX `flock`).

    with file_lock(Path("index.lock")):               # exclusive: one holder at a time
        ...
    with file_lock(Path("index.lock"), shared=True):  # shared: many readers, no writer
        ...

Locks are re-entrant within a thread (a builder that holds a lock may call code that takes it
again) and released when the holder exits, even if it is killed. Where `fcntl` is missing
(Windows) or the lock file cannot be created (a read-only folder), the lock is skipped with a
debug log line: the index is still written atomically, only concurrent builds are not serialised.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

_held = threading.local()


class LockTimeout(TimeoutError):
    """The lock was not free within the time allowed."""


@contextmanager
def file_lock(path: Path, *, shared: bool = False, timeout: float | None = None,
              on_wait: Callable[[], None] | None = None, poll: float = 0.05) -> Iterator[None]:
    """Hold an exclusive (or shared) lock on `path`; `on_wait` is called once if it must wait.

    Raises LockTimeout when `timeout` seconds pass without getting it (None: wait as long as needed).
    """
    key = str(Path(path).resolve())
    held: dict[str, int] = getattr(_held, "locks", None) or {}
    _held.locks = held
    if key in held:  # re-entrant: this thread already holds it
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        log.debug("cannot lock %s (%s); going on without the lock", path, exc)
        yield
        return
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        deadline = None if timeout is None else time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                if deadline is not None and time.monotonic() > deadline:
                    raise LockTimeout(f"{path} is still locked after {timeout:g} s") from None
                time.sleep(poll)
        held[key] = 1
        try:
            yield
        finally:
            del held[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
