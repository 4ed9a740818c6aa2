"""The ONNX query encoder: the same vectors as the torch model, checked by hash, and no torch on the
command line's search and ask paths."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa import IndexCorruptError, Retriever
from qa.onnx_encoder import ONNX_FILE, TOKENIZER_FILE, OnnxEncoder

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").open()]


@pytest.fixture(scope="module")
def onnx_encoder(retriever):
    enc = OnnxEncoder.for_index(retriever.settings.index_dir)
    enc.attach(retriever.settings.index_dir, retriever.index.manifest)
    return enc


def test_the_index_holds_the_export_with_its_checksum(retriever, index_model):
    manifest = retriever.index.manifest
    assert {ONNX_FILE, TOKENIZER_FILE} <= set(manifest["files"])
    assert manifest["query_encoder"]["exported_from_sha256"] == index_model.weights_sha256


def test_onnx_vectors_match_torch_within_1e5_cosine(index_model, onnx_encoder, retriever):
    encoder = index_model
    long_text = " ".join(c.text for c in retriever.index.chunks[:6])  # over 256 word pieces: truncated alike
    texts = QUESTIONS + [long_text, "DoLS", "a"]
    torch_vectors = encoder.encode_queries(texts)
    onnx_vectors = onnx_encoder.encode_queries(texts)
    cosine = (torch_vectors * onnx_vectors).sum(axis=1)
    assert onnx_encoder.count_tokens(long_text) > 256
    assert cosine.min() >= 1 - 1e-5, texts[int(cosine.argmin())]
    docs = onnx_encoder.encode_documents(texts[:50], threads=2, batch_size=7)  # batches by length
    assert ((docs * torch_vectors[:50]).sum(axis=1)).min() >= 1 - 1e-5


def test_onnx_counts_tokens_as_the_model_tokenizer(encoder, onnx_encoder, retriever):
    texts = [c.indexed_text(True) for c in retriever.index.chunks[:80]] + QUESTIONS[:50]
    assert [onnx_encoder.count_tokens(t) for t in texts] == [encoder.count_tokens(t) for t in texts]


def test_a_damaged_export_is_refused_on_first_use_and_bm25_still_works(retriever, tmp_path):
    folder = tmp_path / "index"
    shutil.copytree(retriever.settings.index_dir, folder)
    data = bytearray((folder / ONNX_FILE).read_bytes())
    data[len(data) // 2] ^= 0x5A
    (folder / ONNX_FILE).write_bytes(bytes(data))
    loaded = Retriever.load(folder, settings=retriever.settings, build_if_missing=False)
    assert isinstance(loaded.encoder, OnnxEncoder)
    assert loaded.search("DoLS backlog", k=3, method="bm25")  # BM25 needs no model
    with pytest.raises(IndexCorruptError, match="checksum.*python -m qa build"):
        loaded.search("DoLS backlog", k=3)


def test_loaded_retriever_ranks_as_the_torch_encoder_does(retriever, index_model):
    from qa.corpus import read_catalogue

    loaded = Retriever.load(settings=retriever.settings, build_if_missing=False)
    assert isinstance(loaded.encoder, OnnxEncoder)
    under_torch = Retriever(retriever.index, index_model, read_catalogue(retriever.settings.corpus_dir),
                            retriever.settings)
    for q in QUESTIONS[:40]:
        assert [p.chunk_id for p in loaded.search(q, k=10)] == [p.chunk_id for p in under_torch.search(q, k=10)]


@pytest.mark.parametrize("args, must_not_load", [
    (["search", "DoLS backlog", "--method", "bm25"], ("torch", "sentence_transformers", "transformers", "onnxruntime")),
    (["search", "DoLS backlog"], ("torch", "sentence_transformers", "transformers")),
    (["ask", "How many complaints about adult social care did Birmingham receive?"],
     ("torch", "sentence_transformers", "transformers")),
])
def test_command_line_search_and_ask_do_not_import_torch(retriever, args, must_not_load):
    code = ("import sys\nfrom qa.cli import main\n"
            f"status = main({args!r})\n"
            f"print('LOADED', [m for m in {must_not_load!r} if m in sys.modules], status)\n")
    env = dict(os.environ, QA_INDEX_DIR=str(retriever.settings.index_dir), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "LOADED [] 0"
    assert "[1]" in out.stdout  # it did answer


def _build_without_torch(folder: Path) -> None:
    """`qa build` into `folder` in a new process; it must succeed without importing torch."""
    env = dict(os.environ, QA_INDEX_DIR=str(folder), HF_HUB_OFFLINE="1")
    code = ("import sys\nfrom qa.cli import main\nstatus = main(['build'])\n"
            "print('LOADED', [m for m in ('torch', 'sentence_transformers') if m in sys.modules], status)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "LOADED [] 0"

def test_a_rebuild_reuses_the_verified_export_without_torch(retriever, tmp_path):
    folder = tmp_path / "index"
    shutil.copytree(retriever.settings.index_dir, folder)
    _build_without_torch(folder)
    rebuilt = json.loads((folder / "manifest.json").read_text())
    assert rebuilt["files"][ONNX_FILE] == retriever.index.manifest["files"][ONNX_FILE]
    vectors = np.load(folder / "sentences.npz")["vectors"]
    assert np.allclose(vectors, retriever.index.sentences.vectors, atol=1e-5)


def test_a_build_into_a_new_folder_takes_the_kept_export_without_torch(retriever, tmp_path):
    from qa.embedding_cache import CACHE_DIR_NAME

    # the session's build kept its export beside the embedding cache; a new index folder next to
    # that cache (a first build after `rm -r index`, say) needs neither torch nor a new export
    shutil.copytree(retriever.settings.index_dir.parent / CACHE_DIR_NAME, tmp_path / CACHE_DIR_NAME)
    kept = [p.name for p in (tmp_path / CACHE_DIR_NAME).glob("onnx-*")]
    assert f"onnx-{retriever.index.manifest['query_encoder']['exported_from_sha256'][:16]}" in kept
    folder = tmp_path / "index"
    _build_without_torch(folder)
    rebuilt = json.loads((folder / "manifest.json").read_text())
    assert rebuilt["files"][ONNX_FILE] == retriever.index.manifest["files"][ONNX_FILE]


def test_a_damaged_kept_export_is_not_used(retriever, tmp_path):
    from qa.embedding_cache import CACHE_DIR_NAME
    from qa.onnx_encoder import _copy_verified_export

    cache = tmp_path / CACHE_DIR_NAME
    shutil.copytree(retriever.settings.index_dir.parent / CACHE_DIR_NAME, cache)
    kept = cache / f"onnx-{retriever.index.manifest['query_encoder']['exported_from_sha256'][:16]}"
    data = bytearray((kept / ONNX_FILE).read_bytes())
    data[len(data) // 3] ^= 0x21
    (kept / ONNX_FILE).write_bytes(bytes(data))
    staging = tmp_path / "staging"
    staging.mkdir()
    wanted = retriever.index.manifest["query_encoder"]  # what the kept export says it is: only damaged
    assert json.loads((kept / "manifest.json").read_text())["query_encoder"] == wanted
    assert not _copy_verified_export(kept, staging, wanted, (ONNX_FILE, TOKENIZER_FILE))
    assert not (staging / ONNX_FILE).exists()


def test_questions_encoded_from_many_threads_at_once_get_their_own_vectors(onnx_encoder):
    from concurrent.futures import ThreadPoolExecutor

    texts = QUESTIONS[:48]
    alone = onnx_encoder.encode_queries(texts)
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(lambda t: onnx_encoder.encode_queries([t])[0], texts))
    assert np.allclose(np.stack(together), alone, atol=1e-5)


def test_remembered_tokens_are_not_shared_with_callers(retriever):
    lex = retriever.index.lexical
    first = lex.tokens("Safeguarding enquiries in Birmingham")
    first.append("changed by the caller")
    assert lex.tokens("Safeguarding enquiries in Birmingham") == first[:-1]


def test_an_export_that_fails_in_its_process_says_why(tmp_path):
    from qa.errors import ModelError
    from qa.onnx_encoder import ModelIdentity, prepare_export

    missing = tmp_path / "no-such-folder"  # the export process cannot write its file there
    export = prepare_export(tmp_path / "no-index", missing, ModelIdentity.of_default_model(),
                            cache_dir=tmp_path / "kept")
    with pytest.raises(ModelError, match="Exporting the embedding model to ONNX failed: .*no-such-folder"):
        export.wait()
    assert not (tmp_path / "kept").exists()  # nothing kept from a failed export


def test_the_plain_torch_bert_export_matches_sentence_transformers(encoder, tmp_path):
    from qa.onnx_encoder import ModelIdentity, export_default_model

    export_default_model(tmp_path)  # no encoder given: MiniLM written out in torch (`_bert`)
    onnx = OnnxEncoder(tmp_path / ONNX_FILE, tmp_path / TOKENIZER_FILE, ModelIdentity.of_default_model())
    texts = QUESTIONS[:40] + ["DoLS", "a " * 300]  # the last one truncated alike
    ours, theirs = onnx.encode_documents(texts), encoder.encode_documents(texts)
    assert (ours * theirs).sum(axis=1).min() >= 1 - 1e-5
    # stricter than the cosine: the tanh approximation of GELU (BERT uses the exact one) is within
    # 1e-5 cosine too, but 3e-4 apart in places; the same computation is ~1.5e-7 apart
    assert np.abs(ours - theirs).max() < 1e-5
