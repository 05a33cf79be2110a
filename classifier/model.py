"""Load the shipped model and score messages: one linear layer over the features, calibrated.

The weights file holds, for every output (each intent, each topic, frustration), the weights of the
hashed n-grams and of the dense features (embedding and rules) and a bias. Intents are independent
sigmoids with Platt calibration and a threshold each; topics a softmax with a temperature; frustration
a sigmoid. All of it is chosen by `baton model train` and written beside the weights in `model.json`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from baton.classifier.embedding import StaticEmbedding
from baton.classifier.features import BUCKETS, RULE_FEATURES, hashed_ngrams, rule_features
from baton.contract.messages import Intent, Topic
from baton.contract.scoring import MessageScores

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MODEL_FILE = "model.npz"
META_FILE = "model.json"


class ModelError(RuntimeError):
    """The model files are missing, damaged or of another layout."""


@dataclass(frozen=True)
class Calibration:
    scale: float
    shift: float
    threshold: float


@dataclass
class Classifier:
    version: str
    embedding: StaticEmbedding
    hash_weights: np.ndarray  # (BUCKETS, outputs) float32
    dense_weights: np.ndarray  # (embedding + rules, outputs) float32
    bias: np.ndarray  # (outputs,)
    intents: tuple[Intent, ...]
    topics: tuple[Topic, ...]
    calibration: dict[Intent, Calibration]
    topic_temperature: float

    @classmethod
    def load(cls, directory: Path = WEIGHTS_DIR, embedding: StaticEmbedding | None = None) -> Classifier:
        meta_path, model_path = directory / META_FILE, directory / MODEL_FILE
        if not meta_path.is_file() or not model_path.is_file():
            raise ModelError(f"{directory}: no model (run `baton model train`)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
        if digest != meta["sha256"]:
            raise ModelError(f"{model_path}: sha256 {digest} does not match model.json ({meta['sha256']})")
        if meta["buckets"] != BUCKETS or tuple(meta["rule_features"]) != RULE_FEATURES:
            raise ModelError(f"{directory}: trained with other features than this code computes")
        with np.load(model_path) as arrays:
            hash_weights = arrays["hash_weights"].astype(np.float32)
            dense_weights = arrays["dense_weights"].astype(np.float32)
            bias = arrays["bias"].astype(np.float32)
        intents = tuple(Intent(i) for i in meta["intents"])
        return cls(
            version=meta["version"],
            embedding=embedding or StaticEmbedding.load(),
            hash_weights=hash_weights,
            dense_weights=dense_weights,
            bias=bias,
            intents=intents,
            topics=tuple(Topic(t) for t in meta["topics"]),
            calibration={Intent(k): Calibration(**v) for k, v in meta["calibration"].items()},
            topic_temperature=float(meta["topic_temperature"]),
        )

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw outputs, one row per text: intents, then topics, then frustration."""
        dense = np.hstack([self.embedding.embed(texts), np.vstack([rule_features(t) for t in texts])])
        out = dense @ self.dense_weights + self.bias
        for row, text in enumerate(texts):
            indices, values = hashed_ngrams(text)
            if len(indices):
                out[row] += values @ self.hash_weights[indices]
        return out

    def score_many(self, texts: list[str]) -> list[MessageScores]:
        if not texts:
            return []
        raw = self.logits(texts)
        n_intents, n_topics = len(self.intents), len(self.topics)
        results = []
        for row in raw:
            probabilities: dict[Intent, float] = {}
            detected: list[Intent] = []
            for intent, logit in zip(self.intents, row[:n_intents], strict=True):
                cal = self.calibration[intent]
                p = _sigmoid(cal.scale * float(logit) + cal.shift)
                probabilities[intent] = round(p, 4)
                if p >= cal.threshold:
                    detected.append(intent)
            topic_logits = row[n_intents : n_intents + n_topics] / self.topic_temperature
            topic_p = np.exp(topic_logits - topic_logits.max())
            topic_p /= topic_p.sum()
            best = int(np.argmax(topic_p))
            results.append(
                MessageScores(
                    model_version=self.version,
                    probabilities=probabilities,
                    intents=detected,
                    topic=self.topics[best],
                    topic_probabilities={t: round(float(p), 4) for t, p in zip(self.topics, topic_p, strict=True)},
                    frustration=round(_sigmoid(float(row[n_intents + n_topics])), 4),
                )
            )
        return results

    def score(self, text: str) -> MessageScores:
        return self.score_many([text])[0]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + float(np.exp(-x)))
    z = float(np.exp(x))
    return z / (1.0 + z)


@cache
def default_classifier() -> Classifier:
    """The shipped model, loaded once per process."""
    return Classifier.load()
