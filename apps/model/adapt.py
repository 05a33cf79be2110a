"""`baton model train --from-store/--from-jsonl`: the shipped classifier adapted to a deployment's labels.

Retraining from scratch takes minutes; a deployment's labels are a few dozen messages. So the shipped
feature pipeline and every head stay as they are, and only the intent heads the labels speak about get a
correction: for each such intent, weights `delta` over the same features (n-grams, embedding, rules,
sentiment) added to the parent's logit, fitted by minimising

    sum_i w_i * logloss(y_i, sigmoid(a * (z_i + x_i . delta + beta) + c)) + L2 / 2 * |(delta, beta)|^2

where z_i is the parent's logit, (a, c) its Platt calibration (kept, with its threshold), the rows are the
deployment's labelled messages (weight `DEPLOYMENT_WEIGHT`) and a fixed, seeded sample of the base
training rows (`ANCHORS`, weight 1) that holds the rest of the model where it was; the penalty pulls the
weights to the parent's. When a labelled message is still decided against its label, the fit is repeated
with the deployment rows weighted four times more (at most `ROUNDS` times). The result is a complete model
folder (the parent's weights plus the correction, the same format `Classifier.load` checks), under a new
version, in the models folder; the shipped weights are never written. Deterministic: a fixed sample, a
deterministic solver from zero, no timestamps. About 10 s on one core.

A parent with a second stage (baton.classifier.model) passes it on unchanged: the correction is to the
first stage, and a labelled message counts as fixed only when the first stage alone and the mean of both
stages decide it the same way, so it holds whether or not the message falls in the second stage's band.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from baton.apps.model.deployment import DeploymentRow, fingerprint
from baton.apps.model.train import featurise, training_rows
from baton.classifier.embedding import MINILM_TABLE, MINILM_TOKENIZER
from baton.classifier.features import BUCKETS
from baton.classifier.model import META_FILE, MODEL_FILE, WEIGHTS_DIR, Classifier, content_digest

SEED = 20261130
ANCHORS = 3000
DEPLOYMENT_WEIGHT = 20.0
L2 = 1.0
ROUNDS = 3


def _fit(x: Any, z: np.ndarray, y: np.ndarray, w: np.ndarray, scale: float, shift: float) -> tuple[np.ndarray, float]:
    """(delta over x's columns, beta) minimising the weighted log loss around the parent's logits z."""
    from scipy.optimize import minimize

    n_cols = x.shape[1]

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        delta, beta = params[:n_cols], params[n_cols]
        logit = scale * (z + x @ delta + beta) + shift
        p = 1.0 / (1.0 + np.exp(-np.clip(logit, -40, 40)))
        eps = 1e-12
        value = -float(np.sum(w * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))))
        value += 0.5 * L2 * float(params @ params)
        residual = w * (p - y) * scale
        gradient = np.empty_like(params)
        gradient[:n_cols] = x.T @ residual + L2 * delta
        gradient[n_cols] = float(residual.sum()) + L2 * beta
        return value, gradient

    result = minimize(loss, np.zeros(n_cols + 1), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return result.x[:n_cols], float(result.x[n_cols])


def _probability(logit: np.ndarray, scale: float, shift: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(scale * logit + shift, -40, 40)))


def adapt(
    rows: Sequence[DeploymentRow],
    models_dir: Path,
    parent_dir: Path = WEIGHTS_DIR,
    root: Path | None = None,
    log: object = sys.stderr,
) -> dict[str, Any]:
    """Write the adapted model into `models_dir/<version>/` and return its manifest."""
    from scipy import sparse

    def say(text: str) -> None:
        print(text, file=log, flush=True)  # type: ignore[call-overload]

    if not rows:
        raise ValueError("no labelled messages to adapt the model with")
    if models_dir.resolve() == WEIGHTS_DIR.resolve() or WEIGHTS_DIR.resolve() in models_dir.resolve().parents:
        raise ValueError(
            f"--models-dir: {models_dir} is the shipped weights' folder; the shipped model is never written"
        )
    parent = Classifier.load(parent_dir)
    parent_meta = json.loads((parent_dir / META_FILE).read_text(encoding="utf-8"))
    base = [r for r in training_rows(root) if r.topic is not None]
    pick = np.sort(np.random.default_rng(SEED).choice(len(base), min(ANCHORS, len(base)), replace=False))
    anchors = [base[int(i)] for i in pick]
    texts = [a.text for a in anchors] + [r.text for r in rows]
    x_all = featurise(texts, parent.embedding).stacked().tocsr()  # type: ignore[attr-defined]
    z_all = parent.logits(texts).astype(np.float64)
    n_anchor = len(anchors)
    say(f"deployment rows: {len(rows)}; base rows sampled: {n_anchor} of {len(base)}")

    # With a second stage, a labelled message may be decided by the mean of both stages (when the first is
    # unsure of it) or by the first alone; the correction must hold either way (`_decided`).
    second = parent.second
    second_p = (
        {i: np.array([s.probabilities[i] for s in second._score_whole([r.text for r in rows])]) for i in parent.intents}
        if second is not None
        else {}
    )

    hash_weights = parent.hash_weights.copy()
    dense_weights = parent.dense_weights.copy()
    bias = parent.bias.copy()
    figures: dict[str, Any] = {}
    for intent in parent.intents:
        mine = [j for j, r in enumerate(rows) if r.intent == intent]
        if not mine:
            continue
        k = parent.intents.index(intent)
        cal = parent.calibration[intent]
        index = np.array([*range(n_anchor), *(n_anchor + j for j in mine)])
        y = np.array(
            [1.0 if intent in a.intents else 0.0 for a in anchors] + [1.0 if rows[j].present else 0.0 for j in mine]
        )
        x = x_all[index]
        columns = np.unique(x.indices)  # only the features these rows have can move
        x = sparse.csr_matrix(x[:, columns])
        z = z_all[index, k]
        both = (
            (second_p[intent][mine], (cal.threshold + second.calibration[intent].threshold) / 2)
            if second is not None
            else None
        )
        before = _decided(_probability(z, cal.scale, cal.shift), cal.threshold, n_anchor, both)
        weight = DEPLOYMENT_WEIGHT
        for _ in range(ROUNDS):
            w = np.concatenate([np.ones(n_anchor), np.full(len(mine), weight)])
            delta, beta = _fit(x, z, y, w, cal.scale, cal.shift)
            after = _decided(_probability(z + x @ delta + beta, cal.scale, cal.shift), cal.threshold, n_anchor, both)
            if np.all(after[n_anchor:] == (y[n_anchor:] == 1)):
                break
            weight *= 4
        sparse_part = columns < BUCKETS
        hash_weights[columns[sparse_part], k] += delta[sparse_part].astype(np.float32)
        dense_weights[columns[~sparse_part] - BUCKETS, k] += delta[~sparse_part].astype(np.float32)
        bias[k] += np.float32(beta)
        labelled = y[n_anchor:] == 1
        figures[intent.value] = {
            "rows": len(mine),
            "weight": weight,
            "deployment_correct_before": int(np.sum(before[n_anchor:] == labelled)),
            "deployment_correct_after": int(np.sum(after[n_anchor:] == labelled)),
            "base_sample_changed": int(np.sum(before[:n_anchor] != after[:n_anchor])),
        }
        say(f"  {intent.value:20s} {figures[intent.value]}")

    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".adapt-", dir=models_dir) as scratch:
        folder = Path(scratch)
        model_path = folder / MODEL_FILE
        np.savez_compressed(
            model_path, hash_weights=hash_weights.astype(np.float16), dense_weights=dense_weights, bias=bias
        )
        weights_sha = hashlib.sha256(model_path.read_bytes()).hexdigest()
        deployment = fingerprint(rows)
        version = "baton-clf-" + hashlib.sha256((parent.version + deployment + weights_sha).encode()).hexdigest()[:10]
        # The second stage is the parent's, unchanged (the correction is fitted so that it holds with it).
        dropped = ("content_sha256", "deployment", "first_stage_version")
        meta = {k: v for k, v in parent_meta.items() if k not in dropped}
        meta |= {
            "version": version,
            "sha256": weights_sha,
            "parent_version": parent.version,
            "deployment": {
                "rows": len(rows),
                "rows_sha256": deployment,
                "by_origin": {o: sum(1 for r in rows if r.origin == o) for o in sorted({r.origin for r in rows})},
                "base_sample": {"rows": n_anchor, "seed": SEED},
                "l2": L2,
                "intents": figures,
            },
        }
        meta["content_sha256"] = content_digest(meta)
        (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        for name in (MINILM_TABLE, MINILM_TOKENIZER):
            if (parent_dir / name).is_file():
                _link_or_copy(parent_dir / name, folder / name)
        stage = parent_meta.get("second_stage")
        if stage:
            (folder / stage["folder"]).mkdir()
            for name in (META_FILE, MODEL_FILE):
                _link_or_copy(parent_dir / stage["folder"] / name, folder / stage["folder"] / name)
        target = models_dir / version
        if target.exists():
            shutil.rmtree(target)  # the same rows on the same parent: the same model, written again
        os.replace(folder, target)
        folder.mkdir()  # the temporary directory's cleanup expects it
    say(f"wrote {target}, version {version} (parent {parent.version})")
    return meta


def _decided(
    p: np.ndarray, threshold: float, n_anchor: int, both: tuple[np.ndarray, float] | None
) -> np.ndarray:
    """Each row's decision, 1.0 present and 0.0 absent. With a second stage, a labelled (deployment) row
    may be read by the first stage alone or by the mean of both: where the two readings disagree it is NaN,
    which equals no label, so the fit goes on until the decision holds whichever way the model reads it."""
    decided = (p >= threshold).astype(np.float64)
    if both is None:
        return decided
    second_p, mean_threshold = both
    alone = decided[n_anchor:]
    mean = ((p[n_anchor:] + second_p) / 2 >= mean_threshold).astype(np.float64)
    decided[n_anchor:] = np.where(alone == mean, alone, np.nan)
    return decided


def _link_or_copy(source: Path, target: Path) -> None:
    """The embedding's files are the parent's, byte for byte: a hard link where the file system allows."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
