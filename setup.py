"""Build step: copy the reports in corpus/ into the package as qa/reports/ (package data).

Everything else is in pyproject.toml. The reports stay in one place in the checkout (corpus/);
an installed package reads them from qa/reports/ and seeds a writable per-user corpus from them
(see qa/paths.py).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithReports(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads corpus/ in the checkout
            return
        target = Path(self.build_lib) / "qa" / "reports"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted((ROOT / "corpus").iterdir()):
            if path.is_file() and (path.suffix in {".txt", ".md", ".json"}):
                shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildWithReports})
