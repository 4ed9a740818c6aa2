"""Question answering over public reports on English councils' adult social care.

    from qa import Retriever
    r = Retriever.load()
    for hit in r.search("How many complaints did Birmingham receive?", k=3):
        print(hit.score, hit.citation)

Importing this package is cheap: the model and index load only when asked.
"""

import logging

from qa.answer import Answer, Assistant, answer
from qa.config import Settings
from qa.conversation import Conversation
from qa.errors import (
    CorpusError,
    IndexCorruptError,
    IndexMissingError,
    IndexStaleError,
    ModelError,
    QAError,
    QueryError,
    ReportError,
)
from qa.library import Library
from qa.retriever import Passage, Retriever

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["Answer", "Assistant", "answer", "Conversation",
           "CorpusError", "IndexCorruptError", "IndexMissingError", "IndexStaleError", "ModelError", "Passage",
           "Library", "QAError", "QueryError", "ReportError", "Retriever", "Settings"]
