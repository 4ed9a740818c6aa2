"""BEIR folders: reading, metrics on hand-computed inputs, and the three retrievers on a tiny corpus."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from eval.beir import BeirIndex, fuse, load_beir, ndcg_at_k, recall_at_k, run_beir
from eval.harness import EvalError

DOCS = [
    ("d1", "Volcanoes", "Lava erupts from a volcano when magma rises through the crust of the earth."),
    ("d2", "Baking", "A chocolate cake needs flour, sugar, eggs, butter and cocoa, baked in a hot oven."),
    ("d3", "Football", "The striker scored a penalty goal in the final minute of the football match."),
    ("d4", "Astronomy", "The telescope showed the rings of Saturn and the moons of Jupiter at night."),
    ("d5", "Gardening", "Tomato plants need sunlight, compost and regular watering in the greenhouse."),
    ("d6", "Banking", "The bank raised its interest rate on savings accounts and mortgages this year."),
]
QUERIES = [("q1", "how do volcanoes erupt lava"), ("q2", "chocolate cake recipe with cocoa"),
           ("q3", "Saturn rings seen through a telescope"), ("q4", "a query nobody judged")]
QRELS = [("q1", "d1", 1), ("q2", "d2", 2), ("q3", "d4", 1), ("q3", "d9", 1)]  # d9: not in the corpus


def make_beir(folder, docs=DOCS, queries=QUERIES, qrels=QRELS, header="query-id\tcorpus-id\tscore"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in docs))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps({"_id": i, "text": t}) for i, t in queries))
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / "test.tsv").write_text("\n".join([header, *(f"{q}\t{d}\t{s}" for q, d, s in qrels)]) + "\n")
    return folder


# -- reading ------------------------------------------------------------------------------------


def test_load_beir(tmp_path):
    data = load_beir(make_beir(tmp_path / "b"))
    assert data.doc_ids == ["d1", "d2", "d3", "d4", "d5", "d6"]
    assert data.texts[0].startswith("Volcanoes Lava erupts")
    assert list(data.queries) == ["q1", "q2", "q3"]  # q4 has no judgement
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}, "q3": {"d4": 1}}  # d9 dropped


def test_load_beir_needs_qrels_header(tmp_path):
    with pytest.raises(EvalError, match="header"):
        load_beir(make_beir(tmp_path / "b", header="q\td\ts"))


def test_load_beir_missing_files(tmp_path):
    folder = make_beir(tmp_path / "b")
    (folder / "queries.jsonl").unlink()
    with pytest.raises(EvalError, match="queries.jsonl"):
        load_beir(folder)
    with pytest.raises(EvalError, match="No BEIR folder"):
        load_beir(tmp_path / "nowhere")


def test_load_beir_without_positive_judgements(tmp_path):
    with pytest.raises(EvalError, match="positive judgement"):
        load_beir(make_beir(tmp_path / "b", qrels=[("q1", "d1", 0)]))


# -- metrics ------------------------------------------------------------------------------------


def test_beir_ndcg_uses_graded_gain():
    judged = {"d1": 2, "d3": 1, "d5": 0}
    # DCG = 2/log2(3) + 1/log2(4) = 1.2619 + 0.5; IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.6309
    expected = (2 / math.log2(3) + 0.5) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["d2", "d1", "d3"], judged) == pytest.approx(expected)  # 0.6697
    assert ndcg_at_k(["d1", "d3"], judged) == pytest.approx(1.0)
    assert ndcg_at_k(["d2", "d5"], judged) == 0.0
    assert ndcg_at_k(["x"] * 10 + ["d1"], judged) == 0.0  # rank 11 is past the cutoff


def test_beir_recall():
    judged = {"d1": 2, "d3": 1, "d5": 0}
    assert recall_at_k(["d2", "d1"], judged, k=2) == 0.5
    assert recall_at_k(["d3", "d2", "d1"], judged, k=2) == 0.5
    assert recall_at_k(["d3", "d2", "d1"], judged, k=3) == 1.0
    assert recall_at_k(["d5"], {"d5": 0}) == 0.0


def test_fuse_rescales_each_side():
    dense = np.array([0.2, 0.6, 0.4])
    lexical = np.array([0.0, 10.0, 20.0])
    assert fuse(dense, lexical, 0.5) == pytest.approx([0.0, 0.75, 0.75])
    assert fuse(dense, np.zeros(3), 0.5) == pytest.approx([0.0, 0.5, 0.25])  # flat side adds nothing


# -- the retrievers on the tiny corpus (real model) ---------------------------------------------


@pytest.mark.slow
def test_run_beir_finds_the_obvious_documents(tmp_path, encoder):
    run = run_beir(make_beir(tmp_path / "b"), encoder=encoder)
    assert (run.n_docs, run.n_queries, run.methods) == (6, 3, ["bm25", "dense", "hybrid"])
    for method in run.methods:
        assert {q: m.ndcg_at_10 for q, m in run.per_query[method].items()} == {"q1": 1.0, "q2": 1.0, "q3": 1.0}, method
        assert run.metrics[method].recall_at_100 == 1.0  # 6 documents: all are retrieved
    assert json.loads(json.dumps(run.to_json()))["beir"]["metrics"]["bm25"]["ndcg_at_10"] == 1.0


@pytest.mark.slow
def test_beir_bm25_ranking_and_ties(tmp_path, encoder):
    from qa.config import Settings

    index = BeirIndex.build(load_beir(make_beir(tmp_path / "b")), encoder, Settings())
    ranked = index.rank(["penalty goal striker", "zzzz unknown words"], "bm25", depth=3)
    assert ranked[0][0] == "d3"
    assert ranked[1] == ["d1", "d2", "d3"]  # no word known: all tie, corpus order kept
    with pytest.raises(EvalError):
        index.rank(["x"], "splade")


@pytest.mark.slow
def test_beir_hybrid_reranks_its_head_by_word_pieces_as_the_retriever_does(tmp_path, encoder):
    from qa.config import Settings
    from qa.retriever import rerank_head, similarities

    settings = Settings(rerank_depth=4)
    index = BeirIndex.build(load_beir(make_beir(tmp_path / "b")), encoder, settings)
    assert index.tokens is not None and len(index.tokens.offsets) == 7
    query = "which sport has a goalkeeper"
    vectors, (pieces,) = encoder.encode_queries_with_tokens([query])
    dense, lexical = similarities(index.dense, vectors)[0], index.lexical.scores(query)
    order = np.argsort(-fuse(dense, lexical, settings.dense_weight), kind="stable")
    top = order[:4]
    head, _ = rerank_head(top, dense[top], lexical[top], settings.dense_weight, index.tokens, pieces,
                          settings.rerank_weight)
    assert index.rank([query], "hybrid") == [[index.doc_ids[j] for j in [*head, *order[4:]]]]
    plain = BeirIndex.build(load_beir(make_beir(tmp_path / "b")), encoder, Settings(rerank_weight=0.0))
    assert plain.tokens is None
    assert plain.rank([query], "hybrid") == [[plain.doc_ids[j] for j in order]]


@pytest.mark.slow
def test_beir_fusion_matches_the_retriever(retriever):
    """The BEIR hybrid must mix scores exactly as qa's retriever does, or the comparison is moot."""
    from qa import Retriever

    query = "How many young people were waiting for a transition assessment?"
    fusion_only = Retriever(retriever.index, retriever.encoder, list(retriever.documents.values()),
                            retriever.settings.with_(rerank_weight=0.0))
    hybrid = fusion_only.retrieve_batch([query], 5, method="hybrid")[0]
    lexical = retriever.index.lexical.scores(hybrid.query)
    fused = fuse(hybrid.dense_scores, lexical, retriever._dense_weight(hybrid.query, float(lexical.max())))
    scores = [p.score for p in hybrid.passages]
    assert scores[0] == pytest.approx(float(fused.max()), abs=1e-5)
    # duplicates are shown once, so compare values rather than positions
    assert all(np.isclose(fused, s, atol=1e-5).any() for s in scores)


@pytest.mark.slow
def test_beir_command_line(tmp_path, encoder, monkeypatch, capsys):
    from eval.__main__ import main
    from qa.embeddings import Encoder

    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))  # reuse the session model
    out_json = tmp_path / "beir.json"
    assert main(["--beir", str(make_beir(tmp_path / "b")), "--retriever", "bm25", "--json", str(out_json),
                 "--report", str(tmp_path / "beir.md"), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "6 documents, 3 judged queries" in printed
    assert [line.split() for line in printed.splitlines() if line.startswith("bm25")] == [["bm25", "1.000", "1.000"]]
    assert json.loads(out_json.read_text())["beir"]["methods"] == ["bm25"]
    assert "| bm25 | 1.000 | 1.000 |" in (tmp_path / "beir.md").read_text()


@pytest.mark.slow
def test_beir_quiet_mode_prints_no_library_noise_and_honours_threads(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out_json = tmp_path / "beir.json"
    out = subprocess.run([sys.executable, "-m", "eval", "--beir", str(make_beir(tmp_path / "b")), "--retriever",
                          "bm25", "--threads", "1", "-q", "--json", str(out_json)], cwd=root, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    for noise in ("DEBUG", "Loading weights", "AVX2", "INFO"):  # warnings about the data may stay
        assert noise not in out.stderr, out.stderr
    assert json.loads(out_json.read_text())["beir"]["settings"]["torch_threads"] == 1
