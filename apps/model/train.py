"""`baton model train`: rebuild the shipped classifier from the committed training files.

Deterministic: the data is read in a fixed order, every solver is deterministic or seeded, and the
same files give the same weights. Steps:
1. Training rows: the sources' train split (apps/model/dataset.py) and the team's own examples
   (models/written/train.jsonl), never an evaluation file.
2. Features as at run time (baton.classifier.features and .embedding), so training and scoring cannot
   drift apart. The embedding is the MiniLM static distillation already in classifier/weights/ (built by
   `python -m baton.apps.model.export_encoder distill`); `train` only reads it.
3. One logistic regression per intent, its regularisation C chosen per intent from `C_GRID` by
   out-of-fold F1; its out-of-fold scores calibrate it (Platt) and choose its threshold (best F1, with a
   precision floor where the policy needs one); a softmax regression over topics with a temperature
   fitted out of fold; a logistic regression for frustration on graded ratings (soft labels: each rated
   row counts as frustrated with weight f and as calm with weight 1 - f), and beside it one logistic
   regression per GoEmotions frustration level and a gate (support message or not) that mixes them in.
4. The weights, as one linear layer, into classifier/weights/ with model.json, the manifest (version,
   calibration, the SHA-256 of every file the scores depend on, the training data's fingerprint and the
   out-of-fold figures).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from baton.apps.model.dataset import load_all, split
from baton.apps.model.examples import Example
from baton.apps.model.team import load_team_examples
from baton.apps.progress import Bar
from baton.classifier.embedding import MINILM_TABLE, MINILM_TOKENIZER, StaticEmbedding, sha256_of
from baton.classifier.encoder import NAME as ENCODER_NAME
from baton.classifier.encoder import PACKAGE_PIN, shared_encoder
from baton.classifier.encoder import SHA256 as ENCODER_SHA256
from baton.classifier.encoder_int8 import GRAPH_VERSION as INT8_GRAPH_VERSION
from baton.classifier.encoder_int8 import NAME as INT8_ENCODER_NAME
from baton.classifier.encoder_int8 import shared_int8_encoder
from baton.classifier.features import BUCKETS, DENSE_FEATURES, dense_features, hashed_ngrams
from baton.classifier.model import META_FILE, MODEL_FILE, WEIGHTS_DIR, Embedder, content_digest
from baton.contract.messages import Intent, Topic

SEED = 20261129
FOLDS = 3
WRITTEN_WEIGHT = 4.0  # the team's examples are few and aimed at exactly what Baton must catch
WRITTEN_BLOCK = 25  # consecutive team rows that share a fold (see _folds)
# Where a missed or a false escalation costs most, the threshold keeps precision at least this high.
PRECISION_FLOOR = {Intent.HUMAN_REQUEST: 0.9}
INTENTS: tuple[Intent, ...] = tuple(Intent)
TOPICS: tuple[Topic, ...] = tuple(Topic)
C_GRID = (4.0, 16.0, 64.0)  # per intent, the C with the best out-of-fold F1 (the smaller one on a tie)
# Out-of-fold F1 within this of the best counts as a tie: two builds of the same rows differ by a few 1e-4
# (liblinear's solution moves with the last bits of its inputs; billing_dispute at C = 64: 0.8909 and 0.8911),
# and resolved's C = 4 and 64 lie 0.0003 apart (0.7503, 0.7506): without it its C flipped between builds, and
# its threshold and band with it.
C_TIE = 0.0005
C_TOPIC = 4.0
C_FRUSTRATION = 3.0  # out-of-fold Spearman on the rated rows: 0.49 at C=1 (WordLlama), 0.53 at C=3 here
# Frustration's second reader, for text unlike a support chat: one head per GoEmotions frustration level
# (mapping.py), fitted on the comments alone, and a gate that tells a support message (every other source
# and the team's) from a comment. See `Classifier.frustration_of` and docs/classifier.md.
FRUSTRATION_LEVELS = (1.0, 0.75, 0.5, 0.25)
C_GATE = 1.0
MIN_POSITIVES = 10
EMBEDDINGS = ("minilm-static", "wordllama-256", "minilm-encoder-int8", "minilm-encoder", "none")
SECOND_STAGE_FOLDER = "encoder"
# The second stage reads messages with an intent's probability within this distance of its threshold.
# Chosen by measurement (docs/classifier.md): 0.2 gives most of the encoder's gain on the held-out rows
# while it reads about one support message in twenty.
SECOND_STAGE_BAND = 0.2


@dataclass
class Matrix:
    """Features of a list of texts: hashed n-grams (sparse) beside the dense part (embedding, rules)."""

    sparse: object  # scipy.sparse.csr_matrix
    dense: np.ndarray

    def stacked(self) -> object:
        from scipy import sparse

        return sparse.hstack([self.sparse, sparse.csr_matrix(self.dense)], format="csr")


def featurise(texts: Sequence[str], embedding: Embedder | None) -> Matrix:
    from scipy import sparse

    rows, cols, vals = [], [], []
    for row, text in enumerate(texts):
        indices, values = hashed_ngrams(text)
        rows.extend([row] * len(indices))
        cols.extend(indices.tolist())
        vals.extend(values.tolist())
    hashed = sparse.csr_matrix((vals, (rows, cols)), shape=(len(texts), BUCKETS), dtype=np.float32)
    dense_parts = []
    for start in range(0, len(texts), 2048):
        chunk = list(texts[start : start + 2048])
        parts = [embedding.embed(chunk)] if embedding is not None else []
        dense_parts.append(np.hstack([*parts, np.vstack([dense_features(t) for t in chunk])]))
    return Matrix(sparse=hashed, dense=np.vstack(dense_parts) if dense_parts else np.zeros((0, 0), np.float32))


def embedding_for(name: str | Embedder, source_dir: Path = WEIGHTS_DIR) -> tuple[Embedder | None, dict[str, object]]:
    """The embedding to train with and its manifest entry (for a static table: its files' SHA-256)."""
    if not isinstance(name, str):
        return name, {"kind": "external", "name": name.name}
    if name == "minilm-static":
        files = {f: sha256_of(source_dir / f) for f in (MINILM_TABLE, MINILM_TOKENIZER) if (source_dir / f).is_file()}
        if len(files) != 2:
            build = "python -m baton.apps.model.export_encoder distill"
            raise FileNotFoundError(f"{source_dir}: no {MINILM_TABLE} / {MINILM_TOKENIZER} (run {build})")
        return StaticEmbedding.minilm(source_dir, files), {"kind": name, "name": name, "files": files}
    if name == "wordllama-256":
        return StaticEmbedding.wordllama(), {"kind": name, "name": name}
    if name in (ENCODER_NAME, INT8_ENCODER_NAME):
        spec = {"kind": name, "name": name, "package": PACKAGE_PIN, "files": dict(ENCODER_SHA256)}
        if name == ENCODER_NAME:
            return shared_encoder(), spec
        return shared_int8_encoder(), spec | {"graph": INT8_GRAPH_VERSION}
    if name == "none":
        return None, {"kind": name, "name": name}
    raise ValueError(f"unknown embedding {name!r} (one of {', '.join(EMBEDDINGS)})")


def training_rows(root: Path | None = None) -> list[Example]:
    train, _ = split(load_all(root))
    return [*train, *load_team_examples(root)]


def fingerprint(rows: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row.text, row.source, list(row.intents), row.topic, row.frustration]).encode())
    return digest.hexdigest()


def _weights(rows: Sequence[Example]) -> np.ndarray:
    return np.array([WRITTEN_WEIGHT if r.source == "written" else 1.0 for r in rows], dtype=np.float64)


def _folds(rows: Sequence[Example]) -> np.ndarray:
    """Fold of each row: the sources' rows at random (seeded); the team's rows in blocks of consecutive lines.

    The team wrote its examples in runs of variations on one message, so a random split would score a
    message against its near-twins; blocks keep a run mostly within one fold (out-of-fold figures nearer
    to what unseen wording gets, for choosing C and thresholds).
    """
    folds = np.random.default_rng(SEED).permutation(len(rows)) % FOLDS
    written = [k for k, row in enumerate(rows) if row.source == "written"]
    for n, k in enumerate(written):
        folds[k] = (n // WRITTEN_BLOCK) % FOLDS
    return folds


def _binary_model(c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, solver="liblinear", max_iter=200, random_state=SEED)


def _f1_at_best(scores: np.ndarray, y: np.ndarray, precision_floor: float | None) -> float:
    scale, shift = platt(scores, y)
    return best_threshold(1 / (1 + np.exp(-(scale * scores + shift))), y, precision_floor)[1]["f1"]


def _out_of_fold(
    x: object, y: np.ndarray, w: np.ndarray, folds: np.ndarray, c: float, fitted: Callable[[int], None]
) -> np.ndarray:
    scores = np.zeros(len(y), dtype=np.float64)
    for fold in range(FOLDS):
        test = folds == fold
        model = _binary_model(c).fit(x[~test], y[~test], sample_weight=w[~test])  # type: ignore[index]
        scores[test] = model.decision_function(x[test])  # type: ignore[index]
        fitted(1)
    return scores


def model_fits(c_grid: Sequence[float] = C_GRID) -> int:
    """The models `train` fits: per intent one per fold and C then the final one, the topic model per fold
    and once more, the frustration model, its level heads and its gate once each. A progress bar's total."""
    return len(INTENTS) * (len(c_grid) * FOLDS + 1) + FOLDS + 1 + 1 + len(FRUSTRATION_LEVELS) + 1


def platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000).fit(scores.reshape(-1, 1), y)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def best_threshold(p: np.ndarray, y: np.ndarray, precision_floor: float | None) -> tuple[float, dict[str, float]]:
    """The cut-off with the best F1 (among those meeting the precision floor, if any)."""
    best = (0.5, {"precision": 0.0, "recall": 0.0, "f1": 0.0})
    for t in np.round(np.arange(0.2, 0.951, 0.025), 3):
        predicted = p >= t
        tp = float(np.sum(predicted & (y == 1)))
        precision = tp / max(1.0, float(predicted.sum()))
        recall = tp / max(1.0, float(y.sum()))
        f1 = 2 * precision * recall / max(1e-9, precision + recall)
        if precision_floor is not None and precision < precision_floor:
            continue
        if f1 > best[1]["f1"]:
            best = (float(t), {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)})
    return best


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    best_t, best_nll = 1.0, float("inf")
    for t in np.arange(0.5, 3.01, 0.05):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -float(log_p[np.arange(len(y)), y].mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return round(best_t, 3)


def fit_rating_scale(logits: np.ndarray, ratings: np.ndarray) -> tuple[float, float]:
    """(scale, shift) so that sigmoid(scale * logit + shift) best matches the ratings (least squares).
    Monotone, so it changes no ranking; deterministic (a fixed start and a deterministic solver)."""
    from scipy.optimize import minimize

    def loss(params: np.ndarray) -> float:
        predicted = 1.0 / (1.0 + np.exp(-(params[0] * logits + params[1])))
        return float(np.mean((predicted - ratings) ** 2))

    result = minimize(loss, x0=np.array([1.0, 0.0]), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9})
    return round(float(result.x[0]), 6), round(float(result.x[1]), 6)


def train(
    out_dir: Path = WEIGHTS_DIR,
    root: Path | None = None,
    log: object = None,
    require_all: bool = True,
    embedding: str | Embedder = "minilm-static",
    embedding_dir: Path = WEIGHTS_DIR,
    c_grid: Sequence[float] = C_GRID,
    bar: Bar | None = None,
) -> dict[str, object]:
    """Train on the training rows and write the model into `out_dir`; returns the manifest.

    `log` takes the progress lines (default: stderr). `bar` (apps/progress.py) is given
    `model_fits(c_grid)` as its total and told of each model fitted; lines for stderr then go through it,
    so they never break the bar.

    `embedding`: one of `EMBEDDINGS` or an object with `name`, `dimension` and `embed(texts)` (a model
    trained with such an object loads only with the same object given to `Classifier.load`). The
    MiniLM table is read from `embedding_dir` and copied into `out_dir` when that is another folder.
    """
    import shutil

    from sklearn.linear_model import LogisticRegression

    stream = sys.stderr if log is None else log

    def say(text: str) -> None:
        if bar is not None and stream is sys.stderr:
            bar.write(text)
        else:
            print(text, file=stream, flush=True)  # type: ignore[call-overload]

    def fitted(n: int) -> None:
        if bar is not None:
            bar.update(n)

    if bar is not None:
        bar.set_total(bar.count + model_fits(c_grid))  # after an earlier stage's fits, when there was one

    rows = training_rows(root)
    embedder, embedding_entry = embedding_for(embedding, embedding_dir)
    labelled = [r for r in rows if r.topic is not None]
    rated = [r for r in rows if r.frustration is not None]
    say(f"training rows: {len(rows)} ({len(labelled)} with intents and topic, {len(rated)} with frustration)")

    x_labelled = featurise([r.text for r in labelled], embedder).stacked()
    w_labelled = _weights(labelled)
    folds = _folds(labelled)
    n_sparse, n_dense = BUCKETS, (embedder.dimension if embedder else 0) + len(DENSE_FEATURES)
    # The level heads need comments at every level (a deployment's or a test's small set may have none).
    f = np.array([r.frustration for r in rated], dtype=np.float64)
    comments = np.array([r.source == "goemotions" for r in rated], dtype=bool)
    at_level = [int(np.sum(f[comments] == v)) for v in FRUSTRATION_LEVELS]
    levels: tuple[float, ...] = FRUSTRATION_LEVELS if min(at_level) >= MIN_POSITIVES else ()
    outputs = len(INTENTS) + len(TOPICS) + 1 + (len(levels) + 1 if levels else 0)
    weights = np.zeros((n_sparse + n_dense, outputs), dtype=np.float64)
    bias = np.zeros(outputs, dtype=np.float64)
    calibration: dict[str, dict[str, float]] = {}
    figures: dict[str, object] = {}

    for k, intent in enumerate(INTENTS):
        y = np.array([1 if intent in r.intents else 0 for r in labelled])
        if y.sum() < MIN_POSITIVES:
            if require_all:
                raise ValueError(f"intent {intent.value}: {int(y.sum())} training examples, need {MIN_POSITIVES}")
            calibration[intent.value] = {"scale": 1.0, "shift": -20.0, "threshold": 1.0}
            fitted(len(c_grid) * FOLDS + 1)  # none of them fitted: the intent is left out
            continue
        floor = PRECISION_FLOOR.get(intent)
        candidates = [(c, _out_of_fold(x_labelled, y, w_labelled, folds, c, fitted)) for c in c_grid]
        f1 = [_f1_at_best(oof, y, floor) for _, oof in candidates]
        c, oof = next(pair for pair, f in zip(candidates, f1, strict=True) if f >= max(f1) - C_TIE)  # smallest C
        scale, shift = platt(oof, y)
        p = 1 / (1 + np.exp(-(scale * oof + shift)))
        threshold, fig = best_threshold(p, y, floor)
        model = _binary_model(c).fit(x_labelled, y, sample_weight=w_labelled)
        fitted(1)
        weights[:, k] = model.coef_[0]
        bias[k] = model.intercept_[0]
        calibration[intent.value] = {"scale": round(scale, 6), "shift": round(shift, 6), "threshold": threshold}
        figures[intent.value] = {"positives": int(y.sum()), "C": c, **fig}
        say(f"  {intent.value:20s} positives {int(y.sum()):5d}  C {c:g}  out-of-fold {fig}")

    topic_index = {t.value: i for i, t in enumerate(TOPICS)}
    y_topic = np.array([topic_index[r.topic] for r in labelled if r.topic is not None])
    oof_logits = np.zeros((len(labelled), len(TOPICS)))
    for fold in range(FOLDS):
        test = folds == fold
        m = LogisticRegression(C=C_TOPIC, max_iter=300, random_state=SEED)
        m.fit(x_labelled[~test], y_topic[~test], sample_weight=w_labelled[~test])  # type: ignore[index]
        oof_logits[np.ix_(test, m.classes_)] = m.decision_function(x_labelled[test])  # type: ignore[index]
        fitted(1)
    temperature = _fit_temperature(oof_logits, y_topic)
    topic_model = LogisticRegression(C=C_TOPIC, max_iter=300, random_state=SEED)
    topic_model.fit(x_labelled, y_topic, sample_weight=w_labelled)
    fitted(1)
    for j, cls in enumerate(topic_model.classes_):
        weights[:, len(INTENTS) + int(cls)] = topic_model.coef_[j]
        bias[len(INTENTS) + int(cls)] = topic_model.intercept_[j]
    topic_accuracy = float(np.mean(oof_logits.argmax(axis=1) == y_topic))
    figures["topic_accuracy"] = round(topic_accuracy, 4)
    say(f"  topic accuracy out-of-fold {topic_accuracy:.3f}, temperature {temperature}")

    # Frustration: each rated row twice, as frustrated with weight f and calm with weight 1 - f.
    x_rated = featurise([r.text for r in rated], embedder).stacked()
    w_rated = _weights(rated)
    from scipy import sparse

    x_twice = sparse.vstack([x_rated, x_rated], format="csr")
    y_twice = np.concatenate([np.ones(len(f)), np.zeros(len(f))])
    w_twice = np.concatenate([f * w_rated, (1 - f) * w_rated]) + 1e-6
    frustration_model = _binary_model(C_FRUSTRATION).fit(x_twice, y_twice, sample_weight=w_twice)
    fitted(1)
    head = len(INTENTS) + len(TOPICS)
    weights[:, head] = frustration_model.coef_[0]
    bias[head] = frustration_model.intercept_[0]

    # One head ranks the team's support messages well (held out 0.78) and Reddit comments less well (0.51):
    # it trades one against the other. Beside it, a head per GoEmotions level, fitted on the comments alone
    # (each comment's level is its largest emotion's value), and a gate, support message against comment,
    # fitted on every training row; `Classifier.frustration_of` mixes them (out of fold: 0.547 -> 0.564).
    if levels:
        for j, level in enumerate(levels):
            y_level = (f[comments] == level).astype(int)
            level_model = _binary_model(C_FRUSTRATION).fit(x_rated[comments], y_level)  # type: ignore[index]
            fitted(1)
            weights[:, head + 1 + j] = level_model.coef_[0]
            bias[head + 1 + j] = level_model.intercept_[0]
        comment_rows = np.flatnonzero(np.array([r.topic is None for r in rated], dtype=bool))
        x_gate = sparse.vstack([x_labelled, x_rated[comment_rows]], format="csr")  # type: ignore[index]
        y_gate = np.array([1] * len(labelled) + [int(rated[k].source != "goemotions") for k in comment_rows])
        gate_model = _binary_model(C_GATE).fit(x_gate, y_gate)
        fitted(1)
        weights[:, -1] = gate_model.coef_[0]
        bias[-1] = gate_model.intercept_[0]
    else:
        say(f"  frustration: no level heads (comments at each level: {at_level}, need {MIN_POSITIVES})")
        fitted(len(FRUSTRATION_LEVELS) + 1)
    # The policy's frustration thresholds are on the team's rating scale (a plain problem report about
    # 0.2, annoyed 0.5, furious 1): map the head's logit onto it, fitted on the team's rated messages.
    team = np.array([r.source == "written" for r in rated])
    team_logits = np.asarray(frustration_model.decision_function(x_rated[team]), dtype=np.float64)  # type: ignore[index]
    frustration_calibration = fit_rating_scale(team_logits, f[team])

    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / MODEL_FILE
    # Fixed member order and no timestamps (np.savez writes none), so the same weights give the same bytes.
    np.savez_compressed(
        model_path,
        hash_weights=weights[:n_sparse].astype(np.float16),
        dense_weights=weights[n_sparse:].astype(np.float32),
        bias=bias.astype(np.float32),
    )
    if embedding_entry.get("kind") == "minilm-static" and out_dir.resolve() != embedding_dir.resolve():
        for name in (MINILM_TABLE, MINILM_TOKENIZER):
            shutil.copyfile(embedding_dir / name, out_dir / name)
    data = fingerprint(rows)
    weights_sha = hashlib.sha256(model_path.read_bytes()).hexdigest()
    meta: dict[str, object] = {
        "version": f"baton-clf-{hashlib.sha256((data + weights_sha).encode()).hexdigest()[:10]}",
        "sha256": weights_sha,
        "buckets": BUCKETS,
        "dense_features": list(DENSE_FEATURES),
        "embedding": embedding_entry,
        "intents": [i.value for i in INTENTS],
        "topics": [t.value for t in TOPICS],
        "calibration": calibration,
        "topic_temperature": temperature,
        "frustration_calibration": list(frustration_calibration),
        "frustration_levels": list(levels),
        "training_rows": len(rows),
        "training_data_sha256": data,
        "out_of_fold": figures,
    }
    meta["content_sha256"] = content_digest(meta)
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    say(f"wrote {model_path} ({model_path.stat().st_size / 1e6:.1f} MB), version {meta['version']}")
    return meta


def attach_second_stage(out_dir: Path, band: float = SECOND_STAGE_BAND) -> dict[str, object]:
    """Name the model in `out_dir/encoder` as `out_dir`'s second stage; the pair gets its own version.

    The version covers both stages' versions and the band, so a score always says which pair gave it.
    """
    meta = json.loads((out_dir / META_FILE).read_text(encoding="utf-8"))
    second = json.loads((out_dir / SECOND_STAGE_FOLDER / META_FILE).read_text(encoding="utf-8"))
    first_version = meta.get("first_stage_version", meta["version"])
    pair = f"{first_version}+{second['version']}+{band}"
    meta |= {
        "version": f"baton-clf-{hashlib.sha256(pair.encode()).hexdigest()[:10]}",
        "first_stage_version": first_version,
        "second_stage": {"folder": SECOND_STAGE_FOLDER, "version": second["version"], "band": band},
    }
    meta["content_sha256"] = content_digest(meta)
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def train_both(
    out_dir: Path = WEIGHTS_DIR, root: Path | None = None, log: object = None, bar: Bar | None = None
) -> dict[str, object]:
    """The shipped model: the first stage over the static embedding, the second over the encoder, attached."""
    train(out_dir, root=root, log=log, bar=bar)
    train(out_dir / SECOND_STAGE_FOLDER, root=root, log=log, embedding=INT8_ENCODER_NAME, bar=bar)
    return attach_second_stage(out_dir)
