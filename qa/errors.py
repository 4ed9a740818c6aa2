"""The project's exceptions: one small hierarchy, so callers can catch `QAError`."""


class QAError(Exception):
    """Base class of every error the assistant raises on purpose."""


class QueryError(QAError, ValueError):
    """A question or search argument that cannot be used (empty, too long, bad filter)."""


class CorpusError(QAError):
    """The corpus folder or its catalogue is missing, incomplete or malformed."""


class ModelError(QAError):
    """The embedding model cannot be loaded, or is not the one expected."""


class IndexError_(QAError):
    """Base for problems with the saved index (named with a trailing _ to avoid the builtin)."""


class IndexMissingError(IndexError_):
    """No index has been built in the index folder yet."""


class IndexCorruptError(IndexError_):
    """An index file is missing, unreadable or does not match its recorded checksum."""


class IndexStaleError(IndexError_):
    """The index was built from another corpus, model or chunking settings."""


class ReportError(QAError, ValueError):
    """A report file that cannot be added: unreadable, encrypted, scanned, damaged, empty or too large."""
