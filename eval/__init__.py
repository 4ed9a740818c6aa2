"""Evaluation of the retrievers and the answer engine on the project's question set (and BEIR folders).

    python -m eval                                   # all retrievers + answers on eval/questions.jsonl
    python -m eval --json run.json --report out/report.md
    python -m eval --compare before.json after.json
    python -m eval --beir path/to/scifact            # nDCG@10 / recall@100 on a BEIR folder

Modules: `eval.harness` (questions, matching, metrics, running), `eval.report` (tables, Markdown,
plot, comparison), `eval.beir` (BEIR folders). Importing is cheap: the model loads only when run.
"""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
