"""Answerability: whether the best evidence found really answers the question, from measured features.

The extractive engine always finds *some* sentence. Whether to quote it or say "not found" is
decided by a logistic regression over evidence features (how well the best sentence matches, whether
the question's most specific words occur in the cited passages, how closely their word pieces match
the question's, whether the kind of answer asked for - a figure, a duration, a date, a person's
name, a phone number, an e-mail or web address, a place, a rating - is in the sentence, how far the
best sentence stands above the rest), with a floor for questions nothing in the reports comes near.
The model is fitted and its threshold calibrated by
`python -m eval.fit_abstention` on the development part of `eval/questions.jsonl`, with
cross-validation; the fitted numbers are stored beside this file: `qa/abstention.json` for an index
whose model is adapted to the corpus (the default), `qa/abstention.stock.json` for the stock model
(the features' scale depends on the model that scored the evidence).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from qa.index import adapted_weights
from qa.sides import YEAR

MODEL_FILE = Path(__file__).resolve().parent / "abstention.json"
STOCK_MODEL_FILE = MODEL_FILE.with_name("abstention.stock.json")


def model_file(manifest: dict) -> Path:
    """The answerability model fitted for an index: its embedding model adapted to the corpus or not."""
    return MODEL_FILE if adapted_weights(manifest) else STOCK_MODEL_FILE


#: The features, in the order the model's weights follow.
FEATURES: tuple[str, ...] = (
    "score",          # the best sentence's combined score
    "dense",          # its cosine similarity to the question
    "lexical",        # share of the question's words (weighted by rarity) it contains, read under its headings
    "number",         # it carries the figure asked for / a figure next to the question's words
    "top_dense",      # the best passage's dense score
    "margin",         # how far the best sentence stands above the second
    "key_coverage",   # share (by rarity) of the question's specific words found in the cited passages
    "top2_missing",   # of the question's two most specific words, the share no cited passage has
    "sentence_missing",  # of the question's three most specific words, the share the quoted sentences lack
    "unknown_share",  # share (by rarity) of the question's words the corpus never uses
    "kind_asked",     # the question asks for a kind of answer (`_KINDS`: figure, duration, date, name, place,
                      # rating, phone number, e-mail or web address)
    "kind_missing",   # ... and the best sentence holds none of that kind
    "name_missing",   # the question asks who, and the best sentence names no person (a role at most)
    "dense_z",        # the best sentence's cosine against the question's cosines to a sample of all sentences
    "piece_mean",     # each of the question's word pieces' best match in the cited passages, averaged by rarity
                      # (weighed against "dense": words matched, meaning not, is a near miss)
)

# The kind of answer a question asks for, from its interrogative phrase (a closed class of English
# question forms), and what such an answer looks like in a sentence.
# An interrogative phrase headed by one of the nouns given: "what rate", "what hourly rate",
# "what is the social worker vacancy rate", "what's the average caseload", "what was Birmingham's
# vacancy rate", "in which Birmingham building" (up to three modifiers).
_HEADED_BY = (r"\b(?:what|which)(?:['\u2019]s)?\s+(?:(?:is|was|are|were)\s+)?"
              r"(?:(?:the|its|their|[A-Z][\w-]*['\u2019]s)\s+)?(?P<modifiers>(?:[\w'-]+\s+){{0,3}}?)(?:{})\b")
# "What's her name?", "the Director's name"
_NAME_ASKED = r"(?:'s|’s|\bhis|\bher|\btheir) names?\b"
_KINDS: dict[str, tuple[re.Pattern, re.Pattern]] = {
    "email": (re.compile(r"\be-?mail\b", re.I), re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    "web": (re.compile(r"\b(website|web address|web page|webpage|url)\b", re.I),
            re.compile(r"\bhttps?://|\bwww\.|\b[\w-]+\.(gov|org|co|nhs)\.uk\b", re.I)),
    "phone": (re.compile(r"\b(phone|telephone|contact) number\b|\bnumber to call\b", re.I),
              re.compile(r"\b0\d{2,4}[ -]?\d{3}[ -]?\d{3,4}\b")),
    # "how long ...?" is answered by a span or a date ("since December 2020"), "how many ...?" by a
    # figure that is not a year (read with the years taken out: `has_kind`)
    "duration": (re.compile(r"\bhow (long|often|quickly|soon|fast)\b", re.I),
                 re.compile(r"\d|\b(day|week|month|year|hour|minute|annual|daily|weekly|monthly|quarterly|"
                            r"fortnightly|regular)", re.I)),
    "figure": (re.compile(r"\bhow (many|much|big|large)\b|\b(?:what|which)\s*%|" + _HEADED_BY.format(
                          r"percentage|proportion|number|share|amount|figure|rate|total|budget|size|cost|price|"
                          r"time|wait|ratio|average"), re.I),
               re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|hundred|thousand|"
                          r"million|half|quarter|third|all|none|most|majority)\b", re.I)),
    # "when did ...", "by when will ..." ask for a date; "... when CQC assessed it" only dates the question
    # "When my gran leaves hospital, will she ...?" opens with a clause about something else: not asked
    "date": (re.compile(r"^\W*(?:(?:and|so|but|then)\s+)?when\W*$|\bwhen\s+(?:exactly\s+)?(did|does|do|is|was|"
                        r"were|are|will|would|has|have|had|can|could|should)\b|\bwhat (date|year|month)s?\b|"
                        r"\bwhich (date|year|month)s?\b", re.I),
             re.compile(r"\b(19|20)\d\d\b|\b(january|february|march|april|may|june|july|august|september|october|"
                        r"november|december)\b", re.I)),
    "person": (re.compile(r"^\s*(and\s+)?who\b|\bwho (is|was|were|leads?|led|chairs?|chaired|runs?)\b|"
                          r"\bwhat(?: is|['\u2019]s) the name of\b|\bname of the\b|" + _NAME_ASKED, re.I),
               re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b")),
    "rating": (re.compile(r"\b(rating|rated|score|scored|grade|graded)\b", re.I),
               re.compile(r"\b(good|outstanding|inadequate|requires improvement)\b|\bscore\b.*\d|\d\s*[-\u2013]\s*"
                          r"evidence", re.I)),
    "place": (re.compile(r"^\s*where\b|" + _HEADED_BY.format(r"building|venue|office|street|hospital|site"),
                         re.I),
              re.compile(r"\b[A-Z][a-z]+ (Road|Street|House|Centre|Hospital|Hall|Court|Lane|Way)\b|\b[A-Z]{1,2}\d")),
}

#: What each kind of answer is called when saying it was not found ("... do not give the duration asked for").
KIND_NAMES = {"email": "e-mail address", "web": "web address", "phone": "phone number", "duration": "duration",
              "figure": "figure", "date": "date", "person": "name", "rating": "rating", "place": "place"}


# Words that frame a question (how much, compared with what, who said it) rather than name its topic:
# a closed set of English question phrasing, not words of any report.
FRAMING_WORDS = ("many much number numbers percentage percent proportion share figure figures total amount according "
                 "say says said compare compared comparison change changed differ different difference happen "
                 "happened find found mention mentioned describe described tell get got long often")

_WH_WORDS = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how)\b", re.I)


def topic_of(question: str) -> str:
    """The question without the words that ask for the kind of answer ("how many", "what percentage",
    "who"): what remains says what it is about."""
    for asks, _ in _KINDS.values():  # "what hourly rate" keeps "hourly"
        question = asks.sub(lambda m: f" {m.groupdict().get('modifiers') or ''} ", question)
    return _WH_WORDS.sub(" ", question)


#: Kinds whose answer has a fixed form, which a sentence either holds or not: a question asking for
#: one is not answered by a sentence without it, whatever else matches.
FORMATTED_KINDS = ("email", "web", "phone")


def asked_kinds(question: str) -> list[str]:
    """The kinds of answer the question asks for (in the order of `_KINDS`). A question asking for a
    phone number, an e-mail or a web address asks for that, not for any figure ("what phone number")."""
    kinds = [kind for kind, (asks, _) in _KINDS.items() if asks.search(question)]
    if any(k in FORMATTED_KINDS for k in kinds):
        kinds = [k for k in kinds if k != "figure"]
    return kinds


# A question asking who someone is, which a role title does not answer: "who is the ...", "the name
# of ...", "what's her name?" (as against "who provides ...", which an organisation may answer).
# Of them, "Who was the Director ...?" and "What's her name?" only a person's name answers ("what is the
# name of the strategy?" asks a name too, but not always a person's).
_PERSON_ASKED = r"^\s*(and\s+)?who (is|was|are|were)\b|" + _NAME_ASKED
_ASKS_IDENTITY = re.compile(_PERSON_ASKED + r"|\bname of\b|\bwho (chairs?|heads?|leads?)\b", re.I)
_ASKS_PERSON = re.compile(_PERSON_ASKED, re.I)


def asks_person(question: str) -> bool:
    """Whether the question asks who someone is or their name, so that a sentence naming no person
    cannot answer it."""
    return bool(_ASKS_PERSON.search(question))


def asks_identity(question: str) -> bool:
    """Whether the question asks who someone is, so that only a person's name answers it."""
    return bool(_ASKS_IDENTITY.search(question))


# "What does BCELS stand for?", "What is DoLS short for?": answered by the long form the reports give
_ASKS_EXPANSION = re.compile(r"(?i:\bwhat\s+(?:does|do|did|is|was)\s+(?:the\s+)?(?:acronym\s+|abbreviation\s+)?)"
                             r"['\"\u2018\u201c]?(?P<abbr>[A-Z][A-Za-z&+]{1,9})['\"\u2019\u201d]?\s+"
                             r"(?i:stands?\s+for|short\s+for|an?\s+abbreviation\s+(?:of|for))\b")


def asked_expansion(question: str) -> str:
    """The acronym whose long form the question asks for ("What does DoLS stand for?"), or ""."""
    m = _ASKS_EXPANSION.search(question)
    abbr = m.group("abbr") if m else ""
    return abbr if sum(c.isupper() for c in abbr) >= 2 else ""


def has_kind(kind: str, text: str) -> bool:
    if kind == "figure":  # a year is not the figure asked for: "the full precept was raised in 2023/24"
        text = YEAR.sub(" ", text)
    return bool(_KINDS[kind][1].search(text))


@dataclass(frozen=True)
class AnswerabilityModel:
    """A fitted logistic regression: P(answerable) from standardised features."""

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float
    features: tuple[str, ...] = FEATURES
    info: dict | None = None  # how it was fitted and what cross-validation measured
    #: The range of each feature over the questions it was fitted on. A value outside counts as the
    #: nearest end: a linear model extrapolates without limit, and "What is the capital of France?",
    #: whose word pieces match the reports less than any fitted question's, would otherwise be pushed
    #: towards answering by the weight that sets word-piece match against meaning.
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None
    #: The lowest dense score of the best passage ("top_dense") of any dev question answered right.
    #: A question whose nearest passage is further off than that is about something the reports do
    #: not cover ("What is the capital of France?"), and P(answerable) is 0: the linear model, which
    #: weighs word-piece match against meaning for near misses, cannot say so on its own.
    nearest_floor: float | None = None

    def __post_init__(self) -> None:
        if tuple(self.features) != FEATURES:
            raise ValueError(f"the answerability model was fitted on features {list(self.features)}, "
                             f"the code computes {list(FEATURES)}: refit with python -m eval.fit_abstention")
        if not len(self.weights) == len(self.mean) == len(self.scale) == len(FEATURES):
            raise ValueError("the answerability model's weights do not match its features")
        if any(b is not None and len(b) != len(FEATURES) for b in (self.low, self.high)):
            raise ValueError("the answerability model's feature ranges do not match its features")

    def off_topic(self, x: dict[str, float]) -> bool:
        """Whether the nearest passage is further off than any dev question's that was answered right."""
        return self.nearest_floor is not None and x["top_dense"] < self.nearest_floor

    def probability(self, x: dict[str, float]) -> float:
        if self.off_topic(x):
            return 0.0
        z = self.bias + sum(self.contributions(x).values())
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def contributions(self, x: dict[str, float]) -> dict[str, float]:
        """Each feature's push towards answering (+) or abstaining (-), for saying why."""
        low = self.low or (-math.inf,) * len(FEATURES)
        high = self.high or (math.inf,) * len(FEATURES)
        return {f: w * (min(max(x[f], lo), hi) - m) / s
                for w, f, m, s, lo, hi in zip(self.weights, FEATURES, self.mean, self.scale, low, high)}

    def to_json(self) -> dict:
        data = {"features": list(self.features), "weights": list(self.weights), "bias": self.bias,
                "mean": list(self.mean), "scale": list(self.scale), "threshold": self.threshold}
        if self.low is not None and self.high is not None:
            data.update(low=list(self.low), high=list(self.high))
        if self.nearest_floor is not None:
            data["nearest_floor"] = self.nearest_floor
        return {**data, "info": self.info or {}}

    @classmethod
    def from_json(cls, data: dict) -> AnswerabilityModel:
        low, high = data.get("low"), data.get("high")
        return cls(tuple(map(float, data["weights"])), float(data["bias"]), tuple(map(float, data["mean"])),
                   tuple(map(float, data["scale"])), float(data["threshold"]), tuple(data["features"]),
                   data.get("info"), None if low is None else tuple(map(float, low)),
                   None if high is None else tuple(map(float, high)),
                   None if data.get("nearest_floor") is None else float(data["nearest_floor"]))

    @classmethod
    def load(cls, path: str | Path = MODEL_FILE) -> AnswerabilityModel:
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot read the answerability model {path}: {exc}. "
                             "Refit it with python -m eval.fit_abstention") from None

    def save(self, path: str | Path = MODEL_FILE) -> Path:
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path
