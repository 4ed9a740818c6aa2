"""Where the corpus, the index and the feedback log live, in a checkout and when installed.

    from qa.paths import default_corpus_dir, default_index_dir, seed_corpus

In a checkout (the `qa` package sits next to `corpus/` and `pyproject.toml`) everything stays in
the checkout, as before: `corpus/`, `index/`, `feedback/`. Installed with pip, the package carries
the reports as package data (`qa/reports/`, read-only), and

- the corpus is a writable folder in the per-user data directory
  (`$XDG_DATA_HOME/care-reports-qa/corpus`, by default `~/.local/share/care-reports-qa/corpus`),
  seeded from the bundled reports the first time it is needed, so reports a council adds never
  go into site-packages;
- the index is derived data, in the per-user cache directory
  (`$XDG_CACHE_HOME/care-reports-qa/index`, by default `~/.cache/care-reports-qa/index`);
- the app's feedback log is `<data directory>/feedback/feedback.jsonl`.

`QA_CORPUS_DIR`, `QA_INDEX_DIR` and `QA_APP_FEEDBACK_LOG` override each of these. Nothing here
runs at import: the functions compute paths when settings are made, and only `seed_corpus`
writes anything.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

log = logging.getLogger(__name__)

APP_NAME = "care-reports-qa"
PACKAGE_DIR = Path(__file__).resolve().parent
#: The folder above the package: the checkout's root, or site-packages when installed.
PROJECT_ROOT = PACKAGE_DIR.parent
CATALOGUE = "catalogue.json"


def in_checkout() -> bool:
    """True when running from a source checkout (the reports folder sits beside the package)."""
    return (PROJECT_ROOT / "corpus" / CATALOGUE).is_file() and (PROJECT_ROOT / "pyproject.toml").is_file()


def bundled_corpus_dir() -> Path:
    """The reports shipped with the code: `qa/reports/` when installed, `corpus/` in a checkout."""
    packaged = PACKAGE_DIR / "reports"
    return packaged if (packaged / CATALOGUE).is_file() else PROJECT_ROOT / "corpus"


def _user_dir(kind: str) -> Path:
    """Per-user data or cache folder of the app (XDG on Linux, the usual places elsewhere)."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / APP_NAME / ("Cache" if kind == "cache" else "Data")
    if sys.platform == "darwin":
        return home / "Library" / ("Caches" if kind == "cache" else "Application Support") / APP_NAME
    var, fallback = ("XDG_CACHE_HOME", home / ".cache") if kind == "cache" else ("XDG_DATA_HOME",
                                                                                 home / ".local" / "share")
    return Path(os.environ.get(var) or fallback) / APP_NAME


def user_data_dir() -> Path:
    return _user_dir("data")


def user_cache_dir() -> Path:
    return _user_dir("cache")


def default_corpus_dir() -> Path:
    return PROJECT_ROOT / "corpus" if in_checkout() else user_data_dir() / "corpus"


def default_index_dir() -> Path:
    return PROJECT_ROOT / "index" if in_checkout() else user_cache_dir() / "index"


def default_models_dir() -> Path:
    """Where models adapted to a corpus are kept between builds (keyed by what they were trained on)."""
    return user_cache_dir() / "models"


def default_feedback_log() -> Path:
    return (PROJECT_ROOT if in_checkout() else user_data_dir()) / "feedback" / "feedback.jsonl"


def seed_corpus(corpus_dir: Path) -> bool:
    """Copy the bundled reports into `corpus_dir` if it has no catalogue yet; True if it did.

    Only the default per-user corpus folder is seeded: a folder named by `QA_CORPUS_DIR` is the
    user's own, and a missing catalogue there is an error to report, not to paper over.
    """
    corpus_dir = Path(corpus_dir)
    source = bundled_corpus_dir()
    if (corpus_dir / CATALOGUE).is_file() or corpus_dir.resolve() == source.resolve():
        return False
    if corpus_dir.resolve() != (user_data_dir() / "corpus").resolve() or not (source / CATALOGUE).is_file():
        return False
    corpus_dir.mkdir(parents=True, exist_ok=True)
    # the catalogue last: a seed stopped half-way is redone next time
    for path in sorted(source.iterdir(), key=lambda p: (p.name == CATALOGUE, p.name)):
        if path.is_file() and not (corpus_dir / path.name).exists():
            shutil.copy2(path, corpus_dir / path.name)
            (corpus_dir / path.name).chmod(0o644)  # writable copies, whatever the package's modes
    log.warning("copied the bundled reports to %s (add reports there)", corpus_dir)
    return True
