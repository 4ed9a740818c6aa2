"""Follow-up questions: `python -m eval --conversations eval/conversations.jsonl`.

Each line of the file is one conversation:

    {"id": "c01", "split": "dev" | "heldout",
     "turns": [{"question", "rewrite", "dependency", "type", "evidence", "answer"}, ...]}

`dependency` is how a turn leans on the ones before: none (a first question), entity_swap,
year_swap, anaphora, ellipsis, or topic_switch (a new topic mid-conversation); `rewrite` is the
turn written as a standalone question; `type` is fact or unanswerable.

Every turn is answered in three modes:

* raw: the turn's question asked alone, with no memory of the conversation;
* system: the conversation asked turn by turn through `qa.Conversation` (which rewrites follow-ups);
* oracle: the gold `rewrite` asked alone (what a perfect rewriter would get from the answer engine).

A turn is correct as in `eval.harness.answer_is_correct`: for a fact, the answer did not abstain
and contains one of the turn's `answer` strings; for an unanswerable turn, it abstained.

Rewrite quality compares the question that was searched (the raw question, or the system's
rewrite) with the gold rewrite, after lower-casing and stemming (the BM25 tokenizer):

* entities: the share of turns whose searched question names every council and year the gold
  rewrite names (councils of the catalogue, places the rewriter reads as councils, years);
* content recall: the mean share of the gold rewrite's content words (stemmed, without stop words,
  councils and years) found in the searched question;
* rewrite ok: the share of turns with both all entities and content recall >= 0.5;
* decision: the share of turns where the system rewrote exactly when the turn depends on the
  turns before (entity_swap, year_swap, anaphora, ellipsis) and left it alone otherwise.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eval.harness import EvalError, answer_is_correct, load_records, parse_question

log = logging.getLogger(__name__)

DEFAULT_CONVERSATIONS = Path(__file__).resolve().parent / "conversations.jsonl"
DEPENDENCIES: tuple[str, ...] = ("none", "entity_swap", "year_swap", "anaphora", "ellipsis", "topic_switch")
#: Dependencies whose turn cannot be understood without the turns before.
FOLLOW_UPS: tuple[str, ...] = ("entity_swap", "year_swap", "anaphora", "ellipsis")
TURN_TYPES: tuple[str, ...] = ("fact", "unanswerable")
SPLITS: tuple[str, ...] = ("dev", "heldout")
MODES: tuple[str, ...] = ("raw", "system", "oracle")
#: Content recall a rewrite needs (with every council and year) to count as a good rewrite.
RECALL_OK = 0.5


@dataclass(frozen=True)
class ConversationTurn:
    question: str
    rewrite: str
    dependency: str
    type: str
    evidence: tuple[str, ...]
    answer: tuple[str, ...]


@dataclass(frozen=True)
class GoldConversation:
    id: str
    split: str
    turns: tuple[ConversationTurn, ...]


def parse_conversation(data: object, where: str = "") -> GoldConversation:
    """A conversation from one decoded JSON line; raises EvalError naming what is wrong."""
    prefix = f"{where}: " if where else ""
    if not isinstance(data, dict):
        raise EvalError(f"{prefix}each line must be a JSON object. Currently, it is {type(data).__name__}")
    if not isinstance(data.get("id"), str) or not data["id"].strip():
        raise EvalError(f"{prefix}'id' must be a non-empty string. Currently, it is {data.get('id')!r}")
    split = data.get("split", "dev")
    if split not in SPLITS:
        raise EvalError(f"{prefix}split must be one of {', '.join(SPLITS)}. Currently, it is {split!r}")
    turns = data.get("turns")
    if not isinstance(turns, list) or not turns:
        raise EvalError(f"{prefix}'turns' must be a non-empty list. Currently, it is {turns!r}")
    out = []
    for n, t in enumerate(turns, 1):
        here = f"{prefix}turn {n}: "
        if not isinstance(t, dict):
            raise EvalError(f"{here}must be a JSON object")
        for key in ("question", "rewrite"):
            if not isinstance(t.get(key), str) or not t[key].strip():
                raise EvalError(f"{here}{key!r} must be a non-empty string. Currently, it is {t.get(key)!r}")
        if t.get("dependency") not in DEPENDENCIES:
            raise EvalError(f"{here}dependency must be one of {', '.join(DEPENDENCIES)}. "
                            f"Currently, it is {t.get('dependency')!r}")
        if t.get("type") not in TURN_TYPES:
            raise EvalError(f"{here}type must be one of {', '.join(TURN_TYPES)}. Currently, it is {t.get('type')!r}")
        # the same checks as a question of the question set (evidence and answer lists)
        q = parse_question({"id": f"{data['id']}.{n}", "type": t["type"], "question": t["question"],
                            "evidence": t.get("evidence"), "answer": t.get("answer")}, here.rstrip(": "))
        out.append(ConversationTurn(t["question"], t["rewrite"], t["dependency"], t["type"], q.evidence, q.answer))
    return GoldConversation(data["id"], split, tuple(out))


def load_conversations(path: str | Path = DEFAULT_CONVERSATIONS) -> list[GoldConversation]:
    """Every conversation in a JSONL file, in file order. Raises EvalError on a bad file."""
    return load_records(path, parse_conversation, "conversations", "--conversations")


# -- rewrite quality -----------------------------------------------------------------------------
class RewriteScorer:
    """Compares a searched question with the gold rewrite (see the module doc)."""

    def __init__(self, assistant) -> None:
        from qa.conversation import Rewriter

        self.rewriter = Rewriter(assistant)
        self.lex = assistant.retriever.index.lexical

    def entities(self, text: str) -> set[str]:
        r = self.rewriter.read(text)
        names = {c.casefold() for c in r.councils}
        if r.place:
            generic = {"city", "county", "borough", "council"}
            names.add(" ".join(w for w in r.place.casefold().split() if w not in generic))
        years = {y.split("/")[0] for y in r.years}
        return names | years

    def content(self, text: str) -> set[str]:
        skip = self.rewriter.facts.council_tokens
        return {t for t in self.lex.tokens(text) if t not in skip and not re.fullmatch(r"\d+", t)}

    def score(self, searched: str, gold: str) -> tuple[bool, float]:
        """(names every council and year of the gold rewrite, share of its content words present)."""
        want = self.entities(gold)
        have = self.entities(searched)
        entities_ok = want <= have
        words = self.content(gold)
        recall = len(words & self.content(searched)) / len(words) if words else 1.0
        return entities_ok, recall


# -- running -------------------------------------------------------------------------------------
@dataclass
class TurnResult:
    conversation: str
    split: str
    turn: int
    dependency: str
    type: str
    question: str
    gold_rewrite: str
    system_query: str
    system_kind: str
    correct: dict[str, bool] = field(default_factory=dict)
    abstained: dict[str, bool] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    entities_ok: dict[str, bool] = field(default_factory=dict)  # "raw", "system"
    recall: dict[str, float] = field(default_factory=dict)

    def rewrite_ok(self, mode: str) -> bool:
        return self.entities_ok[mode] and self.recall[mode] >= RECALL_OK


def run_conversations(assistant, conversations: Sequence[GoldConversation], *,
                      progress: bool = False) -> list[TurnResult]:
    """Answer every turn in the three modes; the rewrite scores for raw and system."""
    from qa.conversation import Conversation

    scorer = RewriteScorer(assistant)
    results: list[TurnResult] = []
    for conv in _progress(conversations, progress):
        chat = Conversation(assistant)
        for n, t in enumerate(conv.turns, 1):
            q = parse_question({"id": f"{conv.id}.{n}", "type": t.type, "question": t.question,
                                "evidence": list(t.evidence), "answer": list(t.answer)})
            system = chat.ask(t.question)
            raw = assistant.ask(t.question)
            oracle = assistant.ask(t.rewrite)
            kind = chat.turns[-1].rewrite.kind
            res = TurnResult(conv.id, conv.split, n, t.dependency, t.type, t.question, t.rewrite,
                             system.query or t.question, kind)
            for mode, a in (("raw", raw), ("system", system), ("oracle", oracle)):
                res.correct[mode] = answer_is_correct(q, a.text, a.abstained)
                res.abstained[mode] = a.abstained
                res.answers[mode] = a.text
            for mode, searched in (("raw", t.question), ("system", res.system_query)):
                res.entities_ok[mode], res.recall[mode] = scorer.score(searched, t.rewrite)
            results.append(res)
    return results


def _progress(iterable, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc="conversations", unit="conv")


def evaluate_conversations(path: str | Path = DEFAULT_CONVERSATIONS, *, index_dir: str | Path | None = None,
                           progress: bool = True, threads: int | None = 1) -> list[TurnResult]:
    """Load the conversations, the index and the answer engine, and run every turn in the three modes."""
    from eval.harness import limit_threads
    from qa import Assistant, Retriever

    conversations = load_conversations(path)
    if threads is not None:
        limit_threads(threads)
    assistant = Assistant(Retriever.load(index_dir, progress=progress))
    return run_conversations(assistant, conversations, progress=progress)


# -- report --------------------------------------------------------------------------------------
def _share(flags: Iterable[bool]) -> str:
    flags = list(flags)
    if not flags:
        return "-"
    return f"{sum(flags) / len(flags):.3f} ({sum(flags)}/{len(flags)})"


def _mean(values: Iterable[float]) -> str:
    values = list(values)
    return f"{sum(values) / len(values):.3f}" if values else "-"


def format_results(results: Sequence[TurnResult], source: str = "") -> str:
    """The printed report: accuracy by mode, by dependency and split; rewrite quality; failures."""
    lines = [f"Conversations{f' ({source})' if source else ''}: "
             f"{len({r.conversation for r in results})} conversations, {len(results)} turns", ""]
    groups: list[tuple[str, list[TurnResult]]] = [("all turns", list(results))]
    groups.append(("follow-ups (" + ", ".join(FOLLOW_UPS) + ")",
                   [r for r in results if r.dependency in FOLLOW_UPS]))
    for dep in DEPENDENCIES:
        groups.append((f"  {dep}", [r for r in results if r.dependency == dep]))
    for t in TURN_TYPES:
        groups.append((f"  type {t}", [r for r in results if r.type == t]))

    def table(rows: list[TurnResult], title: str) -> list[str]:
        out = [title, f"{'':44} {'n':>4}  {'raw':>16} {'system':>16} {'oracle':>16}"]
        for name, members in groups:
            ids = {id(r) for r in rows}
            chosen = [r for r in members if id(r) in ids]
            if not chosen:
                continue
            out.append(f"{name:44} {len(chosen):>4}  " + " ".join(f"{_share(r.correct[m] for r in chosen):>16}"
                                                                 for m in MODES))
        return out

    lines += table(list(results), "Turns answered correctly (fact: answer string present, not abstained; "
                                  "unanswerable: abstained), all splits")
    for split in SPLITS:
        rows = [r for r in results if r.split == split]
        if rows:
            lines += [""] + table(rows, f"Split {split}")
    lines += ["", "Rewrite quality on follow-up and topic-switch turns (searched question vs gold rewrite, "
              "lower-cased and stemmed):",
              "  entities = names every council and year the gold rewrite names; recall = mean share of the "
              "gold rewrite's content words present;",
              f"  ok = entities and recall >= {RECALL_OK}; decision = rewritten exactly when the dependency is "
              "a follow-up (not none/topic_switch)",
              f"{'':28} {'n':>4}  {'raw entities':>16} {'raw recall':>10} {'sys entities':>16} {'sys recall':>10}"
              f" {'sys ok':>16} {'decision':>16}"]
    for split in ("all", *SPLITS):
        for dep in ("all", *DEPENDENCIES[1:]):
            rows = [r for r in results if r.dependency != "none" and (split == "all" or r.split == split)
                    and (dep == "all" or r.dependency == dep)]
            if not rows:
                continue
            decision = [(r.system_kind != "none") == (r.dependency in FOLLOW_UPS) for r in rows]
            cells = [_share(r.entities_ok["raw"] for r in rows), _mean(r.recall["raw"] for r in rows),
                     _share(r.entities_ok["system"] for r in rows), _mean(r.recall["system"] for r in rows),
                     _share(r.rewrite_ok("system") for r in rows), _share(decision)]
            widths = [16, 10, 16, 10, 16, 16]
            row = " ".join(f"{c:>{w}}" for c, w in zip(cells, widths))
            lines.append(f"{split + ' / ' + dep:28} {len(rows):>4}  {row}")
    wrong = [r for r in results if not r.correct["system"] and r.dependency != "none"]
    if wrong:
        lines += ["", "Follow-up turns the system got wrong:"]
        for r in wrong:
            lines.append(f"  {r.conversation}.{r.turn} [{r.split}, {r.dependency}, {r.type}] {r.question!r}")
            lines.append(f"      searched: {r.system_query!r} ({r.system_kind})")
            lines.append(f"      gold:     {r.gold_rewrite!r}; oracle {'right' if r.correct['oracle'] else 'wrong'}")
    return "\n".join(lines)


def save_results(results: Sequence[TurnResult], path: str | Path) -> Path:
    from dataclasses import asdict

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in results], indent=1, ensure_ascii=False), encoding="utf-8")
    return path
