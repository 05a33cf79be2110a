"""Load the shipped model and score messages: one linear layer over the features, calibrated.

The weights file holds, for every output (each intent, each topic, frustration and its level heads and
gate), the weights of the hashed n-grams and of the dense features (embedding, rules, sentiment) and a
bias. Intents are
independent sigmoids with Platt calibration and a threshold each; topics a softmax with a temperature;
frustration a sigmoid, mixed with GoEmotions level heads by a gate (`Classifier.frustration_of`). All of it
is chosen by `baton model train` and written beside the weights in
`model.json`, the folder's manifest: it names every file the scores depend on with its SHA-256 (the
weights, the embedding's table and tokenizer) and carries a digest of its own content, and loading
refuses any file that does not match.

A model may have a second stage (`second_stage` in the manifest, its own folder beside): the same heads
over the MiniLM sentence encoder itself (baton.classifier.encoder) instead of its static distillation.
It costs 5-10 ms a message, twenty to forty times the first stage, so it reads only the messages the
first stage is unsure of: those with an intent's probability within `band` of its threshold. It reads the whole message
(no sentence split: the encoder reads a long message's meaning as a whole). For those the two stages'
probabilities are averaged (and the thresholds, so an intent is detected when the mean probability
reaches the mean threshold), and so are topic probabilities and frustration.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from baton.classifier.embedding import StaticEmbedding, sha256_of
from baton.classifier.encoder import NAME as ENCODER_NAME
from baton.classifier.encoder import SHA256 as ENCODER_SHA256
from baton.classifier.encoder import EncoderError, shared_encoder
from baton.classifier.encoder_int8 import GRAPH_VERSION as INT8_GRAPH_VERSION
from baton.classifier.encoder_int8 import NAME as INT8_ENCODER_NAME
from baton.classifier.encoder_int8 import shared_int8_encoder
from baton.classifier.features import BUCKETS, DENSE_FEATURES, dense_features, hashed_ngrams
from baton.contract.messages import Intent, Topic
from baton.contract.scoring import MessageScores

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MODEL_FILE = "model.npz"
META_FILE = "model.json"


class ModelError(RuntimeError):
    """The model files are missing, damaged or of another layout."""


class Embedder(Protocol):
    name: str

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Calibration:
    scale: float
    shift: float
    threshold: float


def content_digest(meta: dict[str, Any]) -> str:
    """SHA-256 of the manifest without its own `content_sha256` (canonical JSON)."""
    body = {k: v for k, v in meta.items() if k != "content_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def load_embedding(directory: Path, spec: dict[str, Any]) -> Embedder | None:
    """The embedding a manifest names: the MiniLM distillation, the MiniLM encoder (int8 or float32), WordLlama,
    or none."""
    kind = spec.get("kind")
    if kind == "minilm-static":
        return StaticEmbedding.minilm(directory, spec["files"])
    if kind == "wordllama-256":
        return StaticEmbedding.wordllama()
    if kind in (ENCODER_NAME, INT8_ENCODER_NAME):
        if spec.get("files") != ENCODER_SHA256:
            raise ModelError(f"{directory}: trained with other encoder files than this code checks")
        if kind == INT8_ENCODER_NAME and spec.get("graph") != INT8_GRAPH_VERSION:
            raise ModelError(
                f"{directory}: trained on int8 encoder graph {spec.get('graph')}, this code builds {INT8_GRAPH_VERSION}"
            )
        try:
            return shared_encoder() if kind == ENCODER_NAME else shared_int8_encoder()
        except EncoderError as exc:
            raise ModelError(str(exc)) from exc
    if kind == "none":
        return None
    raise ModelError(f"{directory}: embedding {spec.get('name', kind)!r} must be given to Classifier.load")


@dataclass
class Classifier:
    version: str
    embedding: Embedder | None
    hash_weights: np.ndarray  # (BUCKETS, outputs) float32
    dense_weights: np.ndarray  # (embedding + dense features, outputs) float32
    bias: np.ndarray  # (outputs,)
    intents: tuple[Intent, ...]
    topics: tuple[Topic, ...]
    calibration: dict[Intent, Calibration]
    topic_temperature: float
    # Frustration's logit mapped onto the team's 0-1 ratings (calm 0, annoyed .5, furious 1).
    frustration_calibration: tuple[float, float] = (1.0, 0.0)
    # The GoEmotions levels of the outputs after frustration's (then the gate's); none in older models.
    frustration_levels: tuple[float, ...] = ()
    # The encoder stage, for the messages whose probabilities lie within `band` of a threshold.
    second: Classifier | None = None
    band: float = 0.0
    # The folder it was loaded from (None when built in memory): another process can load the same model.
    source: Path | None = None

    @classmethod
    def load(cls, directory: Path = WEIGHTS_DIR, embedding: Embedder | None = None) -> Classifier:
        meta_path, model_path = directory / META_FILE, directory / MODEL_FILE
        if not meta_path.is_file() or not model_path.is_file():
            raise ModelError(f"{directory}: no model (run `baton model train`)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("content_sha256") != content_digest(meta):
            raise ModelError(f"{meta_path}: its content does not match its content_sha256 (edited by hand?)")
        digest = sha256_of(model_path)
        if digest != meta["sha256"]:
            raise ModelError(f"{model_path}: sha256 {digest} does not match model.json ({meta['sha256']})")
        if meta["buckets"] != BUCKETS or tuple(meta["dense_features"]) != DENSE_FEATURES:
            raise ModelError(f"{directory}: trained with other features than this code computes")
        if embedding is None:
            embedding = load_embedding(directory, meta["embedding"])
        elif embedding.name != meta["embedding"].get("name"):
            trained = meta["embedding"].get("name")
            raise ModelError(f"{directory}: trained with embedding {trained!r}, not {embedding.name!r}")
        with np.load(model_path) as arrays:
            hash_weights = arrays["hash_weights"].astype(np.float32)
            dense_weights = arrays["dense_weights"].astype(np.float32)
            bias = arrays["bias"].astype(np.float32)
        width = (embedding.dimension if embedding else 0) + len(DENSE_FEATURES)
        if dense_weights.shape[0] != width:
            raise ModelError(f"{directory}: {dense_weights.shape[0]} dense weights, the features have {width}")
        levels = tuple(float(v) for v in meta.get("frustration_levels", ()))
        outputs = len(meta["intents"]) + len(meta["topics"]) + 1 + (len(levels) + 1 if levels else 0)
        if bias.shape != (outputs,) or dense_weights.shape[1] != outputs or hash_weights.shape != (BUCKETS, outputs):
            raise ModelError(f"{directory}: {bias.shape[0]} outputs, the manifest describes {outputs}")
        second, band = None, 0.0
        stage = meta.get("second_stage")
        if stage:
            second = Classifier.load(directory / stage["folder"])
            if second.version != stage["version"]:
                raise ModelError(f"{directory}: second stage {second.version}, the manifest names {stage['version']}")
            band = float(stage["band"])
        return cls(
            version=meta["version"],
            embedding=embedding,
            hash_weights=hash_weights,
            dense_weights=dense_weights,
            bias=bias,
            intents=tuple(Intent(i) for i in meta["intents"]),
            topics=tuple(Topic(t) for t in meta["topics"]),
            calibration={Intent(k): Calibration(**v) for k, v in meta["calibration"].items()},
            topic_temperature=float(meta["topic_temperature"]),
            frustration_calibration=tuple(meta.get("frustration_calibration", (1.0, 0.0))),  # type: ignore[arg-type]
            frustration_levels=levels,
            second=second,
            band=band,
            source=directory,
        )

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw outputs, one row per text: intents, then topics, then frustration.

        Row by row (no matrix product over the batch), so a message's scores never depend on the
        messages scored with it.
        """
        parts = [self.embedding.embed(texts)] if self.embedding is not None else []
        parts.append(np.vstack([dense_features(t) for t in texts]))
        dense = np.hstack(parts)
        out = np.empty((len(texts), len(self.bias)), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = dense[row] @ self.dense_weights + self.bias
            indices, values = hashed_ngrams(text)
            if len(indices):
                out[row] += values @ self.hash_weights[indices]
        return out

    def score_many(self, texts: list[str]) -> list[MessageScores]:
        """Scores of each text: the first stage's, averaged with the second stage's where the first is unsure."""
        results = self._score_stage(texts)
        if self.second is None:
            return results
        unsure = [k for k, r in enumerate(results) if self.unsure(r)]
        if unsure:
            # The encoder reads the whole message: averaging its sentences' maxima too measured worse
            # (not_helping F1 0.725 against 0.806 on the held-out rows, docs/classifier.md) and costs more.
            for k, other in zip(unsure, self.second._score_whole([texts[k] for k in unsure]), strict=True):
                results[k] = self._averaged(results[k], other)
        return results

    def staged(self, text: str) -> MessageScores | SecondRead:
        """The scores when the first stage suffices (a fraction of a millisecond); else what finishes them from
        the first stage's reading with the encoder (milliseconds, which an event loop should hand to another
        process or a thread: `score_off_loop`). Either way the same scores as `score`, the first stage read once."""
        first = self._score_stage([text])[0]
        if self.second is None or not self.unsure(first):
            return first
        return SecondRead(self, first, text)

    def second_stage_job(self, text: str) -> tuple[str, str, str] | None:
        """The arguments of `second_stage_scores` for a text: the second stage's folder, its version, the text;
        None without a second stage loaded from a folder."""
        if self.second is None or self.second.source is None:
            return None
        return str(self.second.source.absolute()), self.second.version, text

    def unsure(self, scores: MessageScores) -> bool:
        return any(abs(p - self.calibration[i].threshold) < self.band for i, p in scores.probabilities.items())

    def _averaged(self, first: MessageScores, second: MessageScores) -> MessageScores:
        assert self.second is not None
        probabilities = {i: round((p + second.probabilities[i]) / 2, 4) for i, p in first.probabilities.items()}
        detected = [
            i
            for i in self.intents
            if probabilities[i] >= (self.calibration[i].threshold + self.second.calibration[i].threshold) / 2
        ]
        topics = {t: round((p + second.topic_probabilities[t]) / 2, 4) for t, p in first.topic_probabilities.items()}
        return first.model_copy(
            update={
                "probabilities": probabilities,
                "intents": detected,
                "topic": max(topics, key=lambda t: topics[t]),
                "topic_probabilities": topics,
                "frustration": round((first.frustration + second.frustration) / 2, 4),
            }
        )

    def _score_stage(self, texts: list[str]) -> list[MessageScores]:
        """This stage's scores of each text. A request can sit in one sentence of a longer message ("The export crashes
        again. Get me a human."), so each intent takes its highest probability over the whole message and
        each of its sentences; topic and frustration are read from the whole message."""
        results = self._score_whole(texts)
        for index, text in enumerate(texts):
            sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
            if len(sentences) < 2:
                continue
            whole = results[index]
            probabilities = dict(whole.probabilities)
            detected = set(whole.intents)
            for part in self._score_whole(sentences):
                for intent, p in part.probabilities.items():
                    probabilities[intent] = max(probabilities.get(intent, 0.0), p)
                detected.update(part.intents)
            results[index] = whole.model_copy(
                update={"probabilities": probabilities, "intents": [i for i in self.intents if i in detected]}
            )
        return results

    def _score_whole(self, texts: list[str]) -> list[MessageScores]:
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
                    frustration=round(self.frustration_of(row[n_intents + n_topics :]), 4),
                )
            )
        return results

    def frustration_scale(self, logit: float) -> float:
        scale, shift = self.frustration_calibration
        return _sigmoid(scale * logit + shift)

    def frustration_of(self, outputs: np.ndarray) -> float:
        """Frustration from its outputs: the head on the team's scale, and where the model has them, the
        GoEmotions level heads and the gate.

        The head alone trades Reddit-like text against support messages (one linear head cannot rank both
        well). The level heads read the expected level of a comment-like text, sum of level x probability,
        at most 1; the gate is the probability that the text is a support message. A support message keeps
        the head's value, the rest moves halfway to the levels' reading:
            gate * head + (1 - gate) * (head + levels) / 2
        """
        head = self.frustration_scale(float(outputs[0]))
        if not self.frustration_levels:
            return head
        n = len(self.frustration_levels)
        pairs = zip(self.frustration_levels, outputs[1 : 1 + n], strict=True)
        levels = min(1.0, sum(level * _sigmoid(float(z)) for level, z in pairs))
        gate = _sigmoid(float(outputs[1 + n]))
        return gate * head + (1 - gate) * (head + levels) / 2

    def score(self, text: str) -> MessageScores:
        return self.score_many([text])[0]


@dataclass(frozen=True)
class SecondRead:
    """What is left of scoring a message the first stage is unsure of: the encoder stage's reading, averaged
    with the first stage's. Call it to finish in this process; or run `job` with `second_stage_scores` in
    another process (the same folder, checked to be the same version) and `finish` with its result."""

    classifier: Classifier
    first: MessageScores
    text: str

    def __call__(self) -> MessageScores:
        assert self.classifier.second is not None
        return self.finish(self.classifier.second._score_whole([self.text])[0])

    def finish(self, second: MessageScores) -> MessageScores:
        return self.classifier._averaged(self.first, second)

    @property
    def job(self) -> tuple[str, str, str] | None:
        return self.classifier.second_stage_job(self.text)


def second_stage_scores(directory: str, version: str, text: str) -> MessageScores:
    """The encoder stage's scores of a text, from the stage in `directory` (loaded once per process), which must
    be `version`: the process that asks has that version loaded, and a folder replaced since then is not it."""
    stage = _stage_at(directory)
    if stage.version != version:
        _stage_at.cache_clear()
        stage = _stage_at(directory)
        if stage.version != version:
            raise ModelError(f"{directory}: holds {stage.version}, not {version}")
    return stage._score_whole([text])[0]


@lru_cache(maxsize=4)
def _stage_at(directory: str) -> Classifier:
    return Classifier.load(Path(directory))


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + float(np.exp(-x)))
    z = float(np.exp(x))
    return z / (1.0 + z)


@cache
def default_classifier() -> Classifier:
    """The shipped model, loaded once per process."""
    return Classifier.load()
