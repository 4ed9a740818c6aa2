"""Time and memory to refuse each bad file (target: under 2 s and 300 MB each, exit status non-zero).

    python bench/bad_files.py [--testdata DIR]

Runs `python -m qa add FILE --no-index --date 2024` in a fresh process for every file of
shared/testdata/reports/bad/ and the encrypted pdf-samples file, against a throw-away copy of the
corpus, and prints the exit status, wall time, peak memory (RSS) of that process and its message.
The time includes starting Python and importing the package; a second table times the refusal
itself (`read_report`) in one warm process, with the Python memory it allocates.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTDATA = ROOT.parent / "shared" / "testdata" / "reports"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--testdata", type=Path, default=TESTDATA)
    args = p.parse_args(argv)
    files = sorted((args.testdata / "bad").iterdir()) + [args.testdata / "pdf-samples" / "libreoffice-writer-password.pdf",
                                                          args.testdata / "pdf-samples" / "imagemagick-images.pdf"]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(ROOT / "corpus", corpus)
        env = dict(os.environ, QA_CORPUS_DIR=str(corpus), QA_INDEX_DIR=str(Path(tmp) / "index"), HF_HUB_OFFLINE="1")
        print(f"{'file':<34} {'exit':>4} {'seconds':>8} {'peak MB':>8}  message")
        for f in files:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "qa", "add", str(f), "--no-index", "--date", "2024"], cwd=ROOT, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, err = proc.communicate()
            status = proc.returncode
            seconds = time.perf_counter() - t0
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest child so far
            message = (err.strip() or out.strip().splitlines()[0] if (err or out) else "")[:110]
            print(f"{f.name:<34} {status:>4} {seconds:8.2f} {peak:8.0f}  {message}")
            if status == 0:  # the owner-password PDF is read normally: take it out again
                doc_id = out.split("Added ", 1)[1].split(":", 1)[0] if "Added " in out else ""
                if doc_id:
                    subprocess.run([sys.executable, "-m", "qa", "remove", doc_id, "--no-index"], cwd=ROOT, env=env,
                                   capture_output=True)
    # the refusal itself, in a warm process: time and Python memory traced while reading
    import tracemalloc

    sys.path.insert(0, str(ROOT))
    from qa.errors import ReportError
    from qa.readers import read_report

    for f in files:  # warm-up: load pdfium, python-docx and lxml once
        try:
            read_report(f)
        except ReportError:
            pass
    print(f"\n{'file':<34} {'ms':>7} {'traced MB':>9}  (read_report in this process)")
    for f in files:
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            read_report(f)
            outcome = "read"
        except ReportError:
            outcome = "refused"
        ms = (time.perf_counter() - t0) * 1000
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"{f.name:<34} {ms:7.1f} {peak:9.1f}  {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
