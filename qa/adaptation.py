"""Adapting the embedding model to the corpus: a short fine-tuning on pairs the reports themselves give.

The stock all-MiniLM-L6-v2 was trained on web text; staff ask in words the reports do not use. One
pass of contrastive training on two kinds of pair taught by the corpus, with no question written by
us, brings a question nearer the passage that answers it:

- a sentence and the rest of its chunk (the "inverse cloze task": which passage did this sentence
  come from?), the chunk's section path in front as it is indexed;
- a section heading and its text.

Each batch of 32 pairs is scored against itself (every other pair's passage is a negative), with the
loss and settings of sentence-transformers' MultipleNegativesRankingLoss (scale 20), AdamW at 2e-5,
10% warm-up then linear decay, one epoch, seeded. Measured on the eval set (docs/experiments.md):
hybrid hit@5 and answers rose on every question type but cross-report ones, most on lay wording.

The result is a folder like the bundled model's (same configuration and tokenizer, new
`model.safetensors`), kept in a cache keyed by the base weights, the recipe and the pairs, with its
sha256 recorded and checked on reuse. The index stores its ONNX export, which questions and documents
are encoded with, and lists it with its sha256 like every other index file (see `qa.index`).

    pairs = training_pairs(chunks)
    folder, record = adapted_model(pairs, cache_root)   # trains, or reuses a verified earlier run
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from qa.checksums import sha256_file
from qa.chunks import Chunk
from qa.errors import ModelError
from qa.sentences import split_sentences

log = logging.getLogger(__name__)

#: How the model is adapted; part of the cache key, and recorded in the index manifest.
RECIPE = {"pairs": "sentence -> rest of its chunk; heading -> section", "loss": "in-batch negatives, scale 20",
          "epochs": 1, "learning_rate": 2e-5, "batch_size": 32, "warmup": 0.1, "seed": 0, "max_pairs": 2048}
#: Fewer pairs than this (two batches) teach nothing reliable: the stock model is used.
MIN_PAIRS = 2 * RECIPE["batch_size"]
_MIN_SENTENCE_WORDS = 6
_MIN_CONTEXT_WORDS = 15
_RECORD = "adaptation.json"
WEIGHTS = "model.safetensors"


def training_pairs(chunks: Iterable[Chunk]) -> list[tuple[str, str]]:
    """(query-like text, passage) pairs from the chunks: each sentence of six words or more with the
    rest of its chunk (at least 15 words), and each section heading with its text. Duplicate chunks
    count once; at most `RECIPE["max_pairs"]`, chosen with a fixed seed."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for chunk in chunks:
        if chunk.text in seen:
            continue
        seen.add(chunk.text)
        for start, end in split_sentences(chunk.text):
            sentence = chunk.text[start:end]
            rest = (chunk.text[:start] + chunk.text[end:]).strip()
            if len(sentence.split()) >= _MIN_SENTENCE_WORDS and len(rest.split()) >= _MIN_CONTEXT_WORDS:
                pairs.append((sentence, f"{chunk.heading_text}\n{rest}"))
        if len(chunk.section_path) > 1:
            pairs.append((chunk.section_path[-1], chunk.text))
    if len(pairs) > RECIPE["max_pairs"]:
        pairs = random.Random(RECIPE["seed"]).sample(pairs, RECIPE["max_pairs"])
    return pairs


def cache_key(base_sha256: str, pairs: list[tuple[str, str]]) -> str:
    """What an adapted model depends on: the base weights, the recipe, and the pairs in order."""
    digest = hashlib.sha256(base_sha256.encode() + json.dumps(RECIPE, sort_keys=True).encode())
    for query, passage in pairs:
        digest.update(f"{query}\0{passage}\0".encode())
    return digest.hexdigest()[:24]


def adapted_model(pairs: list[tuple[str, str]], cache_root: Path, base_folder: Path | None = None,
                  base_sha256: str | None = None, progress: bool = False) -> tuple[Path, dict]:
    """The folder of the base model adapted on `pairs`, and its record (recipe, pairs, weights'
    sha256, training time): reused from `cache_root` if an earlier run left one whose weights still
    match their recorded sha256, else trained now and kept there.
    Raises ModelError when there are fewer than `MIN_PAIRS` pairs."""
    from qa.embeddings import DEFAULT_MODEL_SHA256, verified_bundled_model

    if len(pairs) < MIN_PAIRS:
        raise ModelError(f"{len(pairs)} training pairs are too few to adapt the model (at least {MIN_PAIRS})")
    if base_folder is None:
        base_folder, base_sha256 = verified_bundled_model(), DEFAULT_MODEL_SHA256
    folder = Path(cache_root) / f"adapted-{cache_key(base_sha256 or '', pairs)}"
    record = verified_weights(folder)
    if record is not None:
        log.info("reusing the adapted model in %s", folder)
        return folder, record
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=cache_root))
    try:
        shutil.copytree(base_folder, staging, dirs_exist_ok=True)
        (staging / "pytorch_model.bin").unlink(missing_ok=True)
        seconds = _train(staging, pairs, progress)
        record = {"recipe": RECIPE, "pairs": len(pairs), "base_sha256": base_sha256,
                  "weights_sha256": sha256_file(staging / WEIGHTS), "train_seconds": round(seconds, 1)}
        (staging / _RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder, record


def verified_weights(folder: Path) -> dict | None:
    """The record of the adapted model in `folder` if its weights match the recorded sha256, else None."""
    try:
        record = json.loads((Path(folder) / _RECORD).read_text(encoding="utf-8"))
        if sha256_file(Path(folder) / WEIGHTS) == record["weights_sha256"]:
            return record
        log.warning("the adapted model in %s does not match its checksum: adapting again", folder)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _train(folder: Path, pairs: list[tuple[str, str]], progress: bool) -> float:
    """Fine-tune the model in `folder` on `pairs` in place (its `model.safetensors` is rewritten), on
    every core; the seconds it took."""
    import torch

    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # a build may have set one thread for queries
    try:
        loss = _fine_tune(folder, pairs, progress)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - started
    log.info("adapted the embedding model on %d pairs in %.0f s (last loss %.3f)", len(pairs), seconds, loss)
    return seconds


def _fine_tune(folder: Path, pairs: list[tuple[str, str]], progress: bool) -> float:
    """The training loop of `RECIPE`; the last batch's loss."""
    import torch
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer

    from qa.embeddings import _no_weights_bar

    torch.manual_seed(RECIPE["seed"])
    with _no_weights_bar():
        model = SentenceTransformer(str(folder), device="cpu")
    model.train()
    size = RECIPE["batch_size"]
    order = list(pairs)
    random.Random(RECIPE["seed"]).shuffle(order)
    batches = [order[i:i + size] for i in range(0, len(order) - size + 1, size)]
    steps = len(batches) * RECIPE["epochs"]
    warmup = max(1.0, RECIPE["warmup"] * steps)
    optimiser = torch.optim.AdamW(model.parameters(), lr=RECIPE["learning_rate"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps))
    prepare = getattr(model, "preprocess", None) or model.tokenize

    def embed(texts: list[str]):
        out = model(prepare(texts))["sentence_embedding"]
        return torch.nn.functional.normalize(out, dim=-1)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="Adapting the model", unit="batch")
    for _ in range(RECIPE["epochs"]):
        for batch in batches:
            queries, passages = zip(*batch)
            scores = embed(list(queries)) @ embed(list(passages)).T * 20.0
            loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    model.eval()
    weights = {k: v.detach().contiguous() for k, v in model[0].auto_model.state_dict().items()}
    save_file(weights, str(folder / WEIGHTS), metadata={"format": "pt"})
    return loss.item()
