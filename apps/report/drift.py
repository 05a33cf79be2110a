"""Drift: has the mix of what customers write about moved since the month before?

A new failure mode after a product change shows first as a shift in what customers ask: a topic that was
rare becomes common, or an intent (cancellation, billing disputes) grows. The mix is read from the
customer messages of a `baton export` file (each customer message carries the classifier's recorded
``signals``: its ``topic`` and ``intents``), counted in the month of the message's ``at``:

- the topic mix: one count per customer message with a topic;
- the intent mix: one count per intent a message carries, and ``(none)`` for a message with none.

Each mix is compared with the month before by the Jensen-Shannon distance (the square root of the
Jensen-Shannon divergence in bits): 0 for the same mix, 1 for mixes with nothing in common. A distance of
at least ``DRIFT_THRESHOLD`` (0.15) is flagged, with the categories whose share moved most, when both
months have at least ``MIN_MESSAGES`` (30) messages; below that a month's mix is too noisy to compare.
For scale: a topic growing from 5% to 30% of the messages, the rest in proportion, is a distance of about
0.29; month-to-month noise of a few points on a steady mix stays under 0.05.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from baton.apps.report.loading import ReportError
from baton.apps.report.months import Month

DRIFT_THRESHOLD = 0.15
MIN_MESSAGES = 30
NO_INTENT = "(none)"
MIXES = ("topic", "intent")


@dataclass(frozen=True)
class Shift:
    """One category's share of the mix, the month before and this month."""

    category: str
    previous_share: float
    current_share: float


@dataclass(frozen=True)
class Drift:
    """One mix (topics or intents) of this month against the month before."""

    mix: str  # "topic" or "intent"
    distance: float | None  # Jensen-Shannon distance; None when a month has too few messages
    threshold: float
    flagged: bool
    current_messages: int
    previous_messages: int
    shifts: list[Shift] = field(default_factory=list)  # the largest moves first
    message: str = ""


def js_distance(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """The Jensen-Shannon distance (base 2) between two count or share mappings; both must be non-empty."""
    p_total, q_total = sum(p.values()), sum(q.values())
    distance = 0.0
    for key in set(p) | set(q):
        a, b = p.get(key, 0) / p_total, q.get(key, 0) / q_total
        m = (a + b) / 2
        if a:
            distance += a * math.log2(a / m) / 2
        if b:
            distance += b * math.log2(b / m) / 2
    return math.sqrt(max(distance, 0.0))


@dataclass
class MonthMix:
    topics: Counter[str] = field(default_factory=Counter)
    intents: Counter[str] = field(default_factory=Counter)
    messages: int = 0


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def month_mixes(lines: Iterable[Mapping[str, Any]], months: Iterable[Month]) -> dict[Month, MonthMix]:
    """The topic and intent counts of the customer messages of each month (messages with recorded signals)."""
    mixes = {m: MonthMix() for m in months}
    for line in lines:
        for message in line.get("messages") or ():
            signals = message.get("signals")
            when = _when(message.get("at"))
            if message.get("role") != "customer" or not isinstance(signals, Mapping) or when is None:
                continue
            mix = mixes.get(Month.containing(when))
            if mix is None:
                continue
            mix.messages += 1
            if signals.get("topic"):
                mix.topics[str(signals["topic"])] += 1
            intents = [str(i) for i in signals.get("intents") or ()]
            mix.intents.update(intents or [NO_INTENT])
    return mixes


def _shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def compare_mix(mix: str, current: Counter[str], previous: Counter[str], threshold: float = DRIFT_THRESHOLD) -> Drift:
    now, before = sum(current.values()), sum(previous.values())
    if now < MIN_MESSAGES or before < MIN_MESSAGES:
        note = f"{mix} mix not compared: fewer than {MIN_MESSAGES} counted in a month ({before} → {now})"
        return Drift(mix, None, threshold, False, now, before, message=note)
    distance = js_distance(current, previous)
    a, b = _shares(previous), _shares(current)
    shifts = sorted(
        (Shift(k, round(a.get(k, 0.0), 4), round(b.get(k, 0.0), 4)) for k in set(a) | set(b)),
        key=lambda s: (-abs(s.current_share - s.previous_share), s.category),
    )
    flagged = distance >= threshold
    moves = ", ".join(f"{s.category} {100 * s.previous_share:.0f}% → {100 * s.current_share:.0f}%" for s in shifts[:3])
    if flagged:
        message = (
            f"{mix} mix shifted (Jensen-Shannon distance {distance:.2f} ≥ {threshold:g}): {moves}; "
            "a new failure mode (a release, an outage) or a change in who writes in may need a trigger."
        )
    else:
        message = f"{mix} mix steady (Jensen-Shannon distance {distance:.2f} < {threshold:g})"
    return Drift(mix, round(distance, 4), threshold, flagged, now, before, shifts[:5], message)


def drift(lines: Iterable[Mapping[str, Any]], month: Month, threshold: float = DRIFT_THRESHOLD) -> list[Drift]:
    """The topic and intent mixes of ``month`` against the month before."""
    mixes = month_mixes(lines, [month, month.previous()])
    now, before = mixes[month], mixes[month.previous()]
    return [
        compare_mix("topic", now.topics, before.topics, threshold),
        compare_mix("intent", now.intents, before.intents, threshold),
    ]


def read_export(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a `baton export` file. Raises ReportError naming the file and line."""
    lines: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as source:
            for number, text in enumerate(source, start=1):
                if not text.strip():
                    continue
                try:
                    line = json.loads(text)
                except json.JSONDecodeError as err:
                    raise ReportError(f"{path}:{number}: not JSON: {err.msg}") from None
                if not isinstance(line, dict) or not isinstance(line.get("messages"), list):
                    raise ReportError(f"{path}:{number}: messages: a list of messages is required")
                lines.append(line)
    except OSError as err:
        raise ReportError(f"cannot read {path}: {err.strerror or err}") from None
    return lines
