"""Answers: short, extractive, every sentence quoted verbatim from a cited passage.

No language model is needed. For a question, the retriever finds passages; each of their
sentences is scored by its embedding similarity to the question (vectors precomputed in the
index), the share of the question's rarer words it contains, whether it carries the numbers or the
kind of fact asked for, and its passage's rank. The best few sentences, from one or more reports,
become the answer, each followed by its `[n]` marker and introduced by the report and its date.

When the evidence is too weak (an out-of-corpus question, a council the reports do not cover) the
answer says so plainly and offers the nearest sections instead of inventing anything.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from qa.errors import QueryError
from qa.generate import LLMSettings, generate
from qa.retriever import Filters, Passage, Retriever

log = logging.getLogger(__name__)

NOT_FOUND = "I could not find this in these reports."
_NUMBER = re.compile(r"(?<![\w.])(?:£\s?)?\d[\d,]*(?:\.\d+)?%?")
_ASKS_NUMBER = re.compile(r"\b(how (many|much)|what (percentage|proportion|number|share|amount|figure|rate|total|"
                          r"budget|score)|what year|which year|what date)\b", re.IGNORECASE)
# Words that frame a question rather than say what it is about.
_FRAMING = ("many much number percentage percent proportion share rate figure total amount according say said get got "
            "give given take took come came done do does often long name named called which what who whom where "
            "when why how look looks run runs start started anyone someone something other others able kind type "
            "quick quickly current first last new whether question questioned ask asked compare compared change "
            "changed describe described")
_WORD_NUMBER = re.compile(r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
                          r"thirty|forty|fifty|hundred|thousand|million|half|quarter|third)\b", re.IGNORECASE)
# A year or a financial year: 2016, 2023/24, 2024-25, 2021/2022.
_YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?:\s*[/\-\u2013]\s*((?:19|20)?\d\d))?(?!\d)")
_COUNCIL = re.compile(r"\b((?:[A-Z][\w'-]+ ){1,3})(?:City |County |Borough |District |Metropolitan )*Council\b")
_GENERIC_COUNCIL_WORDS = {"the", "a", "this", "that", "which", "each", "every", "city", "county", "borough", "local",
                          "district", "metropolitan", "what", "how", "did", "does", "is", "was"}


@dataclass(frozen=True)
class Quote:
    """One answer sentence: its text, the marker number of its passage, and where it sits there."""

    n: int
    text: str
    start: int  # offset in citations[n - 1].text
    end: int


@dataclass(frozen=True)
class Answer:
    """An answer with the passages behind its `[n]` markers (`citations[n - 1]`).

    Example:
        >>> a = Assistant.load().ask("How many complaints about adult social care did Birmingham receive?")
        >>> a.abstained, a.text[:40], a.citations[0].citation
    """

    question: str
    text: str
    abstained: bool
    citations: list[Passage] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    nearest: list[Passage] = field(default_factory=list)  # offered when abstaining
    confidence: float = 0.0
    mode: str = "extractive"
    note: str = ""
    #: The standalone question that was searched (a follow-up rewritten by `qa.Conversation`).
    query: str = ""

    def to_json(self) -> dict:
        return {
            "question": self.question, "query": self.query or self.question, "answer": self.text, "abstained": self.abstained, "mode": self.mode,
            "confidence": round(self.confidence, 4), "note": self.note,
            "citations": [{"n": i + 1, **p.to_json(),
                           "quotes": [{"text": q.text, "start": q.start, "end": q.end} for q in self.quotes
                                      if q.n == i + 1]}
                          for i, p in enumerate(self.citations)],
            "nearest": [p.to_json() for p in self.nearest],
        }


@dataclass(frozen=True)
class SentenceFeatures:
    """Evidence that a sentence answers the question, each in [0, 1]."""

    position: int  # rank of its passage, from 0
    row: int  # its row in the index's sentence table
    dense: float  # cosine similarity to the question
    lexical: float  # share of the question's words (weighted by rarity) it contains
    number: float  # carries the numbers asked about, or a figure next to the question's words
    rank: float  # 1 / (1 + passage rank)


@dataclass(frozen=True)
class AnswerSettings:
    """How answers are chosen.

    The weights, `keep_ratio` and `abstain_below` were chosen on eval/questions.jsonl by grid search:
    the most accurate answers, then the threshold that abstains on the most unanswerable questions
    while wrongly abstaining on the fewest answerable ones. From 0.36 to 0.42 it abstained on the
    same share of unanswerable questions, with false abstentions rising from 1.1% to 2.8%; above 0.43
    false abstentions passed 5%. The lower end is kept, to leave room on questions not in the set.
    """

    k: int = 5
    max_sentences: int = 3
    #: Abstain when the best sentence's confidence is below this.
    abstain_below: float = 0.36
    #: A further sentence joins the answer only if it scores at least this share of the best one.
    keep_ratio: float = 0.70
    w_dense: float = 0.55
    w_lexical: float = 0.50
    w_number: float = 0.10
    w_rank: float = 0.05


class Assistant:
    """Answers questions from the reports, with citations, or says it cannot.

    Example:
        >>> assistant = Assistant.load()
        >>> print(assistant.ask("What score did Westminster get for governance?").text)
    """

    def __init__(self, retriever: Retriever, settings: AnswerSettings | None = None,
                 llm: LLMSettings | None = None) -> None:
        self.retriever = retriever
        self.settings = settings or AnswerSettings()
        #: The language-model server for fluent answers; disabled (extractive only) unless given.
        self.llm = llm if llm is not None else LLMSettings()
        index = retriever.index
        self._sentences = index.sentences
        self._chunk_sentences: dict[int, np.ndarray] = {}
        for row, chunk in enumerate(self._sentences.chunk):
            self._chunk_sentences.setdefault(int(chunk), []).append(row)
        self._chunk_sentences = {c: np.array(rows) for c, rows in self._chunk_sentences.items()}
        self._idf = self._document_frequencies()
        self._max_idf = max(self._idf.values(), default=1.0)  # for words the corpus never uses
        lex = retriever.index.lexical
        self._framing_tokens = set(lex.tokens(_FRAMING)) | {t for c in retriever.councils for t in lex.tokens(c)}
        self._council_words = {w for c in retriever.councils for w in re.findall(r"\w+", c.casefold())}
        self._council_words -= _GENERIC_COUNCIL_WORDS

    @classmethod
    def load(cls, settings=None, *, progress: bool = False, llm: LLMSettings | None = None) -> Assistant:
        """The assistant over the saved index; `llm` defaults to the QA_LLM_* environment."""
        llm = llm if llm is not None else LLMSettings.from_env()
        return cls(Retriever.load(settings=settings, progress=progress), llm=llm)

    def _document_frequencies(self) -> dict[str, float]:
        lex = self.retriever.index.lexical
        df: Counter[str] = Counter()
        for chunk in self.retriever.index.chunks:
            df.update(set(lex.tokens(chunk.text)))
        n = len(self.retriever.index.chunks)
        return {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def ask(self, question: str, *, council: str | None = None, doc_id: str | None = None,
            year: int | None = None) -> Answer:
        """Answer `question` from the reports (optionally only some of them). Raises QueryError on bad input.

        With a language-model server configured (`self.llm`), the answer is the model's, checked against
        the passages (`mode` is the model's name), else the extractive one with a `note` saying why.
        """
        extractive, passages = self.ask_extractive(question, council=council, doc_id=doc_id, year=year)
        if not self.llm.enabled or not passages:
            return extractive
        return generate(question, passages, extractive, self.llm)

    def ask_extractive(self, question: str, *, council: str | None = None, doc_id: str | None = None,
                       year: int | None = None) -> tuple[Answer, list[Passage]]:
        """The extractive answer and the passages to give a language model, best first.

        The passages are empty when no model may be asked: no report matches the filters, or the
        question is about a council the reports do not cover. For streaming, see `qa.generate.stream`.
        """
        found = self.retriever.retrieve_batch([question], self.settings.k, filters=Filters(council, doc_id, year))[0]
        query = found.query
        if not found.passages:
            return Answer(question, NOT_FOUND, True, note="No report matches the filters."), []
        unknown = self._unknown_council(query)
        if unknown:
            return self._abstain(question, found.passages, 0.0,
                                 f"These reports cover {', '.join(self.retriever.councils)}; "
                                 f"none is about {unknown}."), []
        scored = self._score_sentences(query, found)
        named, years = self._named_councils(query), _years(query)
        consistent = [x for x in scored if _consistent(named, years, found.passages[x[1]],
                                                       self._sentence_text(found.chunk_ids[x[1]], x[2]))]
        if _ASKS_NUMBER.search(query):  # "how many ...?" is answered by a figure the question does not give
            consistent = [x for x in consistent
                          if _gives_new_figure(self._sentence_text(found.chunk_ids[x[1]], x[2]), query)]
        best = consistent[0][0] if consistent else 0.0
        if best < self.settings.abstain_below:
            why = "" if consistent or not scored else "The passages found are about another council or year."
            return self._abstain(question, found.passages, best, why), found.passages
        answer = self._compose(question, found.passages, found.chunk_ids, consistent, best)
        missing = self._missing_specifics(query, answer.citations)
        if missing:
            why = f"The closest passages do not mention {' or '.join(repr(w) for w in missing)}."
            return self._abstain(question, found.passages, best, why), found.passages
        return answer, found.passages

    def _missing_specifics(self, query: str, cited: list[Passage]) -> list[str]:
        """The question's two most specific words, if the cited passages contain neither.

        "What hourly rate does the Birmingham Care Wage pay?" finds passages about the Care Wage
        that never give an hourly rate: the answer would be about something else. Words that only
        frame a question ("how many", "according to") and the councils' names do not count.
        """
        lex = self.retriever.index.lexical
        framing = self._framing_tokens
        terms = {t for t in lex.tokens(query) if t in self._idf and t not in framing and not t.isdigit()}
        specific = sorted(terms, key=lambda t: (-self._idf[t], t))[:2]
        if len(specific) < 2:
            return []
        said = set()
        for p in cited:
            said |= set(lex.tokens(f"{' '.join(p.section_path)}\n{p.text}", expand_acronyms=True))
        missing = [t for t in specific if t not in said]
        if len(missing) < 2:
            return []
        words = [w for w in re.findall(r"[\w'-]+", query) if lex.tokens(w) and lex.tokens(w)[0] in missing]
        return list(dict.fromkeys(words)) or missing  # as written in the question, in its order

    def _named_councils(self, query: str) -> set[str]:
        """The councils of the corpus that the question names ("Westminster")."""
        words = set(re.findall(r"\w+", query.lower()))
        return {c for c in self.retriever.councils if _distinctive(c) & words}

    # -- scoring -------------------------------------------------------------------------
    def _unknown_council(self, query: str) -> str:
        """A council named in the question that no report is about, e.g. "Leeds City Council"."""
        for m in _COUNCIL.finditer(query):
            words = [w for w in re.findall(r"\w+", m.group(1).lower()) if w not in _GENERIC_COUNCIL_WORDS]
            if words and not set(words) & self._council_words:
                return m.group(0).strip()
        return ""

    def _score_sentences(self, query: str, found) -> list[tuple[float, int, int]]:
        """(score, passage position, sentence row) for the sentences of the found passages, best first."""
        s = self.settings
        return sorted(((s.w_dense * f.dense + s.w_lexical * f.lexical + s.w_number * f.number + s.w_rank * f.rank,
                        f.position, f.row) for f in self._features(query, found)), key=lambda x: -x[0])

    def _features(self, query: str, found) -> list[SentenceFeatures]:
        """What makes each candidate sentence a good answer to `query`."""
        lex = self.retriever.index.lexical
        terms = set(lex.tokens(query))
        weight = {t: self._idf.get(t, self._max_idf) for t in terms}
        total = sum(weight.values()) or 1.0
        asked_numbers = {_norm_number(n) for n in _NUMBER.findall(query)}
        asks_quantity = bool(_ASKS_NUMBER.search(query))
        chunks = self.retriever.index.chunks
        heading_words: dict[int, set[str]] = {}
        out = []
        for pos, ci in enumerate(found.chunk_ids):
            rows = self._chunk_sentences.get(ci)
            if rows is None:
                continue
            sims = self._sentences.vectors[rows] @ found.vector if found.vector is not None else np.zeros(len(rows))
            for row, sim in zip(rows, sims):
                text = self._sentence_text(ci, row)
                if not _is_statement(text):
                    continue
                # the sentence read under its headings: "3 - Evidence shows a good standard" answers
                # "what score ... governance" because its section is Governance and its label Score
                words = set(lex.tokens(text)) | heading_words.setdefault(ci, set(lex.tokens(chunks[ci].heading_text)))
                if row > 0 and self._sentences.chunk[row - 1] == ci:  # "Its actual spend..." leans on the one before
                    before = chunks[ci].text[self._sentences.start[row - 1] : self._sentences.start[row]]
                    if "\n" not in before.strip():
                        words |= set(lex.tokens(before))
                lexical = sum(w for t, w in weight.items() if t in words) / total
                if asked_numbers:
                    found_numbers = {_norm_number(n) for n in _NUMBER.findall(text)}
                    number = len(asked_numbers & found_numbers) / len(asked_numbers)
                elif asks_quantity:
                    number = _number_near_terms(text, terms, lex)
                else:
                    number = 0.0
                out.append(SentenceFeatures(pos, int(row), float(sim), lexical, number, 1.0 / (1 + pos)))
        return out

    # -- composing -----------------------------------------------------------------------
    def _compose(self, question: str, passages: list[Passage], chunk_ids: list[int],
                 scored: list[tuple[float, int, int]], best: float) -> Answer:
        s = self.settings
        chosen: list[tuple[int, int]] = []  # (passage position, sentence row)
        seen_text: set[str] = set()
        for score, pos, row in scored:
            if len(chosen) == s.max_sentences or score < best * s.keep_ratio:
                break
            text = self._sentence_text(chunk_ids[pos], row)
            key = re.sub(r"\W+", " ", text.lower()).strip()
            if key in seen_text:
                continue
            seen_text.add(key)
            chosen.append((pos, row))
        # number passages by first use; keep each report's sentences together, in answer order
        order: list[int] = []
        for pos, _ in chosen:
            if pos not in order:
                order.append(pos)
        by_doc: dict[str, list[tuple[int, int]]] = {}
        for pos, row in chosen:
            by_doc.setdefault(passages[pos].doc_id, []).append((pos, row))
        citations = [passages[p] for p in order]
        quotes: list[Quote] = []
        parts: list[str] = []
        for doc_id, items in by_doc.items():
            p0 = passages[items[0][0]]
            said = []
            for pos, row in items:
                n = order.index(pos) + 1
                start, end = int(self._sentences.start[row]), int(self._sentences.end[row])
                text = passages[pos].text[start:end]
                quotes.append(Quote(n, text, start, end))
                said.append(f"\"{text}\" [{n}]")
            parts.append(f"{report_label(p0)}: " + " ".join(said))
        return Answer(question, "\n".join(parts), False, citations, quotes, confidence=best)

    def _sentence_text(self, chunk_index: int, row: int) -> str:
        return self.retriever.index.chunks[chunk_index].text[self._sentences.start[row] : self._sentences.end[row]]

    def _abstain(self, question: str, passages: list[Passage], confidence: float, why: str) -> Answer:
        nearest = passages[:3]
        lines = [NOT_FOUND + (f" {why}" if why else "")]
        if nearest:
            lines.append("The nearest sections are:")
            lines += [f"- {p.title} ({p.date_text}): {p.section or 'introduction'}" for p in nearest]
        return Answer(question, "\n".join(lines), True, nearest=nearest, confidence=confidence, note=why)


def _consistent(named: set[str], years: set[tuple[str, ...]], passage: Passage, sentence: str) -> bool:
    """Whether a sentence may answer a question that names these councils and years.

    The reports describe two councils and three years in much the same words: a question about
    Westminster is not answered from Birmingham's report, nor a 2019/20 figure by a 2021/22 one.
    """
    if named and passage.council not in named:
        return False
    if years:  # the year may date the event ("after the 2019 tender") in the sentence's passage
        said = _years(sentence) | _years(passage.text)
        if not (years & said or any(len(y) == 1 and y[0] == str(passage.year) for y in years)
                or any(len(y) == 1 and any(y[0] in z for z in said) for y in years)):
            return False
    return True


def report_label(p: Passage) -> str:
    """How an answer introduces a report: its title and date, so years and councils are never mixed up."""
    return f"{p.title} ({p.date_text})"


def _distinctive(council: str) -> set[str]:
    """The words that tell one council from another: "westminster" for "Westminster City Council"."""
    return set(re.findall(r"\w+", council.lower())) - _GENERIC_COUNCIL_WORDS - {"council"}


def _years(text: str) -> set[tuple[str, ...]]:
    """Years and financial years named in `text`, as ("2016",) or ("2023", "2024")."""
    out = set()
    for m in _YEAR.finditer(text):
        start, end = m.group(1), m.group(2)
        if end:
            end = end if len(end) == 4 else start[:2] + end
            out.add((start, end) if int(end) == int(start) + 1 else (start,))
        else:
            out.add((start,))
    return out


def _is_statement(text: str) -> bool:
    """A sentence that can stand as an answer, not a heading or a label."""
    words = len(text.split())
    return words >= 8 or (words >= 4 and (bool(re.search(r"[.!?:;\"')]$", text)) or bool(_NUMBER.search(text))))


def _number_near_terms(text: str, terms: set[str], lex) -> float:
    """How well a figure in `text` is tied to the question: the share of the question's words
    (up to three) within four words of some number. "5 local authorities" answers "how many local
    authorities"; "Part 1 of the Care Act (2014)" does not.
    """
    words = text.split()
    best = 0
    for i, word in enumerate(words):
        if not _NUMBER.search(word):
            continue
        window = " ".join(words[max(0, i - 4) : i] + words[i + 1 : i + 5])
        best = max(best, len(terms & set(lex.tokens(window))))
    return min(best, 3) / max(1, min(3, len(terms)))


def _gives_new_figure(sentence: str, query: str) -> bool:
    """Whether `sentence` states a figure (digits or words: "ten") that `query` does not already give."""
    asked = {_norm_number(n) for n in _NUMBER.findall(query)}
    figures = {_norm_number(n) for n in _NUMBER.findall(sentence)} | {w.lower() for w in _WORD_NUMBER.findall(sentence)}
    return bool(figures - asked)


def _norm_number(text: str) -> str:
    return re.sub(r"[£,\s]", "", text).rstrip(".")


@functools.lru_cache(maxsize=1)
def _default_assistant() -> Assistant:
    return Assistant.load()


def answer(question: str, *, assistant: Assistant | None = None, council: str | None = None,
           doc_id: str | None = None, year: int | None = None) -> Answer:
    """Answer one question with the default index (loaded on first call)."""
    if not isinstance(question, str):
        raise QueryError(f"The question must be text. Currently, it is {type(question).__name__}")
    return (assistant or _default_assistant()).ask(question, council=council, doc_id=doc_id, year=year)
