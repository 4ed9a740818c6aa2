"""The command line, run as a user would: a real process against the session's index."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def run(args, index_dir):
    env = dict(os.environ, QA_INDEX_DIR=str(index_dir), HF_HUB_OFFLINE="1")
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
