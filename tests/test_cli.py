"""The command line, run as a user would: a real process against the session's index."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def run(args, index_dir, extra_env=None):
    env = dict(os.environ, QA_INDEX_DIR=str(index_dir), HF_HUB_OFFLINE="1", **(extra_env or {}))
    return subprocess.run([sys.executable, "-m", "qa", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_search_json(retriever):
    out = run(["search", "How many complaints about adult social care?", "-k", "3", "--json"],
              retriever.settings.index_dir)
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert len(hits) == 3
    assert {"text", "score", "doc_id", "title", "section", "citation"} <= set(hits[0])
    assert any("663" in h["text"] for h in hits)


def test_ask_json_and_text(retriever):
    out = run(["ask", "What was the workforce turnover rate in Westminster?", "--json"], retriever.settings.index_dir)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["abstained"] is False and "5.3%" in data["answer"] and data["citations"]
    out = run(["ask", "What is the capital of France?"], retriever.settings.index_dir)
    assert out.returncode == 0 and "could not find this in these reports" in out.stdout


def test_bad_input_gives_one_line_and_status_2(retriever):
    out = run(["search", "   "], retriever.settings.index_dir)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: The question is empty")
    assert "Traceback" not in out.stderr
    out = run(["search", "care", "--council", "Leeds"], retriever.settings.index_dir)
    assert out.returncode == 2 and "Known councils" in out.stderr


def test_a_corrupt_index_is_reported_with_the_fix(retriever, tmp_path):
    import shutil

    broken = tmp_path / "index"
    shutil.copytree(retriever.settings.index_dir, broken)
    (broken / "dense.faiss").write_bytes(b"not a faiss index")
    out = run(["search", "care"], broken)
    assert out.returncode == 1 and "python -m qa build" in out.stderr and "Traceback" not in out.stderr


def test_help_for_each_command():
    for args in (["--help"], ["build", "--help"], ["search", "--help"], ["ask", "--help"]):
        out = subprocess.run([sys.executable, "-m", "qa", *args], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0 and "usage:" in out.stdout


# -- issue 10: the model server, quiet output, a stale index that is rebuilt -------------------------------
COMPLAINTS = "How many complaints about adult social care did Birmingham receive?"
MODEL_REPLY = ("In the 12 months to May 2023, Birmingham City Council received 663 complaints about adult "
               "social care [1].")


def test_ask_uses_the_model_server_when_one_is_set(retriever):
    from test_generate import serving

    with serving() as fake:
        fake.reply = MODEL_REPLY
        env = {"QA_LLM_BASE_URL": fake.url, "QA_LLM_MODEL": "fake-model"}
        out = run(["ask", COMPLAINTS, "--json"], retriever.settings.index_dir, env)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        assert data["mode"] == "fake-model" and data["answer"] == MODEL_REPLY and data["citations"]
        assert len(fake.requests) == 1
        out = run(["ask", COMPLAINTS, "--json", "--no-llm"], retriever.settings.index_dir, env)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["mode"] == "extractive" and len(fake.requests) == 1


def test_search_prints_nothing_but_its_results(retriever):
    out = run(["search", "DoLS backlog", "-k", "2"], retriever.settings.index_dir)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no "Loading weights" bar, no bm25s DEBUG, no faiss INFO
    assert out.stdout.startswith("[1] ")


def test_a_stale_index_rebuilt_during_search_says_so(tiny_corpus, tmp_path):
    index = tmp_path / "index"
    env = {"QA_CORPUS_DIR": str(tiny_corpus)}
    out = run(["build"], index, env)
    assert out.returncode == 0, out.stderr
    with open(tiny_corpus / "a.txt", "a", encoding="utf-8") as fh:
        fh.write("\n## Reviews\n\nThe council reviewed 77 placements.\n")
    out = run(["search", "placements reviewed", "--json", "-k", "1"], index, env)
    assert out.returncode == 0, out.stderr
    assert "out of date" in out.stderr and "corpus file a.txt changed" in out.stderr and "Rebuilding" in out.stderr
    assert "77 placements" in json.loads(out.stdout)[0]["text"]
