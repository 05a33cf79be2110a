"""`baton model eval`: the shipped classifier and the rule scorer, measured in one run on held-out data.

Held-out data: the sources' held-out split (apps/model/dataset.py; GoEmotions rows count for
frustration only) and the team's evaluation messages (models/written/eval_messages.jsonl), neither
ever used for training. Figures: per-intent precision, recall and F1, topic accuracy, and the
Spearman correlation of frustration with the human ratings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from baton.apps.model.dataset import load_all, split
from baton.apps.model.examples import Example
from baton.apps.model.team import EVAL_FILE, load_team_examples
from baton.classifier.model import Classifier
from baton.contract.messages import Intent
from baton.domain.scoring import read, score

# The targets the classifier is held to on this split.
TARGETS = {"human_request_f1": 0.90, "human_request_precision": 0.90, "intent_f1": 0.80, "frustration_spearman": 0.55}


@dataclass
class Reading:
    intents: set[str]
    topic: str | None
    frustration: float


@dataclass
class Scores:
    """One scorer's figures on the held-out rows."""

    name: str
    per_intent: dict[str, dict[str, float]] = field(default_factory=dict)
    topic_accuracy: float | None = None
    frustration_spearman: float | None = None


def held_out_rows() -> list[Example]:
    _, held_out = split(load_all())
    return [*held_out, *load_team_examples(name=EVAL_FILE)]


def rule_reading(text: str) -> Reading:
    reading = read(text)
    intents = {i.value for i in reading.intents}
    if reading.resolved and not intents:
        intents.add(Intent.RESOLVED.value)
    return Reading(intents=intents, topic=None, frustration=score(text).frustration)


def model_reader(classifier: Classifier) -> Callable[[Sequence[str]], list[Reading]]:
    def read_many(texts: Sequence[str]) -> list[Reading]:
        out = []
        for start in range(0, len(texts), 512):
            for s in classifier.score_many(list(texts[start : start + 512])):
                out.append(
                    Reading(intents={i.value for i in s.intents}, topic=s.topic.value, frustration=s.frustration)
                )
        return out

    return read_many


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation, ties given their average rank."""

    def ranks(values: Sequence[float]) -> np.ndarray:
        array = np.asarray(values, dtype=np.float64)
        order = array.argsort(kind="mergesort")
        result = np.empty(len(array))
        sorted_values = array[order]
        i = 0
        while i < len(array):
            j = i
            while j + 1 < len(array) and sorted_values[j + 1] == sorted_values[i]:
                j += 1
            result[order[i : j + 1]] = (i + j) / 2.0
            i = j + 1
        return result

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def measure(name: str, rows: Sequence[Example], readings: Sequence[Reading]) -> Scores:
    result = Scores(name=name)
    labelled = [(r, g) for r, g in zip(rows, readings, strict=True) if r.topic is not None]
    for intent in Intent:
        truth = np.array([intent.value in r.intents for r, _ in labelled])
        guess = np.array([intent.value in g.intents for _, g in labelled])
        tp = float(np.sum(truth & guess))
        precision = tp / max(1.0, float(guess.sum()))
        recall = tp / max(1.0, float(truth.sum()))
        f1 = 2 * precision * recall / max(1e-9, precision + recall)
        result.per_intent[intent.value] = {
            "support": int(truth.sum()),
            "precision": round(precision, 3),
            "recall": round(recall, 3),
            "f1": round(f1, 3),
        }
    topics = [(r.topic, g.topic) for r, g in labelled if g.topic is not None]
    if topics:
        result.topic_accuracy = round(sum(1 for t, g in topics if t == g) / len(topics), 3)
    rated = [(r.frustration, g.frustration) for r, g in zip(rows, readings, strict=True) if r.frustration is not None]
    if rated:
        result.frustration_spearman = round(spearman([t for t, _ in rated], [g for _, g in rated]), 3)
    return result


def evaluate(classifier: Classifier) -> tuple[list[Example], Scores, Scores]:
    rows = held_out_rows()
    texts = [r.text for r in rows]
    model = measure(f"classifier {classifier.version}", rows, model_reader(classifier)(texts))
    rules = measure("rule scorer", rows, [rule_reading(t) for t in texts])
    return rows, model, rules


def targets_met(scores: Scores) -> dict[str, bool]:
    human = scores.per_intent[Intent.HUMAN_REQUEST.value]
    others = [v["f1"] for k, v in scores.per_intent.items() if k != Intent.HUMAN_REQUEST.value and v["support"]]
    return {
        "human_request F1 >= 0.90": human["f1"] >= TARGETS["human_request_f1"],
        "human_request precision >= 0.90": human["precision"] >= TARGETS["human_request_precision"],
        "every other intent F1 >= 0.80": bool(others) and min(others) >= TARGETS["intent_f1"],
        "frustration Spearman >= 0.55": (scores.frustration_spearman or 0.0) >= TARGETS["frustration_spearman"],
    }


def render(rows: Sequence[Example], model: Scores, rules: Scores) -> str:
    team = sum(1 for r in rows if r.source == "written")
    lines = [
        f"held-out rows: {len(rows)} ({len(rows) - team} from the sources' held-out split, {team} team-written)",
        "",
        f"{'intent':20s} {'support':>7s}   {'model P':>7s} {'R':>6s} {'F1':>6s}   {'rules P':>7s} {'R':>6s} {'F1':>6s}",
    ]
    for intent, m in model.per_intent.items():
        r = rules.per_intent[intent]
        lines.append(
            f"{intent:20s} {m['support']:7d}   {m['precision']:7.3f} {m['recall']:6.3f} {m['f1']:6.3f}"
            f"   {r['precision']:7.3f} {r['recall']:6.3f} {r['f1']:6.3f}"
        )
    lines += [
        "",
        f"topic accuracy:        model {model.topic_accuracy}   rules n/a (the rules have no topics)",
        f"frustration Spearman:  model {model.frustration_spearman}   rules {rules.frustration_spearman}",
        "",
        "targets:",
        *(f"  {'met ' if ok else 'MISS'} {name}" for name, ok in targets_met(model).items()),
    ]
    return "\n".join(lines)
