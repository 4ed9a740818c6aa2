"""Presenting runs: the console table, the Markdown report with its hit@k plot, and run comparison."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from eval.harness import METRIC_DEPTH, UNANSWERABLE_TYPES, EvalRun, QuestionResult, hit_at_k

if TYPE_CHECKING:
    from eval.beir import BeirRun

log = logging.getLogger(__name__)

#: hit@k columns of the tables (the run's own k is added when it is not one of these).
TABLE_KS = (1, 3, 5)
#: Settings named on the console (all are in --json and --report).
CONSOLE_SETTINGS = ("model", "chunk_tokens", "chunk_overlap_tokens", "contextual_chunks", "dense_weight",
                    "rerank_weight", "rerank_depth")
_DASH = "-"
_LABEL = re.compile(r'^[^"\n]*?: (?=")', re.MULTILINE)
_NUMERIC = re.compile(r"[-+]?[\d.,]+( [a-z]+)?|-")


# -- small formatting helpers -------------------------------------------------------------------
def _num(value: float | None, digits: int = 3) -> str:
    return _DASH if value is None else f"{value:.{digits}f}"


def _rank(rank: int | None) -> str:
    return _DASH if rank is None else str(rank)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table, first column left-aligned, the others right-aligned."""
    esc = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    numeric = [i > 0 and all(_NUMERIC.fullmatch(r[i]) for r in esc) for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("--:" if n else ":--" for n in numeric) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(out)


def _ks(run: EvalRun) -> list[int]:
    return sorted({*TABLE_KS, run.meta.k} & set(range(1, run.meta.depth + 1)))


def primary_method(methods: Sequence[str]) -> str:
    """The retriever the answer engine uses (hybrid) when it was run, else the last one."""
    return "hybrid" if "hybrid" in methods else methods[-1]


# -- sections (shared by console and Markdown) --------------------------------------------------
def retrieval_rows(run: EvalRun) -> tuple[list[str], list[list[str]]]:
    headers = ["retriever", *(f"hit@{k}" for k in _ks(run)), f"MRR@{METRIC_DEPTH}", f"nDCG@{METRIC_DEPTH}"]
    rows = [[m, *(_num(rm.hit(k)) for k in _ks(run)), _num(rm.mrr), _num(rm.ndcg)]
            for m, rm in run.summary.retrieval.items()]
    return headers, rows


def answer_rows(run: EvalRun) -> tuple[list[str], list[list[str]]]:
    a = run.summary.answers
    headers = ["answer engine", "value", "count"]
    if a is None:
        return headers, []
    return headers, [
        ["answer accuracy", _num(a.accuracy), f"{a.n_correct}/{a.n_answerable} answerable correct"],
        ["abstention accuracy", _num(a.abstention_accuracy),
         f"{a.n_abstained_unanswerable}/{a.n_unanswerable} unanswerable abstained"],
        ["false-abstention rate", _num(a.false_abstention_rate),
         f"{a.n_false_abstentions}/{a.n_answerable} answerable abstained"],
    ]


def latency_rows(run: EvalRun) -> tuple[list[str], list[list[str]]]:
    headers = ["call (ms)", "median", "p95", "n"]
    rows = []
    for name, stats in run.summary.latency.items():
        label = f"search {name.split(':', 1)[1]}" if name.startswith("search:") else name
        rows.append([label, f"{stats.median_ms:.1f}", f"{stats.p95_ms:.1f}", str(stats.n)])
    return headers, rows


def type_rows(run: EvalRun) -> tuple[list[str], list[list[str]]]:
    return group_rows(run, run.summary.by_type, "type")


def split_rows(run: EvalRun) -> tuple[list[str], list[list[str]]]:
    """Dev and held-out parts side by side; answers give accuracy, abstention and false abstention."""
    return group_rows(run, run.summary.by_split, "split")


def group_rows(run: EvalRun, groups: dict, label: str) -> tuple[list[str], list[list[str]]]:
    k, methods = run.meta.k, run.meta.methods
    primary = primary_method(methods)
    headers = [label, "n", *(f"{m} hit@{k}" for m in methods), f"{primary} MRR@{METRIC_DEPTH}", "answers"]
    rows = []
    for name, ts in groups.items():
        hits = [_num(ts.retrieval[m].hit(k)) if m in ts.retrieval else _DASH for m in methods]
        mrr = _num(ts.retrieval[primary].mrr) if primary in ts.retrieval else _DASH
        if ts.answers is None:
            answers = _DASH
        elif label == "split":
            a = ts.answers
            answers = (f"{_num(a.accuracy)} correct, {_num(a.abstention_accuracy)} abstained, "
                       f"{_num(a.false_abstention_rate)} false abst.")
        elif name in UNANSWERABLE_TYPES:
            answers = f"{_num(ts.answers.abstention_accuracy)} abstained"
        else:
            answers = f"{_num(ts.answers.accuracy)} correct"
        rows.append([name, str(ts.n), *hits, mrr, answers])
    return headers, rows


def retrieval_failures(run: EvalRun) -> list[QuestionResult]:
    """Answerable questions that some retriever of the run did not cover within k."""
    return [r for r in run.results if r.answerable and any(not r.hit(m, run.meta.k) for m in run.meta.methods)]


def answer_failures(run: EvalRun) -> list[QuestionResult]:
    return [r for r in run.results if r.correct is False]


def _failure_reason(r: QuestionResult) -> str:
    if not r.answerable:
        return "answered"
    return "abstained" if r.abstained else "wrong"


def _shown_top(r: QuestionResult, methods: Sequence[str], k: int) -> tuple[str, str]:
    """(method, its top passage) to show for a retrieval miss: the primary retriever's if it missed."""
    missed = [m for m in methods if not r.hit(m, k)]
    primary = primary_method(methods)
    method = primary if primary in missed else missed[0]
    top = r.top.get(method)
    where = f"{top.doc_id[:3]} {top.section or '(introduction)'}" if top else "(nothing retrieved)"
    return method, f"{where} | \"{top.snippet}\"" if top else where


def _without_label(answer: str | None) -> str:
    """An answer without its leading report labels ("Title (date): "), which every answer starts with."""
    return _LABEL.sub("", answer or "")


def _one_line(text: str | None, limit: int = 100) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


# -- console ------------------------------------------------------------------------------------
def format_run(run: EvalRun, *, failures: bool = True) -> str:
    """The console report: metrics tables, by-type table, and the failing questions."""
    m = run.meta
    n_answerable = sum(r.answerable for r in run.results)
    s = m.settings
    out = [f"Evaluation of {m.questions_file or 'questions'}: {m.n_questions} questions "
           f"({n_answerable} answerable), k={m.k}" + (f", commit {m.git_commit}" if m.git_commit else "")
           + f", {m.duration_s:.1f} s"]
    if s:
        out.append("Settings: " + ", ".join(f"{k}={v}" for k, v in s.items() if k in CONSOLE_SETTINGS)
                   + (f"; {m.n_chunks} chunks" if m.n_chunks else ""))
    out += ["", f"Retrieval ({n_answerable} answerable questions)", text_table(*retrieval_rows(run))]
    headers, rows = answer_rows(run)
    if rows:
        out += ["", text_table(headers, rows)]
    headers, rows = latency_rows(run)
    if rows:
        threads = f", {run.meta.threads} thread{'s' if run.meta.threads != 1 else ''}" if run.meta.threads else ""
        out += ["", f"Latency: one question at a time, after warm-up{threads}", text_table(headers, rows)]
    out += ["", "By question type", text_table(*type_rows(run))]
    if run.summary.by_split:
        out += ["", "By split (dev: tuned on; heldout: only measured)", text_table(*split_rows(run))]
    unreachable = [r for r in run.results if r.unreachable]
    if unreachable:
        out += ["", f"Evidence in no indexed chunk, so no retriever can find it ({len(unreachable)}): "
                + ", ".join(r.id for r in unreachable)]
    if failures:
        out += ["", format_failures(run)]
    return "\n".join(out)


def format_failures(run: EvalRun) -> str:
    """The failing questions: the main retriever's misses in detail, the others' as id lists, then answers."""
    k, methods = run.meta.k, run.meta.methods
    primary = primary_method(methods)
    misses = [r for r in retrieval_failures(run) if not r.hit(primary, k)]
    out = [f"{primary} misses at k={k} ({len(misses)}): rank of the evidence per retriever "
           f"({_DASH} = not in top {run.meta.depth}), and {primary}'s top passage instead"]
    for r in misses:
        ranks = "  ".join(f"{meth} {_rank(r.ranks.get(meth)):>2}" for meth in methods)
        _, top = _shown_top(r, methods, k)
        out.append(f"  {r.id}  {r.type:<10}  {ranks}  {_one_line(r.question, 80)}")
        out.append(f"        top: {_one_line(top, 140)}")
    for method in methods:
        if method == primary:
            continue
        only = [r.id for r in retrieval_failures(run) if r.hit(primary, k) and not r.hit(method, k)]
        if only:
            out.append(f"Missed by {method} only, found by {primary} ({len(only)}; details in --report/--json): "
                       + ", ".join(only))
    wrong = answer_failures(run)
    if run.summary.answers is not None:
        out += ["", f"Answer failures ({len(wrong)})"]
        for r in wrong:
            detail = (f"confidence {r.confidence:.2f}" if r.abstained and r.confidence is not None
                      else _one_line(_without_label(r.answer), 100))
            out.append(f"  {r.id}  {r.type:<12}  {_failure_reason(r):<9}  {detail}")
    return "\n".join(out)


# -- Markdown report and plot ------------------------------------------------------------------
def plot_hit_curve(run: EvalRun, path: str | Path) -> Path:
    """A PNG of hit@k for k = 1..10, one line per retriever."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global backend state
    from matplotlib.figure import Figure

    path = Path(path)
    ks = list(range(1, min(METRIC_DEPTH, run.meta.depth) + 1))
    fig = Figure(figsize=(7.5, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    styles = {"bm25": ("tab:orange", "s", "--"), "dense": ("tab:blue", "o", ":"), "hybrid": ("tab:green", "D", "-")}
    ends: list[tuple[float, str, str]] = []
    for method, rm in run.summary.retrieval.items():
        color, marker, line = styles.get(method, ("tab:gray", "o", "-"))
        values = [rm.hit(k) for k in ks]
        ax.plot(ks, values, marker=marker, linestyle=line, color=color, linewidth=2, markersize=6,
                label=f"{method} (MRR@10 {rm.mrr:.3f})")
        ends.append((values[-1], f"{values[-1]:.2f}", color))
    for y, text, color in zip(_spread([v for v, _, _ in ends], 0.04), *zip(*[(t, c) for _, t, c in ends])):
        ax.annotate(text, (ks[-1] + 0.2, y), va="center", fontsize=9, color=color)
    ax.text(run.meta.k + 0.08, 0.02, f"k={run.meta.k}", color="grey", fontsize=9)
    n = next(iter(run.summary.retrieval.values())).n if run.summary.retrieval else 0
    ax.set_xticks(ks)
    ax.set_xlim(0.6, ks[-1] + 0.9)  # room for the value labels at k=10
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("k (passages retrieved)")
    ax.set_ylabel("hit@k (share of questions)")
    ax.set_title(f"Evidence found in the top k: {n} answerable questions")
    ax.grid(True, alpha=0.35)
    ax.axvline(run.meta.k, color="grey", linewidth=1, alpha=0.6)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _spread(values: Sequence[float], gap: float) -> list[float]:
    """Label heights near `values`, moved apart so no two are closer than `gap` (order kept)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = list(values)
    for prev, cur in zip(order, order[1:]):
        out[cur] = max(out[cur], out[prev] + gap)
    return out


def format_markdown(run: EvalRun, plot_name: str | None) -> str:
    """The Markdown report; `plot_name` is the PNG's file name beside it (None: no plot)."""
    m = run.meta
    n_answerable = sum(r.answerable for r in run.results)
    out = ["# Retrieval and answer evaluation", "",
           f"- Questions: `{m.questions_file}`, {m.n_questions} ({n_answerable} answerable)",
           f"- k = {m.k}; ranks taken to {m.depth}; run {m.started}" + (f", commit `{m.git_commit}`" if m.git_commit
                                                                      else "") + f"; {m.duration_s:.1f} s"]
    if m.settings:
        out.append("- Settings: " + ", ".join(f"`{k}={v}`" for k, v in m.settings.items())
                   + (f"; {m.n_chunks} chunks" if m.n_chunks else ""))
    if m.answer_settings:
        out.append("- Answer settings: " + ", ".join(f"`{k}={v}`" for k, v in m.answer_settings.items()))
    out += ["", "## Retrieval", "", markdown_table(*retrieval_rows(run))]
    if plot_name:
        out += ["", f"![hit@k for k = 1..10 per retriever]({plot_name})"]
    headers, rows = answer_rows(run)
    if rows:
        out += ["", "## Answers", "", markdown_table(headers, rows)]
    headers, rows = latency_rows(run)
    if rows:
        threads = f" torch/FAISS threads: {run.meta.threads}." if run.meta.threads else ""
        out += ["", "## Latency", "", f"One question at a time, after warm-up.{threads}", "",
                markdown_table(headers, rows)]
    out += ["", "## By question type", "", markdown_table(*type_rows(run))]
    if run.summary.by_split:
        out += ["", "## By split", "", markdown_table(*split_rows(run))]
    unreachable = [r for r in run.results if r.unreachable]
    if unreachable:
        out += ["", "Evidence in no indexed chunk (no retriever can find it): "
                + ", ".join(f"`{r.id}`" for r in unreachable)]
    k, methods = m.k, m.methods
    misses = retrieval_failures(run)
    out += ["", f"## Retrieval misses at k={k} ({len(misses)})", ""]
    rows = []
    for r in misses:
        method, top = _shown_top(r, methods, k)
        rows.append([r.id, r.type, *(_rank(r.ranks.get(x)) for x in methods), f"{method}: {_one_line(top, 160)}",
                     _one_line(r.question, 120)])
    out.append(markdown_table(["id", "type", *methods, "top passage instead", "question"], rows))
    if run.summary.answers is not None:
        wrong = answer_failures(run)
        out += ["", f"## Answer failures ({len(wrong)})", ""]
        out.append(markdown_table(["id", "type", "failure", "answer", "question"],
                                  [[r.id, r.type, _failure_reason(r), _one_line(_without_label(r.answer), 160),
                                    _one_line(r.question, 120)] for r in wrong]))
    return "\n".join(out) + "\n"


def write_report(run: EvalRun, path: str | Path) -> Path:
    """Write the Markdown report and its hit@k PNG (named `<report stem>_hit_at_k.png`) beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png = path.with_name(f"{path.stem}_hit_at_k.png")
    plot_name = None
    if run.summary.retrieval:
        plot_hit_curve(run, png)
        plot_name = png.name
    path.write_text(format_markdown(run, plot_name), encoding="utf-8")
    return path


# -- comparing two runs -------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricDelta:
    name: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before


@dataclass(frozen=True)
class Flip:
    """A question whose outcome changed between two runs."""

    id: str
    what: str  # e.g. "hybrid hit@5" or "answer"
    before: bool
    after: bool


@dataclass(frozen=True)
class Comparison:
    k: int
    metrics: list[MetricDelta]
    flips: list[Flip]
    only_before: list[str]
    only_after: list[str]
    #: (setting, before, after) for every retriever or answer setting that differs.
    settings_changed: list[tuple[str, object, object]] = field(default_factory=list)


def _metric_values(run: EvalRun, k: int) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for method, rm in run.summary.retrieval.items():
        for kk in sorted({*TABLE_KS, k}):
            if kk <= len(rm.hit_curve):
                values[f"{method} hit@{kk}"] = rm.hit(kk)
        values[f"{method} MRR@{METRIC_DEPTH}"] = rm.mrr
        values[f"{method} nDCG@{METRIC_DEPTH}"] = rm.ndcg
    a = run.summary.answers
    if a is not None:
        values.update({"answer accuracy": a.accuracy, "abstention accuracy": a.abstention_accuracy,
                       "false-abstention rate": a.false_abstention_rate})
    for name, stats in run.summary.latency.items():
        values[f"{name.replace(':', ' ')} median ms"] = stats.median_ms
    return values


def compare_runs(before: EvalRun, after: EvalRun) -> Comparison:
    """Metric deltas and flipped questions between two runs (hit@k with the earlier run's k)."""
    k = before.meta.k
    va, vb = _metric_values(before, k), _metric_values(after, k)
    metrics = [MetricDelta(name, va.get(name), vb.get(name)) for name in [*va, *(n for n in vb if n not in va)]]
    a_by_id = {r.id: r for r in before.results}
    b_by_id = {r.id: r for r in after.results}
    flips: list[Flip] = []
    shared_methods = [m for m in before.meta.methods if m in after.meta.methods]
    for qid, ra in a_by_id.items():
        rb = b_by_id.get(qid)
        if rb is None:
            continue
        if ra.answerable and rb.answerable:
            for m in shared_methods:
                ha, hb = hit_at_k(ra.ranks.get(m), k), hit_at_k(rb.ranks.get(m), k)
                if ha != hb:
                    flips.append(Flip(qid, f"{m} hit@{k}", ha, hb))
        if ra.correct is not None and rb.correct is not None and ra.correct != rb.correct:
            flips.append(Flip(qid, "answer", ra.correct, rb.correct))
    changed = []
    for prefix, sa, sb in (("", before.meta.settings, after.meta.settings),
                           ("answer.", before.meta.answer_settings, after.meta.answer_settings)):
        changed += [(prefix + name, sa.get(name), sb.get(name)) for name in [*sa, *(n for n in sb if n not in sa)]
                    if sa.get(name) != sb.get(name) and not name.endswith("_dir")]
    return Comparison(k, metrics, flips, [q for q in a_by_id if q not in b_by_id],
                      [q for q in b_by_id if q not in a_by_id], changed)


def format_comparison(c: Comparison, before_name: str = "A", after_name: str = "B") -> str:
    rows = []
    for d in c.metrics:
        digits = 1 if d.name.endswith(" ms") else 3
        delta = _DASH if d.delta is None else f"{d.delta:+.{digits}f}"
        rows.append([d.name, _num(d.before, digits), _num(d.after, digits), delta])
    out = [f"Comparing {before_name} -> {after_name}"]
    if c.settings_changed:
        out.append("Settings changed: " + ", ".join(f"{n} {a!r} -> {b!r}" for n, a, b in c.settings_changed))
    out += ["", text_table(["metric", "before", "after", "delta"], rows)]
    groups: dict[tuple[str, bool, bool], list[str]] = {}
    for f in c.flips:
        groups.setdefault((f.what, f.before, f.after), []).append(f.id)
    out += ["", f"Flipped questions ({len(c.flips)})" if c.flips else "No question flipped."]
    for (what, before, after), ids in sorted(groups.items()):
        if what == "answer":
            change = f"{'correct' if before else 'incorrect'} -> {'correct' if after else 'incorrect'}"
        else:
            change = f"{'hit' if before else 'miss'} -> {'hit' if after else 'miss'}"
        out.append(f"  {what:<14} {change:<22} ({len(ids)}): {', '.join(ids)}")
    if c.only_before:
        out.append(f"Only in {before_name}: {', '.join(c.only_before)}")
    if c.only_after:
        out.append(f"Only in {after_name}: {', '.join(c.only_after)}")
    return "\n".join(out)


# -- BEIR -----------------------------------------------------------------------------------------
def format_beir(run: BeirRun) -> str:
    """The console table of a BEIR run."""
    rows = [[m, _num(x.ndcg_at_10), _num(x.recall_at_100)] for m, x in run.metrics.items()]
    return "\n".join([f"BEIR {run.folder} ({run.split}): {run.n_docs} documents, {run.n_queries} judged queries; "
                      f"index built in memory in {run.build_s:.1f} s, {run.duration_s:.1f} s in all",
                      text_table(["retriever", "nDCG@10", "recall@100"], rows)])


def format_beir_markdown(run: BeirRun) -> str:
    rows = [[m, _num(x.ndcg_at_10), _num(x.recall_at_100)] for m, x in run.metrics.items()]
    return "\n".join([f"# BEIR evaluation: `{run.folder}` ({run.split})", "",
                      f"{run.n_docs} documents, {run.n_queries} judged queries; settings "
                      + ", ".join(f"`{k}={v}`" for k, v in run.settings.items()), "",
                      markdown_table(["retriever", "nDCG@10", "recall@100"], rows)]) + "\n"


def write_beir_report(run: BeirRun, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_beir_markdown(run), encoding="utf-8")
    return path
