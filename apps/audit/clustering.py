"""Embedding clusters for the conversations the classifier gives no grouping intent.

A conversation is the unit-length mean of its customer messages' vectors in the classifier's own static
embedding (classifier/embedding.py). The vectors are grouped by k-means (scikit-learn, the `train` extra)
with a fixed seed and k chosen by the best silhouette (cosine) between 2 and as many clusters as could
each hold ``min_size`` conversations, so the same file always gives the same clusters. Without
scikit-learn, or without an embedding (the rules scorer has none), the conversations are grouped by
their topic instead, and the audit says so.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from baton.classifier.model import Embedder
from baton.domain.text import STOPWORDS, words

MAX_CLUSTERS = 10
SAMPLE = 2000  # conversations k is chosen on
KEYWORDS = 3
KEYWORD_MIN_SHARE = 0.25  # a keyword is in at least this share of the cluster's conversations


@dataclass(frozen=True)
class Clusters:
    labels: list[int]  # one per conversation, 0..k-1
    k: int
    method: str  # "kmeans" or why it fell back to topics


def sklearn_available() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def conversation_vectors(embedder: Embedder, texts_per_conversation: Sequence[Sequence[str]]) -> np.ndarray:
    """One unit-length row per conversation: the mean of its customer messages' embeddings."""
    flat = [t for texts in texts_per_conversation for t in texts]
    vectors = embedder.embed(flat) if flat else np.zeros((0, 1), dtype=np.float32)
    out = np.zeros((len(texts_per_conversation), vectors.shape[1]), dtype=np.float64)
    offset = 0
    for row, texts in enumerate(texts_per_conversation):
        if texts:
            mean = vectors[offset : offset + len(texts)].astype(np.float64).mean(axis=0)
            norm = float(np.linalg.norm(mean))
            out[row] = mean / norm if norm else mean
        offset += len(texts)
    return out


def _fit(vectors: np.ndarray, k: int, seed: int) -> list[int]:
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # Fewer distinct points than k: k-means says so, and the silhouette passes that k over.
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(vectors)
    return [int(label) for label in model.labels_]


def kmeans(vectors: np.ndarray, *, seed: int, min_size: int) -> Clusters:
    """K-means with k by the best silhouette; one cluster when there are too few to split.

    On a large export k is chosen on a seeded sample of ``SAMPLE`` conversations (the silhouette compares
    every pair of points), then one k-means with that k groups them all."""
    from sklearn.metrics import silhouette_score

    n = len(vectors)
    most = min(MAX_CLUSTERS, n // max(min_size, 1), n - 1)
    if most < 2:
        return Clusters(labels=[0] * n, k=1 if n else 0, method="kmeans")
    sample = vectors
    if n > SAMPLE:
        sample = vectors[np.sort(np.random.default_rng(seed).choice(n, SAMPLE, replace=False))]
    best: tuple[float, int, list[int]] | None = None
    for k in range(2, most + 1):
        labels = _fit(sample, k, seed)
        if len(set(labels)) < 2:
            continue
        score = float(silhouette_score(sample, labels, metric="cosine"))
        if best is None or score > best[0] + 1e-9:
            best = (score, k, labels)
    if best is None:
        return Clusters(labels=[0] * n, k=1, method="kmeans")
    labels = best[2] if n <= SAMPLE else _fit(vectors, best[1], seed)
    return Clusters(labels=_relabelled(labels), k=best[1], method="kmeans")


def _relabelled(labels: list[int]) -> list[int]:
    """Cluster numbers by first appearance, so numbering never depends on the k-means run's own order."""
    order: dict[int, int] = {}
    for label in labels:
        order.setdefault(label, len(order))
    return [order[label] for label in labels]


def keywords(texts_per_conversation: Sequence[Sequence[str]], labels: Sequence[int], cluster: int) -> list[str]:
    """The words that set a cluster apart: in many of its conversations and few of the others'."""
    inside: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    n_in = n_out = 0
    for texts, label in zip(texts_per_conversation, labels, strict=True):
        vocabulary = {w for t in texts for w in words(t) if w not in STOPWORDS and len(w) > 2 and not w.isdigit()}
        if label == cluster:
            inside.update(vocabulary)
            n_in += 1
        else:
            outside.update(vocabulary)
            n_out += 1
    if not n_in:
        return []
    scored = []
    for word, count in inside.items():
        share = count / n_in
        if share < KEYWORD_MIN_SHARE:
            continue
        scored.append((share - (outside[word] / n_out if n_out else 0.0), share, word))
    scored.sort(key=lambda item: (-item[0], -item[1], item[2]))
    return [word for _, _, word in scored[:KEYWORDS]]
