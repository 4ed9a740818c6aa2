"""Build-time embedding throughput (texts per second) of each way to run all-MiniLM-L6-v2 here.

    python bench/embed_throughput.py [--runs 3] [--texts N]

Embeds the texts a build embeds (every chunk and every sentence of the corpus, in corpus order)
with: sentence-transformers under torch as the build used to (1 thread, `QA_TORCH_THREADS`'s
default), torch on every core, ONNX Runtime float on every core with batches by length, and ONNX
Runtime int8. Prints the median texts/s (wall) of `--runs` round-robin runs, the speed-up over the
first row, texts per CPU-second (all threads; less disturbed by other jobs, but blind to the gain
of a second core), and how close each one's vectors are to torch's (smallest and mean cosine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _texts(limit: int | None) -> list[str]:
    from qa.chunks import Chunker, mark_duplicates
    from qa.config import Settings
    from qa.corpus import load_corpus
    from qa.index import SentenceTable
    from qa.onnx_encoder import ModelIdentity, OnnxEncoder

    settings = Settings.from_env()
    identity = ModelIdentity.of_default_model()
    from qa.embeddings import bundled_model_dir

    counter = OnnxEncoder(Path("unused"), bundled_model_dir() / "tokenizer.json", identity)
    docs = load_corpus(settings.corpus_dir)
    chunker = Chunker(counter.count_tokens, identity.max_tokens, settings.chunk_tokens,
                      settings.chunk_overlap_tokens, settings.contextual_chunks)
    chunks = mark_duplicates([c for d in docs for c in chunker.chunk_document(d)], [d.doc_id for d in docs])
    texts = [c.indexed_text(settings.contextual_chunks) for c in chunks] + SentenceTable.of(chunks).texts(chunks)
    return texts[:limit] if limit else texts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--texts", type=int, default=0, help="embed only the first N texts (default all)")
    args = p.parse_args()

    import torch

    from qa.embeddings import Encoder
    from qa.onnx_encoder import ONNX_FILE, ONNX_INT8_FILE, TOKENIZER_FILE, ModelIdentity, OnnxEncoder, export_default_model

    texts = _texts(args.texts or None)
    cores = os.cpu_count() or 1
    encoder = Encoder.load(threads=1)
    identity = ModelIdentity.of_default_model()
    with tempfile.TemporaryDirectory() as tmp:
        export_default_model(Path(tmp), encoder, quantize=True)
        onnx_float = OnnxEncoder(Path(tmp) / ONNX_FILE, Path(tmp) / TOKENIZER_FILE, identity)
        onnx_int8 = OnnxEncoder(Path(tmp) / ONNX_FILE, Path(tmp) / TOKENIZER_FILE, identity,
                                document_model_path=Path(tmp) / ONNX_INT8_FILE)

        def torch_with(threads: int):
            def run():
                torch.set_num_threads(threads)
                return encoder.encode_documents(texts)
            return run

        ways = [("sentence-transformers, torch 1 thread (old build)", torch_with(1)),
                (f"sentence-transformers, torch {cores} threads", torch_with(cores)),
                (f"ONNX Runtime float, {cores} threads, by length", lambda: onnx_float.encode_documents(texts)),
                (f"ONNX Runtime int8, {cores} threads, by length", lambda: onnx_int8.encode_documents(texts))]
        # round robin, so that each way meets the same load from other jobs on a shared machine
        rates: dict[str, list[float]] = {name: [] for name, _ in ways}
        cpu_rates: dict[str, list[float]] = {name: [] for name, _ in ways}
        vectors: dict[str, np.ndarray] = {}
        for _ in range(args.runs):
            for name, run in ways:
                t, c = time.perf_counter(), time.process_time()
                vectors[name] = run()
                rates[name].append(len(texts) / (time.perf_counter() - t))
                cpu_rates[name].append(len(texts) / (time.process_time() - c))
        reference = vectors[ways[0][0]]
        rows = [(name, statistics.median(rates[name]), statistics.median(cpu_rates[name]),
                 float((vectors[name] * reference).sum(1).min()), float((vectors[name] * reference).sum(1).mean()))
                for name, _ in ways]
        torch.set_num_threads(1)

    print(f"{len(texts)} texts (chunks and sentences of the corpus), median of {args.runs} round-robin runs")
    print(f"{'encoder':<52} {'texts/s':>8} {'speed-up':>9} {'texts/cpu-s':>12} {'cosine to torch: min':>21} {'mean':>9}")
    for name, rate, cpu_rate, low, mean in rows:
        print(f"{name:<52} {rate:>8.1f} {rate / rows[0][1]:>8.2f}x {cpu_rate:>12.1f} {low:>21.6f} {mean:>9.6f}")

if __name__ == "__main__":
    main()
