"""The installable package: a wheel with the reports and py.typed, and paths outside a checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from qa import paths

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_the_reports_py_typed_and_the_qa_command(tmp_path):
    source = tmp_path / "src"  # a copy: an in-place build would leave build/ in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("qa", "corpus"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("care_reports_qa-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        catalogue = json.loads(z.read("qa/reports/catalogue.json"))
    assert {"qa/__init__.py", "qa/py.typed", "qa/cli.py", "qa/abstention.json", "qa/abstention.stock.json"} <= names
    # every module of the package, subpackages included (readers, backends)
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "qa").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules <= names, sorted(modules - names)
    shipped = {n.split("/")[-1] for n in names if n.startswith("qa/reports/")}
    assert shipped == {p.name for p in (ROOT / "corpus").iterdir() if p.is_file()}
    assert {d["file"] for d in catalogue["documents"]} <= shipped
    assert "qa = qa.cli:main" in entry_points
    assert not [n for n in names if n.startswith(("tests/", "eval/", "corpus/", "index/"))]


def test_outside_a_checkout_the_corpus_is_seeded_in_the_user_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "in_checkout", lambda: False)
    corpus, index = paths.default_corpus_dir(), paths.default_index_dir()
    assert corpus == tmp_path / "data" / "care-reports-qa" / "corpus"
    assert index == tmp_path / "cache" / "care-reports-qa" / "index"
    assert paths.default_feedback_log() == tmp_path / "data" / "care-reports-qa" / "feedback" / "feedback.jsonl"

    from qa.corpus import read_catalogue

    docs = read_catalogue(corpus)  # the first read seeds the folder from the bundled reports
    assert len(docs) == 5 and (corpus / docs[0].file).is_file()
    (corpus / "catalogue.json").write_text('{"documents": []}')  # a council's own edits are kept
    assert paths.seed_corpus(corpus) is False and read_catalogue(corpus) == []


def test_a_folder_named_by_the_user_is_never_seeded(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    mine = tmp_path / "my-corpus"
    assert paths.seed_corpus(mine) is False and not mine.exists()


def test_settings_defaults_follow_the_checkout():
    from qa.config import AppSettings, Settings

    assert paths.in_checkout()
    assert Settings().corpus_dir == ROOT / "corpus" and Settings().index_dir == ROOT / "index"
    assert AppSettings().feedback_log == ROOT / "feedback" / "feedback.jsonl"
    assert Settings.from_env({"QA_INDEX_DIR": "~/qa-index"}).index_dir == Path.home() / "qa-index"
