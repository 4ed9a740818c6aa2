"""Search at national scale: synthetic chunks shaped like the real ones, fast path against exact.

    python bench/scale.py --chunks 100000 [--queries 199] [--cache-dir /tmp/qa-scale]

Synthetic corpus (built once per N and cached as .npy files): each synthetic chunk starts from a
random real chunk, its vector is that chunk's vector plus Gaussian noise with the real vectors'
covariance (renormalised), its sentences are as many as a real chunk has (drawn from the real
distribution) with vectors offset from the chunk's as real sentences are from theirs, and its words
are drawn half from the real chunk and half from the corpus's word frequencies, with the real
chunks' lengths. Chunks belong to 100 "councils" (1% each), the filter measured below.

Prints the build time of the FAISS backend (BM25, HNSW, IVF-SQ8; encoding excluded: the vectors are
made, not encoded), resident memory, search p50/p95 per query excluding query encoding (candidates,
exact rescoring, fusion, top 10), and recall@10 of the fast path against the exact path (every
chunk scored and fused), without and with the 1% council filter. The queries are the eval set's
questions encoded once with the real model. Last line: key=value pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
COUNCILS = 100


def rss_gb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in GB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1e6, int(fields["VmHWM"].split()[0]) / 1e6)


def synthesise(n: int, real, texts: list[str], folder: Path, seed: int = 0) -> None:
    """Write chunks.npy, sentences.npy, sentence_chunk.npy, council.npy, texts.jsonl for n chunks."""
    rng = np.random.default_rng(seed)
    chunks_real, sentences_real, sentence_chunk_real = real.chunks, real.sentences, real.sentence_chunk
    d = chunks_real.shape[1]
    centred = chunks_real - chunks_real.mean(0)
    chunk_noise = np.linalg.cholesky(np.cov(centred.T) + 1e-6 * np.eye(d)).astype(np.float32)
    residual = sentences_real - chunks_real[sentence_chunk_real]
    sentence_noise = np.linalg.cholesky(np.cov(residual.T) + 1e-6 * np.eye(d)).astype(np.float32)
    per_chunk = np.bincount(sentence_chunk_real, minlength=len(chunks_real))
    source = rng.integers(0, len(chunks_real), n)
    counts = per_chunk[rng.integers(0, len(chunks_real), n)]
    folder.mkdir(parents=True, exist_ok=True)
    chunks = np.lib.format.open_memmap(folder / "chunks.npy", "w+", np.float32, (n, d))
    total = int(counts.sum())
    sentences = np.lib.format.open_memmap(folder / "sentences.npy", "w+", np.float32, (total, d))
    sentence_chunk = np.repeat(np.arange(n), counts).astype(np.int64)
    np.save(folder / "sentence_chunk.npy", sentence_chunk)
    np.save(folder / "council.npy", rng.integers(0, COUNCILS, n).astype(np.int16))
    block = 50_000
    for start in range(0, n, block):
        end = min(n, start + block)
        v = chunks_real[source[start:end]] + 0.5 * rng.standard_normal((end - start, d), np.float32) @ chunk_noise.T
        chunks[start:end] = v / np.linalg.norm(v, axis=1, keepdims=True)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    for start in range(0, n, block):
        end = min(n, start + block)
        rows = slice(first[start], first[end - 1] + counts[end - 1])
        owner = sentence_chunk[rows]
        v = chunks[owner] + rng.standard_normal((len(owner), d), np.float32) @ sentence_noise.T
        sentences[rows] = v / np.linalg.norm(v, axis=1, keepdims=True)
    chunks.flush()
    sentences.flush()
    # words: half from the source chunk, half from the corpus's word frequencies; real lengths
    words = [t.split() for t in texts]
    vocab, freq = np.unique(np.concatenate([np.array(w) for w in words]), return_counts=True)
    p = freq / freq.sum()
    lengths = np.array([len(w) for w in words])
    with open(folder / "texts.jsonl", "w", encoding="utf-8") as fh:
        for start in range(0, n, block):
            end = min(n, start + block)
            background = rng.choice(len(vocab), size=(end - start, int(lengths.max())), p=p)
            for j, i in enumerate(range(start, end)):
                own = words[source[i]]
                length = lengths[source[i]]
                pick = rng.random(length) < 0.5
                text = [own[rng.integers(len(own))] if k else vocab[background[j, m]] for m, k in enumerate(pick)]
                fh.write(json.dumps(" ".join(text)) + "\n")
    (folder / "done").write_text("ok")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chunks", type=int, required=True)
    p.add_argument("--queries", type=int, default=199)
    p.add_argument("--cache-dir", default=os.environ.get("QA_SCALE_CACHE", "/tmp/qa-scale"))
    p.add_argument("--index-dir", help="the real index to take vectors and texts from (default: QA_INDEX_DIR)")
    args = p.parse_args()

    from qa import Retriever
    from qa.backends import VectorStore
    from qa.backends.faiss_ann import FaissAnnBackend
    from qa.lexical import LexicalIndex
    from qa.retriever import fuse

    real = Retriever.load(args.index_dir, build_if_missing=True)
    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").open()][: args.queries]
    queries = real.encoder.encode_queries(questions)
    folder = Path(args.cache_dir) / f"chunks-{args.chunks}"
    if not (folder / "done").exists():
        t = time.perf_counter()
        synthesise(args.chunks, real.backend.store if hasattr(real.backend, "store") else VectorStore.of_index(real.index),
                   [c.indexed_text(True) for c in real.index.chunks], folder)
        print(f"synthesised {args.chunks:,} chunks in {time.perf_counter() - t:.0f} s (cached in {folder})", flush=True)
    del real

    chunks = np.load(folder / "chunks.npy", mmap_mode="r")
    sentences = np.load(folder / "sentences.npy", mmap_mode="r")
    sentence_chunk = np.load(folder / "sentence_chunk.npy")
    council = np.load(folder / "council.npy")
    texts = [json.loads(line) for line in (folder / "texts.jsonl").open(encoding="utf-8")]
    print(f"{len(chunks):,} chunks, {len(sentences):,} sentences", flush=True)

    t = time.perf_counter()
    store = VectorStore(chunks, sentences, sentence_chunk)
    lexical = LexicalIndex.build(texts)
    bm25_s = time.perf_counter() - t
    backend = FaissAnnBackend.build(store, lexical)
    build_s = time.perf_counter() - t
    del texts
    print(f"build (excluding encoding): {build_s:.1f} s (BM25 {bm25_s:.1f} s, HNSW + IVF-SQ8 {build_s - bm25_s:.1f} s)",
          flush=True)

    everything = np.arange(len(chunks))
    allowed = council == 0
    dense_weight = 0.4

    def fast(i: int, mask) -> tuple[list[int], float]:
        start = time.perf_counter()
        cand = backend.candidates(queries[i:i + 1], questions[i:i + 1], mask, "hybrid")[0]
        ids = cand.chunks
        fused = fuse(store.dense_scores(queries[i], ids), cand.lexical[ids], dense_weight)
        order = ids[np.argsort(-fused, kind="stable")]
        if mask is not None:
            order = order[mask[order]]
        return order[:10].tolist(), (time.perf_counter() - start) * 1000

    def exact(i: int, mask) -> list[int]:
        fused = fuse(store.dense_scores(queries[i], everything), lexical.scores(questions[i]), dense_weight)
        order = np.argsort(-fused, kind="stable")
        if mask is not None:
            order = order[mask[order]]
        return order[:10].tolist()

    results = {}
    for name, mask in (("all", None), ("filtered", allowed)):
        for i in range(min(10, len(questions))):  # warm-up
            fast(i, mask)
        times, recall = [], []
        for i in range(len(questions)):
            got, ms = fast(i, mask)
            times.append(ms)
        for i in range(len(questions)):
            want = exact(i, mask)
            recall.append(len(set(fast(i, mask)[0]) & set(want)) / len(want))
        times.sort()
        results[name] = (statistics.median(times), times[int(0.95 * (len(times) - 1))], float(np.mean(recall)))
        print(f"{name:>8}: search p50 {results[name][0]:.1f} ms, p95 {results[name][1]:.1f} ms "
              f"(candidates, exact rescoring, fusion; {len(questions)} queries), recall@10 {results[name][2]:.3f}",
              flush=True)
    rss, peak = rss_gb()
    print(f"memory: RSS {rss:.2f} GB now, peak {peak:.2f} GB (vectors memory-mapped from {folder})")
    print(f"chunks={len(chunks)} build_s={build_s:.1f} rss_gb={rss:.2f} p50_ms={results['all'][0]:.1f} "
          f"p95_ms={results['all'][1]:.1f} recall10={results['all'][2]:.3f} filtered_p50_ms={results['filtered'][0]:.1f} "
          f"filtered_recall10={results['filtered'][2]:.3f}")


if __name__ == "__main__":
    main()
