"""Replay as evaluation: accuracy figures over `baton replay` records, and policy comparisons.

Pure functions over the records `baton replay` builds (ReplayRecord, see
apps/replay/records.py). A record may also be given as the dict of a printed
line, so that the same figures can be computed from a saved `--output` file, in
a notebook or in CI: it is validated into a ReplayRecord first. A record is
labelled when its label gives `escalate` (true or false); its label may also
give the expected `urgency` ("immediate" or "queued") and the ids of the
`triggers` a support lead expects to fire. The figures are JSON-ready dicts,
typed below (Metrics, Comparison).

A label from a missed escalation (`baton review label --missed`, exported as
`{"escalate": true, "missed": true, "from_message": I}`) expects the
escalation by message I: a replay that escalates at or before it is a true
positive, one that escalates later, or never, is a miss (a false negative),
and so is counted in recall, in `late` of the figures and in a comparison's
outcome.

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
from typing import TYPE_CHECKING, Any, NotRequired, TypeAlias, TypedDict

if TYPE_CHECKING:
    from baton.apps.replay.records import ReplayLabel, ReplayRecord

# The record models (pydantic) are imported where they are used: the CLI's parser reads DEFAULT_MAX_F1_DROP
# and `baton report` the percentiles, and neither should load them.
# A record, or a printed one read back (json.loads of a line).
RecordLike: TypeAlias = "ReplayRecord | Mapping[str, Any]"

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

    def as_dict(self) -> ConfusionCounts:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


# --- the figures, as the summary JSON holds them ---------------------------------------------------------


class ConfusionCounts(TypedDict):
    tp: int
    fp: int
    fn: int
    tn: int


class TriggerFigures(TypedDict):
    fired: int
    necessary: int
    expected: int
    caught: int
    precision: float | None
    recall: float | None


class UrgencyFigures(TypedDict):
    correct: int
    total: int
    accuracy: float | None


class Percentiles(TypedDict):
    median: float | None
    p90: float | None


class TimeToEscalation(TypedDict):
    count: int
    messages: Percentiles
    seconds: Percentiles


class Metrics(TypedDict):
    conversations: int
    escalated: int
    escalation_rate: float | None
    rejected_messages: int
    labelled: int
    late: int  # labelled missed escalations that the replay escalated after the message the label names
    confusion: ConfusionCounts
    precision: float
    recall: float
    f1: float
    urgency: UrgencyFigures
    time_to_escalation: TimeToEscalation
    triggers: dict[str, TriggerFigures]


class Snapshot(TypedDict):
    escalated: bool
    urgency: str | None
    at_message: int | None
    messages_to_escalation: int | None
    seconds_to_escalation: float | None
    triggers: list[str]


class Change(TypedDict):
    conversation_id: str
    before: Snapshot
    after: Snapshot
    change: list[str]
    triggers_added: NotRequired[list[str]]
    triggers_removed: NotRequired[list[str]]
    label: NotRequired[dict[str, Any]]
    outcome: NotRequired[str]  # "improved" or "regressed"


class Comparison(TypedDict):
    changed: list[Change]
    before: Metrics
    after: Metrics
    delta: dict[str, float | None]


# --- records ---------------------------------------------------------------------------------------------


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def as_record(record: RecordLike) -> ReplayRecord:
    """The typed record; a printed one (a dict) is validated into one."""
    from baton.apps.replay.records import ReplayRecord

    return record if isinstance(record, ReplayRecord) else ReplayRecord.model_validate(record)


def as_records(records: Iterable[RecordLike]) -> list[ReplayRecord]:
    return [as_record(r) for r in records]


def label_of(record: RecordLike) -> ReplayLabel:
    from baton.apps.replay.records import ReplayLabel

    return as_record(record).label or ReplayLabel()


def is_labelled(record: RecordLike) -> bool:
    return as_record(record).labelled


def trigger_ids(record: RecordLike) -> list[str]:
    return as_record(record).trigger_ids


def escalated_in_time(record: RecordLike) -> bool:
    """Escalated, and by the message a missed-escalation label says it should have come at (when it says one)."""
    r = as_record(record)
    if not r.escalated:
        return False
    from_message = label_of(r).from_message
    return from_message is None or r.at_message is None or r.at_message <= from_message


def is_late(record: RecordLike) -> bool:
    """Escalated, but after the message a missed-escalation label names: counted as a miss."""
    r = as_record(record)
    return r.escalated and label_of(r).escalate is True and not escalated_in_time(r)


def is_true_positive(record: RecordLike) -> bool:
    r = as_record(record)
    return escalated_in_time(r) and label_of(r).escalate is True


def messages_to_escalation(record: RecordLike) -> int | None:
    """The escalating message's 1-based position among the customer's messages (None when not escalated).

    Replay records carry it as `messages_to_escalation`; for older records it is
    counted from the decisions, which are logged for customer messages only.
    """
    r = as_record(record)
    if r.at_message is None:
        return None
    if r.messages_to_escalation is not None:
        return r.messages_to_escalation
    at = r.at_message
    return sum(1 for d in r.decisions if d.message_index <= at and d.action != "rejected")


def confusion(records: Iterable[RecordLike]) -> Confusion:
    tp = fp = fn = tn = 0
    for r in as_records(records):
        expected = label_of(r).escalate
        if expected is None:
            continue
        escalated = r.escalated
        if escalated and expected and not escalated_in_time(r):
            fn += 1  # too late: the label names the message it should have come at
        elif escalated and expected:
            tp += 1
        elif escalated:
            fp += 1
        elif expected:
            fn += 1
        else:
            tn += 1
    return Confusion(tp, fp, fn, tn)


def trigger_stats(records: Iterable[RecordLike]) -> dict[str, TriggerFigures]:
    """Per trigger id, over labelled conversations.

    `fired`: conversations where it fired; `necessary`: of those, labelled as
    needing a human; `precision` = necessary / fired. When labels list expected
    triggers: `expected`: conversations whose label lists it; `caught`: of those,
    where it fired; `recall` = caught / expected (None when no label lists it).
    """
    stats: dict[str, TriggerFigures] = {}

    def entry(trigger: str) -> TriggerFigures:
        empty: TriggerFigures = {
            "fired": 0,
            "necessary": 0,
            "expected": 0,
            "caught": 0,
            "precision": None,
            "recall": None,
        }
        return stats.setdefault(trigger, empty)

    for r in as_records(records):
        if not r.labelled:
            continue
        fired = set(r.trigger_ids)
        for trigger in fired:
            e = entry(trigger)
            e["fired"] += 1
            e["necessary"] += 1 if label_of(r).escalate else 0
        for trigger in set(label_of(r).expected_triggers):
            e = entry(trigger)
            e["expected"] += 1
            e["caught"] += 1 if trigger in fired else 0
    for e in stats.values():
        e["precision"] = _ratio(e["necessary"], e["fired"])
        e["recall"] = _ratio(e["caught"], e["expected"])
    return dict(sorted(stats.items(), key=lambda kv: (-kv[1]["fired"], -kv[1]["expected"], kv[0])))


def urgency_accuracy(records: Iterable[RecordLike]) -> UrgencyFigures:
    """Among true positives whose label gives an urgency: how many escalated with that urgency."""
    judged = [r for r in as_records(records) if is_true_positive(r) and label_of(r).urgency is not None]
    correct = sum(1 for r in judged if r.urgency == label_of(r).urgency)
    return {"correct": correct, "total": len(judged), "accuracy": _ratio(correct, len(judged))}


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[float]) -> float | None:
    """Nearest-rank 90th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(1, math.ceil(0.9 * len(ordered))) - 1])


def time_to_escalation(records: Iterable[RecordLike]) -> TimeToEscalation:
    """Median and p90 time to escalation of true positives, in customer messages and in seconds."""
    positives = [r for r in as_records(records) if is_true_positive(r)]
    messages = [float(n) for r in positives if (n := messages_to_escalation(r)) is not None]
    seconds = [float(r.seconds_to_escalation) for r in positives if r.seconds_to_escalation is not None]
    return {
        "count": len(positives),
        "messages": {"median": median(messages), "p90": p90(messages)},
        "seconds": {"median": median(seconds), "p90": p90(seconds)},
    }


def metrics(records: Sequence[RecordLike]) -> Metrics:
    """Every figure for one record set, JSON-ready."""
    typed = as_records(records)
    escalated = sum(1 for r in typed if r.escalated)
    matrix = confusion(typed)
    return {
        "conversations": len(typed),
        "escalated": escalated,
        "escalation_rate": _ratio(escalated, len(typed)),
        "rejected_messages": sum(r.rejected_messages for r in typed),
        "labelled": matrix.total,
        "late": sum(1 for r in typed if is_late(r)),
        "confusion": matrix.as_dict(),
        "precision": matrix.precision,
        "recall": matrix.recall,
        "f1": matrix.f1,
        "urgency": urgency_accuracy(typed),
        "time_to_escalation": time_to_escalation(typed),
        "triggers": trigger_stats(typed),
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


def metric_deltas(before: Metrics, after: Metrics) -> dict[str, float | None]:
    """after - before for each compared figure (None when either side is undefined)."""
    deltas: dict[str, float | None] = {}
    for name, path in COMPARED.items():
        a, b = _get(before, path), _get(after, path)
        deltas[name] = None if a is None or b is None else b - a
    for trigger in sorted(set(before["triggers"]) | set(after["triggers"])):
        a = _get(before, ("triggers", trigger, "precision"))
        b = _get(after, ("triggers", trigger, "precision"))
        deltas[f"precision[{trigger}]"] = None if a is None or b is None else b - a
    return deltas


def snapshot(record: RecordLike) -> Snapshot:
    """The decision-relevant part of a record, as shown in a comparison."""
    r = as_record(record)
    return {
        "escalated": r.escalated,
        "urgency": r.urgency,
        "at_message": r.at_message,
        "messages_to_escalation": messages_to_escalation(r),
        "seconds_to_escalation": r.seconds_to_escalation,
        "triggers": r.trigger_ids,
    }


def changes(before: RecordLike, after: RecordLike) -> tuple[list[str], list[str], list[str]]:
    """How one conversation's outcome moved: (change codes, triggers added, triggers removed)."""
    a, b = as_record(before), as_record(after)
    was, now = a.escalated, b.escalated
    if was and not now:
        return [STOPPED_ESCALATING], [], []
    if now and not was:
        return [STARTED_ESCALATING], [], []
    if not now:
        return [], [], []
    codes = []
    if a.urgency != b.urgency:
        codes.append(URGENCY_CHANGED)
    if a.at_message is not None and b.at_message is not None:
        if b.at_message < a.at_message:
            codes.append(ESCALATED_EARLIER)
        elif b.at_message > a.at_message:
            codes.append(ESCALATED_LATER)
    old, new = a.trigger_ids, b.trigger_ids
    added = [t for t in new if t not in old]
    removed = [t for t in old if t not in new]
    if added:
        codes.append(TRIGGERS_ADDED)
    if removed:
        codes.append(TRIGGERS_REMOVED)
    return codes, added, removed


def _correct(record: ReplayRecord) -> bool | None:
    expected = label_of(record).escalate
    return None if expected is None else escalated_in_time(record) == expected


def compare_records(before: Sequence[RecordLike], after: Sequence[RecordLike]) -> Comparison:
    """Compare two runs over the same conversations.

    Returns `changed`: one entry per conversation whose outcome moved, in the
    order of `before` ({conversation_id, before, after, change, ...}, where
    `outcome` is "improved" or "regressed" when the label says the escalation
    decision became right or wrong), and `before`, `after`, `delta`: the metrics
    of each run and after - before.
    """
    first, second = as_records(before), as_records(after)
    old = {r.conversation_id: r for r in first}
    new = {r.conversation_id: r for r in second}
    if len(old) != len(first) or len(new) != len(second):
        raise ValueError("duplicate conversation ids in a record set")
    if set(old) != set(new):
        only_before = sorted(set(old) - set(new))
        only_after = sorted(set(new) - set(old))
        raise ValueError(f"the record sets differ: only before {only_before}, only after {only_after}")
    changed: list[Change] = []
    for conversation_id, b in old.items():
        a = new[conversation_id]
        codes, added, removed = changes(b, a)
        if not codes:
            continue
        entry: Change = {
            "conversation_id": conversation_id,
            "before": snapshot(b),
            "after": snapshot(a),
            "change": codes,
        }
        if added:
            entry["triggers_added"] = added
        if removed:
            entry["triggers_removed"] = removed
        if b.labelled:
            entry["label"] = label_of(b).printed()
            was_right, now_right = _correct(b), _correct(a)
            if was_right != now_right:
                entry["outcome"] = "improved" if now_right else "regressed"
        changed.append(entry)
    before_metrics, after_metrics = metrics(first), metrics(second)
    return {
        "changed": changed,
        "before": before_metrics,
        "after": after_metrics,
        "delta": metric_deltas(before_metrics, after_metrics),
    }


def f1_drop(comparison: Comparison) -> float:
    """How much F1 fell from before to after (negative when it rose)."""
    return comparison["before"]["f1"] - comparison["after"]["f1"]


def exceeds_f1_drop(comparison: Comparison, max_drop: float) -> bool:
    # A tolerance so that two equal F1s computed in different orders never count as a drop.
    return f1_drop(comparison) > max_drop + 1e-9
