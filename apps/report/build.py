"""The report of a month against the month before: a typed ``Report``, and its JSON-ready form.

``Report.as_json()`` is the document `baton report --format json` prints, with stable keys (see
docs/reporting.md); ``Report.from_json()`` reads it back. The figures in a Report are rounded as shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from baton.apps.report.drift import DRIFT_THRESHOLD, Drift, Shift, drift
from baton.apps.report.figures import Figures, empty_figures, group_figures, high_value_figures, month_figures
from baton.apps.report.flags import (
    MIN_JUDGED,
    MOVEMENT_THRESHOLD,
    TIGHTEN_BELOW,
    Flag,
    Movement,
    TriggerAccuracy,
    flagged_movements,
    movements,
    trigger_accuracy,
)
from baton.apps.report.labels import LabelCounts, label_counts
from baton.apps.report.loading import MonthData, load_months, store_session
from baton.apps.report.months import Month

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

DEFAULT_HIGH_VALUE_SEGMENTS = ("enterprise",)


@dataclass(frozen=True)
class ReportOptions:
    by: str = "segment"
    high_value_segments: tuple[str, ...] = DEFAULT_HIGH_VALUE_SEGMENTS
    movement_threshold: float = MOVEMENT_THRESHOLD
    min_judged: int = MIN_JUDGED
    tighten_below: float = TIGHTEN_BELOW
    drift_threshold: float = DRIFT_THRESHOLD


@dataclass(frozen=True)
class Block:
    """The figures of one set this month, with the same set's the month before (rounded)."""

    current: Figures
    previous: Figures

    def as_json(self) -> dict[str, Any]:
        return {**self.current.as_dict(), "previous": self.previous.as_dict()}

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> Block:
        return cls(Figures.from_dict(values), Figures.from_dict(values["previous"]))


@dataclass(frozen=True, kw_only=True)
class Group(Block):
    """One group of the grouping (a segment, a trigger, a channel or an urgency)."""

    name: str

    def as_json(self) -> dict[str, Any]:
        return {"group": self.name, **super().as_json()}

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> Group:
        block = Block.from_json(values)
        return cls(name=values["group"], current=block.current, previous=block.previous)


@dataclass(frozen=True)
class Report:
    month: Month
    previous_month: Month
    by: str
    high_value_segments: tuple[str, ...]
    movement_threshold: float
    overall: Block
    groups: list[Group]
    high_value: Block  # the high-value segments together
    movements: list[Movement]
    flags: list[Flag]
    triggers: list[TriggerAccuracy]
    notes: list[str]
    labels: list[LabelCounts] = field(default_factory=list)  # false and missed escalations per segment, trigger
    drift: list[Drift] = field(default_factory=list)  # the topic and intent mixes, when traffic was given

    def as_json(self) -> dict[str, Any]:
        """The JSON-ready document, its keys in the order they are printed."""
        return {
            "month": str(self.month),
            "previous_month": str(self.previous_month),
            "by": self.by,
            "high_value_segments": list(self.high_value_segments),
            "movement_threshold": self.movement_threshold,
            "overall": self.overall.as_json(),
            "groups": [group.as_json() for group in self.groups],
            "high_value": {"segments": list(self.high_value_segments), **self.high_value.as_json()},
            "movements": [asdict(move) for move in self.movements],
            "flags": [asdict(flag) for flag in self.flags],
            "triggers": [asdict(trigger) for trigger in self.triggers],
            "notes": list(self.notes),
            "labels": [asdict(counts) for counts in self.labels],
            "drift": [asdict(d) for d in self.drift],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Report:
        return cls(
            month=Month.parse(document["month"]),
            previous_month=Month.parse(document["previous_month"]),
            by=document["by"],
            high_value_segments=tuple(document["high_value_segments"]),
            movement_threshold=document["movement_threshold"],
            overall=Block.from_json(document["overall"]),
            groups=[Group.from_json(group) for group in document["groups"]],
            high_value=Block.from_json(document["high_value"]),
            movements=[Movement(**move) for move in document["movements"]],
            flags=[Flag(**{**flag, "new_triggers": list(flag["new_triggers"])}) for flag in document["flags"]],
            triggers=[TriggerAccuracy(**trigger) for trigger in document["triggers"]],
            notes=list(document["notes"]),
            labels=[LabelCounts(**counts) for counts in document.get("labels", ())],
            drift=[
                Drift(**{**d, "shifts": [Shift(**shift) for shift in d["shifts"]]}) for d in document.get("drift", ())
            ],
        )


def as_report(result: Report | Mapping[str, Any]) -> Report:
    """A Report, from itself or from its JSON-ready document."""
    return result if isinstance(result, Report) else Report.from_json(result)


def _block(current: Figures, previous: Figures) -> Block:
    return Block(current.rounded(), previous.rounded())


def _notes(current: MonthData, by: str) -> list[str]:
    notes = [
        "A conversation and its escalations count in the month the conversation started.",
        "Accuracy: the newest review label overrides the agent's disposition; judged = escalations with either.",
        "Overall CSAT: per conversation its own rating, else its last rated escalation's.",
    ]
    if by in ("trigger", "urgency"):
        notes.append(
            f"By {by}: grouped per escalation; a group's rate is its escalated conversations over all "
            f"{len(current.conversations)} conversations of the month"
            + (
                "; an escalation counts under every trigger that fired, so groups add up to more than the total."
                if by == "trigger"
                else "."
            )
        )
    else:
        notes.append("By trigger (below): an escalation counts under every trigger that fired.")
    return notes


def _drift_flag(d: Drift) -> Flag:
    return Flag(
        figure=f"{d.mix}_mix",
        direction="shift",
        previous=None,
        current=d.distance,
        relative_change=None,
        reading="mix_shift",
        driver=d.shifts[0].category if d.shifts else None,
        message=d.message,
    )


def build_report(
    current: MonthData,
    previous: MonthData,
    options: ReportOptions | None = None,
    traffic: Sequence[Mapping[str, Any]] | None = None,
) -> Report:
    """The report of ``current`` against ``previous``, its figures rounded as shown; with ``traffic`` (the
    lines of a `baton export` covering both months) also the drift of the topic and intent mixes."""
    options = options or ReportOptions()
    overall_now, overall_before = month_figures(current), month_figures(previous)
    groups_now, groups_before = group_figures(current, options.by), group_figures(previous, options.by)
    triggers_now = groups_now if options.by == "trigger" else group_figures(current, "trigger")
    triggers_before = groups_before if options.by == "trigger" else group_figures(previous, "trigger")

    def order(name: str) -> tuple[int, int, str]:  # most escalations first, then most conversations, then by name
        now = groups_now.get(name)
        return (-(now.escalations if now else 0), -(now.conversations if now else 0), name)

    groups = [
        Group(
            name=name,
            current=(groups_now.get(name) or empty_figures(current, options.by)).rounded(),
            previous=(groups_before.get(name) or empty_figures(previous, options.by)).rounded(),
        )
        for name in sorted(set(groups_now) | set(groups_before), key=order)
    ]
    threshold = options.movement_threshold
    flags = flagged_movements(overall_before, overall_now, triggers_now, triggers_before, threshold)
    drifts = drift(traffic, current.month, options.drift_threshold) if traffic is not None else []
    flags += [_drift_flag(d) for d in drifts if d.flagged]
    return Report(
        month=current.month,
        previous_month=previous.month,
        by=options.by,
        high_value_segments=tuple(options.high_value_segments),
        movement_threshold=threshold,
        overall=_block(overall_now, overall_before),
        groups=groups,
        high_value=_block(
            high_value_figures(current, options.high_value_segments),
            high_value_figures(previous, options.high_value_segments),
        ),
        movements=[move.rounded() for move in movements(overall_before, overall_now, threshold)],
        flags=[flag.rounded() for flag in flags],
        triggers=[t.rounded() for t in trigger_accuracy(current, options.min_judged, options.tighten_below)],
        notes=_notes(current, options.by),
        labels=label_counts(current, previous),
        drift=drifts,
    )


async def load_report(
    url: str,
    month: Month,
    options: ReportOptions | None = None,
    engine: AsyncEngine | None = None,
    traffic: Sequence[Mapping[str, Any]] | None = None,
) -> Report:
    """The report of ``month`` against the month before, from the store at ``url`` (and ``traffic``, see
    build_report)."""
    async with store_session(url, engine) as session:
        data = await load_months(session, [month.previous(), month])
    return build_report(data[month], data[month.previous()], options, traffic)


async def report(
    url: str,
    month: Month,
    options: ReportOptions | None = None,
    engine: AsyncEngine | None = None,
    traffic: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """``load_report`` as its JSON-ready document (see docs/reporting.md)."""
    return (await load_report(url, month, options, engine, traffic)).as_json()
