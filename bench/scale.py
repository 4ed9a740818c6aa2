"""Search at national scale: synthetic chunks shaped like the real ones, fast path against exact.

    python bench/scale.py --chunks 100000 [--queries 199] [--cache-dir /tmp/qa-scale] [--synthesise-only]

Synthetic corpus (built once per N and cached as .npy files): each synthetic chunk starts from a
random real chunk, its vector is that chunk's vector plus Gaussian noise with the real vectors'
covariance (renormalised), its sentences are as many as a real chunk has (drawn from the real
distribution) with vectors offset from the chunk's as real sentences are from theirs, and its words
are drawn half from the real chunk and half from the corpus's word frequencies, with the real
chunks' lengths. Chunks belong to 100 "councils" (1% each), the filter measured below.

Prints the build time of the FAISS backend (BM25, HNSW, IVF-SQ8, and the 8-bit copy of the sentence
vectors that candidates are first scored from; encoding excluded: the vectors are made, not encoded),
resident memory after the searches (anonymous, and pages of the memory-mapped float vectors; the
build's pages are dropped first, so the figure is what searching keeps), search
p50/p95 wall and p50 CPU per query excluding query encoding (candidates, exact rescoring, fusion,
top 10; one BLAS and OpenMP thread, as one query per core on a server; BM25 in a helper thread
when `QA_SEARCH_THREADS` (default 2) allows it: see qa/backends/faiss_ann.py; with more than one,
the queries are timed again alternating with one thread query by query), and recall@10 of the fast
path against the exact path (every chunk scored and fused), without a filter, with the 1% council
filter and with a 10% filter (the backend chooses exact scans or ANN with the filter's bitmap by
the size of the selection: see qa/backends/faiss_ann.py).
The queries are the eval set's questions encoded once with the real model. The exact path's top
10 is computed after the timings, in one pass over the vectors for all queries. Last line:
key=value pairs (`filtered_*` is the 1% filter; `alt_*` the alternating timings).
"""

from __future__ import annotations

import argparse
import json
import os
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
    p.add_argument("--synthesise-only", action="store_true",
                   help="write the cached synthetic corpus and stop (e.g. ahead of a long 1M run)")
    args = p.parse_args()

    from qa import Retriever, Settings
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
    if args.synthesise_only:
        return

    chunks = np.load(folder / "chunks.npy", mmap_mode="r")
    sentences = np.load(folder / "sentences.npy", mmap_mode="r")
    sentence_chunk = np.load(folder / "sentence_chunk.npy")
    council = np.load(folder / "council.npy")
    texts = [json.loads(line) for line in (folder / "texts.jsonl").open(encoding="utf-8")]
    print(f"{len(chunks):,} chunks, {len(sentences):,} sentences", flush=True)

    t = time.perf_counter()
    store = VectorStore(chunks, sentences, sentence_chunk)
    lexical = LexicalIndex.build(texts)
    del texts
    bm25_s = time.perf_counter() - t
    backend = FaissAnnBackend.build(store, lexical, threads=Settings.from_env().search_threads)
    build_s = time.perf_counter() - t
    print(f"build (excluding encoding): {build_s:.1f} s (BM25 {bm25_s:.1f} s, HNSW + IVF-SQ8 + 8-bit sentence codes "
          f"{build_s - bm25_s:.1f} s); search threads {backend.threads}", flush=True)
    # The build read every vector through the memory maps: drop those pages from this process (they
    # stay in the page cache), so that RSS below counts what searching keeps resident.
    release(chunks)
    release(sentences)
    store = backend.store
    dense_weight = 0.4
    filters = {"all": None, "filtered": council == 0, "filtered10": council < 10}

    def fast(i: int, mask, using=backend) -> list[int]:
        cand = using.candidates(queries[i:i + 1], questions[i:i + 1], mask, "hybrid")[0]
        ids = cand.chunks
        lex = cand.chunk_lexical if cand.chunk_lexical is not None else cand.lexical[ids]
        fused = fuse(store.dense_scores(queries[i], ids), lex, dense_weight)
        order = ids[np.argsort(-fused, kind="stable")]
        if mask is not None:
            order = order[mask[order]]
        return order[:10].tolist()

    # The same indexes searched with one thread, timed alternating with `backend` query by query: a
    # fair before/after on a machine whose speed drifts between runs (at 1M chunks the same code gave
    # p50 17.2 ms and 32.8 ms in two runs 40 minutes apart)
    one = FaissAnnBackend(store, lexical, backend.hnsw, backend.ivf, threads=1) if backend.threads > 1 else None
    got, timing, alternating = {}, {}, {}
    single = one_thread()  # one query per core, as a server would run them; no BLAS threads waking per query
    for name, mask in filters.items():
        for i in range(min(10, len(questions))):  # warm-up
            fast(i, mask)
        wall, cpu, got[name] = [], [], []
        for i in range(len(questions)):
            w, c = time.perf_counter(), time.process_time()
            got[name].append(fast(i, mask))
            wall.append((time.perf_counter() - w) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        wall.sort()
        timing[name] = (statistics.median(wall), wall[int(0.95 * (len(wall) - 1))], statistics.median(cpu))
        if one is not None:
            pair: dict[int, list[float]] = {backend.threads: [], 1: []}
            for i in range(len(questions)):
                for using in ((backend, one) if i % 2 else (one, backend)):
                    w = time.perf_counter()
                    fast(i, mask, using)
                    pair[using.threads].append((time.perf_counter() - w) * 1000)
            alternating[name] = {k: (statistics.median(v), sorted(v)[int(0.95 * (len(v) - 1))]) for k, v in pair.items()}
    single()
    rss, peak = rss_gb()
    anon, file = rss_parts_gb()
    print(f"memory: RSS {rss:.2f} GB after the searches ({anon:.2f} GB anonymous, {file:.2f} GB of memory-mapped "
          f"vector pages), peak {peak:.2f} GB during the build", flush=True)

    want = exact_top10(folder, queries, questions, lexical, dense_weight, filters)
    results = {}
    for name, mask in filters.items():
        recall = float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(got[name], want[name])]))
        results[name] = (*timing[name], recall)
        share = "" if mask is None else f" ({mask.mean():.0%} of chunks)"
        print(f"{name:>10}{share}: search p50 {results[name][0]:.1f} ms, p95 {results[name][1]:.1f} ms wall, "
              f"p50 {results[name][2]:.1f} ms CPU (candidates, exact rescoring, fusion; {len(questions)} queries), "
              f"recall@10 {recall:.3f}", flush=True)
        if name in alternating:
            print(f"{'':>10}  again, alternating query by query: " + ", ".join(
                f"{k} thread{'s' if k > 1 else ''} p50 {a:.1f} ms, p95 {b:.1f} ms" for k, (a, b) in alternating[name].items()),
                flush=True)
    pairs = "" if "all" not in alternating else (
        f" alt_p50_ms={alternating['all'][backend.threads][0]:.1f} alt_one_thread_p50_ms={alternating['all'][1][0]:.1f}")
    print(f"chunks={len(chunks)} build_s={build_s:.1f} rss_gb={rss:.2f} p50_ms={results['all'][0]:.1f} "
          f"p95_ms={results['all'][1]:.1f} recall10={results['all'][3]:.3f} filtered_p50_ms={results['filtered'][0]:.1f} "
          f"filtered_recall10={results['filtered'][3]:.3f}{pairs}")


def one_thread():
    """Limit BLAS and FAISS to one thread; returns a function that restores them.

    On a shared 2-core machine a second BLAS or OpenMP thread only waits for the busy core: a
    1,400 x 384 product took 10 ms instead of 0.05 ms when it did."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(1)
    except ImportError:  # installed with scikit-learn; without it BLAS keeps its threads
        limits = None

    def restore() -> None:
        faiss.omp_set_num_threads(threads)
        if limits is not None:
            limits.restore_original_limits()
    return restore


def release(array: np.ndarray) -> None:
    """Unmap a memory map's resident pages from this process (they are read back from the file when next touched)."""
    import mmap

    m = getattr(array, "_mmap", None)
    if m is not None and hasattr(m, "madvise"):
        m.madvise(mmap.MADV_DONTNEED)


def rss_parts_gb() -> tuple[float, float]:
    """(anonymous, file-backed) resident memory of this process in GB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return (int(fields["RssAnon"].split()[0]) / 1e6, int(fields["RssFile"].split()[0]) / 1e6)


def exact_top10(folder: Path, queries: np.ndarray, questions: list[str], lexical, dense_weight: float,
                filters: dict) -> dict[str, list[list[int]]]:
    """The exact path's top 10 of every query under each filter: every chunk scored and fused.

    One pass over the vectors for all queries, read with ordinary file reads in blocks (the page
    cache, not this process, holds them), instead of a pass over 7 GB per query at 1M chunks.
    """
    from qa.retriever import fuse

    def blocks(name: str, rows: list[tuple[int, int]]):
        array = np.load(folder / name, mmap_mode="r")
        offset, d = array.offset, array.shape[1]
        with open(folder / name, "rb") as fh:
            for start, end in rows:
                fh.seek(offset + start * d * 4)
                yield np.fromfile(fh, dtype=np.float32, count=(end - start) * d).reshape(end - start, d)

    sentence_chunk = np.load(folder / "sentence_chunk.npy")
    n = int(np.load(folder / "council.npy", mmap_mode="r").shape[0])
    step = 50_000
    chunk_sims = np.empty((len(queries), n), dtype=np.float32)
    for (start, end), block in zip(spans := [(a, min(n, a + step)) for a in range(0, n, step)], blocks("chunks.npy", spans)):
        chunk_sims[:, start:end] = queries @ block.T
    best = np.full((len(queries), n), -1.0, dtype=np.float32)
    bounds = np.searchsorted(sentence_chunk, [a for a, _ in spans] + [n])
    rows = [(int(bounds[j]), int(bounds[j + 1])) for j in range(len(spans))]
    for (start, end), block in zip(rows, blocks("sentences.npy", rows)):
        if end == start:
            continue
        owner = sentence_chunk[start:end]
        starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
        best[:, owner[starts]] = np.maximum.reduceat(queries @ block.T, starts, axis=1)
    dense = np.where(best > -1.0, 0.5 * chunk_sims + 0.5 * best, chunk_sims)
    del chunk_sims, best
    out: dict[str, list[list[int]]] = {name: [] for name in filters}
    for i, q in enumerate(questions):
        order = np.argsort(-fuse(dense[i], lexical.scores(q), dense_weight), kind="stable")
        for name, mask in filters.items():
            kept = order if mask is None else order[mask[order]]
            out[name].append(kept[:10].tolist())
    return out


if __name__ == "__main__":
    main()
