"""Scenario types: the conversations that fell short, grouped by what they were about and how they failed.

A conversation that fell short is grouped by its intent (reading.GROUP_INTENTS) or, with none, by its
embedding cluster (clustering.py); within a group, by its primary shortfall (shortfalls.py). Each group
and shortfall with at least ``min_count`` conversations is a scenario type, listed with its count, its
share of all conversations, the median turns, how many of its conversations show each shortfall (primary
or not), a few example messages and a suggested trigger (suggestions.py). Smaller ones are listed apart,
so nothing is hidden and noise does not pass for a pattern.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

import numpy as np

from baton.apps.audit import clustering
from baton.apps.audit.loading import PastConversation
from baton.apps.audit.reading import Reading, read_all
from baton.apps.audit.shortfalls import SHORTFALL_TEXT, Shortfall, Thresholds
from baton.apps.audit.suggestions import Context, Suggestion, suggest
from baton.classifier.model import Embedder
from baton.classifier.scorer import Scorer
from baton.contract.labels import Intent, Topic
from baton.policies.schema import Policy

MIN_COUNT = 5
MIN_SHARE = 0.01
EXAMPLES = 3
EXAMPLE_CHARS = 100


@dataclass
class ScenarioType:
    key: str
    name: str
    group: str  # the name of the intent, cluster or topic, without the shortfall
    grouping: str  # "intent", "cluster" or "topic"
    intent: Intent | None
    topic: Topic
    keywords: list[str]
    shortfall: Shortfall
    readings: list[Reading]
    share: float
    examples: list[str]
    suggestion: Suggestion

    @property
    def count(self) -> int:
        return len(self.readings)

    @property
    def median_turns(self) -> float:
        return float(median(r.conversation.turns for r in self.readings))

    @property
    def shortfall_counts(self) -> dict[str, int]:
        counts = Counter(s for r in self.readings for s in r.shortfalls)
        return {s.value: counts[s] for s in Shortfall if counts[s]}

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "group": self.group,
            "grouping": self.grouping,
            "intent": self.intent.value if self.intent else None,
            "topic": self.topic.value,
            "keywords": self.keywords,
            "shortfall": self.shortfall.value,
            "count": self.count,
            "share": round(self.share, 4),
            "median_turns": self.median_turns,
            "shortfalls": self.shortfall_counts,
            "median_peak_frustration": round(float(median(r.peak_frustration for r in self.readings)), 4),
            "csat_mean": _mean([r.conversation.csat for r in self.readings if r.conversation.csat is not None]),
            "bot_repeated": sum(r.bot_repeated for r in self.readings),
            "customer_repeated": sum(r.customer_repeated for r in self.readings),
            "said_not_helping": sum(r.not_helping for r in self.readings),
            "examples": self.examples,
            "suggestion": self.suggestion.as_dict(),
            "conversation_ids": [r.conversation.conversation_id for r in self.readings],
        }


@dataclass
class Audit:
    conversations: int
    shapes: dict[str, int]
    fell_short: int
    healthy: int
    scenario_types: list[ScenarioType]
    smaller: list[ScenarioType]
    min_count: int
    thresholds: Thresholds
    grouping: str  # how intent-less conversations were grouped, in words
    classifier: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "shapes": self.shapes,
            "fell_short": self.fell_short,
            "healthy": self.healthy,
            "classifier": self.classifier,
            "thresholds": {"many_turns": self.thresholds.many_turns, "low_csat": self.thresholds.low_csat},
            "min_count": self.min_count,
            "grouping": self.grouping,
            "scenario_types": [s.as_dict() for s in self.scenario_types],
            "smaller": [
                {"key": s.key, "count": s.count, "shortfall": s.shortfall.value, "name": s.name} for s in self.smaller
            ],
        }


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def default_min_count(conversations: int) -> int:
    return max(MIN_COUNT, math.ceil(MIN_SHARE * conversations))


def _truncate(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXAMPLE_CHARS else flat[: EXAMPLE_CHARS - 1].rstrip() + "…"


def _examples(readings: Sequence[Reading], intent: Intent | None, closeness: Sequence[float] | None) -> list[str]:
    """Distinct customer messages: those most sure of the intent, or the openings nearest the cluster's centre."""
    candidates: list[tuple[float, int, str]] = []
    for index, reading in enumerate(readings):
        if not reading.texts:
            continue
        if intent is not None:
            p, text = max(
                ((s.probabilities.get(intent, 0.0), t) for s, t in zip(reading.scores, reading.texts, strict=True)),
                key=lambda pair: pair[0],
            )
            candidates.append((-p, index, text))
        else:
            candidates.append((-(closeness[index] if closeness is not None else 0.0), index, reading.texts[0]))
    chosen: list[str] = []
    for _, _, text in sorted(candidates):
        short = _truncate(text)
        if short not in chosen:
            chosen.append(short)
        if len(chosen) == EXAMPLES:
            break
    return chosen


@dataclass
class _Group:
    key: str
    name: str
    grouping: str
    intent: Intent | None
    topic: Topic
    keywords: list[str]
    readings: list[Reading]
    closeness: list[float] | None = None


def _majority_topic(readings: Sequence[Reading]) -> Topic:
    counts = Counter(r.topic for r in readings)
    return max(Topic, key=lambda t: (counts[t], -list(Topic).index(t)))


def _intent_groups(failing: Sequence[Reading]) -> list[_Group]:
    groups: dict[Intent, list[Reading]] = {}
    for reading in failing:
        if reading.intent is not None:
            groups.setdefault(reading.intent, []).append(reading)
    out = []
    for intent, readings in groups.items():
        topic = _majority_topic(readings)
        name = intent.value if topic is Topic.OTHER else f"{intent.value} ({topic.value})"
        out.append(_Group(intent.value, name, "intent", intent, topic, [], readings))
    return out


def _cluster_groups(
    failing: Sequence[Reading], embedder: Embedder | None, seed: int, min_count: int
) -> tuple[list[_Group], str]:
    rest = [r for r in failing if r.intent is None and r.texts]
    # Nothing the customer wrote to group by: one group of its own, never a point in the clustering.
    silent = [r for r in failing if r.intent is None and not r.texts]
    quiet = [_Group("no-customer-message", "no customer message", "topic", None, Topic.OTHER, [], silent)]
    quiet = quiet if silent else []
    if not rest:
        return quiet, "(none to cluster)"
    if embedder is None or not clustering.sklearn_available():
        why = "the scorer has no embedding" if embedder is None else "scikit-learn is not installed"
        by_topic: dict[Topic, list[Reading]] = {}
        for reading in rest:
            by_topic.setdefault(reading.topic, []).append(reading)
        groups = [
            _Group(f"topic:{t.value}", t.value, "topic", None, t, [], readings) for t, readings in by_topic.items()
        ]
        return [*groups, *quiet], f"by topic ({why})"
    texts = [r.texts for r in rest]
    vectors = clustering.conversation_vectors(embedder, texts)
    found = clustering.kmeans(vectors, seed=seed, min_size=min_count)
    groups = []
    for cluster in range(found.k):
        members = [i for i, label in enumerate(found.labels) if label == cluster]
        readings = [rest[i] for i in members]
        centre = vectors[members].mean(axis=0)
        norm = float(np.linalg.norm(centre))
        closeness = [float(vectors[i] @ (centre / norm)) if norm else 0.0 for i in members]
        topic = _majority_topic(readings)
        words = clustering.keywords(texts, found.labels, cluster)
        label = "-".join(words) or f"cluster{cluster + 1}"
        name = f"{topic.value}: {' '.join(words)}" if words else f"{topic.value}: cluster {cluster + 1}"
        groups.append(_Group(f"{topic.value}:{label}", name, "cluster", None, topic, words, readings, closeness))
    return [*groups, *quiet], f"by k-means over the classifier's embedding (k={found.k}, seed {seed})"


def _healthy_context(readings: Sequence[Reading], base: Policy, thresholds: Thresholds) -> Context:
    healthy = [r for r in readings if not r.shortfalls]
    return Context(
        base=base,
        thresholds=thresholds,
        healthy_turns=[r.conversation.turns for r in healthy],
        healthy_frustration=[r.mean_frustration for r in healthy],
    )


def find_scenarios(
    conversations: Sequence[PastConversation],
    scorer: Scorer,
    base: Policy,
    *,
    thresholds: Thresholds | None = None,
    min_count: int | None = None,
    seed: int = 0,
    scored: Callable[[int], None] | None = None,
) -> Audit:
    """The audit of `conversations`; `scored(n)` is told of every n customer messages scored (the long
    part, for a progress bar over `sum(len(c.customer_texts) for c in conversations)`)."""
    thresholds = thresholds or Thresholds()
    min_count = min_count if min_count is not None else default_min_count(len(conversations))
    readings = read_all(conversations, scorer, thresholds, scored)
    failing = [r for r in readings if r.shortfalls]
    context = _healthy_context(readings, base, thresholds)
    clusters, grouping = _cluster_groups(failing, getattr(scorer, "embedding", None), seed, min_count)
    scenario_types: list[ScenarioType] = []
    seen_keys: Counter[str] = Counter()
    for group in [*_intent_groups(failing), *clusters]:
        by_shortfall: dict[Shortfall, list[int]] = {}
        for index, reading in enumerate(group.readings):
            by_shortfall.setdefault(reading.shortfalls[0], []).append(index)
        for shortfall, indices in by_shortfall.items():
            members = [group.readings[i] for i in indices]
            closeness = [group.closeness[i] for i in indices] if group.closeness is not None else None
            key = f"{group.key}/{shortfall.value}"
            seen_keys[key] += 1
            if seen_keys[key] > 1:
                key = f"{key}#{seen_keys[key]}"
            scenario_types.append(
                ScenarioType(
                    key=key,
                    name=f"{group.name}, {SHORTFALL_TEXT[shortfall]}",
                    group=group.name,
                    grouping=group.grouping,
                    intent=group.intent,
                    topic=group.topic,
                    keywords=group.keywords,
                    shortfall=shortfall,
                    readings=members,
                    share=len(members) / len(conversations),
                    examples=_examples(members, group.intent, closeness),
                    suggestion=suggest(members, shortfall, group.intent, group.topic, context),
                )
            )
    scenario_types.sort(key=lambda s: (-s.count, s.key))
    shapes = Counter(c.shape for c in conversations)
    return Audit(
        conversations=len(conversations),
        shapes=dict(sorted(shapes.items())),
        fell_short=len(failing),
        healthy=len(readings) - len(failing),
        scenario_types=[s for s in scenario_types if s.count >= min_count],
        smaller=[s for s in scenario_types if s.count < min_count],
        min_count=min_count,
        thresholds=thresholds,
        grouping=grouping,
        classifier=getattr(scorer, "version", "unknown"),
    )
