"""Month over month: movements of the overall figures, the flagged ones with a reading, and per-trigger
accuracy with tighten/loosen recommendations."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from baton.apps.evaluation import median
from baton.apps.report.figures import NO_TRIGGER, Figures, Number, ratio, round_figure
from baton.apps.report.formatting import pct, value_text
from baton.apps.report.loading import EscalationFacts, MonthData

MOVEMENT_THRESHOLD = 0.20  # a relative change above this is flagged
MIN_JUDGED = 5  # judged escalations a trigger needs before it gets a recommendation
TIGHTEN_BELOW = 0.6  # precision under which a trigger should be tightened

# Month-over-month comparisons, in the order they are listed.
MOVEMENT_FIGURES = (
    "conversations",
    "escalation_rate",
    "escalation_accuracy",
    "messages_to_escalation_median",
    "seconds_to_escalation_median",
    "seconds_to_pickup_median",
    "post_escalation_csat",
    "overall_csat",
    "abandonment_rate",
)

LABELS = {
    "conversations": "conversations",
    "escalated_conversations": "escalated conversations",
    "escalations": "escalations",
    "escalation_rate": "escalation rate",
    "escalation_accuracy": "escalation accuracy",
    "messages_to_escalation_median": "median messages to escalation",
    "messages_to_escalation_p90": "p90 messages to escalation",
    "seconds_to_escalation_median": "median time to escalation",
    "seconds_to_escalation_p90": "p90 time to escalation",
    "seconds_to_pickup_median": "median time to pickup",
    "post_escalation_csat": "post-escalation CSAT",
    "overall_csat": "overall CSAT",
    "abandoned": "abandoned conversations",
    "abandonment_rate": "abandonment rate",
}


@dataclass(frozen=True)
class Movement:
    """One figure, the month before and this month."""

    figure: str
    previous: Number | None
    current: Number | None
    relative_change: float | None
    flagged: bool

    def rounded(self) -> Movement:
        return replace(
            self,
            previous=round_figure(self.figure, self.previous),
            current=round_figure(self.figure, self.current),
            relative_change=round_figure("relative_change", self.relative_change),
        )


@dataclass(frozen=True)
class Flag:
    """A flagged movement with its sentence; the escalation rate's also with its likely reading:

    - rising: the rate rose; the trigger whose share of conversations grew most (``driver``), and triggers new
      this month, point at a product change (a release, an outage) or a policy change;
    - falling_with_abandonment: the rate fell while abandonment rose: customers may be giving up before
      reaching a human;
    - falling: the rate fell and abandonment did not rise.
    """

    figure: str
    direction: str  # "up" or "down"
    previous: Number | None
    current: Number | None
    relative_change: float | None
    reading: str | None = None
    driver: str | None = None
    new_triggers: list[str] = field(default_factory=list)
    message: str = ""

    def rounded(self) -> Flag:
        return replace(
            self,
            previous=round_figure(self.figure, self.previous),
            current=round_figure(self.figure, self.current),
            relative_change=round_figure("relative_change", self.relative_change),
        )


@dataclass(frozen=True)
class TriggerAccuracy:
    """One trigger's judged escalations, precision, late necessary ones, and its recommendation."""

    trigger: str
    escalations: int
    judged: int
    judged_necessary: int
    judged_unnecessary: int
    judged_by_review: int
    precision: float | None
    late_necessary: int
    recommendation: str | None  # "tighten", "loosen" or None
    evidence: str | None

    def rounded(self) -> TriggerAccuracy:
        return replace(self, precision=round_figure("precision", self.precision))


# --- accuracy per trigger and recommendations ---------------------------------------------------------------


def trigger_accuracy(
    data: MonthData, min_judged: int = MIN_JUDGED, tighten_below: float = TIGHTEN_BELOW
) -> list[TriggerAccuracy]:
    """Per trigger: judged escalations, precision, late necessary ones, and a tighten/loosen recommendation.

    Late: judged necessary, with more customer messages before the escalation than the month's median.
    Tighten when precision < ``tighten_below`` over at least ``min_judged`` judged escalations; loosen
    when, over as many, most of the escalations judged necessary came late.
    """
    late_after = median([float(e.messages_to_escalation) for e in data.escalations if e.messages_to_escalation])
    per: dict[str, list[EscalationFacts]] = defaultdict(list)
    for e in data.escalations:
        for trigger in e.triggers or (NO_TRIGGER,):
            per[trigger].append(e)
    result = []
    for trigger, escs in per.items():
        judged = [e for e in escs if e.verdict is not None]
        necessary = [e for e in judged if e.verdict]
        late = [
            e
            for e in necessary
            if late_after is not None and e.messages_to_escalation is not None and e.messages_to_escalation > late_after
        ]
        precision = ratio(len(necessary), len(judged))
        unnecessary = len(judged) - len(necessary)
        recommendation = evidence = None
        if len(judged) >= min_judged and precision is not None and precision < tighten_below:
            recommendation = "tighten"
            evidence = f"tighten {trigger}: {unnecessary} of {len(judged)} judged unnecessary"
        elif len(judged) >= min_judged and necessary and 2 * len(late) > len(necessary):
            recommendation = "loosen"
            evidence = (
                f"loosen {trigger}: {len(late)} of {len(necessary)} escalations judged necessary came after more "
                f"than {late_after:g} customer messages (the month's median); it could fire earlier"
            )
        result.append(
            TriggerAccuracy(
                trigger=trigger,
                escalations=len(escs),
                judged=len(judged),
                judged_necessary=len(necessary),
                judged_unnecessary=unnecessary,
                judged_by_review=sum(1 for e in escs if e.review is not None),
                precision=precision,
                late_necessary=len(late),
                recommendation=recommendation,
                evidence=evidence,
            )
        )
    result.sort(key=lambda t: (-t.escalations, t.trigger))
    return result


# --- month over month -------------------------------------------------------------------------------------


def relative_change(previous: float | None, current: float | None) -> float | None:
    if previous is None or current is None or previous == 0:
        return None
    return (current - previous) / previous


def _moved(previous: float | None, current: float | None, threshold: float) -> bool:
    if previous is None or current is None:
        return False
    if previous == 0:
        return current > 0
    change = relative_change(previous, current)
    return change is not None and abs(change) > threshold


def _change_text(previous: float | None, current: float | None) -> str:
    change = relative_change(previous, current)
    if change is None:
        return "up from zero" if previous == 0 and current else "unchanged"
    return f"{'up' if change > 0 else 'down'} {abs(100 * change):.0f}%"


def movements(previous: Figures, current: Figures, threshold: float) -> list[Movement]:
    return [
        Movement(
            figure=name,
            previous=previous.value(name),
            current=current.value(name),
            relative_change=relative_change(previous.value(name), current.value(name)),
            flagged=_moved(previous.value(name), current.value(name), threshold),
        )
        for name in MOVEMENT_FIGURES
    ]


def _trigger_shares(current: Mapping[str, Figures], previous: Mapping[str, Figures]) -> list[tuple[float, str]]:
    """(change in the share of conversations escalated under the trigger, trigger), largest rise first."""
    shares = []
    for trigger in set(current) | set(previous):
        now = _share(current.get(trigger))
        before = _share(previous.get(trigger))
        shares.append((now - before, trigger))
    shares.sort(key=lambda s: (-s[0], s[1]))
    return shares


def _share(figures: Figures | None) -> float:
    return (figures.escalation_rate if figures is not None else None) or 0.0


def _escalations(figures: Figures | None) -> int:
    return figures.escalations if figures is not None else 0


def flagged_movements(
    previous: Figures,
    current: Figures,
    triggers_now: Mapping[str, Figures],
    triggers_before: Mapping[str, Figures],
    threshold: float,
) -> list[Flag]:
    """Flagged movements, each with a sentence; the escalation rate's also with its likely reading (see Flag)."""
    result = []
    abandonment_up = _moved(previous.abandonment_rate, current.abandonment_rate, threshold) and (
        (current.abandonment_rate or 0) > (previous.abandonment_rate or 0)
    )
    for move in movements(previous, current, threshold):
        if not move.flagged:
            continue
        name, before, now = move.figure, move.previous, move.current
        assert before is not None and now is not None  # a movement with a side missing is never flagged
        direction = "up" if now > before else "down"
        message = f"{LABELS[name]} {_change_text(before, now)} ({value_text(name, before)} → {value_text(name, now)})"
        reading = driver = None
        new: list[str] = []
        if name == "escalation_rate" and direction == "up":
            new = sorted(t for t in triggers_now if t != NO_TRIGGER and t not in triggers_before)
            rise, top = next(iter(_trigger_shares(triggers_now, triggers_before)), (0.0, None))
            parts = [message]
            if top is not None and rise > 0:
                a, b = _escalations(triggers_before.get(top)), _escalations(triggers_now.get(top))
                share_a, share_b = _share(triggers_before.get(top)), _share(triggers_now.get(top))
                parts.append(
                    f"driven by trigger {top} ({a} → {b} escalations, {pct(share_a)} → {pct(share_b)} of conversations)"
                )
                driver = top
            if new:
                parts.append(f"new triggers this month: {', '.join(new)}")
            parts.append(f"conversations {previous.conversations} → {current.conversations}")
            reading = "rising"
            message = "; ".join(parts) + ". Check for a product change (a release, an outage) or a policy change."
        elif name == "escalation_rate" and abandonment_up:
            reading = "falling_with_abandonment"
            message = (
                f"{message} but abandonment rate "
                f"{_change_text(previous.abandonment_rate, current.abandonment_rate)} "
                f"({pct(previous.abandonment_rate)} → {pct(current.abandonment_rate)}): "
                "customers may be giving up before reaching a human."
            )
        elif name == "escalation_rate":
            reading = "falling"
            message = (
                f"{message} and abandonment did not rise: fewer handoffs. Check that necessary "
                "escalations were not lost (accuracy, CSAT) and whether a policy change raised thresholds."
            )
        result.append(
            Flag(
                figure=name,
                direction=direction,
                previous=before,
                current=now,
                relative_change=move.relative_change,
                reading=reading,
                driver=driver,
                new_triggers=new,
                message=message,
            )
        )
    return result
