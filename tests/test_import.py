"""Importing the library is cheap: no model, index, web framework or network at import time."""

import subprocess
import sys


def test_import_qa_loads_nothing_heavy():
    code = ("import sys, logging, qa, qa.cli, qa.generate, qa.index, qa.embeddings\n"
            "heavy = [m for m in ('torch', 'sentence_transformers', 'faiss', 'gradio', 'transformers', 'bm25s') "
            "if m in sys.modules]\n"
            "print(','.join(heavy))\n"
            "print(len(logging.getLogger().handlers))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, root_handlers = out.stdout.split("\n")[:2]
    assert heavy == ""
    assert root_handlers == "0"  # the library never configures the root logger
