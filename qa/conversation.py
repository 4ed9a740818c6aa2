"""Follow-up questions: a conversation that rewrites a question leaning on the turns before it.

    from qa import Assistant, Conversation
    chat = Conversation(Assistant.load())
    chat.ask("How many young people were waiting for a transition assessment?")
    a = chat.ask("And what about Westminster?")
    a.query   # "How many young people were waiting for a transition assessment in Westminster?"

No language model is needed. Whether a question leans on the previous turn is decided from what
it says, measured against the corpus rather than against lists of topic words:

* its own topic: the words the index knows (BM25 vocabulary, weighted by IDF) other than the
  councils' names, years, and words that only frame a question ("how many", "compare");
* whether it opens as a continuation ("and ...", "what about ...") or refers back with a pronoun
  or demonstrative ("it", "that", "they", "then", "there");
* the councils it names (from the corpus catalogue), a place the reports do not cover (capitalised
  words the corpus never writes in lower case and mentions at most in passing), and years.

A question with no topic of its own ("And Westminster?", "how did that compare in 2016?") restates
the previous standalone question with the council or year swapped, and with any figure it adds
("how many were over 65?", "how many over 90 days?"). One with a short topic and a
pronoun ("who led it?") has the pronoun replaced by the phrase of the previous question it most
likely refers to, chosen by the dense similarity of each candidate rewrite to the corpus. One
with a short topic and a continuation opener ("what about waiting times then?") keeps its topic
and carries the previous council and year; a bare phrase ("What about carers?") is joined to the
previous question when the corpus answers the two together more closely than either alone. One
naming another report or year with few words of its own ("whats the target date in the 2025
self-assessment?") is the previous question asked of that report when the corpus answers it far
better so. Anything else is a new topic and is left alone.

A follow-up about a place the reports do not cover ("And Leeds?", or one of England's councils
however it is typed: "same for leeds?", `qa.places`) is rewritten to name it as a council
("Leeds Council"), which the Assistant abstains on; one about a year no report is from and the
reports never mention abstains here, with the nearest sections.
"""

from __future__ import annotations

import calendar
import logging
import re
import threading
import weakref
from collections import Counter
from dataclasses import dataclass, replace

from qa.answer import NOT_FOUND, Answer
from qa.answerability import FRAMING_WORDS as _FRAME
from qa.catalogue import distinctive
from qa.errors import QueryError
from qa.places import council_at, name_of
from qa.retriever import clean_query
from qa.sides import YEAR, year_mentions

log = logging.getLogger(__name__)

#: Dependency kinds a rewrite can report (the names used by eval/conversations.jsonl).
KINDS = ("none", "entity_swap", "year_swap", "anaphora", "ellipsis")
#: Previous turns kept (the rewriter only reads the latest; the rest is history for callers).
MAX_TURNS = 20

# Closed classes of English grammar, not topic words: how a follow-up opens, and the words that
# point back to something said before.
_OPENER = re.compile(r"^\s*(?:(?:and|but|also|so|ok|okay|then)\b[\s,]*)*(?:(?:what|how)\s+about\b|what\s+of\b|"
                     r"same\s+(?:for|with)\b)?", re.IGNORECASE)
_POINTERS = {"it", "its", "they", "them", "their", "theirs", "this", "that", "these", "those", "there", "then",
             "he", "she", "him", "his", "her", "hers"}
_PERSONAL = {"it", "them", "they", "he", "she", "him", "her", "we", "us", "you"}  # no noun phrase ends before one
_POSSESSIVE = {"its", "their", "theirs", "his", "her", "hers"}
_DETERMINERS = {"the", "a", "an"}
_AUXILIARIES = {"did", "does", "do", "is", "are", "was", "were", "has", "have", "had", "will", "would", "can",
                "could", "should"}
_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how"} | _AUXILIARIES
_PREPOSITIONS = {"of", "for", "about", "on", "in", "at", "to", "from", "with", "by", "into", "over", "under",
                 "between", "during", "after", "before", "within"}
# adverbs of time: "And back in 2016?", "what is it now?" ask about a time, not a topic of their own
_TIME_WORDS = {"back", "again", "now", "currently", "still", "later", "earlier", "previously", "already", "ago",
               "yet", "anymore", "nowadays"}
# a follow-up asking about the present ("has that got any better since?", "how many staff these days?")
# asks the latest report, not the year of the question before
_NOW = re.compile(r"\b(?:now|still|currently|these days|nowadays|at the moment|at present|today|any ?more|"
                  r"since(?: then)?(?=\W*$))\b", re.IGNORECASE)
# a year given by the one before: "and the year after?", "the previous year", "a year later"
_RELATIVE_YEAR = re.compile(r"\b(?:(?:in\s+)?the\s+(?:year\s+(?P<a>after|before)|"
                            r"(?P<b>following|next|previous|prior)\s+year)|"
                            r"(?:a|one)\s+year\s+(?P<c>later|earlier|on|before))\b", re.IGNORECASE)
#: A closing clause saying which report or time a question is asked of: "..., when CQC assessed it in 2023?",
#: "... according to cqc?", "... going by the 2025 self assessment?", "... at the time of the peer challenge?"
_SOURCE = re.compile(r"(?:,\s*|\s+)(?P<clause>(?:when|according\s+to|going\s+by|at\s+the\s+time\s+of|as\s+of)\s+"
                     r"(?P<rest>[^?!.;,]+?))\s*[?!.]*\s*$", re.IGNORECASE)
# words saying a question starts a new topic ("different question -", "unrelated but", "on a different
# note,"): what follows is asked on its own, without them
_NEW_TOPIC = re.compile(r"^\W*(?:(?:ok(?:ay)?|so|and|also|right)\b[\s,]*)?(?:totally\s+|completely\s+)?"
                        r"(?:(?:a\s+)?(?:different|diff|new|separate|unrelated|another|other)\s+"
                        r"(?:question|topic|thing|subject|q)\b|unrelated(?:\s+(?:but|question))?\b|"
                        r"on\s+(?:a|another)\s+(?:different\s+|separate\s+)?(?:note|topic|subject)\b|"
                        r"changing\s+(?:the\s+)?(?:topic|subject)\b)[\s,:;.!?\-–—]*", re.IGNORECASE)
# the adverbs a phrasal verb ends in ("sort that out"): a clause never starts with one
_PARTICLES = {"out", "up", "off", "down", "back", "away", "through", "together"}
# how a question that adds to the one before may close: "Did Westminster see a rise too?"
_ALSO = re.compile(r"[\s,]+(?:too|as well|either)\W*$", re.IGNORECASE)
# a question word, after a preposition that may lead it ("over how many days?", "since when?")
_QUESTION_START = re.compile(r"(?:(?:" + "|".join(sorted(_PREPOSITIONS | {"since", "until"})) + r")\s+)?(?:"
                             + "|".join(sorted(_WH)) + r")\b", re.IGNORECASE)
_CALENDAR = {n.lower() for n in (*calendar.month_name, *calendar.day_name) if n}
_WORD = re.compile(r"[A-Za-z][\w'’-]*|\d+s\b|\d[\d/,.\-–]*\d|\d|[^\w\s]")  # "over 85s" keeps its "s"
#: A proper noun the reports mention in more chunks than this is a subject of theirs, not a place.
MAX_PLACE_CHUNKS = 2
#: A capitalised word the reports write joined to another name ("The Labour Party", "a Labour-led
#: council") names a party or an organisation, not a place; "Leeds City Council" still names Leeds.
_IN_A_NAME = re.compile(r"\b([A-Z][a-z]+)(?:-[A-Za-z]|\s+(?!(?:City|County|Borough|District|Metropolitan|"
                        r"Council)\b)[A-Z][a-z])")
#: Topic tokens a follow-up may have of its own and still lean on the previous turn.
MAX_OWN_TOPIC = 3
#: A question this short (in words) with one topic word at most leans on the previous turn ("Over how many days?").
MAX_SHORT_WORDS = 5
#: A question naming no council or year leans on the previous one when its best dense similarity to
#: the corpus rises by this much read after it. Measured: follow-ups gained 0.07-0.49 (dev conversations),
#: new topics -0.08-0.07 (this module's own examples; eval/conversations.jsonl's dev new topics all
#: name a council).
GAIN = 0.15
#: A question naming another report or year, with few words of its own, is read as the question before
#: asked of that report when this raises its best dense similarity by this much. Measured: +0.10 to +0.13
#: for follow-ups of eval/conversations.jsonl ("whats the target date in the 2025 self-assessment?"), at
#: most +0.07 for five new questions naming another year written to check it ("What does the 2025
#: self-assessment say about the gender pay gap?" after direct payments in 2023); 252 turns 192 -> 193
#: from 0.0 to 0.1 alike, 192 at 0.15.
YEAR_GAIN = 0.1
#: Asked of a language model (when one is configured) for a follow-up the rules found.
MODEL_PROMPT = ("You rewrite a follow-up question from a conversation about public reports on English councils' "
                "adult social care into one standalone question that can be understood without the conversation. "
                "Keep every council, place, year and report the follow-up names; take the topic, council and year it "
                "leaves out from the previous question. Reply with the question only, on one line.")
#: Candidate rewrites whose best dense similarity is this close to the best count as tied.
TIE = 0.02


@dataclass(frozen=True)
class Rewrite:
    """How a question was read: the standalone question to search, and why.

    `kind` is "none" for a question that stands alone (a first question or a new topic), else
    "entity_swap", "year_swap", "anaphora" or "ellipsis". `uncovered` names a council or year the
    reports do not cover, if the question asks about one.
    """

    question: str
    query: str
    kind: str = "none"
    reason: str = ""
    uncovered: str = ""

    @property
    def rewritten(self) -> bool:
        return self.query != self.question


@dataclass(frozen=True)
class Turn:
    """One exchange: what was asked, how it was read, and the answer."""

    question: str
    rewrite: Rewrite
    answer: Answer


@dataclass(frozen=True)
class _Reading:
    """What a question says: its words, the councils, places and years it names, its own topic."""

    words: list[str]
    councils: list[str]  # catalogue councils, canonical names
    council_text: str  # as written, e.g. "Westminster" or "Birmingham's"
    place: str  # a place no report covers, as written
    years: list[str]  # as written, e.g. "2016", "2023/24"
    topic: list[str]  # stemmed topic tokens of its own
    opener: str  # "and what about", "" if none
    pointers: list[int]  # positions in `words` of words pointing back
    report: str = ""  # a report named by its year, e.g. "the 2023 CQC assessment", as written
    also: str = ""  # a closing "too", "as well", "either": the question adds to the one before
    source: str = ""  # a closing clause naming the report or time asked of: "when CQC assessed it in 2023"

    def naming_words(self, report: bool = True) -> set[str]:
        """The words naming its council, place and years (and report, unless `report` is False)."""
        return {w for name in ((self.report,) if report else ()) + (self.council_text, self.place, *self.years)
                for w in _WORD.findall(name)}


class _CorpusFacts:
    """What the rewriter needs from the corpus, computed once per index."""

    def __init__(self, assistant) -> None:
        retriever = assistant.retriever
        self.lex = retriever.index.lexical
        self.idf: dict[str, float] = assistant._idf
        self.framing: set[str] = set(self.lex.tokens(_FRAME))
        self.councils: list[str] = list(retriever.councils)
        self.council_words = {c: distinctive(c) for c in self.councils}
        all_council_words = set().union(*self.council_words.values()) if self.councils else set()
        # every word of the councils' names, "city" and "council" included: none is a question's topic
        self.council_tokens = {t for c in self.councils for t in self.lex.tokens(c)}
        self.report_years = set(retriever.catalogue.years)
        # words the catalogue uses to describe its reports ("CQC assessment", "self-assessment", "peer challenge")
        self.report_tokens = {t for d in retriever.documents.values()
                              for t in self.lex.tokens(f"{d.short_title} {d.doc_type}")} - self.council_tokens
        lower: set[str] = set()
        named: set[str] = set()  # words written as part of a longer name: "Labour Party", "Labour-led"
        df: Counter[str] = Counter()
        mentioned_years: set[str] = set()
        self.doc_chunks: Counter[str] = Counter()
        for chunk in retriever.index.chunks:
            self.doc_chunks[chunk.doc_id] += 1
            words = re.findall(r"[A-Za-z][\w'-]*", chunk.text)
            lower.update(w.lower() for w in words if w[0].islower())
            named.update(m.group(1).lower() for m in _IN_A_NAME.finditer(chunk.text))
            df.update({w.lower() for w in words})
            mentioned_years.update(y for _, ys in year_mentions(chunk.text) for y in ys)
        self.lower_seen = lower
        self.in_names = named
        self.chunk_df = df
        self.mentioned_years = mentioned_years
        self.council_surface = all_council_words

    def council_word(self, word: str) -> str:
        """`word` lower-cased without a possessive's ending, also typed without its apostrophe
        ("Birmingham's", "birminghams" -> "birmingham")."""
        w = _bare(word.lower())
        return w[:-1] if w.endswith("s") and w not in self.council_surface and w[:-1] in self.council_surface else w

    def is_place(self, word: str) -> bool:
        """A capitalised word naming a place the reports do not cover (not a council of theirs)."""
        w = _bare(word.lower())
        if not word[:1].isupper() or sum(c.isupper() for c in word) > 1 or len(w) < 3:
            return False
        if w in self.council_surface or w in _CALENDAR or w in _WH or w in _POINTERS:
            return False
        return (w not in self.lower_seen and w not in self.in_names
                and self.chunk_df.get(w, 0) <= MAX_PLACE_CHUNKS)

    def year_covered(self, year: tuple[str, ...]) -> bool:
        return int(year[0]) in self.report_years or all(y in self.mentioned_years for y in year)


_FACTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FACTS_LOCK = threading.Lock()


def _facts(assistant) -> _CorpusFacts:
    """The corpus facts of an assistant's index, shared by all its conversations (derived data only)."""
    with _FACTS_LOCK:
        facts = _FACTS.get(assistant)
        if facts is None:
            facts = _FACTS[assistant] = _CorpusFacts(assistant)
        return facts


def unknown_place(assistant, question: str) -> str:
    """A place `question` names where a council would be and no report covers ("What did CQC say
    about Leeds?" -> "Leeds"), as the rewriter reads it (`Rewriter._place`), an English council by its
    name however it was typed ("leeds" -> "Leeds"); "" if none."""
    place = Rewriter(assistant).read(question).place
    return (name_of(place) or place) if place else ""


class Rewriter:
    """Turns a follow-up into a standalone question, given the previous standalone question.

    Example:
        >>> rw = Rewriter(Assistant.load())
        >>> rw.rewrite("And in 2016?", "How many carers were supported?").query
        'How many carers were supported in 2016?'
    """

    def __init__(self, assistant) -> None:
        self.assistant = assistant
        self.facts = _facts(assistant)

    # -- reading a question ----------------------------------------------------------------
    def read(self, question: str) -> _Reading:
        f = self.facts
        words = _WORD.findall(question)
        lowered = [w.lower() for w in words]
        councils = [c for c in f.councils if f.council_words[c] & {f.council_word(w) for w in lowered}]
        council_text = ""
        for i, w in enumerate(words):
            if f.council_word(w) in f.council_surface:
                end = i + 1  # "Birmingham City Council" as one name
                while end < len(words) and words[end].lower() in {"city", "county", "borough", "council"}:
                    end += 1
                council_text = " ".join(words[i:end])
                break
        m = _OPENER.match(question)
        opener = m.group(0).strip() if m else ""
        place = self._place(words, bool(opener))
        years = [text for text, _ in year_mentions(question)]
        year_tokens = {t for y in years for t in re.findall(r"\d+", y)}
        place_tokens = set(self.facts.lex.tokens(place)) if place else set()
        report = self._report(words)
        report_tokens = set(f.lex.tokens(report)) if report else set()
        pointers = [i for i, w in enumerate(lowered) if (w in _POINTERS and self._points_back(lowered, i))
                    or (w == "one" and _one_points_back(lowered, i))]
        # not topics: a figure's unit ("over 90 days"), an adverb of time, a word pointing back ("one")
        not_topic = {t for i in _units(words) + pointers for t in f.lex.tokens(words[i])}
        not_topic |= {t for w in lowered if w in _TIME_WORDS for t in f.lex.tokens(w)}
        source = self._source(question)  # "when cqc came in 2023" says when, not what
        not_topic |= set(f.lex.tokens(source))
        topic = [t for t in f.lex.tokens(question)
                 if t not in f.framing and t not in f.council_tokens and t not in place_tokens
                 and not any(ch.isdigit() for ch in t) and t not in year_tokens and t not in report_tokens
                 and t not in not_topic]
        also = _ALSO.search(question)
        return _Reading(words, councils, council_text, place, years, topic, opener, pointers, report,
                        also.group(0) if also else "", source)

    def _source(self, question: str) -> str:
        """A closing clause naming the report or time the question is asked of ("when CQC assessed it
        in 2023", "according to cqc", "at the time of the peer challenge"): one that names a year, or
        whose first word (after an article or possessive) names a report; "" if none."""
        m = _SOURCE.search(question)
        if not m or m.start() == 0:
            return ""
        rest = _WORD.findall(m.group("rest"))
        if rest[0].lower() in _AUXILIARIES:  # "by when did they plan to clear it in 2023?" asks when
            return ""
        if any(YEAR.fullmatch(w) for w in rest):
            return m.group("clause")
        head = [w for w in rest if w.lower() not in _DETERMINERS | _POSSESSIVE][:1]
        tokens = set(self.facts.lex.tokens(head[0])) if head else set()
        return m.group("clause") if tokens and tokens <= self.facts.report_tokens else ""

    def _report(self, words: list[str]) -> str:
        """A report named by its year and the catalogue's words for it: "the 2023 CQC assessment"."""
        f = self.facts
        for i, w in enumerate(words):
            if not YEAR.fullmatch(w):
                continue
            start, end = i, i + 1
            while end < len(words) and words[end][:1].isalpha() and set(f.lex.tokens(words[end])) & f.report_tokens:
                end += 1
            while start > 0 and words[start - 1][:1].isalpha() and (
                    set(f.lex.tokens(words[start - 1])) & f.report_tokens):
                start -= 1
            if end == i + 1 and start == i:
                continue  # a bare year: not a report
            if start > 0 and words[start - 1].lower() in _DETERMINERS:
                start -= 1
            return _join(words[start:end])
        return ""

    def _place(self, words: list[str], opener: bool = False) -> str:
        """A place the reports do not cover, named where a council would be ("And Leeds?", "in Leeds").

        A run of capitalised words is a place when none of its words is one the corpus also writes
        in lower case or a council of the catalogue ("Birmingham Care Wage", "Care Act" are not),
        each is a proper noun the reports mention at most in passing, and it stands where a council
        would: alone after the opener, or after a preposition.
        """
        f = self.facts
        content = [i for i, w in enumerate(words) if w[:1].isalnum() and f.lex.tokens(w)
                   and f.lex.tokens(w)[0] not in f.framing]

        def in_slot(i: int, j: int, typed_lower: bool = False) -> bool:  # words[i:j] stand where a council would
            others = [k for k in content if not i <= k < j]
            alone = not others and (opener or all(not w[:1].isalnum() for w in words[:i] + words[j:]))
            named = words[j - 1].lower() == "council" or words[j - 1].lower().endswith(("'s", "’s")) or (
                j < len(words) and words[j].lower() == "council")
            # typed in lower case, a name after a preposition must end the question ("after reading the report")
            last = j == len(words) or not words[j][:1].isalnum()
            return alone or named or (i > 0 and words[i - 1].lower() in _PREPOSITIONS and (last or not typed_lower))

        # an English council the catalogue does not hold, however it is typed ("same for leeds?"), also
        # opening a question ("coventry do it the same way?")
        for i in range(len(words)):
            n = council_at(words, i)
            span = words[i:i + n]
            typed_lower = not any(w[:1].isupper() for w in span)
            if n and not {_bare(w.lower()) for w in span} & f.council_surface and (
                    in_slot(i, i + n, typed_lower) or (i == 0 and len(words) > n + 1 and words[n].lower() in _WH)):
                return " ".join(span)
        i = 0
        while i < len(words):
            if not words[i][:1].isupper():
                i += 1
                continue
            j = i
            while j < len(words) and words[j][:1].isupper() and words[j][:1].isalpha():
                j += 1
            run = words[i:j]
            names = [w for w in run if w.lower() not in {"city", "county", "borough", "council"}]
            if i == 0 and names and not f.is_place(names[0]):  # a question's first word is capitalised anyway
                names, run = names[1:], run[1:]
                i += 1
            if names and all(f.is_place(w) for w in names) and in_slot(i, j):
                return " ".join(run)
            i = max(j, i + 1)
        return ""

    def _own_length(self, r: _Reading) -> int:
        """How many words a question has besides those naming a report, council, place or year, and
        the preposition or article before them ("What's the plan in the 2025 self-assessment?": 3)."""
        naming = r.naming_words()
        words = [w for w in r.words if w[:1].isalnum()]
        keep = [w not in naming for w in words]
        for i in range(len(words) - 1, 0, -1):  # "in the 2025 ...": the words leading a name go with it
            if not keep[i] and words[i - 1].lower() in _PREPOSITIONS | _DETERMINERS | {"according"}:
                keep[i - 1] = False
        return sum(keep)

    @staticmethod
    def _points_back(lowered: list[str], i: int) -> bool:
        """Whether the pointer word at `i` refers back ("who led it"), not forward ("the plan that was")."""
        w = lowered[i]
        if w not in {"that", "this", "these", "those"}:
            return True
        before = lowered[i - 1] if i else ""
        after = lowered[i + 1] if i + 1 < len(lowered) else ""
        if not after[:1].isalnum() or after in _PREPOSITIONS | _PARTICLES:
            return True  # "sort that out", "pay for that?": nothing follows that a clause could start with
        # "the team that led" / "said that": a relative or complementiser after a noun or verb
        return not (before and before not in _WH and before not in _PREPOSITIONS and before.isalpha()
                    and before not in {"and", "but", "about"})

    # -- rewriting -------------------------------------------------------------------------
    def rewrite(self, question: str, previous: str | None, previous_council: str = "",
                previous_answer: str = "") -> Rewrite:
        """The standalone question for `question` after the standalone question `previous`.

        `previous_council` is the council the previous answer was about, carried when neither
        question names one; `previous_answer` the sentence it quoted first, whose names a pointer
        may stand for after a question asking who or which ("their contract" after "who does
        carers assessments?", answered "... the Carers Hub, of which Forward Carers is the lead provider").
        """
        fresh = _NEW_TOPIC.match(question)
        if fresh and question[fresh.end():].strip():  # "different question - how many councillors ...?"
            rest = _tidy(question[fresh.end():])
            return Rewrite(question, rest, "none", f"says it starts a new topic ({fresh.group(0).strip(' ,:;.-–—')!r})",
                           self._uncovered(self.read(rest)))
        now = self.read(question)
        uncovered = self._uncovered(now)
        if not previous:
            return Rewrite(question, question, "none", "first question", uncovered)
        before = self.read(previous)
        dated, said = self._dated_now(question, now, before)
        if dated:  # "has that got any better since?" after a 2023 question: asked of the latest report
            at = self.read(dated)
            if at.pointers and len(at.topic) <= 1:  # "is it still like that?": the same question, then
                query = self._swap(previous, before, at)
                return Rewrite(question, query, "year_swap", f"refers back, {said!r} read as a year", uncovered)
            inner = self.rewrite(dated, previous, previous_council, previous_answer)
            return replace(inner, question=question, reason=f"{inner.reason}; {said!r} read as a year")
        swaps_council = bool(now.place or (now.councils and set(now.councils) != set(before.councils)))
        swaps_year = bool(now.years and set(now.years) != set(before.years))
        # "and who runs westminster" after "which party runs birmingham council": no word of its own
        repeats = (swaps_council or swaps_year) and set(now.topic) <= set(before.topic)
        if not now.topic or repeats:  # "And Westminster?", "how did that compare in 2016?", "why?"
            query = self._swap(previous, before, now)
            kind = ("entity_swap" if swaps_council else "year_swap" if swaps_year
                    else "anaphora" if now.pointers else "ellipsis")
            return Rewrite(question, query, kind, "no topic of its own: the previous question, "
                           + ("with the council or year changed" if swaps_council or swaps_year else "restated"),
                           uncovered)
        time_or_place = all(now.words[i].lower() in {"then", "there"} for i in now.pointers)
        if len(now.topic) <= MAX_OWN_TOPIC and now.pointers and not (now.opener and time_or_place):
            query = self._resolve(question, now, previous, before, previous_council, previous_answer)
            return Rewrite(question, query, "anaphora",
                           f"refers back ({', '.join(now.words[i] for i in now.pointers)})", uncovered)
        there = [now.words[i] for i in now.pointers if now.words[i].lower() in {"there", "then"}]
        if there and not (now.councils or now.place) and not now.opener:
            # "who stands in for the adult social care director there?": a topic of its own, the council before
            query = self._carry(_drop_place_pointers(question), now, before, previous_council)
            return Rewrite(question, query, "anaphora", f"refers back ({', '.join(there)})", uncovered)
        if swaps_year and not swaps_council and len(now.topic) <= MAX_OWN_TOPIC:
            joined = self._asked_of_another_report(question, previous, before, now)
            if joined:  # "whats the target date in the 2025 self-assessment?"
                return Rewrite(question, joined, "year_swap", "another report or year, with few words of its own, "
                               "answered more closely after the question before", uncovered)
        short = len(now.topic) <= 1 and self._own_length(now) <= MAX_SHORT_WORDS
        if (len(now.topic) <= MAX_OWN_TOPIC and (now.opener or now.also)) or short:
            text = _strip_opener(question, now.opener) if now.opener else question
            if now.also:  # "Did Westminster see a rise too?"
                text = text[:len(text) - len(now.also)].rstrip(" ,") + "?"
            swapped = self._in_place_of_same_noun(text, previous)
            query = self._carry(swapped or self._continue_topic(text, previous, before), now, before,
                                previous_council)
            if not swapped and not _QUESTION_START.match(text):
                query = self._joined_if_closer(query, text, previous, before, now)
            why = (f"opens as a continuation ({now.opener!r})" if now.opener else
                   f"adds to the question before ({now.also.strip(' ?.!')!r})" if now.also else
                   "short, with one topic word at most")
            return Rewrite(question, query, "ellipsis", why, uncovered)
        if not (now.councils or now.place or now.years):
            try:
                alone, joined = self._dense_best([question, f"{previous} {question}"])
            except QueryError:  # together longer than a question may be
                alone, joined = 1.0, 0.0
            if joined - alone >= GAIN:  # the corpus answers it far better read with the previous question
                text = _strip_opener(question, now.opener) if now.opener else question
                query = self._carry(self._continue_topic(text, previous, before), now, before, previous_council)
                return Rewrite(question, query, "ellipsis", f"dense similarity {alone:.2f} alone, {joined:.2f} "
                               "after the previous question", uncovered)
        return Rewrite(question, question, "none", "a topic of its own", uncovered)

    def _dated_now(self, question: str, now: _Reading, before: _Reading) -> tuple[str, str]:
        """`question` with its words for the present ("now", "these days", "since") put as the year of
        the latest report about the council, when that is not the year the question before named, or
        with a year given by the one before ("the year after" 2021/22) put as that year ("in 2022/23");
        "" when it names a year itself, the question before named none, or nothing changes; and the
        words read as the year."""
        if now.years or not before.years or now.place:
            return "", ""
        relative = _RELATIVE_YEAR.search(question)
        if relative:
            step = -1 if (relative.group("a") or relative.group("b") or relative.group("c")).lower() in {
                "before", "previous", "prior", "earlier"} else 1
            year = _shift_year(before.years[0], step)
            text = f"{question[:relative.start()]}in {year}{question[relative.end():]}" if year else ""
            return text, relative.group(0)
        m = _NOW.search(question)
        if not m:
            return "", ""
        councils = now.councils or before.councils
        catalogue = self.assistant.retriever.catalogue
        years = [y for c in councils for y in catalogue.council_years.get(c, ())] or list(catalogue.years)
        latest = str(max(years)) if years else ""
        if not latest or any(y.startswith(latest) for y in before.years):
            return "", ""
        word = "by" if m.group(0).lower().startswith("since") else "in"
        return f"{question[:m.start()]}{word} {latest}{question[m.end():]}", m.group(0)

    def model_rewrite(self, rule: Rewrite, previous: str) -> Rewrite:
        """The language model's standalone question for a follow-up, if it passes the checks; else `rule`.

        Checked: one line of sensible length; it names every council, place and year the follow-up
        names, no council or year that neither question names, and some topic word of the two.
        """
        from qa.generate import LLMClient, LLMError

        user = f"Previous question: {previous}\nFollow-up question: {rule.question}"
        try:
            text = LLMClient(self.assistant.llm).complete(
                [{"role": "system", "content": MODEL_PROMPT}, {"role": "user", "content": user}]).text
        except LLMError as exc:
            log.info("the model's rewrite was not used: %s", exc)
            return replace(rule, reason=f"{rule.reason}; the language model could not rewrite it ({exc})")
        text = text.strip().strip('"').strip()
        problem = self._check_model_rewrite(text, rule.question, previous)
        if problem:
            log.info("the model's rewrite %r was not used: %s", text[:200], problem)
            return replace(rule, reason=f"{rule.reason}; the language model's rewrite was not used: {problem}")
        return replace(rule, query=" ".join(text.split()), reason=f"written by the language model ({rule.reason})")

    def _check_model_rewrite(self, text: str, question: str, previous: str) -> str:
        limit = min(self.assistant.retriever.settings.max_query_chars, 2 * (len(question) + len(previous)) + 40)
        if not text or len(text) > limit or "\n" in text:
            return "not one question of sensible length"
        said, new, old = self.read(text), self.read(question), self.read(previous)
        if not set(new.councils) <= set(said.councils) or (new.place and new.place.lower() not in text.lower()):
            return "it leaves out the council the follow-up names"
        if not set(new.years) <= {y for y in said.years}:
            return "it leaves out the year the follow-up names"
        if not set(said.councils) <= set(new.councils) | set(old.councils) or \
                not set(said.years) <= set(new.years) | set(old.years):
            return "it names a council or year neither question names"
        topic = set(new.topic) | set(old.topic)
        if topic and not topic & set(said.topic):
            return "it shares no topic word with the questions"
        return ""

    def _dense_best(self, texts: list[str]) -> list[float]:
        """The best dense similarity of each text to the corpus's chunks."""
        found = self.assistant.retriever.retrieve_batch(texts, 1, method="dense", each_side=False)
        return [r.top_dense if r.top_dense is not None else 0.0 for r in found]

    def _in_place_of_same_noun(self, text: str, previous: str) -> str | None:
        """The previous question with the phrase `text` ("the safeguarding boards?") in place of its
        name ending in the same noun ("Is housing represented on Birmingham's Health and Wellbeing
        Board?" -> "Is housing represented on the safeguarding boards?"); None when `text` is a
        question of its own, or no name of the previous question ends in its last word's stem.

        A name is a run of capitalised words (joined by "and" or "of"), with a council's possessive
        before it; the question's first word is never part of one."""
        if _QUESTION_START.match(text):
            return None
        lex = self.facts.lex
        phrase = [w for w in _WORD.findall(text) if w[:1].isalnum()]
        stem = lex.tokens(phrase[-1]) if phrase else []
        if len(stem) != 1:
            return None
        words = _WORD.findall(previous)
        ends = [j for j in range(1, len(words)) if words[j][:1].isupper() and lex.tokens(words[j]) == stem]
        if not ends:
            return None
        i = j = ends[-1]
        while i > 1 and (words[i - 1][:1].isupper()
                         or words[i - 1].lower() in {"and", "of", "&"} and i > 2 and words[i - 2][:1].isupper()):
            i -= 1
        return _join(words[:i] + [" ".join(phrase)] + words[j + 1:])

    def _joined_if_closer(self, query: str, text: str, previous: str, before: _Reading, now: _Reading) -> str:
        """For a bare phrase ("What about carers?"), the question before with the phrase joined to it
        ("What share of people used direct payments in Birmingham (carers)?") when the corpus answers
        the two together more closely than either alone (by more than a tie): the phrase continues the
        topic. Else `query`, the phrase searched with the council and year carried: a phrase that
        starts a topic of its own ("And the DoLS backlog?" after complaints) matches the corpus less
        well joined to the old question than that question does alone."""
        naming = now.naming_words(report=False)
        phrase = [w for w in _WORD.findall(text) if w not in naming and w[:1].isalnum()]
        while phrase and phrase[-1].lower() in _PREPOSITIONS | _DETERMINERS:  # "in" of "in 2016"
            phrase.pop()
        if not phrase:
            return query
        restated = self._swap(previous, before, now)
        joined = _joined(restated, _join(phrase))
        try:
            plain, again, together = self._dense_best([query, restated, joined])
        except QueryError:  # together longer than a question may be
            return query
        return joined if together - max(plain, again) >= TIE else query

    def _asked_of_another_report(self, question: str, previous: str, before: _Reading, now: _Reading) -> str | None:
        """For a question naming another report or year with few words of its own ("whats the target
        date in the 2025 self-assessment?"), the question before asked of that report with those words
        joined, when that raises the best dense similarity to the corpus by `YEAR_GAIN`; else None."""
        own = " ".join(w for w in now.words if set(self.facts.lex.tokens(w)) & set(now.topic))
        joined = _joined(self._swap(previous, before, now), own)
        try:
            alone, together = self._dense_best([question, joined])
        except QueryError:  # together longer than a question may be
            return None
        return joined if together - alone >= YEAR_GAIN else None

    def _continue_topic(self, text: str, previous: str, before: _Reading) -> str:
        """A question of its own ("how many felt supported?") with the previous topic it continues, if any."""
        if not _QUESTION_START.match(text):
            return text
        lex, f = self.facts.lex, self.facts
        own = set(lex.tokens(text))
        # a topic, not the report it was asked of ("CQC" of "when CQC assessed it")
        phrases = [p for p in self._antecedents(previous, before, topic=True)
                   if not set(lex.tokens(p)) <= own and not set(lex.tokens(p)) <= f.report_tokens]
        return self._most_similar([text] + [_append(text, f"for {p}") for p in phrases])

    def _uncovered(self, r: _Reading) -> str:
        if r.place:
            return r.place
        for text, parts in year_mentions(" ".join(r.words)):
            if not self.facts.year_covered(parts):
                return text
        return ""

    def _swap(self, previous: str, before: _Reading, now: _Reading) -> str:
        """The previous question with the council and year the follow-up names put in."""
        query = previous
        source = self._new_source(before, now)
        if source:  # "... when CQC assessed it in 2023?" + "and in 2016?": "... in the 2016 peer challenge letter?"
            query = _replace_word(query, before.source, source)
            before = self.read(query)
        new_council = _place_as_council(now.place) if now.place else _bare(now.council_text)
        if new_council and (now.place or set(now.councils) != set(before.councils)):
            if before.council_text:
                said = before.council_text.lower()
                possessive = said.endswith(("'s", "’s")) or self.facts.council_word(said) != said
                name = new_council + ("'s" if possessive and not new_council.endswith("Council") else "")
                query = _replace_word(query, before.council_text, name)
                if possessive and name.endswith("Council"):  # "Birmingham's X" -> "X in Leeds Council"
                    query = _replace_word(query, name, "").strip()
                    query = _append(query, f"in {new_council}")
            else:
                query = _append(query, f"in {new_council}")
        if now.report and before.report and now.report.lower() != before.report.lower():
            query = _replace_word(query, before.report, now.report)
        elif now.report and not before.report:
            query = (_replace_year(query, before.years, now.report) if before.years
                     else _append(query, f"according to {now.report}"))
        elif now.years and set(now.years) != set(before.years):
            year = now.years[0]
            name = self._report_name(year, now.councils or before.councils)
            names_report = bool(before.report) and before.report.lower() in query.lower()
            if name and names_report:
                # "... according to the 2016 peer challenge?" + "And in 2023?", and "population in 2023
                # according to the 2025 self-assessment" + "And in 2016?": a year that has a report of
                # its own points at that report
                query = _replace_word(query, before.report, _as_written(before.report, f"{year} {name}"))
            if names_report and all(y in before.report for y in before.years):
                if not name:  # no report from that year: the year itself
                    query = re.sub(rf"\s*\b(?:according to|in|by|from)?\s*{re.escape(before.report)}(?!\w)",
                                   f" in {year}", query, count=1, flags=re.IGNORECASE)
            else:  # a year of its own ("population in 2023 ...") is the one swapped
                query = self._other_report_words(query, year, now.councils or before.councils)
                if before.years:
                    query = _replace_year(query, before.years, year)
                else:
                    query = _append(query, f"in {year}")
        qualifier = _figures_of(now)
        if qualifier and qualifier.lower() not in query.lower():  # "How many were over 65?"
            source = self._source(query)  # before a closing "according to the 2025 self-assessment"
            query = (_replace_word(query, source, f"{qualifier} {source}") if source
                     else _append(query, qualifier))
        return _tidy(_swap_wh(query, now))

    def _new_source(self, before: _Reading, now: _Reading) -> str:
        """What takes the place of the question before's closing clause naming its report or time
        ("when CQC assessed it in 2023") when the follow-up names another report or year: "in the
        2025 self assessment" as the follow-up names it, "in the 2016 peer challenge letter" for a
        year with a report (the catalogue's name), else "in 2024"; its council kept. "" when there is
        no such clause or nothing changes."""
        if not before.source or not (now.report or (now.years and set(now.years) != set(before.years))):
            return ""
        if any(y not in before.source for y in before.years):  # "population in 2023 according to the 2025
            return ""  # self-assessment": 2023 is the year the figure is of, the one to swap
        if now.report:
            new = now.report
        else:
            year = now.years[0]
            name = self._report_name(year, now.councils or before.councils)
            new = f"the {year} {name}" if name else year
        lead = re.match(r"(?:according\s+to|going\s+by)\b", before.source, re.IGNORECASE)
        text = f"{lead.group(0)} {new}" if lead and not new[:1].isdigit() else f"in {new}"
        if before.council_text and before.council_text.lower() in before.source.lower():
            text += f" in {before.council_text}"  # "when they came to Birmingham in 2016"
        return text

    def _reports_of(self, year: str, councils: list[str] | None = None) -> list:
        """The catalogue's reports from `year` ("2023" or "2023/24"), about one of `councils` if given."""
        catalogue = self.assistant.retriever.catalogue
        found = catalogue.about(None, int(year[:4]))
        return found if not councils else [d for d in found if d.council in councils]

    def _report_name(self, year: str, councils: list[str] | None = None) -> str:
        """What the reports of `year` (about one of `councils`, if given) are called ("CQC assessment",
        "self-assessment"), from the catalogue: the short title of the one with the most chunks (a
        quality statement published with its full assessment is part of it); "" when there is none."""
        docs = self._reports_of(year, councils)
        if not docs:
            return ""
        main = max(docs, key=lambda d: (self.facts.doc_chunks[d.doc_id], d.doc_id))
        name = re.sub(r"\s*\(.*\)\s*$", "", main.short_title)
        return name if name[:2].isupper() else name[:1].lower() + name[1:]

    def _other_report_words(self, query: str, year: str, councils: list[str] | None = None) -> str:
        """`query` with words naming a report of another year ("CQC" for 2016) put as the year's report,
        or as "the reports" when no report is from that year.

        "What did CQC find about X?" asked again for 2016 is about the 2016 peer challenge letter:
        the catalogue says which reports are from which year and what they are called. Asked again
        for 2024, from which there is no report, it is about what any report says of 2024 (the 2025
        self-assessment gives 2024's figures), not about the 2023 CQC assessment.
        """
        f = self.facts
        docs = self._reports_of(year, councils)
        name = self._report_name(year, councils)
        own = {t for d in docs for t in f.lex.tokens(f"{d.short_title} {d.doc_type}")}
        words = _WORD.findall(query)
        out, i = [], 0
        while i < len(words):
            j = i
            while j < len(words) and words[j][:1].isalpha() and f.lex.tokens(words[j]) and \
                    set(f.lex.tokens(words[j])) <= f.report_tokens:
                j += 1
            span = {t for w in words[i:j] for t in f.lex.tokens(w)}
            a_name = any(w[:1].isupper() for w in words[max(i, 1):j])  # "CQC", "Peer Challenge"; not "assessments"
            if j > i and a_name and not span <= own:
                out.append(f"the {name}" if name else "the reports")
                i = j
            else:
                out.append(words[i])
                i += 1
        return _join(out)

    def _carry(self, text: str, now: _Reading, before: _Reading, previous_council: str) -> str:
        """`text` with the previous turn's council and year added where it names none."""
        query = _drop_time_pointers(text, now)
        has = self.read(query)
        if now.place:
            query = _append(_replace_word(query, now.place, "").strip() or query, f"in {_place_as_council(now.place)}")
        elif not (has.councils or has.place):
            council = _short_council(_bare(before.council_text)) if before.council_text \
                else _short_council(previous_council)
            if council:
                query = _append(query, f"in {council}")
        if not has.years and before.years:
            query = _append(query, f"in {before.report or before.years[0]}")
        query = query.strip()
        if not any(_bare(w.lower()) in _WH for w in query.split()[:3]):  # a bare phrase: "an improved quality of life"
            first = query.split(" ", 1)[0]
            if first.lower() in self.facts.lower_seen and first[1:].islower():
                query = query[:1].lower() + query[1:]
            query = f"What about {query}"
        return _tidy(query)

    def _resolve(self, question: str, now: _Reading, previous: str, before: _Reading,
                 previous_council: str, previous_answer: str = "") -> str:
        """`question` with its pointers replaced by the phrases of `previous` they most likely refer to.

        Pointers are resolved one at a time, left to right; each takes the candidate phrase whose
        rewrite the corpus answers most closely. "They" may also be the council ("what tool do they use").
        """
        words = list(now.words)
        # "they" may be the council: the one the question names ("what about birmingham, whats their
        # turnover rate"), else the one before
        council = now.council_text or now.place or before.council_text or _short_council(previous_council)
        pointed = False  # a demonstrative before its noun ("those averages") points at the previous topic
        for i in now.pointers:
            low = words[i].lower()
            if low in {"then", "there"}:
                words[i] = ""  # time and place are carried below
                continue
            if low in {"that", "this", "these", "those"} and i + 1 < len(words) and words[i + 1][:1].isalpha() \
                    and words[i + 1].lower() not in _WH | _PREPOSITIONS | _PARTICLES \
                    and not (i > 0 and words[i - 1].lower() in _AUXILIARIES and _participle(words[i + 1])):
                words[i] = "the"  # "that figure": a demonstrative before its noun
                pointed = True
                continue
            named = now.council_text
            if low == "their" and named and now.words.index(_WORD.findall(named)[0]) < i:
                phrases = [_bare(named)]  # "what about westminster, whats their rate": the council just named
            else:
                phrases = self._antecedents(previous, before, low) or [previous.rstrip("?. ")]
                phrases += [n for n in self._answer_names(previous_answer, previous, before) if n not in phrases]
                if council and low in {"they", "their"}:  # "what tool do they use": the council
                    phrases.append(_bare(council))
            options = []
            # "her" is possessive before a noun ("what's her name?"), else an object ("who appointed her?")
            possessive = low in _POSSESSIVE and (low != "her" or (
                i + 1 < len(words) and words[i + 1][:1].isalpha() and bool(self.facts.lex.tokens(words[i + 1]))
                and words[i + 1].lower() not in _WH | _PREPOSITIONS | _DETERMINERS))
            for phrase in phrases:
                text = phrase + "'s" if possessive else phrase
                options.append(words[:i] + [text] + words[i + 1:])
            texts = [_join([w for w in o if w]) for o in options]
            chosen = self._most_similar(texts) if len(texts) > 1 else texts[0]
            words = options[texts.index(chosen)]
        best = _join([w for w in words if w])
        if pointed:  # "What are those averages?" -> "What are the averages for carers' direct payments?"
            best = self._continue_topic(best, previous, before)
        return self._carry(best, self.read(best), before, previous_council)

    def _answer_names(self, answer: str, previous: str, before: _Reading) -> list[str]:
        """Names the previous answer gave that its question, asking who or which, did not use
        ("Carers Hub", "Forward Carers"): runs of capitalised words, a council's name and the
        sentence's first word left out."""
        asked = [w.lower() for w in before.words if w[:1].isalpha()]
        if not answer or not asked or asked[0] not in {"who", "which"}:
            return []
        f = self.facts
        names = []
        for m in re.finditer(r"(?<!^)(?<![.!?:]\s)\b[A-Z][\w'’-]*(?:\s+(?:(?:of|and|for|&)\s+)?[A-Z][\w'’-]*)+",
                             answer):
            tokens = set(f.lex.tokens(m.group(0)))
            if tokens and not tokens <= set(f.lex.tokens(previous)) and not tokens & f.council_tokens:
                names.append(m.group(0))
        return list(dict.fromkeys(names))

    def _antecedents(self, previous: str, before: _Reading, pronoun: str = "", topic: bool = False) -> list[str]:
        """Noun phrases of the previous question a pronoun may stand for, e.g. "the 2016 peer challenge".

        Without a parser: every span of up to four words inside a run of content words (joined by
        "of", "for", "and"), that does not only name a council or a year; for "they" / "it", spans
        ending in a plural / singular word are preferred when there are some.
        """
        # the words of a closing clause naming the report asked of ("when CQC assessed them in 2023") are no topic
        body = previous[:previous.rfind(before.source)] if before.source else previous
        words = [w for w in _WORD.findall(body) if w not in "?.!,"]
        lex, f = self.facts.lex, self.facts
        tokens = [lex.tokens(w) for w in words]
        content = [bool(t) and t[0] not in f.framing for t in tokens]
        # councils and years are carried anyway, and so is the report of a year named when a topic is
        # continued: "the peer challenge team" is a topic, but not when the 2016 peer challenge is carried
        edge = f.council_tokens | f.report_tokens if topic and (before.report or before.years) else f.council_tokens
        context = [bool(t) and set(t) <= edge or bool(YEAR.fullmatch(w)) for t, w in zip(tokens, words)]
        content = [c or x for c, x in zip(content, context)]
        joiners = {"of", "for", "and"}
        phrases: list[str] = []
        for s in range(len(words)):
            if not content[s] or (s == 1 and words[0].lower() in _WH) and not context[s]:
                continue
            for e in range(s + 1, min(len(words), s + 6) + 1):
                if not all(content[k] or words[k].lower() in joiners for k in range(s, e)) or not content[e - 1]:
                    continue
                if _cuts_a_name(words, s, e):  # "the Birmingham Care" of "the Birmingham Care Wage"
                    continue
                name = e - s > 1 and words[s + 1][:1].isupper()  # "Birmingham Care Wage" is a name
                if (context[s] and not name) or context[e - 1]:
                    continue  # a council or a year at an edge: carried anyway
                if e < len(words) and words[e].lower() in _PERSONAL:
                    continue  # "CQC assessed" of "when CQC assessed it": a verb and its object, no noun phrase
                begin = s - 1 if s and words[s - 1].lower() in _DETERMINERS else s
                phrase = _join(words[begin:e])
                if phrase not in phrases:
                    phrases.append(phrase)
        # "them" as an object may be one person ("who covers for them" after the DASS): no agreement asked
        plural = pronoun in {"they", "their", "theirs", "these", "those"}
        singular = pronoun in {"it", "its", "this", "that", "one"}
        if plural or singular:
            agree = [p for p in phrases if _plural(p.split()[-1]) == plural]
            phrases = agree or phrases
        return phrases

    def _most_similar(self, candidates: list[str]) -> str:
        """The candidate question the corpus answers most closely (highest dense similarity)."""
        try:
            scores = self._dense_best(candidates)
        except QueryError:
            return candidates[0]
        best = max(scores)
        # near-ties go to the more specific question: the higher mean IDF of its words
        # ("the Birmingham Care Wage", not "... Care"; "direct payments", not "use direct payments")
        close = [i for i in range(len(candidates)) if scores[i] >= best - TIE]
        return candidates[max(close, key=lambda i: (self._specificity(candidates[i]), scores[i]))]

    def _specificity(self, text: str) -> float:
        idf = self.facts.idf
        tokens = self.facts.lex.tokens(text)
        return sum(idf.get(t, 0.0) for t in tokens) / len(tokens) if tokens else 0.0


# -- text helpers ------------------------------------------------------------------------------
def _cuts_a_name(words: list[str], start: int, end: int) -> bool:
    """Whether words[start:end] begins or ends inside a run of capitalised words (a name such as
    "Principal Occupational Therapist"). The question's first word is capitalised anyway, and a
    possessive ends a name ("Birmingham's Care Homes Service" is two)."""
    def capital(i: int) -> bool:
        return 0 < i < len(words) and words[i][:1].isupper()

    def joined(i: int) -> bool:  # words i and i + 1 are one name
        return capital(i) and capital(i + 1) and not words[i].lower().endswith(("'s", "’s"))
    return joined(start - 1) or joined(end - 1)


def _plural(word: str) -> bool:
    w = word.lower()
    return w.endswith("s") and not w.endswith(("ss", "us", "is", "'s", "’s"))


def _bare(word: str) -> str:
    return re.sub(r"['’]s?$", "", word)


def _join(words: list[str]) -> str:
    text = " ".join(words)
    return re.sub(r"\s+([?.!,;:])", r"\1", re.sub(r"\s+(['’]s)\b", r"\1", text))


def _append(query: str, phrase: str) -> str:
    """`phrase` added before the question mark: "How many X?" + "in 2016" -> "How many X in 2016?"."""
    body = query.rstrip().rstrip("?.! ")
    return f"{body} {phrase}?"


def _joined(question: str, words: str) -> str:
    """`words` joined to `question`: "What share of people used direct payments?" + "carers" ->
    "What share of people used direct payments (carers)?"."""
    return _tidy(_append(question, f"({words})"))


def _replace_word(text: str, old: str, new: str) -> str:
    return re.sub(rf"(?<!\w){re.escape(old)}(?!\w)", new, text, count=1)


def _as_written(old: str, new: str) -> str:
    """`new` with the article `old` had: "the 2016 peer challenge" -> "the 2023 CQC assessment", but
    "Birmingham's 2025 self-assessment" -> "Birmingham's 2023 CQC assessment"."""
    return f"the {new}" if old.split(" ", 1)[0].lower() in _DETERMINERS else new


def _replace_year(text: str, old_years: list[str], new: str) -> str:
    for y in old_years:
        at = text.find(y)
        if at >= 0:
            return text[:at] + new + text[at + len(y):]
    return _append(text, f"in {new}")


def _place_as_council(place: str) -> str:
    """ "leeds" -> "Leeds Council", "Kirkby" -> "Kirkby Council", "Leeds City Council" as it is."""
    if place.lower().endswith("council"):
        return place
    return f"{name_of(place) or place} Council"


def _short_council(council: str) -> str:
    """ "Birmingham City Council" -> "Birmingham" (how staff name it; the Assistant matches either)."""
    words = [w for w in council.split() if w.lower() not in {"city", "county", "borough", "council", "district",
                                                             "metropolitan"}]
    return " ".join(words)


def _strip_opener(question: str, opener: str) -> str:
    rest = question[len(question) - len(question.lstrip()) + len(opener):] if question.lstrip().lower().startswith(
        opener.lower()) else question
    return rest.strip(" ,") or question


def _drop_place_pointers(text: str) -> str:
    """ "who stands in for the director there?" -> "who stands in for the director?" ("there" and
    "then" anywhere but at the start: the council and year are carried in their place)."""
    return re.sub(r"(?<=\w)\s+\b(?:there|then)\b", "", text, flags=re.IGNORECASE)


def _drop_time_pointers(text: str, now: _Reading) -> str:
    """ "waiting times then" -> "waiting times": "then" and "there" are carried as the year and council."""
    return re.sub(r"\s+\b(then|there)\b(?=\s*[?.!]?\s*$)", "", text, flags=re.IGNORECASE)


def _swap_wh(query: str, now: _Reading) -> str:
    """The previous question asked with the follow-up's own question word: "Why did they do that?"
    after "When did X appoint Y?" is "Why did X appoint Y?". Where that would not be English (the
    question word before was the verb's object or subject: "What did CQC say about X?", "Who led
    X?", or there was none: "How many were waiting?"), the new one is added: "What did CQC say about
    X, and why?". Comparisons ("how did that compare") keep the previous question as it was."""
    asked = [w.lower() for w in now.words if w[:1].isalpha()]
    wh = asked[0] if asked else ""
    if wh not in {"what", "which", "who", "when", "where", "why", "how"} or now.opener:
        return query
    if any(t in _FRAME.split() for t in asked) or (len(asked) > 1 and asked[1] in {"many", "much", "long", "often"}):
        return query
    words = query.split(" ", 2)
    first = words[0].lower()
    if first == wh:
        return query
    adverbial = {"when", "where", "why", "how"}
    if len(words) == 3 and wh in adverbial and first in adverbial and words[1].lower() in _AUXILIARIES:
        return f"{wh.capitalize()} {words[1]} {words[2]}"
    if wh in adverbial:  # "..., and why?"
        return f"{query.rstrip().rstrip('?.! ')}, and {wh}?"
    return query


def _shift_year(year: str, step: int) -> str:
    """ "2021/22" + 1 -> "2022/23", "2023" - 1 -> "2022", "2024-25" + 1 -> "2025-26"; "" if not a year."""
    m = re.fullmatch(r"((?:19|20)\d\d)(?:([/\-–])(\d{2}|\d{4}))?", year)
    if not m:
        return ""
    first = int(m.group(1)) + step
    if not m.group(2):
        return str(first)
    second = first + 1
    return f"{first}{m.group(2)}{second % 100:02d}" if len(m.group(3)) == 2 else f"{first}{m.group(2)}{second}"


def _participle(word: str) -> bool:
    """A past participle by its form ("improved", "taken", "done"): after "has that" it is the verb,
    and "that" its subject ("has that improved since?"), not a demonstrative before a noun."""
    w = word.lower()
    return w.endswith(("ed", "en")) or w in {"done", "gone", "got", "made", "met", "paid", "kept", "put", "set"}


def _one_points_back(lowered: list[str], i: int) -> bool:
    """Whether "one" at `i` stands for a noun said before ("waiting for one at the moment"): after a
    preposition, and before the end or another preposition but "of" ("one of the teams" is a number)."""
    after = lowered[i + 1] if i + 1 < len(lowered) else ""
    return (i > 0 and lowered[i - 1] in _PREPOSITIONS
            and (not after[:1].isalnum() or (after in _PREPOSITIONS and after != "of")))


def _units(words: list[str]) -> list[int]:
    """Positions of the words that give a figure's unit: the word right after a number that is not a
    year ("90 days", "65 years")."""
    return [i for i in range(1, len(words)) if words[i - 1][:1].isdigit() and not YEAR.fullmatch(words[i - 1])
            and words[i][:1].isalpha() and words[i].lower() not in _PREPOSITIONS | _DETERMINERS | {"and", "or"}]


def _figures_of(now: _Reading) -> str:
    """The figures a follow-up with no topic of its own adds, each with the word before it when that
    is not a question word and its unit after it ("over 65", "under 18", "over 90 days"); years are
    not figures here (they swap the year)."""
    years = set(now.years)
    units = set(_units(now.words))
    out = []
    for i, w in enumerate(now.words):
        if w[:1].isdigit() and w not in years and not YEAR.fullmatch(w):
            before = now.words[i - 1] if i else ""
            low = before.lower()
            keep = before[:1].isalpha() and low not in _WH and low not in _POINTERS and low not in {"and", "but"}
            figure = f"{before} {w}" if keep else w
            out.append(f"{figure} {now.words[i + 1]}" if i + 1 in units else figure)
    return " ".join(out)


def _tidy(query: str) -> str:
    query = re.sub(r"\s+", " ", query).strip()
    query = re.sub(r"\s+([?.!,)])", r"\1", query)
    query = re.sub(r"\(\s+", "(", query)
    query = re.sub(r"(\d)\s+([+%])", r"\1\2", query)  # "90+ days", "38%", as typed
    return query[:1].upper() + query[1:]


class Conversation:
    """Questions asked in turn, each follow-up rewritten into a standalone question before it is asked.

    Example:
        >>> chat = Conversation(Assistant.load())
        >>> chat.ask("How many young people were waiting for a transition assessment?").text
        >>> a = chat.ask("And what about Westminster?")
        >>> a.query, a.abstained
        >>> chat.reset()  # a new topic: earlier turns are forgotten

    One conversation per user: it keeps their turns. It is safe to call from several threads
    (turns are taken one at a time).
    """

    def __init__(self, assistant, *, max_turns: int = MAX_TURNS) -> None:
        if not isinstance(max_turns, int) or isinstance(max_turns, bool) or max_turns < 1:
            raise ValueError(f"max_turns must be a whole number of at least 1. Currently, it is {max_turns!r}")
        self.assistant = assistant
        self.rewriter = Rewriter(assistant)
        self.max_turns = max_turns
        self._turns: list[Turn] = []
        self._lock = threading.Lock()

    @property
    def turns(self) -> list[Turn]:
        with self._lock:
            return list(self._turns)

    def reset(self) -> None:
        """Forget the earlier turns: the next question starts a new topic."""
        with self._lock:
            self._turns.clear()

    def rewrite(self, question: str) -> Rewrite:
        """How `question` would be read after the turns so far (asks nothing, records nothing)."""
        cleaned = clean_query(question, self.assistant.retriever.settings.max_query_chars)
        with self._lock:
            last = self._turns[-1] if self._turns else None
        return self._read_after(cleaned, last)

    def ask(self, question: str, council: str | None = None, doc_id: str | None = None,
            year: int | None = None) -> Answer:
        """Answer `question` in the light of the turns before; `Answer.query` is the question searched.

        With a language model configured on the assistant, the model writes the answer (checked,
        with the extractive one as fallback), as in `Assistant.ask`. Raises QueryError on bad input
        (the conversation is then unchanged).
        """
        return self._turn(question, council, doc_id, year, extractive=False)[0]

    def ask_extractive(self, question: str, council: str | None = None, doc_id: str | None = None,
                       year: int | None = None) -> tuple[Answer, list]:
        """Like `Assistant.ask_extractive` for the standalone question, recording the turn.

        For streaming a model's answer: pass the passages to `qa.generate.stream`, then record the
        final answer with `update_last`.
        """
        return self._turn(question, council, doc_id, year, extractive=True)

    def update_last(self, answer: Answer) -> None:
        """Record `answer` (e.g. a language model's, checked) as the latest turn's answer."""
        with self._lock:
            if self._turns:
                last = self._turns[-1]
                self._turns[-1] = Turn(last.question, last.rewrite,
                                       replace(answer, question=last.question, query=last.rewrite.query))

    def _read_after(self, cleaned: str, last: Turn | None) -> Rewrite:
        """How the cleaned question reads after the turn `last` (its standalone question, council and
        first quoted sentence), or as a first question."""
        if last is None:
            return self.rewriter.rewrite(cleaned, None)
        return self.rewriter.rewrite(cleaned, last.rewrite.query, _answer_council(last.answer),
                                     _first_quote(last.answer))

    def _turn(self, question, council, doc_id, year, *, extractive: bool) -> tuple[Answer, list]:
        with self._lock:
            last = self._turns[-1] if self._turns else None
            cleaned = clean_query(question, self.assistant.retriever.settings.max_query_chars)
            rw = self._read_after(cleaned, last)
            llm = getattr(self.assistant, "llm", None)
            if last and rw.kind != "none" and not rw.uncovered and llm is not None and llm.enabled:
                rw = self.rewriter.model_rewrite(rw, last.rewrite.query)
            passages: list = []
            if rw.uncovered and rw.kind != "none" and re.fullmatch(r"[\d/\-–]+", rw.uncovered):
                answer = self._abstain_year(rw, council, doc_id, year)
            elif extractive:
                answer, passages = self.assistant.ask_extractive(rw.query, council=council, doc_id=doc_id, year=year)
            else:
                answer = self.assistant.ask(rw.query, council=council, doc_id=doc_id, year=year)
            answer = replace(answer, question=question, query=rw.query)
            self._turns.append(Turn(question, rw, answer))
            del self._turns[: -self.max_turns]
            log.debug("turn %d: %r read as %r (%s: %s)", len(self._turns), question, rw.query, rw.kind, rw.reason)
            return answer, passages

    def _abstain_year(self, rw: Rewrite, council, doc_id, year) -> Answer:
        years = self.assistant.retriever.catalogue.years
        why = (f"These reports are from {', '.join(map(str, years))} and do not mention {rw.uncovered}.")
        nearest = self.assistant.retriever.search(rw.query, k=3, council=council, doc_id=doc_id, year=year) \
            if not year or year in years else []
        lines = [f"{NOT_FOUND} {why}"]
        if nearest:
            lines.append("The nearest sections are:")
            lines += [f"- {p.title} ({p.date_text}): {p.section or 'introduction'}" for p in nearest]
        return Answer(rw.question, "\n".join(lines), True, nearest=nearest, note=why)


def _first_quote(answer: Answer) -> str:
    """The sentence an answer quoted first ("" when it abstained)."""
    return answer.quotes[0].text if answer.quotes and not answer.abstained else ""


def _answer_council(answer: Answer) -> str:
    """The one council an answer's passages are about ("" if none or several)."""
    councils = {p.council for p in (answer.citations or [])}
    return councils.pop() if len(councils) == 1 else ""


__all__ = ["Conversation", "Rewrite", "Rewriter", "Turn", "KINDS"]
