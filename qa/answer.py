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
from dataclasses import dataclass, field, replace

import numpy as np

from qa.answerability import (FORMATTED_KINDS, FRAMING_WORDS, KIND_NAMES, AnswerabilityModel, asked_expansion,
                              asked_kinds, asks_identity, asks_person, has_kind, model_file, topic_of)
from qa.catalogue import GENERIC_COUNCIL_WORDS
from qa.errors import QueryError
from qa.generate import LLMSettings, generate
from qa.person_names import NameFinder
from qa.retriever import Filters, Passage, Retrieval, Retriever
from qa.sides import Side, comparison_sides, named_councils, named_report_years, without_side_names
from qa.sides import years as _years

log = logging.getLogger(__name__)

NOT_FOUND = "I could not find this in these reports."
_NUMBER = re.compile(r"(?<![\w.])(?:£\s?)?\d[\d,]*(?:\.\d+)?%?")
#: The base of a rate: "per 100,000 adults", "per 1,000 residents".
_RATE_BASE = re.compile(r"\bper\s+(?:£\s?)?\d[\d,]*(?:\.\d+)?", re.IGNORECASE)
_ASKS_NUMBER = re.compile(r"\b(how (many|much)|what (percentage|proportion|number|share|amount|figure|rate|total|"
                          r"budget|score)|what year|which year|what date)\b", re.IGNORECASE)
_WORD_NUMBER = re.compile(r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
                          r"thirty|forty|fifty|hundred|thousand|million|half|quarter|third)\b", re.IGNORECASE)
#: Where a question joins two questions: "..., and what did CQC find ...", "...; what does ...".
_JOINED_QUESTIONS = re.compile(r";\s*|,?\s+and\s+(?=(?:what|how|who|whom|which|when|where|why|did|does|do|is|are|was|"
                               r"were|has|have)\b)", re.I)
#: Words that point back to something named before them ("who did them", "what had it been used for").
_POINTS_BACK = re.compile(r"\b(it|its|they|them|their|these|those|he|she|his|her)\b", re.I)
_COUNCIL = re.compile(r"\b((?:[A-Z][\w'-]+ ){1,3})(?:City |County |Borough |District |Metropolitan )*Council\b")
# Words that open a sentence leaning on the one before it ("These were ...", "Of these, 45% ...",
# "However, ..."): a closed class of English pronouns, determiners and connectives, optionally after a
# preposition, not words from any question.
_LEANS_ON_BEFORE = re.compile(r"^[\"'(]*(?:(?:of|among|amongst|in|for|from|despite|because of|as a result of|"
                              r"in addition to|alongside|following|after|besides|beyond|within|with|under|on top of)"
                              r"\s+(?=(?:these|this|that|those|it|them|which|whom)\b))?"
                              r"(these|this|that|those|it|its|they|them|their|he|she|his|her|such|both|which|whom|"
                              r"however|also|but|additionally|furthermore|moreover|similarly|consequently|therefore|"
                              r"thus|nevertheless|instead|otherwise|likewise|meanwhile)\b", re.IGNORECASE)
#: How many sentences back a quote may reach for the one it leans on.
_MAX_LEAN_BACK = 2


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
            "question": self.question, "query": self.query or self.question, "answer": self.text,
            "abstained": self.abstained, "mode": self.mode,
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
    kind: float = 0.0  # holds the kind of answer asked for (a rating, a date, a name...), when one is


@dataclass(frozen=True)
class AnswerSettings:
    """How answers are chosen.

    The weights and `keep_ratio` were chosen on eval/questions.jsonl by grid search for the most
    accurate answers. Whether to answer at all is the answerability model's (`qa.answerability`),
    fitted and calibrated by `python -m eval.fit_abstention`.
    """

    k: int = 5
    max_sentences: int = 3
    #: Abstain when the answerability model's probability is below this (None: the model's calibrated one).
    abstain_below: float | None = None
    #: A further sentence joins the answer only if it scores at least this share of the best one.
    keep_ratio: float = 0.70
    w_dense: float = 0.55
    w_lexical: float = 0.50
    w_number: float = 0.10
    w_rank: float = 0.05
    w_kind: float = 0.15


#: Sentences sampled for the background of the "dense_z" answerability feature.
BACKGROUND = 2048


class Assistant:
    """Answers questions from the reports, with citations, or says it cannot.

    Example:
        >>> assistant = Assistant.load()
        >>> print(assistant.ask("What score did Westminster get for governance?").text)
    """

    def __init__(self, retriever: Retriever, settings: AnswerSettings | None = None,
                 llm: LLMSettings | None = None, answerability: AnswerabilityModel | None = None) -> None:
        self.retriever = retriever
        self.settings = settings or AnswerSettings()
        self.answerability = answerability or AnswerabilityModel.load(model_file(retriever.index.manifest))
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
        self._council_tokens = {t for c in retriever.councils for t in lex.tokens(c)}
        self._framing = set(lex.tokens(FRAMING_WORDS))
        self._council_words = {w for c in retriever.councils for w in re.findall(r"\w+", c.casefold())}
        self._council_words -= GENERIC_COUNCIL_WORDS
        # a fixed sample of the corpus's sentences: how close a question comes to sentences at large,
        # against which its best sentence's closeness is measured (the "dense_z" feature)
        vectors = index.sentences.vectors
        sample = np.random.default_rng(0).choice(len(vectors), size=min(len(vectors), BACKGROUND), replace=False)
        self._background = np.asarray(vectors[np.sort(sample)], dtype=np.float32)

    @functools.cached_property
    def _names(self) -> NameFinder:
        """Persons' names as this corpus writes them: read on the first question asking who someone is,
        not at start-up (it reads every chunk: 11 ms for the five reports, and grows with the corpus)."""
        return NameFinder.from_texts(chunk.text for chunk in self.retriever.index.chunks)

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
        sides = [] if doc_id is not None else self._comparison_sides(question, council, year)
        if len(sides) >= 2:
            return self._compare(question, sides)
        found, answer, features = self.candidate(question, council=council, doc_id=doc_id, year=year)
        if features is None:  # decided by the rules: no report matches, an unknown council, no consistent sentence
            return answer, found.passages
        answers, p = self._answers(features)
        if not answers:
            why = self._why_not(found.query, features, answer.citations)
            return self._abstain(question, found.passages, p, why), found.passages
        return replace(answer, confidence=p), found.passages

    def _answers(self, features: dict[str, float] | None) -> tuple[bool, float]:
        """Whether the answerability model would give the answer with these features, and its probability."""
        if features is None:
            return False, 0.0
        p = self.answerability.probability(features)
        threshold = self.answerability.threshold if self.settings.abstain_below is None else self.settings.abstain_below
        return p >= threshold, p

    def _comparison_sides(self, question: str, council: str | None, year: int | None) -> list[Side]:
        """The sides of a question that compares reports (`qa.sides.comparison_sides`), oldest first."""
        from qa.retriever import clean_query

        try:
            query = clean_query(question, self.retriever.settings.max_query_chars)
        except QueryError:
            return []
        return comparison_sides(query, self.retriever.catalogue, council, year)

    def _compare(self, question: str, sides: list[Side]) -> tuple[Answer, list[Passage]]:
        """One quote per side of a comparison, oldest report first, each introduced by report and date;
        a side with no evidence is named as missing rather than filled with something else."""
        citations: list[Passage] = []
        quotes: list[Quote] = []
        parts: list[str] = []
        missing: list[str] = []
        passages: list[Passage] = []
        confidence = 1.0
        searched: list[str] = []  # what each side asked, when it was not the whole question
        documents = self.retriever.catalogue
        for council, year in sides:
            asked = self._side_question(question, (council, year), sides)
            # the side's filters keep its reports: the words naming them would only draw the search
            # to sentences about the report itself, as words left out of the search (like BM25's
            # stop words) rather than of the question shown
            topic = without_side_names(asked, documents)
            found, answer, features = self.candidate(topic if self._term_weights(topic) else asked,
                                                     council=council, year=year)
            passages += [p for p in found.passages if p not in passages]
            answers, p = self._answers(features)
            label = " ".join(str(x) for x in (council, year) if x is not None)
            if asked != question:
                searched.append(f'{label}: "{asked}"')
            if not answers or not answer.quotes:
                missing.append(label)
                continue
            confidence = min(confidence, p)
            quote = answer.quotes[0]
            cited = answer.citations[quote.n - 1]
            if cited not in citations:
                citations.append(cited)
            n = citations.index(cited) + 1
            quotes.append(Quote(n, quote.text, quote.start, quote.end))
            parts.append(f"{report_label(cited)}: \"{quote.text}\" [{n}]")
        if not quotes:
            return self._abstain(question, passages, 0.0, "No report on either side answers it."), passages
        if missing:
            parts.append(f"Not found in these reports for {' or '.join(missing)}.")
        note = f"Compared: {', '.join(' '.join(str(x) for x in side if x is not None) for side in sides)}."
        if searched:
            note += f" Searched for each side: {'; '.join(searched)}."
        return Answer(question, "\n".join(parts), False, citations, quotes, confidence=confidence, note=note), passages

    def _side_question(self, question: str, side: Side, sides: list[Side]) -> str:
        """What a comparison asks of one side. A question joining one question per side ("What did the
        2016 peer challenge say about the care market, and what did CQC find about supply in 2023?")
        is cut where they join: each side asks its own part, with any part that names no side. A part
        without a topic of its own ("... and what does the 2025 self-assessment mention?") or pointing
        back to another ("... and who did them in 2023?"), and a question naming all sides in one part
        ("Compare Birmingham and Westminster on ..."), ask the whole question."""
        parts = [p for p in _JOINED_QUESTIONS.split(question) if p and p.strip()]
        if len(parts) < 2:
            return question
        # a side is told from the others by what differs between them: the year when all are one council's
        by_council, by_year = len({c for c, _ in sides}) > 1, len({y for _, y in sides}) > 1
        named = [{i for i, (council, year) in enumerate(sides)
                  if self._names_side(part, council if by_council else None, year if by_year else None)}
                 for part in parts]
        me = sides.index(side)
        own = [part for part, n in zip(parts, named) if n == {me}]
        if not own or any(_POINTS_BACK.search(part) for part in own):
            return question
        asked = " ".join(part.strip(" ,;") for part, n in zip(parts, named) if n == {me} or not n)
        lex = self.retriever.index.lexical
        reports = self.retriever.catalogue.about(*side)
        report_words = set(lex.tokens(" ".join(d.title + " " + d.council for d in reports)))
        if not set(self._term_weights(" ".join(own))) - report_words:
            return question
        return asked.rstrip("?") + "?"

    def _names_side(self, text: str, council: str | None, year: int | None) -> bool:
        """Whether `text` names this council, or this year or a report of it ("the peer challenge")."""
        return bool((council and named_councils(text, [council]))
                    or (year and (any(y[0] == str(year) for y in _years(text))
                                  or year in named_report_years(text, self.retriever.catalogue,
                                                                council))))

    def candidate(self, question: str, *, council: str | None = None, doc_id: str | None = None,
                  year: int | None = None) -> tuple[Retrieval, Answer, dict[str, float] | None]:
        """The best answer the passages allow, and the evidence features that decide whether to give it.

        Features are None when a rule already decided to abstain: no report matches the filters, the
        question names a council no report covers, or no sentence fits the council, year or figure asked.
        """
        acronym = asked_expansion(question if isinstance(question, str) else "")
        long_form = self.retriever.index.lexical.acronyms.get(acronym) if acronym else None
        # "What does TEC stand for?" searches for its long form too, as the reports define it
        search = f"{question} ({long_form})" if long_form else question
        if len(search) > self.retriever.settings.max_query_chars:  # the question alone is checked as asked
            search = question
        found = self.retriever.retrieve_batch([search], self.settings.k, filters=Filters(council, doc_id, year))[0]
        query = found.query
        if not found.passages:
            return found, Answer(question, NOT_FOUND, True, note="No report matches the filters."), None
        unknown = self._unknown_council(query)
        if unknown:
            why = f"These reports cover {', '.join(self.retriever.councils)}; none is about {unknown}."
            # no passages go on to a language model: no report is about that council
            return replace(found, passages=[]), self._abstain(question, found.passages, 0.0, why), None
        if not self._term_weights(query):  # "And Westminster?", "Why did they do that?" asked on their own
            why = ("The question does not say what to look for: ask it with its topic, for example "
                   "\"What did CQC find about safeguarding in Westminster?\"")
            return replace(found, passages=[]), self._abstain(question, [], 0.0, why), None
        if acronym and not long_form:  # the reports' acronyms are learnt from "Long Form (LF)"
            why = f"The reports do not spell out what {acronym} stands for."
            return found, self._abstain(question, found.passages, 0.0, why), None
        features = self._features(query, found)
        scored = self._score_sentences(features)
        named, years = self._named_councils(query), _years(query)
        consistent = [x for x in scored if _consistent(named, years, found.passages[x[1]],
                                                       self._sentence_text(found.chunk_ids[x[1]], x[2]))]
        if _ASKS_NUMBER.search(query):  # "how many ...?" is answered by a figure the question does not give
            consistent = [x for x in consistent
                          if _gives_new_figure(self._sentence_text(found.chunk_ids[x[1]], x[2]), query)]
        if long_form:  # a sentence that spells the acronym out answers "what does it stand for?" first
            consistent.sort(key=lambda x: long_form.lower() not in
                            self._sentence_text(found.chunk_ids[x[1]], x[2]).lower())
        if not consistent:
            why = "The passages found are about another council or year." if scored else ""
            nearest = self._nearest_of_named(query, found.passages, named, council, doc_id, year)
            return found, self._abstain(question, nearest, 0.0, why), None
        answer = self._compose(question, found.passages, found.chunk_ids, consistent, consistent[0][0])
        if not answer.quotes:  # every candidate leaned on a sentence it could not bring
            return found, self._abstain(question, found.passages, 0.0, ""), None
        formatted = [k for k in asked_kinds(query) if k in FORMATTED_KINDS]
        if formatted and not any(has_kind(k, q.text) for k in formatted for q in answer.quotes):
            why = f"The closest passages do not give the {KIND_NAMES[formatted[0]]} asked for."
            return found, self._abstain(question, found.passages, 0.0, why), None
        if asks_person(query) and not any(self._names.finds(_without_words_of(q.text, query)) for q in answer.quotes):
            why = "The closest passages do not give the name asked for."
            return found, self._abstain(question, found.passages, 0.0, why), None
        best = next(f for f in features if (f.position, f.row) == consistent[0][1:])
        return found, answer, self._answer_features(query, found, consistent, best, answer)

    def _answer_features(self, query: str, found: Retrieval, scored: list[tuple[float, int, int]],
                         best: SentenceFeatures, answer: Answer) -> dict[str, float]:
        """The evidence features of `qa.answerability.FEATURES` for the answer about to be given."""
        best_score = scored[0][0]
        weights = self._term_weights(query)
        total = sum(weights.values()) or 1.0
        said = self._passage_tokens(answer.citations)
        specific = sorted(weights, key=lambda t: (-weights[t], t))[:2]
        kinds = asked_kinds(query)
        quoted = " ".join(q.text for q in answer.quotes)
        first = answer.quotes[0].text
        top3 = sorted(weights, key=lambda t: (-weights[t], t))[:3]
        quoted_tokens = set(self.retriever.index.lexical.tokens(quoted, expand_acronyms=True))
        return {
            "score": best_score, "dense": best.dense, "lexical": best.lexical, "number": best.number,
            "top_dense": found.top_dense if found.top_dense is not None else 0.0,
            "margin": best_score - (scored[1][0] if len(scored) > 1 else 0.0),
            "key_coverage": sum(w for t, w in weights.items() if t in said) / total,
            "top2_missing": sum(t not in said for t in specific) / max(1, len(specific)),
            "sentence_missing": sum(t not in quoted_tokens for t in top3) / max(1, len(top3)),
            "unknown_share": sum(w for t, w in weights.items() if t not in self._idf) / total,
            "dense_z": self._dense_z(found.vector, best.dense),
            "piece_mean": self._piece_match(found, answer),
            "kind_asked": float(bool(kinds)),
            "kind_missing": float(bool(kinds) and not any(has_kind(k, _without_words_of(first, query)
                                                                   if k in _NAMED_KINDS else first) for k in kinds)),
            "name_missing": float(asks_identity(query) and not self._names.finds(_without_words_of(first, query))),
        }

    def _dense_z(self, vector: np.ndarray | None, dense: float) -> float:
        """How many standard deviations the best sentence's cosine stands above the question's cosines
        to the background sample. A model adapted to the corpus brings every passage nearer a question
        on its topics, near misses too; this measures closeness against the question's own baseline
        (cross-validated abstention 0.462 -> 0.500 at 4.9% false abstention, adapted model)."""
        if vector is None or not len(self._background):
            return 0.0
        sims = self._background @ vector
        return float((dense - sims.mean()) / max(float(sims.std()), 1e-6))

    def _piece_match(self, found: Retrieval, answer: Answer) -> float:
        """How closely the cited passages' word pieces match the question's, in context: each question
        piece's best cosine among them, averaged with the pieces' rarity as weight (as the late-interaction
        rerank scores a passage). 0 without word pieces (BM25 only, or an index without them).

        On its own it hardly separates (AUC 0.56 on the dev questions); beside the sentence's cosine it
        does, and the fit gives it a negative weight: a near miss matches the passage word for word
        ("hourly rate", "Care Wage") while its meaning stays further off, a question in lay words the
        other way round. On the 312-question set, cross-validated, unanswerable questions abstained
        0.462 -> 0.577 at 4.9% false abstention, and the held-out ones 0.400 -> 0.467
        (`python -m eval.fit_abstention`)."""
        table, question = self.retriever.index.tokens, found.pieces
        weighted = None if table is None or question is None else table.weighted(question)
        if weighted is None:
            return 0.0
        cited = np.array(sorted({found.chunk_ids[q.n - 1] for q in answer.quotes}), dtype=np.int64)
        cited = cited[table.offsets[cited + 1] > table.offsets[cited]]  # chunks with word pieces
        if not len(cited):
            return 0.0
        vectors, weights = weighted
        return float(weights @ table.best_matches(vectors, cited).max(axis=1) / weights.sum())

    def _term_weights(self, query: str) -> dict[str, float]:
        """The question's words that say what it is about (not the words asking for the kind of answer
        or framing it, not the councils' names, not bare numbers), each weighted by its rarity in the
        corpus; a word the corpus never uses weighs most."""
        lex = self.retriever.index.lexical
        return {t: self._idf.get(t, self._max_idf) for t in lex.tokens(topic_of(query))
                if t not in self._council_tokens and t not in self._framing and not t.isdigit()}

    def _passage_tokens(self, passages: list[Passage]) -> set[str]:
        lex = self.retriever.index.lexical
        said: set[str] = set()
        for p in passages:
            said |= set(lex.tokens(f"{' '.join(p.section_path)}\n{p.text}", expand_acronyms=True))
        return said

    def _why_not(self, query: str, features: dict[str, float], cited: list[Passage]) -> str:
        """Why the evidence fell short, in the words of the question where possible."""
        if self.answerability.off_topic(features):
            return "Nothing in these reports comes close to this question."
        weights = self._term_weights(query)
        said = self._passage_tokens(cited)
        missing = [t for t in sorted(weights, key=lambda t: (-weights[t], t))[:2] if t not in said]
        if missing:
            lex = self.retriever.index.lexical
            words = [w for w in re.findall(r"[\w'-]+", query) if lex.tokens(w) and lex.tokens(w)[0] in missing]
            shown = list(dict.fromkeys(words)) or missing
            return f"The closest passages do not mention {' or '.join(repr(w) for w in shown)}."
        kinds = asked_kinds(query)
        if features["kind_missing"] and kinds:
            return f"The closest passages do not give the {KIND_NAMES[kinds[0]]} asked for."
        return "The closest passages do not answer it clearly."

    def _named_councils(self, query: str) -> set[str]:
        """The councils of the corpus that the question names ("Westminster")."""
        return self.retriever.catalogue.named_councils(query)

    # -- scoring -------------------------------------------------------------------------
    def _unknown_council(self, query: str) -> str:
        """A council named in the question that no report is about, e.g. "Leeds City Council"; or, when
        the question names none of the reports' councils, a place named where a council would be
        ("What did CQC say about Leeds?": the reports mention Leeds once, in passing)."""
        for m in _COUNCIL.finditer(query):
            words = [w for w in re.findall(r"\w+", m.group(1).lower()) if w not in GENERIC_COUNCIL_WORDS]
            if words and not set(words) & self._council_words:
                return m.group(0).strip()
        if self._named_councils(query):
            return ""
        from qa.conversation import unknown_place  # imported here: qa.conversation builds on this module

        return unknown_place(self, query)

    def _score_sentences(self, features: list[SentenceFeatures]) -> list[tuple[float, int, int]]:
        """(score, passage position, sentence row) for the sentences of the found passages, best first."""
        s = self.settings
        return sorted(((s.w_dense * f.dense + s.w_lexical * f.lexical + s.w_number * f.number + s.w_rank * f.rank
                        + s.w_kind * f.kind, f.position, f.row) for f in features), key=lambda x: -x[0])

    def _features(self, query: str, found) -> list[SentenceFeatures]:
        """What makes each candidate sentence a good answer to `query`."""
        lex = self.retriever.index.lexical
        terms = set(lex.tokens(query))
        weight = {t: self._idf.get(t, self._max_idf) for t in terms}
        total = sum(weight.values()) or 1.0
        asked_numbers = {_norm_number(n) for n in _NUMBER.findall(query)}
        asks_quantity = bool(_ASKS_NUMBER.search(query))
        kinds = asked_kinds(query)
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
                if not _is_statement(text) or text.strip() in chunks[ci].section_path:
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
                kind = float(any(has_kind(k, text) for k in kinds))
                out.append(SentenceFeatures(pos, int(row), float(sim), lexical, number, 1.0 / (1 + pos), kind))
        return out

    # -- composing -----------------------------------------------------------------------
    def _compose(self, question: str, passages: list[Passage], chunk_ids: list[int],
                 scored: list[tuple[float, int, int]], best: float) -> Answer:
        s = self.settings
        chosen: list[tuple[int, int, int]] = []  # (passage position, first sentence row, last sentence row)
        seen_text: set[str] = set()
        leaning: list[tuple[int, int]] = []  # further sentences that lean on the one before them
        # a score has one value: once the lead gives it, another passage's sentence giving one too
        # is a rival answer (another statement's score), not support
        single = [k for k in asked_kinds(question) if k in _SINGLE_VALUED]
        lead_gives: list[str] = []  # the single-valued kinds the lead sentence holds
        for score, pos, row in scored:
            if len(chosen) == s.max_sentences or score < best * s.keep_ratio:
                break
            text = self._sentence_text(chunk_ids[pos], row)
            if chosen and chosen[0][0] != pos and any(has_kind(k, text) for k in lead_gives):
                continue
            first = self._self_standing_start(chunk_ids[pos], row)
            if first is None:  # quoted only as the continuation of the sentence it leans on
                leaning.append((pos, row))
                continue
            key = re.sub(r"\W+", " ", text.lower()).strip()
            if key in seen_text or any(p == pos and a <= row <= b for p, a, b in chosen):
                continue
            seen_text.add(key)
            overlap = next((i for i, (p, a, b) in enumerate(chosen) if p == pos and first <= b and a <= row), None)
            if overlap is not None:  # "Of these, 45% ..." brings a sentence already quoted: one longer quote
                _, a, b = chosen[overlap]
                chosen[overlap] = (pos, min(a, first), max(b, row))
                continue
            if not chosen:
                lead_gives = [k for k in single if has_kind(k, text)]
            chosen.append((pos, first, row))
        for _, row in sorted(leaning, key=lambda item: item[1]):
            # "Its actual spend was ..." right after the quoted sentence it leans on: one longer quote
            at = next((i for i, (p, _, last) in enumerate(chosen) if last == row - 1
                       and self._continues(chunk_ids[p], row)), None)
            if at is not None:
                chosen[at] = (chosen[at][0], chosen[at][1], row)
        # number passages by first use; keep each report's sentences together, in answer order
        order: list[int] = []
        for pos, _, _ in chosen:
            if pos not in order:
                order.append(pos)
        by_doc: dict[str, list[tuple[int, int, int]]] = {}
        for item in chosen:
            by_doc.setdefault(passages[item[0]].doc_id, []).append(item)
        citations = [passages[p] for p in order]
        quotes: list[Quote] = []
        parts: list[str] = []
        for doc_id, items in by_doc.items():
            p0 = passages[items[0][0]]
            said = []
            for pos, first, row in items:
                n = order.index(pos) + 1
                start, end = int(self._sentences.start[first]), int(self._sentences.end[row])
                text = passages[pos].text[start:end]
                quotes.append(Quote(n, text, start, end))
                said.append(f"\"{text}\" [{n}]")
            parts.append(f"{report_label(p0)}: " + " ".join(said))
        return Answer(question, "\n".join(parts), False, citations, quotes, confidence=best)

    def _self_standing_start(self, chunk_index: int, row: int) -> int | None:
        """The first sentence row of a quote ending at `row` that stands on its own, or None.

        A sentence opening with "These", "It", "However" ... leans on the one before it, and brings
        the sentences it leans on (up to two, from the same paragraph of its passage); one that
        reaches further is quoted only as the continuation of a quote ending right before it, never
        alone. (Only the answer's lead sentence used to bring them: a further quote such as "They also
        told us about making arrangements for BSL and other interpreters..." was then left out, and
        two more dev questions get their fact with it, none fewer: `python -m eval`.)
        """
        first = row
        for _ in range(_MAX_LEAN_BACK + 1):
            if not _LEANS_ON_BEFORE.match(self._sentence_text(chunk_index, first)):
                return first
            if not self._continues(chunk_index, first):
                return None
            first -= 1
        return None

    def _continues(self, chunk_index: int, row: int) -> bool:
        """Whether sentence `row` follows sentence `row - 1` in the same paragraph of the chunk."""
        if row == 0 or self._sentences.chunk[row - 1] != chunk_index or self._sentences.chunk[row] != chunk_index:
            return False
        between = self.retriever.index.chunks[chunk_index].text[self._sentences.end[row - 1]:
                                                                self._sentences.start[row]]
        return "\n\n" not in between

    def _sentence_text(self, chunk_index: int, row: int) -> str:
        return self.retriever.index.chunks[chunk_index].text[self._sentences.start[row] : self._sentences.end[row]]

    def _nearest_of_named(self, query: str, passages: list[Passage], named: set[str], council: str | None,
                          doc_id: str | None, year: int | None) -> list[Passage]:
        """`passages`, or when the question names one council (`named`) and none of them is about it
        (nor any filter set), that council's nearest passages: a question about Westminster that only
        Birmingham's report comes near is pointed to Westminster's sections, not Birmingham's."""
        if len(named) != 1 or council is not None or doc_id is not None or any(p.council in named for p in passages):
            return passages
        try:
            found = self.retriever.retrieve_batch([query], self.settings.k,
                                                  filters=Filters(next(iter(named)), None, year))[0]
        except QueryError:  # no report of that council from that year
            return passages
        return found.passages or passages

    def _abstain(self, question: str, passages: list[Passage], confidence: float, why: str) -> Answer:
        named = self._named_councils(question)  # "... in Westminster?": Westminster's sections first
        nearest, shown = [], set()
        for p in sorted(passages, key=lambda p: p.council not in named) if named else passages:
            if (p.title, p.section) not in shown and len(nearest) < 3:  # a section once, however many passages
                shown.add((p.title, p.section))
                nearest.append(p)
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
    # a figure for 2021/22 is not one for 2022/23, though the passage names 2022/23 elsewhere (a question
    # naming other years too asks of each in its own part: "what did the 2016 letter say ..., and ... in 2024-25?")
    if len(years) == 1 and len(next(iter(years))) == 2 and \
            not years & _years(_with_sentence_before(passage.text, sentence)):
        return False
    if years:  # the year may date the event ("after the 2019 tender") in the sentence's passage
        said = _years(sentence) | _years(passage.text)
        if not (years & said or any(len(y) == 1 and y[0] == str(passage.year) for y in years)
                or any(len(y) == 1 and any(y[0] in z for z in said) for y in years)):
            return False
    return True


def _with_sentence_before(text: str, sentence: str) -> str:
    """`sentence` with the sentence before it in `text` ("... in 2021/22. Its actual spend was ..."),
    where the year it gives a figure for is often named; `sentence` alone if it is not found."""
    at = text.find(sentence)
    if at < 0:
        return sentence
    before = re.split(r"(?<=[.!?])\s+", text[:at].rstrip())
    return f"{before[-1] if before else ''} {sentence}"


def report_label(p: Passage) -> str:
    """How an answer introduces a report: its title and date, so years and councils are never mixed up."""
    return f"{p.title} ({p.date_text})"


#: Kinds of answer that are names: a name the question itself uses is not the answer to it
#: ("Who is the Cabinet Member ... in Westminster?" is not answered by "Fairer Westminster").
_NAMED_KINDS = ("person", "place")


def _without_words_of(text: str, question: str) -> str:
    """`text` with the words of `question` blanked out (case-insensitive, whole words)."""
    words = {w.lower() for w in re.findall(r"[A-Za-z][\w'-]*", question)}
    return re.sub(r"[A-Za-z][\w'-]*", lambda m: "_" if m.group(0).lower() in words else m.group(0), text)


#: Kinds of answer (`qa.answerability`) a question expects one value of, where another section's
#: value is a rival answer: each quality statement has its own score. (Dates and names were tried
#: too: two questions lost a supporting sentence, so they are not in.)
_SINGLE_VALUED = ("rating",)

# "Label: value", the label one to three words: a labelled fact, as ratings and scores are printed
_LABELLED = re.compile(r"^\w+(?:[ -]\w+){0,2}:\s+\S")


def _is_statement(text: str) -> bool:
    """A sentence that can stand as an answer, not a heading or a label.

    A short line in title case ("Adult Social Care CQC Self-Assessment (September 2025)") is a
    heading or a title, whatever it ends with; a short "Label: value" line is a labelled fact. A
    heading written as a label ("Theme 2: Providing support") is left out by the caller, which knows
    the section path.
    """
    words = text.split()
    if len(words) >= 8:
        return True
    if len(words) < 4:
        return False
    if _LABELLED.match(text):  # "Good: Evidence shows a good standard" under "Indicative rating"
        return True
    lettered = [w for w in words if w[:1].isalpha()]
    if sum(w[:1].isupper() for w in lettered) > len(lettered) / 2:
        return False
    return bool(re.search(r"[.!?:;\"')]$", text)) or bool(_NUMBER.search(text))


def _number_near_terms(text: str, terms: set[str], lex) -> float:
    """How well a figure in `text` is tied to the question: the share of the question's words
    (up to three) within four words of some number. "5 local authorities" answers "how many local
    authorities"; "Part 1 of the Care Act (2014)" does not.
    """
    words = text.split()
    best = 0
    for i, word in enumerate(words):
        if not _NUMBER.search(word) or (i and _RATE_BASE.match(f"{words[i - 1]} {word}")):  # "per 100,000": a unit
            continue
        window = " ".join(words[max(0, i - 4) : i] + words[i + 1 : i + 5])
        best = max(best, len(terms & set(lex.tokens(window))))
    return min(best, 3) / max(1, min(3, len(terms)))


def _gives_new_figure(sentence: str, query: str) -> bool:
    """Whether `sentence` states a figure (digits or words: "ten") that `query` does not already give.
    A rate's base ("beds per 100,000 adults") is a unit, not a figure."""
    asked = {_norm_number(n) for n in _NUMBER.findall(query)}
    sentence = _RATE_BASE.sub(" ", sentence)
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
