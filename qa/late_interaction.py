"""Token-level reranking ("late interaction", as in ColBERT) over the model's own word-piece vectors.

A chunk's single vector is the mean of its word pieces; a question in lay words ("can deaf people
get a signer?") shares little of that mean with the passage that answers it ("BSL and other
interpreters"), while its rarer word pieces each find a close match among the passage's own. So the
hybrid ranking's best `depth` chunks are reordered by a mix of their hybrid score and, for each
word piece of the question, its best cosine among the chunk's word pieces (MaxSim), averaged with
the word piece's IDF over the chunks as weight. Punctuation and the special tokens weigh nothing,
as in ColBERT.

On the question set (`python -m eval`) this raised hybrid hit@5 from 0.820 to 0.861 and MRR@10
from 0.672 to 0.743: on the questions in lay words from 0.467 to 0.578, on paraphrases from 0.881
to 0.966, with facts in the reports' words level at 0.982. The weight (0.8) and depth (30) are
the best of a grid on the dev questions (docs/experiments.md).

The word-piece vectors come from the same model run that embeds each chunk at build time (the ONNX
export's second output) and are stored with the index, reduced to their 192 principal directions
in 8-bit codes: 192 bytes a word piece, 6.8 MB for the five reports. Each chunk's codes are stored
dimension by dimension (a DIMENSIONS x pieces block), the layout in which the product with the
question's pieces runs fastest. Questions are encoded once for both their vector and their word
pieces.

    table = TokenTable.build(pieces, vocabulary, 384)  # pieces: one TokenVectors per chunk
    table.scores(question_pieces, np.array([4, 8, 15]))  # MaxSim of three chunks
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

TOKENS = "tokens.npy"
TOKEN_OFFSETS = "token_offsets.npy"
TOKEN_WEIGHTS = "token_weights.npy"
TOKEN_PROJECTION = "token_projection.npy"
TOKEN_QUANTISER = "token_quantiser.npy"
FILES = (TOKENS, TOKEN_OFFSETS, TOKEN_WEIGHTS, TOKEN_PROJECTION, TOKEN_QUANTISER)
#: Word-piece vectors are projected on their top principal directions before they are stored. On the
#: question set (`python -m eval`, builds of each) 192 of MiniLM's 384 kept hybrid hit@5 / MRR@10 at
#: 0.865 / 0.742 and fact answers at 0.956 (all 384: 0.865 / 0.741 / 0.956; 128: 0.857 / 0.741 /
#: 0.947), while the MaxSim of 30 chunks took 1.07 ms against 1.69 (128: 0.82; medians, same run).
DIMENSIONS = 192


class TokenVectors(NamedTuple):
    """A text's word pieces (tokenizer ids, without [CLS] and [SEP]) and their normalised vectors."""

    ids: np.ndarray  # int32 (n,)
    vectors: np.ndarray  # float32 (n, dimension)


@dataclass
class TokenTable:
    """Every chunk's word-piece vectors, and the weight of each vocabulary entry in a question.

    A vector is kept as its projection on the word pieces' top `DIMENSIONS` principal directions,
    normalised again, in 8-bit codes (each dimension's range cut into 256 steps): 192 bytes a word
    piece, 6.8 MB for the five reports. Chunk i's n pieces are the block
    `codes[offsets[i] * DIMENSIONS : offsets[i + 1] * DIMENSIONS]`, read as (DIMENSIONS, n) (`block`).
    """

    codes: np.ndarray  # uint8 (pieces * DIMENSIONS,): each chunk's block, dimension by dimension
    offsets: np.ndarray  # int64 (chunks + 1,)
    weights: np.ndarray  # float32 (vocabulary,): IDF over the chunks, 0 for punctuation and special tokens
    projection: np.ndarray  # float32 (dimension, DIMENSIONS): the principal directions
    quantiser: np.ndarray  # float32 (2, DIMENSIONS): each dimension's lowest value and step

    @classmethod
    def build(cls, pieces: list, vocabulary: list[str], dimension: int) -> TokenTable:
        """`pieces`: a TokenVectors per chunk, in index order; `vocabulary`: the tokenizer's pieces by id."""
        lengths = np.array([len(p.ids) for p in pieces], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        vectors = np.concatenate([p.vectors for p in pieces] or [np.zeros((0, dimension))]).astype(np.float32)
        # the directions that keep the most of the vectors: eigenvectors of their second moment
        # (the product in float32 takes 5 ms; with one side in float64, numpy took 0.6 s)
        _, directions = np.linalg.eigh((vectors.T @ vectors).astype(np.float64))
        projection = np.ascontiguousarray(directions[:, ::-1][:, :min(DIMENSIONS, dimension)], dtype=np.float32)
        projected = _project(vectors, projection)
        low = projected.min(axis=0) if len(projected) else np.zeros(projection.shape[1], np.float32)
        high = projected.max(axis=0) if len(projected) else np.ones(projection.shape[1], np.float32)
        step = np.maximum(high - low, 1e-9) / 256
        codes = np.clip(np.floor((projected - low) / step), 0, 255).astype(np.uint8)
        codes = np.concatenate([codes[a:b].T.ravel() for a, b in zip(offsets[:-1], offsets[1:])] or
                               [np.zeros(0, np.uint8)])
        df = np.zeros(len(vocabulary), dtype=np.float64)
        for p in pieces:
            df[np.unique(p.ids)] += 1
        n = len(pieces)
        weights = np.log1p((n - df + 0.5) / (df + 0.5))  # BM25's IDF; pieces the chunks never use get the most
        weights[[i for i, piece in enumerate(vocabulary) if _carries_no_word(piece)]] = 0.0
        return cls(codes, offsets, weights.astype(np.float32), projection, np.stack([low, step]).astype(np.float32))

    def save(self, folder: Path) -> None:
        for name, array in zip(FILES, (self.codes, self.offsets, self.weights, self.projection, self.quantiser)):
            np.save(Path(folder) / name, array, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, chunks: int, dimension: int) -> TokenTable:
        """Read a saved table (the codes memory-mapped); ValueError if its shapes do not fit the index."""
        # a plain array over the mapped file: slicing a np.memmap builds a memmap object per slice,
        # 0.1 ms of a search's 30 slices
        codes = np.load(Path(folder) / TOKENS, mmap_mode="r", allow_pickle=False).view(np.ndarray)
        offsets, weights, projection, quantiser = (np.load(Path(folder) / name, allow_pickle=False)
                                                   for name in FILES[1:])
        reduced = projection.shape[1] if projection.ndim == 2 else -1
        if (offsets.shape != (chunks + 1,) or codes.ndim != 1 or codes.dtype != np.uint8 or weights.ndim != 1
                or projection.shape != (dimension, reduced) or offsets[-1] * reduced != len(codes)
                or quantiser.shape != (2, reduced)):
            raise ValueError(f"word-piece table of shape {codes.shape} with {len(offsets) - 1} chunks, "
                             f"expected {chunks} chunks of dimension {dimension}")
        return cls(codes, offsets, weights, projection, quantiser)

    def block(self, chunk: int) -> np.ndarray:
        """Chunk `chunk`'s codes, (DIMENSIONS, pieces): a view of the stored array."""
        a, b = int(self.offsets[chunk]), int(self.offsets[chunk + 1])
        d = self.projection.shape[1]
        return self.codes[a * d:b * d].reshape(d, b - a)

    def best_matches(self, question: np.ndarray, chunk_ids: np.ndarray) -> np.ndarray:
        """For each of `question`'s vectors (pieces x model dimension, normalised), its best cosine
        among each chunk's stored vectors: (pieces, chunks). Every chunk must hold word pieces.

        Each code decodes to low + (code + 0.5) * step, per dimension; that is folded into the product,
        so only the codes are converted to floats (a third of the time of decoding them first). One
        product per chunk, on its block stored dimension by dimension: on 200 of the eval questions
        the MaxSim of 30 chunks took 0.56-0.58 ms against 0.86-0.89 ms with each chunk's pieces stored row
        by row (the same product, transposed), and 0.86-0.96 ms with the 30 chunks' rows gathered into one
        product (medians, same run); the codes stay memory-mapped.
        """
        q = _project(np.asarray(question, dtype=np.float32), self.projection)
        low, step = self.quantiser
        scaled = q * step
        best = np.empty((len(chunk_ids), len(q)), dtype=np.float32)
        for i, chunk in enumerate(np.asarray(chunk_ids).tolist()):
            np.max(scaled @ self.block(chunk).astype(np.float32), axis=1, out=best[i])
        return best.T + (q @ (low + 0.5 * step))[:, None]

    def weighted(self, question) -> tuple[np.ndarray, np.ndarray] | None:
        """`question`'s (TokenVectors) word pieces that carry weight: their vectors and IDF weights;
        None when none does (punctuation only)."""
        known = question.ids < len(self.weights)
        w = self.weights[question.ids[known]]
        keep = w > 0
        if not keep.any():
            return None
        return np.asarray(question.vectors, dtype=np.float32)[known][keep], w[keep]

    def scores(self, question, chunk_ids: np.ndarray) -> np.ndarray | None:
        """MaxSim of `question` (TokenVectors) with each chunk of `chunk_ids`; None when none of the
        question's word pieces carries weight (then there is nothing to rerank on)."""
        weighted = self.weighted(question)
        if not len(chunk_ids) or weighted is None:
            return None
        q, w = weighted
        starts, ends = self.offsets[chunk_ids], self.offsets[chunk_ids + 1]
        filled = ends > starts  # a chunk with no word pieces (empty text) keeps 0
        out = np.zeros(len(chunk_ids), dtype=np.float32)
        if filled.any():
            best = self.best_matches(q, np.asarray(chunk_ids)[filled])  # each piece's best match per chunk
            out[filled] = (w @ best) / w.sum()
        return out


def _carries_no_word(piece: str) -> bool:
    """Special tokens ([CLS], [PAD]...) and pieces of punctuation only."""
    core = piece[2:] if piece.startswith("##") else piece
    return (piece.startswith("[") and piece.endswith("]")) or all(ch in string.punctuation for ch in core)


def _project(vectors: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """`vectors` on the directions of `projection`, normalised again."""
    out = vectors @ projection
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
