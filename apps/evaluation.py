"""Replay as evaluation: accuracy figures over `baton replay` records, and policy comparisons.

Pure functions over the records `baton replay` prints (plain dicts), so that the
same figures can be computed from a saved `--output` file, in a notebook or in CI.
A record is labelled when it carries `label.escalate` (true or false); its label
may also give the expected `urgency` ("immediate" or "queued") and the ids of
the `triggers` a support lead expects to fire.

Conventions:
- precision, recall and F1 are 0.0 when undefined (no escalations, no positives);
- per-trigger precision counts labelled conversations where the trigger fired
  (a conversation with several triggers counts for each of them);
- time to escalation is measured on true positives, in customer messages (the
  escalating message's 1-based position among the customer's messages) and in
  seconds from the start of the conversation;
- the median of an even count is the mean of the two middle values; p90 is the
  nearest-rank percentile: the smallest value with at least 90% of values at or
  below it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Record = Mapping[str, Any]

# `baton replay --compare A B` fails when B's F1 is more than this below A's. On a
# few dozen labelled conversations any lost true positive exceeds it; on hundreds
# it absorbs a borderline case or two.
DEFAULT_MAX_F1_DROP = 0.02

# Change codes of `compare_records`, in the order they are listed.
STOPPED_ESCALATING = "stopped_escalating"
STARTED_ESCALATING = "started_escalating"
URGENCY_CHANGED = "urgency_changed"
ESCALATED_EARLIER = "escalated_earlier"
ESCALATED_LATER = "escalated_later"
TRIGGERS_ADDED = "triggers_added"
TRIGGERS_REMOVED = "triggers_removed"


@dataclass(frozen=True)
class Confusion:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp) or 0.0

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn) or 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def label_of(record: Record) -> Mapping[str, Any]:
    return record.get("label") or {}


def is_labelled(record: Record) -> bool:
    return label_of(record).get("escalate") is not None


def trigger_ids(record: Record) -> list[str]:
    return [t["id"] if isinstance(t, Mapping) else str(t) for t in record.get("triggers") or []]


def is_true_positive(record: Record) -> bool:
    return bool(record.get("escalated")) and label_of(record).get("escalate") is True


def messages_to_escalation(record: Record) -> int | None:
    """The escalating message's 1-based position among the customer's messages (None when not escalated).

    Replay records carry it as `messages_to_escalation`; for older records it is
    counted from the decisions, which are logged for customer messages only.
    """
    if record.get("at_message") is None:
        return None
    if record.get("messages_to_escalation") is not None:
        return int(record["messages_to_escalation"])
    at = record["at_message"]
    return sum(1 for d in record.get("decisions") or [] if d["message_index"] <= at and d.get("action") != "rejected")


def confusion(records: Iterable[Record]) -> Confusion:
    tp = fp = fn = tn = 0
    for r in records:
        expected = label_of(r).get("escalate")
        if expected is None:
            continue
        escalated = bool(r.get("escalated"))
        if escalated and expected:
            tp += 1
        elif escalated:
            fp += 1
        elif expected:
            fn += 1
        else:
            tn += 1
    return Confusion(tp, fp, fn, tn)


def trigger_stats(records: Iterable[Record]) -> dict[str, dict[str, Any]]:
    """Per trigger id, over labelled conversations.

    `fired`: conversations where it fired; `necessary`: of those, labelled as
    needing a human; `precision` = necessary / fired. When labels list expected
    triggers: `expected`: conversations whose label lists it; `caught`: of those,
    where it fired; `recall` = caught / expected (None when no label lists it).
    """
    stats: dict[str, dict[str, Any]] = {}

    def entry(trigger: str) -> dict[str, Any]:
        return stats.setdefault(trigger, {"fired": 0, "necessary": 0, "expected": 0, "caught": 0})

    for r in records:
        if not is_labelled(r):
            continue
        fired = set(trigger_ids(r))
        for trigger in fired:
            e = entry(trigger)
            e["fired"] += 1
            e["necessary"] += 1 if label_of(r)["escalate"] else 0
        for trigger in set(label_of(r).get("triggers") or []):
            e = entry(trigger)
            e["expected"] += 1
            e["caught"] += 1 if trigger in fired else 0
    for e in stats.values():
        e["precision"] = _ratio(e["necessary"], e["fired"])
        e["recall"] = _ratio(e["caught"], e["expected"])
    return dict(sorted(stats.items(), key=lambda kv: (-kv[1]["fired"], -kv[1]["expected"], kv[0])))


def urgency_accuracy(records: Iterable[Record]) -> dict[str, Any]:
    """Among true positives whose label gives an urgency: how many escalated with that urgency."""
    judged = [r for r in records if is_true_positive(r) and label_of(r).get("urgency") is not None]
    correct = sum(1 for r in judged if r.get("urgency") == label_of(r)["urgency"])
    return {"correct": correct, "total": len(judged), "accuracy": _ratio(correct, len(judged))}


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[float]) -> float | None:
    """Nearest-rank 90th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(1, math.ceil(0.9 * len(ordered))) - 1])


def time_to_escalation(records: Iterable[Record]) -> dict[str, Any]:
    """Median and p90 time to escalation of true positives, in customer messages and in seconds."""
    positives = [r for r in records if is_true_positive(r)]
    messages = [float(n) for r in positives if (n := messages_to_escalation(r)) is not None]
    seconds = [float(r["seconds_to_escalation"]) for r in positives if r.get("seconds_to_escalation") is not None]
    return {
        "count": len(positives),
        "messages": {"median": median(messages), "p90": p90(messages)},
        "seconds": {"median": median(seconds), "p90": p90(seconds)},
    }


def metrics(records: Sequence[Record]) -> dict[str, Any]:
    """Every figure for one record set, JSON-ready."""
    escalated = sum(1 for r in records if r.get("escalated"))
    matrix = confusion(records)
    return {
        "conversations": len(records),
        "escalated": escalated,
        "escalation_rate": _ratio(escalated, len(records)),
        "rejected_messages": sum(1 for r in records for d in r.get("decisions") or [] if d.get("action") == "rejected"),
        "labelled": matrix.total,
        "confusion": matrix.as_dict(),
        "precision": matrix.precision,
        "recall": matrix.recall,
        "f1": matrix.f1,
        "urgency": urgency_accuracy(records),
        "time_to_escalation": time_to_escalation(records),
        "triggers": trigger_stats(records),
    }


# Scalar figures compared between two runs: name -> path in `metrics()`.
COMPARED = {
    "precision": ("precision",),
    "recall": ("recall",),
    "f1": ("f1",),
    "escalated": ("escalated",),
    "urgency_accuracy": ("urgency", "accuracy"),
    "median_messages": ("time_to_escalation", "messages", "median"),
    "p90_messages": ("time_to_escalation", "messages", "p90"),
    "median_seconds": ("time_to_escalation", "seconds", "median"),
    "p90_seconds": ("time_to_escalation", "seconds", "p90"),
    "tp": ("confusion", "tp"),
    "fp": ("confusion", "fp"),
    "fn": ("confusion", "fn"),
    "tn": ("confusion", "tn"),
}


def _get(figures: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = figures
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def figure(figures: Mapping[str, Any], name: str) -> Any:
    """One compared figure (a key of COMPARED) out of `metrics()`."""
    return _get(figures, COMPARED[name])


def metric_deltas(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float | None]:
    """after - before for each compared figure (None when either side is undefined)."""
    deltas: dict[str, float | None] = {}
    for name, path in COMPARED.items():
        a, b = _get(before, path), _get(after, path)
        deltas[name] = None if a is None or b is None else b - a
    for trigger in sorted(set(before.get("triggers", {})) | set(after.get("triggers", {}))):
        a = _get(before, ("triggers", trigger, "precision"))
        b = _get(after, ("triggers", trigger, "precision"))
        deltas[f"precision[{trigger}]"] = None if a is None or b is None else b - a
    return deltas


def snapshot(record: Record) -> dict[str, Any]:
    """The decision-relevant part of a record, as shown in a comparison."""
    return {
        "escalated": bool(record.get("escalated")),
        "urgency": record.get("urgency"),
        "at_message": record.get("at_message"),
        "messages_to_escalation": messages_to_escalation(record),
        "seconds_to_escalation": record.get("seconds_to_escalation"),
        "triggers": trigger_ids(record),
    }


def changes(before: Record, after: Record) -> tuple[list[str], list[str], list[str]]:
    """How one conversation's outcome moved: (change codes, triggers added, triggers removed)."""
    was, now = bool(before.get("escalated")), bool(after.get("escalated"))
    if was and not now:
        return [STOPPED_ESCALATING], [], []
    if now and not was:
        return [STARTED_ESCALATING], [], []
    if not now:
        return [], [], []
    codes = []
    if before.get("urgency") != after.get("urgency"):
        codes.append(URGENCY_CHANGED)
    if after["at_message"] < before["at_message"]:
        codes.append(ESCALATED_EARLIER)
    elif after["at_message"] > before["at_message"]:
        codes.append(ESCALATED_LATER)
    old, new = trigger_ids(before), trigger_ids(after)
    added = [t for t in new if t not in old]
    removed = [t for t in old if t not in new]
    if added:
        codes.append(TRIGGERS_ADDED)
    if removed:
        codes.append(TRIGGERS_REMOVED)
    return codes, added, removed


def _correct(record: Record) -> bool | None:
    expected = label_of(record).get("escalate")
    return None if expected is None else bool(record.get("escalated")) == expected


def compare_records(before: Sequence[Record], after: Sequence[Record]) -> dict[str, Any]:
    """Compare two runs over the same conversations.

    Returns `changed`: one entry per conversation whose outcome moved, in the
    order of `before` ({conversation_id, before, after, change, ...}, where
    `outcome` is "improved" or "regressed" when the label says the escalation
    decision became right or wrong), and `before`, `after`, `delta`: the metrics
    of each run and after - before.
    """
    old = {r["conversation_id"]: r for r in before}
    new = {r["conversation_id"]: r for r in after}
    if len(old) != len(before) or len(new) != len(after):
        raise ValueError("duplicate conversation ids in a record set")
    if set(old) != set(new):
        only_before = sorted(set(old) - set(new))
        only_after = sorted(set(new) - set(old))
        raise ValueError(f"the record sets differ: only before {only_before}, only after {only_after}")
    changed = []
    for conversation_id, b in old.items():
        a = new[conversation_id]
        codes, added, removed = changes(b, a)
        if not codes:
            continue
        entry: dict[str, Any] = {
            "conversation_id": conversation_id,
            "before": snapshot(b),
            "after": snapshot(a),
            "change": codes,
        }
        if added:
            entry["triggers_added"] = added
        if removed:
            entry["triggers_removed"] = removed
        if is_labelled(b):
            entry["label"] = dict(label_of(b))
            was_right, now_right = _correct(b), _correct(a)
            if was_right != now_right:
                entry["outcome"] = "improved" if now_right else "regressed"
        changed.append(entry)
    before_metrics, after_metrics = metrics(before), metrics(after)
    return {
        "changed": changed,
        "before": before_metrics,
        "after": after_metrics,
        "delta": metric_deltas(before_metrics, after_metrics),
    }


def f1_drop(comparison: Mapping[str, Any]) -> float:
    """How much F1 fell from before to after (negative when it rose)."""
    return comparison["before"]["f1"] - comparison["after"]["f1"]


def exceeds_f1_drop(comparison: Mapping[str, Any], max_drop: float) -> bool:
    # A tolerance so that two equal F1s computed in different orders never count as a drop.
    return f1_drop(comparison) > max_drop + 1e-9
