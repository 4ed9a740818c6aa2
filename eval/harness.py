"""The question-set evaluation: loading questions, matching evidence, metrics, and running.

A question's evidence is one or more verbatim strings from the reports. A retrieved passage
"contains" a string when it occurs in the passage text after `normalise` (case folded, white
space collapsed, curly quotes unified, `*` dropped), so PDF line wraps and Markdown emphasis
never decide a hit.

Each answerable question has one or more *needs*:

* without `evidence_all`, a single need met by any of its `evidence` strings;
* with `evidence_all`, one need per string, all of which must be met.

A question's rank is the rank at which its last need is first met (None if that is deeper than
the passages retrieved). From ranks: hit@k, reciprocal rank (MRR@10) and nDCG@10, where each need
is a relevant item of gain 1 placed at the rank that first meets it.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("bm25", "dense", "hybrid")
#: fact: in the reports' words; paraphrase / lay: reworded, lay in the words staff and residents use;
#: cross / comparison: evidence from two reports; unanswerable / near_miss: no report gives the fact
#: (near_miss: a plausible question on a topic the reports cover).
QUESTION_TYPES: tuple[str, ...] = ("fact", "paraphrase", "lay", "cross", "comparison", "unanswerable", "near_miss")
UNANSWERABLE_TYPES: tuple[str, ...] = ("unanswerable", "near_miss")
#: Questions are split into a development part (tuned on) and a held-out part (only measured).
SPLITS: tuple[str, ...] = ("dev", "heldout")
#: Deepest cutoff of the ranking metrics (MRR@10, nDCG@10, the hit@k curve).
METRIC_DEPTH = 10
DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "questions.jsonl"
SNIPPET_CHARS = 110
#: Questions run before timing starts, so model and allocator warm-up is not measured.
WARMUP_QUESTIONS = 3

_MATCH_TABLE = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "*": None})


class EvalError(ValueError):
    """A question file, result file or BEIR folder that cannot be used."""


# -- questions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    """One line of the question set."""

    id: str
    type: str
    question: str
    evidence: tuple[str, ...]
    answer: tuple[str, ...]
    evidence_all: tuple[str, ...] = ()
    #: every one of these must be in the answer (a comparison's figure from each side)
    answer_all: tuple[str, ...] = ()
    split: str = "dev"

    @property
    def answerable(self) -> bool:
        return bool(self.evidence or self.evidence_all)

    def needs(self) -> list[list[str]]:
        """The evidence needs, each a list of normalised alternative strings (see module doc)."""
        if self.evidence_all:
            return [[normalise(s)] for s in self.evidence_all]
        if self.evidence:
            return [[normalise(s) for s in self.evidence]]
        return []


def parse_question(data: object, where: str = "") -> Question:
    """A `Question` from one decoded JSON line; raises EvalError naming what is wrong."""
    prefix = f"{where}: " if where else ""
    if not isinstance(data, dict):
        raise EvalError(f"{prefix}each line must be a JSON object. Currently, it is {type(data).__name__}")
    for key in ("id", "type", "question"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise EvalError(f"{prefix}{key!r} must be a non-empty string. Currently, it is {data.get(key)!r}")
    if data["type"] not in QUESTION_TYPES:
        raise EvalError(f"{prefix}type must be one of {', '.join(QUESTION_TYPES)}. Currently, it is {data['type']!r}")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("evidence", "answer", "evidence_all", "answer_all"):
        value = data.get(key, [])
        if key in ("evidence", "answer") and key not in data:
            raise EvalError(f"{prefix}{key!r} is missing")
        if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
            raise EvalError(f"{prefix}{key!r} must be a list of non-empty strings. Currently, it is {value!r}")
        lists[key] = tuple(value)
    split = data.get("split", "dev")
    if split not in SPLITS:
        raise EvalError(f"{prefix}split must be one of {', '.join(SPLITS)}. Currently, it is {split!r}")
    unanswerable = data["type"] in UNANSWERABLE_TYPES
    if unanswerable and any(lists.values()):
        raise EvalError(f"{prefix}an unanswerable question must have empty evidence and answer")
    if not unanswerable and not (lists["evidence"] and lists["answer"]):
        raise EvalError(f"{prefix}an answerable question needs evidence and answer strings")
    return Question(data["id"], data["type"], data["question"], lists["evidence"], lists["answer"],
                    lists["evidence_all"], lists["answer_all"], split)


def load_questions(path: str | Path = DEFAULT_QUESTIONS) -> list[Question]:
    """Every question in a JSONL file, in file order.

    Raises:
        EvalError: the file is missing, a line is not valid JSON or lacks a key, or ids repeat.
    """
    return load_records(path, parse_question, "questions", "--questions")


def load_records(path: str | Path, parse: Callable[[object, str], Any], what: str, option: str) -> list:
    """Every record of a JSONL file, parsed by `parse(data, where)` (which has an `id`), in file order.

    Raises:
        EvalError: the file is missing or empty, a line is not valid JSON or not a valid record, or ids repeat.
    """
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"No {what[:-1] if what.endswith('s') else what} file at {path}. "
                        f"Pass {option} FILE (JSON Lines).")
    records: list = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{where}: not valid JSON ({exc.msg})") from None
        record = parse(data, where)
        if record.id in seen:
            raise EvalError(f"{where}: id {record.id!r} is used twice")
        seen.add(record.id)
        records.append(record)
    if not records:
        raise EvalError(f"{path} holds no {what}")
    return records


# -- matching ----------------------------------------------------------------------------------
def normalise(text: str) -> str:
    """Text as evidence matching sees it: case folded, quotes unified, `*` dropped, spaces collapsed."""
    return " ".join(text.translate(_MATCH_TABLE).split()).casefold()


def contains(text: str, needle: str) -> bool:
    """Whether `needle` occurs in `text`, both compared after `normalise`."""
    return normalise(needle) in normalise(text)


def passage_text(passage: Any) -> str:
    """What a reader sees of a passage: its section path above its text (a score line sits under
    its statement's heading), as evidence is matched against it."""
    path = getattr(passage, "section_path", ())
    return f"{' › '.join(path)}\n{passage.text}" if path else str(passage.text)


def need_ranks(question: Question, texts: Sequence[str]) -> list[int | None]:
    """For each need of `question`, the 1-based rank of the first text meeting it (None: none does)."""
    normalised = [normalise(t) for t in texts]
    ranks: list[int | None] = []
    for alternatives in question.needs():
        rank = next((i for i, t in enumerate(normalised, start=1) if any(a in t for a in alternatives)), None)
        ranks.append(rank)
    return ranks


def question_rank(ranks: Sequence[int | None]) -> int | None:
    """The rank at which every need is met: the deepest need rank, or None if one is unmet."""
    if not ranks or any(r is None for r in ranks):
        return None
    return max(r for r in ranks if r is not None)


def answer_is_correct(question: Question, text: str, abstained: bool) -> bool:
    """Answerable: an answer string occurs in the text and it did not abstain. Unanswerable: it abstained."""
    if not question.answerable:
        return abstained
    if abstained:
        return False
    if question.answer_all:
        return all(contains(text, a) for a in question.answer_all)
    return any(contains(text, a) for a in question.answer)


# -- metrics -----------------------------------------------------------------------------------
def hit_at_k(rank: int | None, k: int) -> bool:
    """Whether the evidence is covered within the first `k` passages."""
    return rank is not None and rank <= k


def reciprocal_rank(rank: int | None, cutoff: int = METRIC_DEPTH) -> float:
    """1/rank if the evidence is covered within `cutoff`, else 0."""
    return 1.0 / rank if hit_at_k(rank, cutoff) else 0.0


def ndcg_at_k(ranks: Sequence[int | None], k: int = METRIC_DEPTH) -> float:
    """nDCG@k with each need a relevant item of gain 1 at the rank that first meets it.

    The ideal ranking meets the needs at ranks 1..n, one per passage; when one passage meets
    several needs the score could pass 1, so it is capped there.
    """
    if not ranks:
        return 0.0
    dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r is not None and r <= k)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(ranks), k)))
    return min(1.0, dcg / ideal)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between order statistics."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _share(flags: Iterable[bool]) -> float | None:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else None


# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetrievalMetrics:
    """Ranking metrics of one retriever over some answerable questions.

    `hit_curve[k - 1]` is hit@k for k = 1..depth.
    """

    n: int
    hit_curve: list[float]
    mrr: float
    ndcg: float

    def hit(self, k: int) -> float:
        if not 1 <= k <= len(self.hit_curve):
            raise ValueError(f"hit@{k} was not measured; the run retrieved {len(self.hit_curve)} passages")
        return self.hit_curve[k - 1]

    @classmethod
    def of(cls, ranks: Sequence[int | None], needs: Sequence[Sequence[int | None]],
           depth: int = METRIC_DEPTH) -> RetrievalMetrics:
        """Metrics from each question's rank and need ranks (same order)."""
        n = len(ranks)
        if n == 0:
            return cls(0, [0.0] * depth, 0.0, 0.0)
        curve = [sum(hit_at_k(r, k) for r in ranks) / n for k in range(1, depth + 1)]
        mrr = sum(reciprocal_rank(r) for r in ranks) / n
        ndcg = sum(ndcg_at_k(nr) for nr in needs) / n
        return cls(n, curve, mrr, ndcg)

    @classmethod
    def from_dict(cls, d: dict) -> RetrievalMetrics:
        return cls(int(d["n"]), [float(x) for x in d["hit_curve"]], float(d["mrr"]), float(d["ndcg"]))


@dataclass(frozen=True)
class AnswerMetrics:
    """How the answer engine did. A share is None when its question group is empty."""

    n_answerable: int
    n_correct: int
    n_false_abstentions: int
    n_unanswerable: int
    n_abstained_unanswerable: int

    @property
    def accuracy(self) -> float | None:
        return self.n_correct / self.n_answerable if self.n_answerable else None

    @property
    def abstention_accuracy(self) -> float | None:
        return self.n_abstained_unanswerable / self.n_unanswerable if self.n_unanswerable else None

    @property
    def false_abstention_rate(self) -> float | None:
        return self.n_false_abstentions / self.n_answerable if self.n_answerable else None

    @classmethod
    def of(cls, results: Iterable[QuestionResult]) -> AnswerMetrics:
        asked = [r for r in results if r.abstained is not None]
        answerable = [r for r in asked if r.answerable]
        unanswerable = [r for r in asked if not r.answerable]
        return cls(len(answerable), sum(bool(r.correct) for r in answerable),
                   sum(bool(r.abstained) for r in answerable), len(unanswerable),
                   sum(bool(r.abstained) for r in unanswerable))

    @classmethod
    def from_dict(cls, d: dict) -> AnswerMetrics:
        return cls(**{k: int(d[k]) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class LatencyStats:
    """Wall-clock milliseconds of one kind of call, one question at a time."""

    n: int
    median_ms: float
    p95_ms: float

    @classmethod
    def of(cls, ms: Sequence[float]) -> LatencyStats:
        return cls(len(ms), statistics.median(ms), percentile(ms, 95))

    @classmethod
    def from_dict(cls, d: dict) -> LatencyStats:
        return cls(int(d["n"]), float(d["median_ms"]), float(d["p95_ms"]))


@dataclass(frozen=True)
class TopPassage:
    """What a retriever put first: where it is from and how it starts."""

    doc_id: str
    section: str
    snippet: str

    @classmethod
    def of(cls, passage: Any) -> TopPassage:
        text = " ".join(str(passage.text).split())
        snippet = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "\u2026"
        return cls(str(passage.doc_id), str(getattr(passage, "section", "")), snippet)


@dataclass
class QuestionResult:
    """Everything measured for one question. Answer fields are None when no assistant ran."""

    id: str
    type: str
    question: str
    answerable: bool
    split: str = "dev"
    ranks: dict[str, int | None] = field(default_factory=dict)
    need_ranks: dict[str, list[int | None]] = field(default_factory=dict)
    top: dict[str, TopPassage] = field(default_factory=dict)
    answer: str | None = None
    abstained: bool | None = None
    correct: bool | None = None
    confidence: float | None = None
    search_ms: dict[str, float] = field(default_factory=dict)
    ask_ms: float | None = None
    #: Needs (as indexes into `Question.needs()`) met by no chunk of the index at all.
    unreachable: list[int] = field(default_factory=list)

    def hit(self, method: str, k: int) -> bool:
        return hit_at_k(self.ranks.get(method), k)

    @classmethod
    def from_dict(cls, d: dict) -> QuestionResult:
        return cls(
            id=d["id"], type=d["type"], question=d.get("question", ""), answerable=bool(d["answerable"]),
            split=d.get("split", "dev"),
            ranks=dict(d.get("ranks", {})), need_ranks={m: list(v) for m, v in d.get("need_ranks", {}).items()},
            top={m: TopPassage(**t) for m, t in d.get("top", {}).items()}, answer=d.get("answer"),
            abstained=d.get("abstained"), correct=d.get("correct"), confidence=d.get("confidence"),
            search_ms=dict(d.get("search_ms", {})), ask_ms=d.get("ask_ms"), unreachable=list(d.get("unreachable", [])))


@dataclass(frozen=True)
class TypeSummary:
    """Metrics of the questions of one type."""

    n: int
    retrieval: dict[str, RetrievalMetrics]
    answers: AnswerMetrics | None

    @classmethod
    def from_dict(cls, d: dict) -> TypeSummary:
        return cls(int(d["n"]), {m: RetrievalMetrics.from_dict(v) for m, v in d["retrieval"].items()},
                   AnswerMetrics.from_dict(d["answers"]) if d.get("answers") else None)


@dataclass(frozen=True)
class Summary:
    """The aggregate metrics of a run."""

    retrieval: dict[str, RetrievalMetrics]
    answers: AnswerMetrics | None
    latency: dict[str, LatencyStats]  # keys: "search:<method>" and "ask"
    by_type: dict[str, TypeSummary]
    by_split: dict[str, TypeSummary] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> Summary:
        return cls({m: RetrievalMetrics.from_dict(v) for m, v in d["retrieval"].items()},
                   AnswerMetrics.from_dict(d["answers"]) if d.get("answers") else None,
                   {m: LatencyStats.from_dict(v) for m, v in d.get("latency", {}).items()},
                   {t: TypeSummary.from_dict(v) for t, v in d.get("by_type", {}).items()},
                   {t: TypeSummary.from_dict(v) for t, v in d.get("by_split", {}).items()})


@dataclass(frozen=True)
class RunMeta:
    """What was run, on what, and when."""

    questions_file: str
    n_questions: int
    k: int
    depth: int
    methods: list[str]
    settings: dict[str, Any] = field(default_factory=dict)  # the retriever's qa.Settings
    answer_settings: dict[str, Any] = field(default_factory=dict)  # the assistant's AnswerSettings
    n_chunks: int | None = None
    git_commit: str = ""
    started: str = ""
    duration_s: float = 0.0
    threads: int | None = None  # torch/FAISS threads, when the run set them

    @classmethod
    def from_dict(cls, d: dict) -> RunMeta:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class EvalRun:
    """One evaluation: its metadata, a result per question, and the summary."""

    meta: RunMeta
    results: list[QuestionResult]
    summary: Summary

    def to_json(self) -> dict:
        """A JSON-ready dict: meta, summary (with the derived shares spelt out) and questions."""
        summary = asdict(self.summary)
        for answers, source in _answer_dicts(summary, self.summary):
            answers.update(accuracy=source.accuracy, abstention_accuracy=source.abstention_accuracy,
                           false_abstention_rate=source.false_abstention_rate)
        return {"meta": asdict(self.meta), "summary": summary, "questions": [asdict(r) for r in self.results]}

    @classmethod
    def from_json(cls, data: dict) -> EvalRun:
        try:
            return cls(RunMeta.from_dict(data["meta"]), [QuestionResult.from_dict(q) for q in data["questions"]],
                       Summary.from_dict(data["summary"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise EvalError(f"not an evaluation result file ({type(exc).__name__}: {exc})") from None


def _answer_dicts(summary: dict, source: Summary):
    if source.answers is not None:
        yield summary["answers"], source.answers
    for name, ts in source.by_type.items():
        if ts.answers is not None:
            yield summary["by_type"][name]["answers"], ts.answers


def save_run(run: EvalRun, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_run(path: str | Path) -> EvalRun:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalError(f"No result file at {path}. Write one with: python -m eval --json {path}") from None
    except json.JSONDecodeError as exc:
        raise EvalError(f"{path} is not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or "meta" not in data:
        raise EvalError(f"{path} is not a result of python -m eval --json (no 'meta')")
    return EvalRun.from_json(data)


def summarise(results: Sequence[QuestionResult], methods: Sequence[str], depth: int = METRIC_DEPTH) -> Summary:
    """Aggregate per-question results into overall and per-type metrics."""

    def retrieval(rs: Sequence[QuestionResult]) -> dict[str, RetrievalMetrics]:
        rs = [r for r in rs if r.answerable]
        return {m: RetrievalMetrics.of([r.ranks.get(m) for r in rs], [r.need_ranks.get(m, [None]) for r in rs],
                                       depth) for m in methods}

    asked = any(r.abstained is not None for r in results)
    latency: dict[str, LatencyStats] = {}
    for m in methods:
        ms = [r.search_ms[m] for r in results if m in r.search_ms]
        if ms:
            latency[f"search:{m}"] = LatencyStats.of(ms)
    ask_ms = [r.ask_ms for r in results if r.ask_ms is not None]
    if ask_ms:
        latency["ask"] = LatencyStats.of(ask_ms)
    def group(rs: Sequence[QuestionResult]) -> TypeSummary:
        return TypeSummary(len(rs), retrieval(rs) if any(r.answerable for r in rs) else {},
                           AnswerMetrics.of(rs) if asked else None)

    by_type = {t: group([r for r in results if r.type == t]) for t in QUESTION_TYPES
               if any(r.type == t for r in results)}
    by_split = {s: group([r for r in results if r.split == s]) for s in SPLITS
                if any(r.split == s for r in results)}
    return Summary(retrieval(results), AnswerMetrics.of(results) if asked else None, latency, by_type,
                   by_split if len(by_split) > 1 else {})


# -- running -----------------------------------------------------------------------------------
class SearchesPassages(Protocol):
    """What the harness needs of a retriever (qa.Retriever, or a stand-in in tests)."""

    def search(self, query: str, k: int = 5, *, method: str = "hybrid") -> list: ...

    def search_batch(self, queries: list[str], k: int = 5, *, method: str = "hybrid") -> list[list]: ...


class AsksQuestions(Protocol):
    def ask(self, question: str) -> Any: ...


def _progress(iterable, enabled: bool, **kwargs):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def _git_commit() -> str:
    try:  # read-only; a missing git or a copy outside a repository just leaves it blank
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def settings_info(obj: object) -> dict[str, Any]:
    """The fields of a settings dataclass as JSON values (paths as text), or {} for anything else."""
    if not is_dataclass(obj) or isinstance(obj, type):
        return {}
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = value if isinstance(value, (bool, int, float, str, type(None))) else str(value)
    return out


def unreachable_needs(questions: Sequence[Question], chunk_texts: Sequence[str]) -> dict[str, list[int]]:
    """Needs that no chunk contains: no retriever can ever meet them (e.g. evidence cut across chunks)."""
    normalised = [normalise(t) for t in chunk_texts]
    out: dict[str, list[int]] = {}
    for q in questions:
        missing = [i for i, alts in enumerate(q.needs()) if not any(a in t for t in normalised for a in alts)]
        if missing:
            out[q.id] = missing
    return out


def run_eval(retriever: SearchesPassages, questions: Sequence[Question], *, assistant: AsksQuestions | None = None,
             methods: Sequence[str] = METHODS, k: int = 5, timing: bool = True, progress: bool = False,
             questions_file: str | Path = "") -> EvalRun:
    """Evaluate retrievers (and the answer engine, if given) on a question set.

    Ranks come from one `search_batch` per retriever (one model call for all questions). Then,
    question by question, each retriever's `search(q, k)` and the assistant's `ask(q)` are timed
    after a short warm-up, so latency is what one user would see.

    Args:
        retriever: searches passages (a `qa.Retriever`).
        questions: the question set.
        assistant: answers questions (a `qa.Assistant`); None skips the answer metrics.
        methods: retrievers to compare, among "bm25", "dense", "hybrid".
        k: cutoff for failures and for the timed searches; ranks are taken to max(k, 10).
        timing: time the per-question searches (asks are timed whenever an assistant is given).
        progress: show tqdm progress bars.
        questions_file: recorded in the run's metadata.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise EvalError(f"methods must be among {', '.join(METHODS)}. Currently, they are {list(methods)!r}")
    if not 1 <= k <= 100:
        raise EvalError(f"k must be from 1 to 100. Currently, k is {k}")
    if not questions:
        raise EvalError("no questions to evaluate")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    depth = max(k, METRIC_DEPTH)
    results = [QuestionResult(q.id, q.type, q.question, q.answerable, q.split) for q in questions]
    texts = [q.question for q in questions]

    for method in _progress(methods, progress, desc="ranking", unit="retriever"):
        for q, res, passages in zip(questions, results, retriever.search_batch(texts, depth, method=method)):
            if passages:
                res.top[method] = TopPassage.of(passages[0])
            if q.answerable:
                res.need_ranks[method] = need_ranks(q, [passage_text(p) for p in passages])
                res.ranks[method] = question_rank(res.need_ranks[method])

    chunks = getattr(getattr(retriever, "index", None), "chunks", None)
    if chunks is not None:
        by_id = {r.id: r for r in results}
        for qid, missing in unreachable_needs(questions, [passage_text(c) for c in chunks]).items():
            by_id[qid].unreachable = missing

    if timing or assistant is not None:
        _warm_up(retriever, assistant, texts[:WARMUP_QUESTIONS], methods if timing else (), k)
    for q, res in zip(questions, _progress(results, progress and (timing or assistant is not None),
                                           desc="timing + answering" if assistant else "timing", unit="q")):
        if timing:
            for method in methods:
                start = time.perf_counter()
                retriever.search(q.question, k, method=method)
                res.search_ms[method] = (time.perf_counter() - start) * 1000
        if assistant is not None:
            _ask(assistant, q, res)

    meta = RunMeta(str(questions_file), len(questions), k, depth, list(methods),
                   settings_info(getattr(retriever, "settings", None)),
                   settings_info(getattr(assistant, "settings", None)), len(chunks) if chunks is not None else None,
                   _git_commit(), started, round(time.perf_counter() - t0, 2))
    return EvalRun(meta, results, summarise(results, methods, depth))


def _warm_up(retriever: SearchesPassages, assistant: AsksQuestions | None, texts: Sequence[str],
             methods: Sequence[str], k: int) -> None:
    for text in texts:
        for method in methods:
            retriever.search(text, k, method=method)
        if assistant is not None:
            from qa.errors import QAError

            try:
                assistant.ask(text)
            except (QAError, ValueError):  # a bad question is reported when it is asked for real
                pass


def _ask(assistant: AsksQuestions, q: Question, res: QuestionResult) -> None:
    from qa.errors import QAError

    start = time.perf_counter()
    try:
        answer = assistant.ask(q.question)
    except (QAError, ValueError) as exc:  # one bad question must not sink the run; it counts as wrong
        res.ask_ms = (time.perf_counter() - start) * 1000
        log.warning("question %s raised %s: %s", q.id, type(exc).__name__, exc)
        res.answer, res.abstained, res.correct = f"ERROR {type(exc).__name__}: {exc}", False, False
        return
    res.ask_ms = (time.perf_counter() - start) * 1000
    res.answer = str(answer.text)
    res.abstained = bool(answer.abstained)
    res.confidence = float(getattr(answer, "confidence", 0.0))
    res.correct = answer_is_correct(q, res.answer, res.abstained)


def parse_methods(choice: str) -> list[str]:
    """The retrievers named by --retriever: one of METHODS, "all", or a comma list."""
    if choice == "all":
        return list(METHODS)
    methods = [m.strip() for m in choice.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise EvalError(f"--retriever must be one of {', '.join(METHODS)}, all, or a comma list. "
                        f"Currently, it is {choice!r}")
    return [m for m in METHODS if m in methods]  # fixed order keeps tables comparable


def evaluate(questions_file: str | Path = DEFAULT_QUESTIONS, *, methods: Sequence[str] = METHODS, k: int = 5,
             index_dir: str | Path | None = None, timing: bool = True, progress: bool = True,
             threads: int | None = 1) -> EvalRun:
    """Load the questions, the index (`Retriever.load`, building it if missing) and the answer engine; run.

    Args:
        threads: torch and FAISS threads (None: the libraries' defaults). One by default: each call
            handles one short query, and on a shared 2-core machine OpenMP threads spin-waiting for a
            busy core made the whole run three times slower (173 s against 57 s) for no gain when idle.

    Raises:
        EvalError: bad questions or arguments.
        qa.errors.QAError: the index or model cannot be loaded.
    """
    from qa import Assistant, Retriever

    questions = load_questions(questions_file)
    if threads is not None:
        limit_threads(threads)
    retriever = Retriever.load(index_dir, progress=progress)
    assistant = Assistant(retriever)
    run = run_eval(retriever, questions, assistant=assistant, methods=methods, k=k, timing=timing,
                   progress=progress, questions_file=_display_path(questions_file))
    return replace(run, meta=replace(run.meta, threads=threads))


def limit_threads(n: int) -> None:
    """Cap the threads torch and FAISS use in this process."""
    import faiss
    import torch

    if n < 1:
        raise EvalError(f"threads must be at least 1. Currently, it is {n}")
    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)


def _display_path(path: str | Path) -> str:
    """The path relative to the working directory when it is inside it (shorter in tables)."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)
