"""Adapting the embedding model to the corpus (qa/adaptation.py): the pairs it learns from, a real
(short) training run, its cache, its ONNX export, and how an index holds and keeps it."""

import json
import shutil

import numpy as np
import pytest

from qa import Assistant, Retriever
from qa.adaptation import MIN_PAIRS, RECIPE, WEIGHTS, adapted_model, cache_key, training_pairs, verified_weights
from qa.answerability import MODEL_FILE, STOCK_MODEL_FILE, AnswerabilityModel
from qa.embeddings import DEFAULT_MODEL_SHA256, Encoder
from qa.errors import ModelError
from qa.index import expected_settings, read_manifest, stale_reasons

pytestmark = pytest.mark.slow


def test_pairs_are_a_sentence_and_the_rest_of_its_chunk_or_a_heading_and_its_section(retriever):
    chunks = retriever.index.chunks
    pairs = training_pairs(chunks)
    assert MIN_PAIRS <= len(pairs) <= RECIPE["max_pairs"]
    assert pairs == training_pairs(chunks)  # the same pairs (and so the same cache key) every time
    headings = {c.section_path[-1] for c in chunks}
    texts = {c.text for c in chunks}
    sentence_pairs = [(q, p) for q, p in pairs if p not in texts]
    assert sentence_pairs and len(sentence_pairs) < len(pairs)
    by_heading: dict[str, list[str]] = {}
    for c in chunks:
        by_heading.setdefault(c.heading_text, []).append(c.text)
    for query, passage in sentence_pairs:
        heading, rest = passage.split("\n", 1)
        # the passage is its chunk with the sentence taken out (once: a sentence may be repeated)
        assert any(rest.count(query) == text.count(query) - 1 for text in by_heading[heading])
        assert len(query.split()) >= 6
    for query, passage in pairs:
        if passage in texts:
            assert query in headings


def test_too_few_pairs_are_refused(tmp_path):
    with pytest.raises(ModelError, match="too few"):
        adapted_model([("a question here", "a passage")] * (MIN_PAIRS - 1), tmp_path)


@pytest.fixture(scope="module")
def small_adaptation(retriever, tmp_path_factory):
    """A real training run on the first two batches of the corpus's pairs."""
    pairs = training_pairs(retriever.index.chunks)[:MIN_PAIRS]
    cache = tmp_path_factory.mktemp("models")
    return pairs, cache, adapted_model(pairs, cache)[0]


def test_training_changes_the_weights_and_records_their_checksum(small_adaptation):
    from safetensors.numpy import load_file

    from qa.embeddings import bundled_model_dir

    pairs, cache, folder = small_adaptation
    assert folder.parent == cache and folder.name == f"adapted-{cache_key(DEFAULT_MODEL_SHA256, pairs)}"
    record = verified_weights(folder)
    assert record["pairs"] == len(pairs) and record["recipe"] == RECIPE
    assert record["base_sha256"] == DEFAULT_MODEL_SHA256
    before, after = load_file(bundled_model_dir() / WEIGHTS), load_file(folder / WEIGHTS)
    name = "encoder.layer.5.output.dense.weight"
    assert before[name].shape == after[name].shape and not np.array_equal(before[name], after[name])
    assert not list(cache.glob(".adapted-*"))  # nothing half-written is left


def test_a_kept_model_is_reused_and_a_damaged_one_trained_again(small_adaptation, monkeypatch, tmp_path):
    import qa.adaptation

    pairs, cache, folder = small_adaptation
    copy = tmp_path / "models"
    shutil.copytree(cache, copy)
    calls = []
    monkeypatch.setattr(qa.adaptation, "_train", lambda *args: calls.append(args) or 1.0)
    assert adapted_model(pairs, copy)[0] == copy / folder.name and calls == []
    data = bytearray((copy / folder.name / WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0x11
    (copy / folder.name / WEIGHTS).write_bytes(bytes(data))
    assert verified_weights(copy / folder.name) is None
    adapted_model(pairs, copy)
    assert len(calls) == 1


def test_the_onnx_export_of_an_adapted_model_matches_it_in_torch(small_adaptation, tmp_path):
    from qa.embeddings import bundled_model_dir
    from qa.onnx_encoder import ONNX_FILE, TOKENIZER_FILE, ModelIdentity, OnnxEncoder, export_default_model

    _, _, folder = small_adaptation
    export_default_model(tmp_path, weights=folder)
    torch_model = Encoder.load(str(folder))
    identity = ModelIdentity.of_default_model()
    onnx = OnnxEncoder(tmp_path / ONNX_FILE, tmp_path / TOKENIZER_FILE, identity)
    texts = ["Can deaf people get a signer at council meetings?", "DoLS backlog", "How many complaints?"]
    adapted, stock = torch_model.encode_queries(texts), Encoder.load().encode_queries(texts)
    assert (adapted * onnx.encode_queries(texts)).sum(axis=1).min() >= 1 - 1e-5
    assert (adapted * stock).sum(axis=1).max() < 1 - 1e-4  # it is not the stock model
    assert (tmp_path / TOKENIZER_FILE).read_bytes() == (bundled_model_dir() / TOKENIZER_FILE).read_bytes()


def test_the_index_holds_the_adapted_export_and_questions_go_through_it(retriever, encoder):
    manifest = retriever.index.manifest
    adaptation = manifest["adaptation"]
    assert manifest["model"]["weights_sha256"] == DEFAULT_MODEL_SHA256 and manifest["model"]["adapted_to_corpus"]
    assert adaptation["recipe"] == RECIPE and adaptation["weights_sha256"] != DEFAULT_MODEL_SHA256
    assert manifest["query_encoder"]["exported_from_sha256"] == adaptation["weights_sha256"]
    kept = retriever.settings.models_dir / adaptation["folder"]
    assert verified_weights(kept)["weights_sha256"] == adaptation["weights_sha256"]
    # the session fixture passed the stock torch encoder; the index's own export encodes questions
    assert retriever.encoder is not encoder and retriever.encoder.model_path.parent == retriever.settings.index_dir


def test_the_stock_model_stays_selectable(retriever, tmp_path):
    stock = retriever.settings.with_(adapt_model=False, index_dir=tmp_path / "index")
    expected = expected_settings(stock, retriever.encoder, retriever.index.manifest["corpus"])
    reasons = stale_reasons(retriever.index.manifest, expected)
    assert any("adapted_to_corpus" in r for r in reasons)  # switching it makes the index stale
    built = Retriever.build(stock)
    manifest = read_manifest(stock.index_dir)
    assert "adaptation" not in manifest and not manifest["model"]["adapted_to_corpus"]
    assert manifest["query_encoder"]["exported_from_sha256"] == DEFAULT_MODEL_SHA256
    question = "Can deaf people get a signer at council consultation meetings in Birmingham?"
    vector = built.encoder.encode_queries([question])
    assert np.allclose(vector, Encoder.load().encode_queries([question]), atol=1e-5)
    # answerability is decided by the model fitted on the stock model's evidence
    assert Assistant(built).answerability == AnswerabilityModel.load(STOCK_MODEL_FILE)
    assert Assistant(retriever).answerability == AnswerabilityModel.load(MODEL_FILE) != Assistant(built).answerability


def test_adding_a_report_keeps_the_adapted_model(retriever, tmp_path, monkeypatch):
    import qa.adaptation
    from qa.library import Library

    corpus = tmp_path / "corpus"
    shutil.copytree(retriever.settings.corpus_dir, corpus, ignore=shutil.ignore_patterns(".*"))
    settings = retriever.settings.with_(corpus_dir=corpus, index_dir=tmp_path / "index")
    shutil.copytree(retriever.settings.index_dir, settings.index_dir)
    monkeypatch.setattr(qa.adaptation, "_train", lambda *args: pytest.fail("trained again"))
    catalogue = json.loads((corpus / "catalogue.json").read_text())
    first = catalogue["documents"][0]
    text = (corpus / first["file"]).read_text()
    (tmp_path / "extra.txt").write_text(text.replace(first["council"], "Testshire County Council")[:4000])
    lib = Library(settings)
    lib.add(tmp_path / "extra.txt", title="Extra report", council="Testshire County Council", date="2024",
            publisher="CQC", doc_type="Assessment")
    grown = read_manifest(settings.index_dir)
    assert grown["documents"] == retriever.index.manifest["documents"] + 1
    assert grown["adaptation"] == retriever.index.manifest["adaptation"]
