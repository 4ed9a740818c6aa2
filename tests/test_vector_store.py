"""VectorStore reads a memory-mapped store's sentence vectors with positional reads: the same
vectors and exact dense scores as from memory."""

import numpy as np

from qa.backends import VectorStore


def test_memory_mapped_store_scores_as_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 6, 200)  # some chunks have no sentence
    chunk_of = np.repeat(np.arange(200), counts)
    chunks = rng.standard_normal((200, 16)).astype(np.float32)
    sentences = rng.standard_normal((len(chunk_of), 16)).astype(np.float32)
    np.save(tmp_path / "sentences.npy", sentences)
    mapped = VectorStore(chunks, np.load(tmp_path / "sentences.npy", mmap_mode="r"), chunk_of)
    memory = VectorStore(chunks, sentences, chunk_of)
    rows = np.sort(rng.choice(len(sentences), 40, replace=False))
    assert np.array_equal(mapped.sentence_vectors(rows), sentences[rows])
    assert np.array_equal(mapped.sentence_vectors(np.arange(5, 25)), sentences[5:25])
    v = rng.standard_normal(16).astype(np.float32)
    for ids in (np.sort(rng.choice(200, 30, replace=False)), np.arange(200), np.flatnonzero(counts == 0)):
        assert np.array_equal(mapped.dense_scores(v, ids), memory.dense_scores(v, ids))


def test_quantised_store_scores_the_best_chunks_exactly_and_the_rest_closely(tmp_path):
    from qa.backends.faiss_ann import QuantisedStore

    rng = np.random.default_rng(1)
    counts = rng.integers(0, 6, 300)
    chunk_of = np.repeat(np.arange(300), counts)
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    chunks = unit(rng.standard_normal((300, 32)))
    sentences = unit(rng.standard_normal((len(chunk_of), 32)))
    np.save(tmp_path / "sentences.npy", sentences)
    memory = VectorStore(chunks, sentences, chunk_of)
    mapped = VectorStore(chunks, np.load(tmp_path / "sentences.npy", mmap_mode="r"), chunk_of)
    quantised = QuantisedStore.encode(mapped, sentences, block=100)
    v = unit(rng.standard_normal((1, 32)))[0]
    ids = np.sort(rng.choice(300, 120, replace=False))
    exact, got = memory.dense_scores(v, ids), quantised.dense_scores(v, ids)
    best = np.argsort(-exact)[: quantised.exact_chunks // 2]
    assert np.array_equal(got[best], exact[best])  # the best chunks: float rows read, exact scores
    assert np.abs(got - exact).max() < 0.01  # the others: from 8-bit codes
    assert not np.array_equal(got, exact)
    few = ids[:10]  # no more chunks than are scored exactly: every score exact
    assert np.array_equal(quantised.dense_scores(v, few), memory.dense_scores(v, few))
    saved = QuantisedStore(mapped, quantised.codes, quantised.trained)
    assert np.array_equal(saved.dense_scores(v, ids), got)
