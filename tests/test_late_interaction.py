"""Token-level reranking: the word-piece table, both encoders' word pieces, and the hybrid ranking."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa import IndexCorruptError, Retriever
from qa.late_interaction import TOKEN_OFFSETS, TOKENS, TokenTable, TokenVectors
from qa.onnx_encoder import OnnxEncoder

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").open()]
VOCABULARY = ["[PAD]", "[CLS]", "[SEP]", ".", "?", "##,", "care", "carers", "respite", "signer", "the", "##s"]


def unit(rng, n, d=16):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def chunk(rng, ids):
    return TokenVectors(np.array(ids, dtype=np.int32), unit(rng, len(ids)))


def maxsim(question, piece, weights):
    w = weights[question.ids]
    best = (question.vectors @ piece.vectors.T).max(axis=1)
    return float((w * best).sum() / w.sum())


def test_scores_are_the_idf_weighted_maxsim_within_the_8_bit_codes():
    rng = np.random.default_rng(0)
    pieces = [chunk(rng, ids) for ids in ([6, 10, 3], [7, 10, 11, 3], [8, 6, 10], [10, 3])]
    table = TokenTable.build(pieces, VOCABULARY, 16)
    question = chunk(rng, [9, 7, 10, 4])
    got = table.scores(question, np.array([3, 0, 2]))
    want = [maxsim(TokenVectors(question.ids[:3], question.vectors[:3]), pieces[i], table.weights) for i in (3, 0, 2)]
    assert np.allclose(got, want, atol=0.01)  # "?" weighs nothing, so it is left out of the mean


def test_weights_are_idf_and_zero_for_punctuation_and_special_pieces():
    rng = np.random.default_rng(1)
    table = TokenTable.build([chunk(rng, ids) for ids in ([6, 10], [7, 10], [10, 3])], VOCABULARY, 16)
    w = dict(zip(VOCABULARY, table.weights))
    assert w["[CLS]"] == w["[SEP]"] == w["."] == w["?"] == w["##,"] == 0
    assert w["signer"] > w["care"] > w["the"] > 0  # never used > used once > used in every chunk


def test_a_question_of_punctuation_only_gives_no_scores():
    rng = np.random.default_rng(2)
    table = TokenTable.build([chunk(rng, [6, 10])], VOCABULARY, 16)
    assert table.scores(chunk(rng, [3, 4]), np.array([0])) is None


def test_a_saved_table_loads_the_same_and_refuses_another_shape(tmp_path):
    rng = np.random.default_rng(3)
    table = TokenTable.build([chunk(rng, [6, 10]), chunk(rng, []), chunk(rng, [8])], VOCABULARY, 16)
    table.save(tmp_path)
    loaded = TokenTable.load(tmp_path, 3, 16)
    question = chunk(rng, [9, 6])
    assert np.array_equal(loaded.scores(question, np.arange(3)), table.scores(question, np.arange(3)))
    assert loaded.scores(question, np.array([1]))[0] == 0  # a chunk without word pieces
    with pytest.raises(ValueError):
        TokenTable.load(tmp_path, 4, 16)


@pytest.mark.slow
def test_both_encoders_give_the_same_word_pieces(index_model, retriever):
    encoder = index_model
    onnx = OnnxEncoder.for_index(retriever.settings.index_dir)
    onnx.attach(retriever.settings.index_dir, retriever.index.manifest)
    long_text = " ".join(c.text for c in retriever.index.chunks[:6])  # truncated alike
    texts = QUESTIONS[:30] + [long_text, "DoLS"]
    v1, p1 = encoder.encode_queries_with_tokens(texts)
    v2, p2 = onnx.encode_queries_with_tokens(texts)
    assert np.allclose(v1, v2, atol=1e-5)
    assert np.allclose(v2, onnx.encode_queries(texts))  # the same vectors as without word pieces
    for a, b in zip(p1, p2):
        assert np.array_equal(a.ids, b.ids)
        assert (a.vectors * b.vectors).sum(axis=1).min() >= 1 - 1e-5
    _, docs = onnx.encode_documents_with_tokens(texts[:5])
    assert all(np.array_equal(a.ids, b.ids) for a, b in zip(docs, p2[:5]))
    assert onnx.vocabulary() == encoder.vocabulary()


@pytest.mark.slow
def test_the_index_holds_every_chunks_word_pieces(retriever):
    table = retriever.index.tokens
    assert table is not None and len(table.offsets) == len(retriever.index.chunks) + 1
    assert {TOKENS, TOKEN_OFFSETS} <= set(retriever.index.manifest["files"])
    first = retriever.index.chunks[0].indexed_text(retriever.settings.contextual_chunks)
    _, (pieces,) = retriever.encoder.encode_documents_with_tokens([first])
    assert table.offsets[1] == len(pieces.ids)


@pytest.mark.slow
def test_reranking_reorders_only_the_head_and_keeps_scores_in_order(retriever):
    off = Retriever(retriever.index, retriever.encoder, list(retriever.documents.values()),
                    retriever.settings.with_(rerank_weight=0.0))
    question = "Can deaf people get a signer at council consultation meetings in Birmingham?"
    ranked = retriever.search(question, k=50)
    plain = off.search(question, k=50)
    depth = retriever.settings.rerank_depth
    assert [p.chunk_id for p in ranked] != [p.chunk_id for p in plain]
    assert {p.chunk_id for p in ranked[:depth]} == {p.chunk_id for p in plain[:depth]}
    assert [p.chunk_id for p in ranked[depth:]] == [p.chunk_id for p in plain[depth:]]
    scores = [p.score for p in ranked]
    assert scores == sorted(scores, reverse=True)
    # the passage that answers it in the report's words ("BSL and other interpreters") is near the top
    # (since the fusion's dense weight rises for a question BM25 matches poorly, the fused ranking alone
    # may put it first too)
    assert next(i for i, p in enumerate(ranked) if "BSL and other interpreters" in p.text) < 3


@pytest.mark.slow
def test_reranking_keeps_the_filters_and_leaves_bm25_and_dense_alone(retriever):
    off = Retriever(retriever.index, retriever.encoder, list(retriever.documents.values()),
                    retriever.settings.with_(rerank_weight=0.0))
    question = "how long do people wait for a carers assessment"
    found = retriever.search(question, k=10, council="Westminster City Council")
    assert found and all(p.council == "Westminster City Council" for p in found)
    for method in ("bm25", "dense"):
        assert ([p.chunk_id for p in retriever.search(question, k=10, method=method)]
                == [p.chunk_id for p in off.search(question, k=10, method=method)])


@pytest.mark.slow
def test_a_damaged_word_piece_table_is_refused(retriever, tmp_path):
    folder = tmp_path / "index"
    shutil.copytree(retriever.settings.index_dir, folder)
    data = bytearray((folder / TOKENS).read_bytes())
    data[-100] ^= 0x5A
    (folder / TOKENS).write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="tokens.npy"):
        Retriever.load(folder, settings=retriever.settings, build_if_missing=False)


@pytest.mark.slow
def test_word_pieces_are_cached_with_the_vectors_and_a_damaged_shard_is_embedded_again(encoder, tmp_path, caplog):
    from qa.embedding_cache import EmbeddingCache, TokenCache

    texts = ["carers assessment waiting times", "DoLS backlog", "hospital discharge"]
    vectors, pieces, stats = TokenCache(EmbeddingCache(tmp_path / "cache")).encode(encoder, texts)
    assert (stats.embedded, stats.cached) == (3, 0)
    again, cached, stats = TokenCache(EmbeddingCache(tmp_path / "cache")).encode(encoder, texts)
    assert (stats.embedded, stats.cached) == (0, 3)  # vectors and word pieces both read back
    assert np.allclose(again, vectors) and all(np.array_equal(a.ids, b.ids) for a, b in zip(cached, pieces))
    assert np.allclose(cached[1].vectors, pieces[1].vectors, atol=1e-3)  # kept in float16
    (shard,) = (tmp_path / "cache-tokens").glob("shard-*.npz")
    shard.write_bytes(b"not a shard")
    _, _, stats = TokenCache(EmbeddingCache(tmp_path / "cache")).encode(encoder, texts)
    assert stats.embedded == 3
    assert "skipping damaged word-piece cache shard" in caplog.text
