"""A running app's assistant that picks up a new index generation between questions.

    assistant = LiveAssistant(Assistant.load())
    assistant.ask("...")     # after `python -m qa add report.pdf`, the next question uses the new index

Before each question the index folder's stamp (its generation and manifest) is compared with the
one loaded. When it changed, the new generation is loaded once, by the first question that sees
it, while questions already running (or arriving meanwhile) keep the assistant they started with;
then the reference is swapped. A new index that cannot be loaded (stale, damaged) is logged and the
old one keeps answering.
"""

from __future__ import annotations

import logging
import threading

from qa.answer import Assistant
from qa.errors import QAError
from qa.index import index_stamp
from qa.retriever import Retriever

log = logging.getLogger(__name__)


class LiveAssistant:
    """Wraps an `Assistant`; `ask` and `ask_extractive` reload the index when a new generation appears.

    Every other attribute is the current assistant's (`retriever`, `llm`, `settings`).
    """

    def __init__(self, assistant: Assistant) -> None:
        self._current = assistant
        self._folder = assistant.retriever.settings.index_dir
        self._stamp = index_stamp(self._folder)
        self._failed: tuple | None = None
        self._lock = threading.Lock()
        self.reloads = 0

    @property
    def current(self) -> Assistant:
        return self._current

    def refresh(self) -> Assistant:
        """The assistant to answer the next question with (a new generation loaded if there is one)."""
        stamp = index_stamp(self._folder)
        if stamp is None or stamp == self._stamp or stamp == self._failed:
            return self._current
        if not self._lock.acquire(blocking=False):  # another question is loading it: use the current one
            return self._current
        try:
            if index_stamp(self._folder) == self._stamp:
                return self._current
            old = self._current
            settings = old.retriever.settings.with_(auto_rebuild=False)
            retriever = Retriever.load(settings=settings, encoder=old.retriever.encoder, build_if_missing=False)
            self._current = Assistant(retriever, settings=old.settings, llm=old.llm)
            self._stamp = stamp
            self.reloads += 1
            log.info("switched to the new index generation in %s (%d chunks)", self._folder,
                     len(retriever.index.chunks))
        except QAError as exc:
            self._failed = stamp
            log.warning("a new index appeared in %s but cannot be used (%s); answering from the previous one",
                        self._folder, exc)
        finally:
            self._lock.release()
        return self._current

    def ask(self, *args, **kwargs):
        return self.refresh().ask(*args, **kwargs)

    def ask_extractive(self, *args, **kwargs):
        return self.refresh().ask_extractive(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._current, name)
