"""Both kinds of label, counted side by side: false escalations (judged unnecessary) and missed ones (a
conversation that should have been handed off, marked by a reviewer or the agent who got it late).

Per segment, a missed escalation counts under its conversation's segment. Per trigger it counts under the
triggers of the conversation's escalations (it did reach a human, too late, through them), and under
``(none)`` when the bot never handed it off: that is where a trigger is missing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from baton.apps.report.figures import NO_TRIGGER, UNKNOWN
from baton.apps.report.loading import MonthData

SCOPES = ("segment", "trigger")


@dataclass(frozen=True)
class LabelCounts:
    """One segment's or trigger's false and missed escalations, this month and the month before."""

    scope: str  # "segment" or "trigger"
    group: str
    false_escalations: int
    missed_escalations: int
    previous_false_escalations: int
    previous_missed_escalations: int


def _counts(data: MonthData, scope: str) -> tuple[Counter[str], Counter[str]]:
    false: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    segment_of = {c.conversation_id: c.segment or UNKNOWN for c in data.conversations}
    triggers_of: dict[str, list[str]] = {}
    for e in data.escalations:
        triggers_of.setdefault(e.conversation_id, []).extend(e.triggers or (NO_TRIGGER,))
        if e.verdict is False:
            keys = [segment_of.get(e.conversation_id, e.segment or UNKNOWN)] if scope == "segment" else e.triggers
            false.update(keys or (NO_TRIGGER,))
    for m in data.missed:
        if scope == "segment":
            missed[segment_of.get(m.conversation_id, UNKNOWN)] += 1
        else:
            missed.update(dict.fromkeys(triggers_of.get(m.conversation_id) or (NO_TRIGGER,), 1))
    return false, missed


def label_counts(current: MonthData, previous: MonthData) -> list[LabelCounts]:
    """Per segment, then per trigger: false and missed escalations, groups with either in either month;
    most labels first."""
    result: list[LabelCounts] = []
    for scope in SCOPES:
        false_now, missed_now = _counts(current, scope)
        false_before, missed_before = _counts(previous, scope)
        groups = set(false_now) | set(missed_now) | set(false_before) | set(missed_before)
        rows = [LabelCounts(scope, g, false_now[g], missed_now[g], false_before[g], missed_before[g]) for g in groups]
        rows.sort(key=lambda r: (-(r.false_escalations + r.missed_escalations), r.group))
        result.extend(rows)
    return result
