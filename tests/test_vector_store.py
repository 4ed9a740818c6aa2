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
