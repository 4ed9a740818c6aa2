"""The running app picks up a report added with the library, without a restart or a failed question."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from served_app import free_port, serve

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "reports"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not TESTDATA.is_dir(), reason=f"test documents not found at {TESTDATA}")]

FOCUS = "What was the focus of the 2016 Birmingham adult social care peer challenge?"
OTHERS = ["How many complaints about adult social care did Birmingham receive?",
          "What was the workforce turnover rate?", "How many Labour councillors does Birmingham City Council have?",
          "What score did Westminster get for governance?", "How long was the DoLS backlog?"]


@pytest.fixture(scope="module")
def app_without_003(retriever, encoder, tmp_path_factory):
    """An app over the corpus without the peer-challenge letter (003), its index beside the session's."""
    from qa import Assistant, Retriever
    from qa.app_settings import AppSettings
    from qa.library import Library
    from qa.live import LiveAssistant

    base = retriever.settings
    corpus = tmp_path_factory.mktemp("reload") / "corpus"
    shutil.copytree(base.corpus_dir, corpus, ignore=shutil.ignore_patterns(".*", "003_*"))
    catalogue = json.loads((corpus / "catalogue.json").read_text())
    catalogue["documents"] = [d for d in catalogue["documents"] if not d["doc_id"].startswith("003")]
    (corpus / "catalogue.json").write_text(json.dumps(catalogue, indent=2))
    # the stock model: adapting it to this smaller corpus would cost minutes and is tested elsewhere
    settings = base.with_(corpus_dir=corpus, index_dir=base.index_dir.parent / "index-reload", adapt_model=False)
    live = LiveAssistant(Assistant(Retriever.build(settings, encoder=encoder)))
    app_settings = AppSettings(port=free_port(), feedback_log=corpus.parent / "fb" / "log.jsonl")
    demo, url = serve(live, app_settings)
    yield live, Library(settings, encoder=encoder), url
    demo.close()


def test_a_report_added_while_the_app_runs_is_cited_in_the_next_answer(app_without_003):
    from gradio_client import Client

    live, lib, url = app_without_003
    client = Client(url, verbose=False)
    _, before = client.predict(FOCUS, "", "", api_name="/ask")
    assert not any("Peer challenge" in c["title"] for c in before["citations"])

    answers, errors = [], []

    def ask(question: str) -> None:
        try:
            text, payload = Client(url, verbose=False).predict(question, "", "", api_name="/ask")
            answers.append((question, text, payload))
        except Exception as exc:  # reported by the assertion below
            errors.append(repr(exc))

    done = threading.Event()
    adder = threading.Thread(target=lambda: (lib.add(TESTDATA / "converted" / "003.pdf", publisher="Peer team"),
                                             done.set()))
    adder.start()
    during = 0
    while not done.is_set() and during < 10:  # questions while the new generation is built and saved
        ask(OTHERS[during % len(OTHERS)])
        during += 1
    adder.join()
    assert done.is_set() and during >= 1
    # ten questions at once right after the switch: one loads the new generation, none fails
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(ask, [OTHERS[i % len(OTHERS)] for i in range(9)] + [FOCUS]))
    assert not errors
    assert len(answers) == during + 10
    assert all(payload["error"] is None and text for _, text, payload in answers)
    assert live.reloads == 1
    _, after = client.predict(FOCUS, "", "", api_name="/ask")
    added = lib.list()[-1]
    cited = [c for c in after["citations"] if c["doc_id"] == added.doc_id]
    assert cited and after["abstained"] is False
    assert ", page" in cited[0]["citation"] and "Maximising the independence" in after["answer"] + json.dumps(after)
