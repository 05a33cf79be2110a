"""`baton report`: the month's escalation figures from the store, overall and per group, against the month before.

Definitions (docs/reporting.md explains them with examples):

- A conversation belongs to the month of its start (``conversations.started_at``; the close time when its
  start was never recorded). Its escalations belong to the same month, so that every rate's numerator is
  part of its denominator.
- Escalation rate: escalated conversations / conversations. A conversation is escalated when it has an
  escalation record or closed with outcome ``escalated``.
- Verdict of an escalation: the newest review label when there is one, else the agent's disposition at
  resolution. Escalation accuracy: verdicts "necessary" / escalations with a verdict (``judged``).
- Time to escalation (customer messages, seconds from the first message) and time to pickup are medians
  and nearest-rank p90s over the escalations that have them (baton/evaluation.py's conventions).
- Post-escalation CSAT: the mean of ``escalations.csat`` over escalations with a rating. Overall CSAT: one
  rating per conversation, its own ``conversation_csat`` when recorded, else the rating of its last rated
  escalation; the mean over conversations with a rating.
- Abandonment rate: conversations closed with outcome ``abandoned`` / conversations.
- Grouping by trigger or urgency is per escalation: an escalation counts under every trigger that fired,
  and a group's rate is its escalated conversations over all the month's conversations.

Ratios are rounded to 4 places, CSAT to 2 and times to 1 in the output; figures with nothing to measure are
None (null in JSON, empty in CSV).
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import csv
import io
import json
import sys
import textwrap
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baton.apps.evaluation import median, p90

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

# The store's modules (SQLAlchemy, Alembic) are imported where they are used, so that building the CLI's
# parser stays fast for every other command.

GROUPINGS = ("segment", "trigger", "channel", "urgency")
FORMATS = ("table", "json", "csv")
DEFAULT_HIGH_VALUE_SEGMENTS = ("enterprise",)
MOVEMENT_THRESHOLD = 0.20  # a relative change above this is flagged
MIN_JUDGED = 5  # judged escalations a trigger needs before it gets a recommendation
TIGHTEN_BELOW = 0.6  # precision under which a trigger should be tightened
UNKNOWN = "(unknown)"
NO_TRIGGER = "(none)"

FIGURES = (
    "conversations",
    "escalated_conversations",
    "escalations",
    "escalation_rate",
    "judged",
    "judged_necessary",
    "judged_by_review",
    "escalation_accuracy",
    "messages_to_escalation_median",
    "messages_to_escalation_p90",
    "seconds_to_escalation_median",
    "seconds_to_escalation_p90",
    "picked_up",
    "seconds_to_pickup_median",
    "post_escalation_csat",
    "post_escalation_csat_n",
    "overall_csat",
    "overall_csat_n",
    "abandoned",
    "abandonment_rate",
)
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
CSV_COLUMNS = ("month", "scope", "by", "group", *FIGURES)


class ReportError(Exception):
    """Bad input or an unusable store; the CLI prints it and exits 2."""


# --- months -------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9998:
            raise ValueError(f"no such month: {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM``."""
        try:
            year, month = text.strip().split("-")
            if len(year) != 4 or len(month) != 2:
                raise ValueError
            return cls(int(year), int(month))
        except ValueError:
            raise ValueError(f"not a month (YYYY-MM): {text!r}") from None

    @classmethod
    def containing(cls, moment: datetime) -> Month:
        moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    @classmethod
    def last_complete(cls, now: datetime | None = None) -> Month:
        return cls.containing(now or datetime.now(UTC)).previous()

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant of the next month (exclusive)."""
        return self.next().start

    @property
    def title(self) -> str:
        return f"{calendar.month_name[self.month]} {self.year}"

    @property
    def short(self) -> str:
        return f"{calendar.month_abbr[self.month]} {self.year}"

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


# --- rows read from the store ---------------------------------------------------------------------------


@dataclass
class ConversationFacts:
    conversation_id: str
    at: datetime  # the start, or the close when the start was never recorded
    segment: str | None = None
    channel: str | None = None
    outcome: str = "open"
    csat: int | None = None  # conversations.conversation_csat


@dataclass
class EscalationFacts:
    id: str
    conversation_id: str
    escalated_at: datetime | None = None
    segment: str | None = None
    channel: str | None = None
    urgency: str | None = None
    triggers: tuple[str, ...] = ()
    messages_to_escalation: int | None = None
    seconds_to_escalation: float | None = None
    picked_up_at: datetime | None = None
    seconds_to_pickup: float | None = None
    resolved_at: datetime | None = None
    necessary: bool | None = None  # the agent's disposition
    csat: int | None = None
    review: bool | None = None  # the newest review label
    reviewer: str | None = None
    review_note: str | None = None

    @property
    def verdict(self) -> bool | None:
        """Was the escalation necessary: the newest review label overrides the agent's disposition."""
        return self.review if self.review is not None else self.necessary


@dataclass
class MonthData:
    month: Month
    conversations: list[ConversationFacts] = field(default_factory=list)
    escalations: list[EscalationFacts] = field(default_factory=list)

    def escalations_by_conversation(self) -> dict[str, list[EscalationFacts]]:
        by: dict[str, list[EscalationFacts]] = defaultdict(list)
        for e in self.escalations:
            by[e.conversation_id].append(e)
        return by


async def load_months(session: AsyncSession, months: Sequence[Month]) -> dict[Month, MonthData]:
    """The conversations of each month, with their escalations and review labels."""
    from sqlalchemy import func, select

    from baton.store.models import Conversation, Escalation, ReviewLabel

    data = {m: MonthData(m) for m in months}
    if not months:
        return data
    first, last = min(months).start, max(months).end
    at = func.coalesce(Conversation.started_at, Conversation.closed_at)  # the conversation's month
    anchor = at.label("anchor")
    in_range = (at >= first) & (at < last)
    month_of: dict[str, Month] = {}
    rows = await session.execute(select(Conversation, anchor).where(in_range))
    for conv, at in rows:
        month = Month.containing(at)
        if month not in data:
            continue
        month_of[conv.conversation_id] = month
        data[month].conversations.append(
            ConversationFacts(
                conversation_id=conv.conversation_id,
                at=at,
                segment=conv.segment,
                channel=conv.channel,
                outcome=conv.outcome,
                csat=conv.conversation_csat,
            )
        )
    escalations: dict[str, EscalationFacts] = {}
    rows = await session.execute(
        select(Escalation)
        .join(Conversation, Escalation.conversation_id == Conversation.conversation_id)
        .where(in_range)
    )
    for (e,) in rows:
        month = month_of.get(e.conversation_id)
        if month is None:
            continue
        facts = EscalationFacts(
            id=e.id,
            conversation_id=e.conversation_id,
            escalated_at=e.escalated_at,
            segment=e.segment,
            channel=e.channel,
            urgency=e.urgency,
            triggers=tuple(dict.fromkeys(e.triggers or ())),
            messages_to_escalation=e.messages_to_escalation,
            seconds_to_escalation=e.seconds_to_escalation,
            picked_up_at=e.picked_up_at,
            seconds_to_pickup=e.seconds_to_pickup,
            resolved_at=e.resolved_at,
            necessary=e.necessary,
            csat=e.csat,
        )
        escalations[e.id] = facts
        data[month].escalations.append(facts)
    labels = await session.execute(
        select(ReviewLabel)
        .join(Escalation, ReviewLabel.escalation_id == Escalation.id)
        .join(Conversation, Escalation.conversation_id == Conversation.conversation_id)
        .where(in_range)
        .order_by(ReviewLabel.labelled_at, ReviewLabel.reviewer)
    )
    for (label,) in labels:  # oldest first: the newest label wins
        facts = escalations.get(label.escalation_id)
        if facts is not None:
            facts.review, facts.reviewer, facts.review_note = label.necessary, label.reviewer, label.note
    for month_data in data.values():
        _fill_conversation_facts(month_data)
        month_data.conversations.sort(key=lambda c: (c.at, c.conversation_id))
        month_data.escalations.sort(key=lambda e: (e.escalated_at or month_data.month.start, e.id))
    return data


def _fill_conversation_facts(data: MonthData) -> None:
    """A conversation with no segment or channel of its own (still open, or a stub) takes its escalation's."""
    by_conversation = data.escalations_by_conversation()
    for conv in data.conversations:
        for e in by_conversation.get(conv.conversation_id, ()):
            conv.segment = conv.segment or e.segment
            conv.channel = conv.channel or e.channel


# --- figures --------------------------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def conversation_csat(conv: ConversationFacts, escalations: Sequence[EscalationFacts]) -> int | None:
    """The conversation's one rating: its own CSAT, else its last rated escalation's (by resolution time)."""
    if conv.csat is not None:
        return conv.csat
    rated = [e for e in escalations if e.csat is not None]
    if not rated:
        return None
    epoch = datetime.min.replace(tzinfo=UTC)
    return max(rated, key=lambda e: (e.resolved_at or e.escalated_at or epoch, e.id)).csat


def figures(
    escalations: Sequence[EscalationFacts],
    total_conversations: int,
    conversations: Sequence[ConversationFacts] | None = None,
    by_conversation: Mapping[str, Sequence[EscalationFacts]] | None = None,
) -> dict[str, Any]:
    """Every figure of one set of escalations (raw, unrounded).

    ``conversations`` is given for conversation-level sets (all, a segment, a channel); its escalations are
    ``escalations``. For escalation-level sets (a trigger, an urgency) it is None: ``total_conversations``
    is then the month's total, and the conversation-level figures (abandonment, overall CSAT) are None.
    """
    escalated = {e.conversation_id for e in escalations}
    if conversations is not None:
        escalated |= {c.conversation_id for c in conversations if c.outcome == "escalated"}
    verdicts = [e.verdict for e in escalations if e.verdict is not None]
    messages = [float(e.messages_to_escalation) for e in escalations if e.messages_to_escalation is not None]
    seconds = [e.seconds_to_escalation for e in escalations if e.seconds_to_escalation is not None]
    pickups = [e.seconds_to_pickup for e in escalations if e.seconds_to_pickup is not None]
    post_csat = [float(e.csat) for e in escalations if e.csat is not None]
    result: dict[str, Any] = {
        "conversations": total_conversations,
        "escalated_conversations": len(escalated),
        "escalations": len(escalations),
        "escalation_rate": _ratio(len(escalated), total_conversations),
        "judged": len(verdicts),
        "judged_necessary": sum(verdicts),
        "judged_by_review": sum(1 for e in escalations if e.review is not None),
        "escalation_accuracy": _ratio(sum(verdicts), len(verdicts)),
        "messages_to_escalation_median": median(messages),
        "messages_to_escalation_p90": p90(messages),
        "seconds_to_escalation_median": median(seconds),
        "seconds_to_escalation_p90": p90(seconds),
        "picked_up": sum(1 for e in escalations if e.picked_up_at is not None or e.seconds_to_pickup is not None),
        "seconds_to_pickup_median": median(pickups),
        "post_escalation_csat": _mean(post_csat),
        "post_escalation_csat_n": len(post_csat),
        "overall_csat": None,
        "overall_csat_n": None,
        "abandoned": None,
        "abandonment_rate": None,
    }
    if conversations is not None:
        by_conversation = by_conversation or {}
        ratings = [
            float(rating)
            for c in conversations
            if (rating := conversation_csat(c, by_conversation.get(c.conversation_id, ()))) is not None
        ]
        abandoned = sum(1 for c in conversations if c.outcome == "abandoned")
        result |= {
            "overall_csat": _mean(ratings),
            "overall_csat_n": len(ratings),
            "abandoned": abandoned,
            "abandonment_rate": _ratio(abandoned, total_conversations),
        }
    return result


def month_figures(data: MonthData) -> dict[str, Any]:
    return figures(data.escalations, len(data.conversations), data.conversations, data.escalations_by_conversation())


def _key(value: str | None) -> str:
    return value if value else UNKNOWN


def group_figures(data: MonthData, by: str) -> dict[str, dict[str, Any]]:
    """Figures per group: per segment or channel (conversation-level), per trigger or urgency (per escalation)."""
    if by not in GROUPINGS:
        raise ValueError(f"unknown grouping {by!r}; one of {', '.join(GROUPINGS)}")
    by_conversation = data.escalations_by_conversation()
    total = len(data.conversations)
    if by in ("segment", "channel"):
        members: dict[str, list[ConversationFacts]] = defaultdict(list)
        for conv in data.conversations:
            members[_key(getattr(conv, by))].append(conv)
        return {
            name: figures(
                [e for c in convs for e in by_conversation.get(c.conversation_id, ())],
                len(convs),
                convs,
                by_conversation,
            )
            for name, convs in members.items()
        }
    escalations: dict[str, list[EscalationFacts]] = defaultdict(list)
    for e in data.escalations:
        keys = (e.triggers or (NO_TRIGGER,)) if by == "trigger" else (_key(e.urgency),)
        for name in keys:
            escalations[name].append(e)
    return {name: figures(escs, total) for name, escs in escalations.items()}


def high_value_figures(data: MonthData, segments: Iterable[str]) -> dict[str, Any]:
    wanted = set(segments)
    convs = [c for c in data.conversations if c.segment in wanted]
    by_conversation = data.escalations_by_conversation()
    escs = [e for c in convs for e in by_conversation.get(c.conversation_id, ())]
    return figures(escs, len(convs), convs, by_conversation)


# --- accuracy per trigger and recommendations ---------------------------------------------------------------


def trigger_accuracy(
    data: MonthData, min_judged: int = MIN_JUDGED, tighten_below: float = TIGHTEN_BELOW
) -> list[dict[str, Any]]:
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
        precision = _ratio(len(necessary), len(judged))
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
            {
                "trigger": trigger,
                "escalations": len(escs),
                "judged": len(judged),
                "judged_necessary": len(necessary),
                "judged_unnecessary": unnecessary,
                "judged_by_review": sum(1 for e in escs if e.review is not None),
                "precision": precision,
                "late_necessary": len(late),
                "recommendation": recommendation,
                "evidence": evidence,
            }
        )
    result.sort(key=lambda t: (-t["escalations"], t["trigger"]))
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


def _pct(value: float | None, places: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{places}f}%"


def _change_text(previous: float | None, current: float | None) -> str:
    change = relative_change(previous, current)
    if change is None:
        return "up from zero" if previous == 0 and current else "unchanged"
    return f"{'up' if change > 0 else 'down'} {abs(100 * change):.0f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def _csat(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _value_text(name: str, value: float | None) -> str:
    if name.endswith("_rate") or name.endswith("accuracy"):
        return _pct(value)
    if name.startswith("seconds_"):
        return duration(value)
    if name.endswith("_csat"):
        return _csat(value)
    return _num(value)


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


def movements(previous: Mapping[str, Any], current: Mapping[str, Any], threshold: float) -> list[dict[str, Any]]:
    return [
        {
            "figure": name,
            "previous": previous.get(name),
            "current": current.get(name),
            "relative_change": relative_change(previous.get(name), current.get(name)),
            "flagged": _moved(previous.get(name), current.get(name), threshold),
        }
        for name in MOVEMENT_FIGURES
    ]


def _trigger_shares(
    current: Mapping[str, Mapping[str, Any]], previous: Mapping[str, Mapping[str, Any]]
) -> list[tuple[float, str]]:
    """(change in the share of conversations escalated under the trigger, trigger), largest rise first."""
    shares = []
    for trigger in set(current) | set(previous):
        now = (current.get(trigger) or {}).get("escalation_rate") or 0.0
        before = (previous.get(trigger) or {}).get("escalation_rate") or 0.0
        shares.append((now - before, trigger))
    shares.sort(key=lambda s: (-s[0], s[1]))
    return shares


def flags(
    previous: Mapping[str, Any],
    current: Mapping[str, Any],
    triggers_now: Mapping[str, Mapping[str, Any]],
    triggers_before: Mapping[str, Mapping[str, Any]],
    threshold: float,
) -> list[dict[str, Any]]:
    """Flagged movements, each with a sentence; the escalation rate's also with its likely reading.

    - rising: the rate rose; the trigger whose share of conversations grew most, and triggers new this month,
      point at a product change (a release, an outage) or a policy change;
    - falling_with_abandonment: the rate fell while abandonment rose: customers may be giving up before
      reaching a human;
    - falling: the rate fell and abandonment did not rise.
    """
    result = []
    abandonment_up = _moved(previous.get("abandonment_rate"), current.get("abandonment_rate"), threshold) and (
        (current.get("abandonment_rate") or 0) > (previous.get("abandonment_rate") or 0)
    )
    for move in movements(previous, current, threshold):
        if not move["flagged"]:
            continue
        name, before, now = move["figure"], move["previous"], move["current"]
        flag: dict[str, Any] = {
            "figure": name,
            "direction": "up" if now > before else "down",
            "previous": before,
            "current": now,
            "relative_change": move["relative_change"],
            "reading": None,
            "driver": None,
            "new_triggers": [],
            "message": (
                f"{LABELS[name]} {_change_text(before, now)} ({_value_text(name, before)} → {_value_text(name, now)})"
            ),
        }
        if name == "escalation_rate" and flag["direction"] == "up":
            new = sorted(t for t in triggers_now if t != NO_TRIGGER and t not in triggers_before)
            rise, driver = next(iter(_trigger_shares(triggers_now, triggers_before)), (0.0, None))
            parts = [flag["message"]]
            if driver is not None and rise > 0:
                a = (triggers_before.get(driver) or {}).get("escalations", 0)
                b = (triggers_now.get(driver) or {}).get("escalations", 0)
                share_a = (triggers_before.get(driver) or {}).get("escalation_rate") or 0.0
                share_b = (triggers_now.get(driver) or {}).get("escalation_rate") or 0.0
                parts.append(
                    f"driven by trigger {driver} ({a} → {b} escalations, {_pct(share_a)} → {_pct(share_b)} "
                    "of conversations)"
                )
                flag["driver"] = driver
            if new:
                parts.append(f"new triggers this month: {', '.join(new)}")
            parts.append(f"conversations {previous.get('conversations')} → {current.get('conversations')}")
            flag |= {
                "reading": "rising",
                "new_triggers": new,
                "message": "; ".join(parts) + ". Check for a product change (a release, an outage) or a policy change.",
            }
        elif name == "escalation_rate":
            if abandonment_up:
                flag |= {
                    "reading": "falling_with_abandonment",
                    "message": (
                        f"{flag['message']} but abandonment rate "
                        f"{_change_text(previous.get('abandonment_rate'), current.get('abandonment_rate'))} "
                        f"({_pct(previous.get('abandonment_rate'))} → {_pct(current.get('abandonment_rate'))}): "
                        "customers may be giving up before reaching a human."
                    ),
                }
            else:
                flag |= {
                    "reading": "falling",
                    "message": (
                        f"{flag['message']} and abandonment did not rise: fewer handoffs. Check that necessary "
                        "escalations were not lost (accuracy, CSAT) and whether a policy change raised thresholds."
                    ),
                }
        result.append(flag)
    return result


# --- the report ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportOptions:
    by: str = "segment"
    high_value_segments: tuple[str, ...] = DEFAULT_HIGH_VALUE_SEGMENTS
    movement_threshold: float = MOVEMENT_THRESHOLD
    min_judged: int = MIN_JUDGED
    tighten_below: float = TIGHTEN_BELOW


def _round(name: str, value: Any) -> Any:
    if value is None or isinstance(value, int):  # counts (and booleans) stay as they are
        return value
    if name.endswith("_csat"):
        return round(value, 2)
    if name.startswith(("seconds_", "messages_")):
        return round(value, 1)
    return round(value, 4)


def _rounded(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _round(name, value) for name, value in values.items()}


def _block(current: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
    return {**_rounded(current), "previous": _rounded(previous)}


def _empty(data: MonthData, by: str) -> dict[str, Any]:
    """The figures of a group with nothing in this month."""
    if by in ("segment", "channel"):
        return figures([], 0, [], {})
    return figures([], len(data.conversations))


def build_report(current: MonthData, previous: MonthData, options: ReportOptions | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict with stable keys (see docs/reporting.md)."""
    options = options or ReportOptions()
    overall_now, overall_before = month_figures(current), month_figures(previous)
    groups_now, groups_before = group_figures(current, options.by), group_figures(previous, options.by)
    triggers_now = groups_now if options.by == "trigger" else group_figures(current, "trigger")
    triggers_before = groups_before if options.by == "trigger" else group_figures(previous, "trigger")
    names = sorted(
        set(groups_now) | set(groups_before),
        key=lambda g: (
            -(groups_now.get(g) or {}).get("escalations", 0),
            -(groups_now.get(g) or {}).get("conversations", 0),
            g,
        ),
    )
    groups = [
        {
            "group": name,
            **_block(
                groups_now.get(name) or _empty(current, options.by),
                groups_before.get(name) or _empty(previous, options.by),
            ),
        }
        for name in names
    ]
    notes = [
        "A conversation and its escalations count in the month the conversation started.",
        "Accuracy: the newest review label overrides the agent's disposition; judged = escalations with either.",
        "Overall CSAT: per conversation its own rating, else its last rated escalation's.",
    ]
    if options.by in ("trigger", "urgency"):
        notes.append(
            f"By {options.by}: grouped per escalation; a group's rate is its escalated conversations over all "
            f"{len(current.conversations)} conversations of the month"
            + (
                "; an escalation counts under every trigger that fired, so groups add up to more than the total."
                if options.by == "trigger"
                else "."
            )
        )
    else:
        notes.append("By trigger (below): an escalation counts under every trigger that fired.")
    return {
        "month": str(current.month),
        "previous_month": str(previous.month),
        "by": options.by,
        "high_value_segments": list(options.high_value_segments),
        "movement_threshold": options.movement_threshold,
        "overall": _block(overall_now, overall_before),
        "groups": groups,
        "high_value": {
            "segments": list(options.high_value_segments),
            **_block(
                high_value_figures(current, options.high_value_segments),
                high_value_figures(previous, options.high_value_segments),
            ),
        },
        "movements": [
            {
                **move,
                "previous": _round(move["figure"], move["previous"]),
                "current": _round(move["figure"], move["current"]),
                "relative_change": _round("relative_change", move["relative_change"]),
            }
            for move in movements(overall_before, overall_now, options.movement_threshold)
        ],
        "flags": [
            {
                **flag,
                "previous": _round(flag["figure"], flag["previous"]),
                "current": _round(flag["figure"], flag["current"]),
                "relative_change": _round("relative_change", flag["relative_change"]),
            }
            for flag in flags(overall_before, overall_now, triggers_now, triggers_before, options.movement_threshold)
        ],
        "triggers": [
            {**t, "precision": _round("precision", t["precision"])}
            for t in trigger_accuracy(current, options.min_judged, options.tighten_below)
        ],
        "notes": notes,
    }


async def check_store(engine: AsyncEngine) -> None:
    """Refuse a database without Baton's schema, or behind the newest migration."""
    from baton.store.database import current_revision, head_revision

    async with engine.connect() as connection:
        revision = await connection.run_sync(current_revision)
    if revision is None:
        raise ReportError("the store has no schema yet; run `baton db upgrade` first")
    head = head_revision()
    if revision != head:
        raise ReportError(f"the store is at migration {revision}, not {head}; run `baton db upgrade` first")


def check_sqlite_exists(url: str) -> None:
    """Opening a missing SQLite file would create an empty one: say so instead."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return
    if not Path(database).expanduser().exists():
        raise ReportError(f"no store at {database}; check --database-url, or create it with `baton db upgrade`")


@asynccontextmanager
async def store_session(url: str, engine: AsyncEngine | None = None, begin: bool = False) -> AsyncIterator[Any]:
    """A session on a checked, migrated store; the engine is created and disposed here unless one is given."""
    from baton.store.database import create_engine, session_factory

    own = engine is None
    if own:
        check_sqlite_exists(url)
        engine = create_engine(url)
    assert engine is not None
    try:
        await check_store(engine)
        sessions = session_factory(engine)
        async with sessions.begin() if begin else sessions() as session:
            yield session
    finally:
        if own:
            await engine.dispose()


async def report(
    url: str, month: Month, options: ReportOptions | None = None, engine: AsyncEngine | None = None
) -> dict[str, Any]:
    """The report of ``month`` against the month before, from the store at ``url``."""
    async with store_session(url, engine) as session:
        data = await load_months(session, [month.previous(), month])
    return build_report(data[month], data[month.previous()], options)


# --- output ------------------------------------------------------------------------------------------------


def to_json(result: Mapping[str, Any]) -> str:
    return json.dumps(result, indent=2, ensure_ascii=False)


def to_csv(result: Mapping[str, Any]) -> str:
    """One row per month and scope: overall, each group, the high-value segments."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    by = result["by"]
    high_value = "+".join(result["high_value_segments"])
    for month, pick in ((result["month"], lambda b: b), (result["previous_month"], lambda b: b["previous"])):
        rows = [("overall", "all", result["overall"])]
        rows += [("group", g["group"], g) for g in result["groups"]]
        rows.append(("high_value", high_value, result["high_value"]))
        for scope, group, block in rows:
            values = pick(block)
            writer.writerow(
                {"month": month, "scope": scope, "by": by, "group": group}
                | {name: "" if values.get(name) is None else values[name] for name in FIGURES}
            )
    return out.getvalue()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def _accuracy_text(block: Mapping[str, Any]) -> str:
    if not block.get("judged"):
        return "n/a (0 judged)"
    return f"{_pct(block['escalation_accuracy'])} ({block['judged_necessary']}/{block['judged']})"


def _csat_text(value: float | None, n: int | None) -> str:
    return "n/a" if value is None else f"{value:.2f} (n={n})"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> list[str]:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]
    right = set(right)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            (str(c).rjust(w) if i in right else str(c).ljust(w))
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def to_table(result: Mapping[str, Any]) -> str:
    month, previous = Month.parse(result["month"]), Month.parse(result["previous_month"])
    overall = result["overall"]
    before = overall["previous"]
    lines = [f"Escalation report: {month.title} (compared with {previous.title})", ""]
    flagged = {m["figure"] for m in result["movements"] if m["flagged"]}

    rows = []
    for name, label in (
        ("conversations", "conversations"),
        ("escalated_conversations", "escalated conversations"),
        ("escalations", "escalations"),
        ("escalation_rate", "escalation rate"),
        ("escalation_accuracy", "escalation accuracy"),
        ("judged", "  judged (by review)"),
        ("messages_to_escalation_median", "messages to escalation, median"),
        ("messages_to_escalation_p90", "messages to escalation, p90"),
        ("seconds_to_escalation_median", "time to escalation, median"),
        ("seconds_to_escalation_p90", "time to escalation, p90"),
        ("seconds_to_pickup_median", "time to pickup, median"),
        ("post_escalation_csat", "post-escalation CSAT"),
        ("overall_csat", "overall CSAT"),
        ("abandoned", "abandoned conversations"),
        ("abandonment_rate", "abandonment rate"),
    ):
        if name == "judged":
            now_text = f"{overall['judged']} ({overall['judged_by_review']})"
            before_text = f"{before['judged']} ({before['judged_by_review']})"
        elif name.endswith("_csat"):
            now_text = _csat_text(overall[name], overall[f"{name}_n"])
            before_text = _csat_text(before[name], before[f"{name}_n"])
        else:
            now_text, before_text = _value_text(name, overall[name]), _value_text(name, before[name])
        change = ""
        if name in MOVEMENT_FIGURES:
            rel = relative_change(before[name], overall[name])
            change = "" if rel is None else f"{100 * rel:+.0f}%"
            if name in flagged:
                change += " !"
        rows.append([label, now_text, before_text, change])
    lines += _table(["Overall", month.short, previous.short, "change"], rows, right=(1, 2, 3))

    by = result["by"]
    lines += [
        "",
        f"By {by}" + (" (per escalation; rate = share of all conversations)" if by in ("trigger", "urgency") else ""),
    ]
    rows = []
    for g in result["groups"]:
        p = g["previous"]
        rows.append(
            [
                g["group"],
                str(g["conversations"]),
                str(g["escalations"]),
                f"{_pct(g['escalation_rate'])} ({_pct(p['escalation_rate'])})",
                _accuracy_text(g),
                f"{_num(g['messages_to_escalation_median'])}/{_num(g['messages_to_escalation_p90'])}",
                f"{duration(g['seconds_to_escalation_median'])}/{duration(g['seconds_to_escalation_p90'])}",
                duration(g["seconds_to_pickup_median"]),
                _csat(g["post_escalation_csat"]),
                _csat(g["overall_csat"]),
                "n/a" if g["abandoned"] is None else f"{g['abandoned']} ({_pct(g['abandonment_rate'])})",
            ]
        )
    lines += _table(
        [
            by,
            "conv",
            "esc",
            f"rate ({previous.short})",
            "accuracy (nec/judged)",
            "msgs med/p90",
            "time med/p90",
            "pickup med",
            "CSAT esc",
            "CSAT all",
            "abandoned",
        ],
        rows,
        right=(1, 2),
    )

    hv = result["high_value"]
    lines += ["", f"High-value segments ({', '.join(hv['segments'])}) against all conversations"]
    rows = [
        ["conversations", str(hv["conversations"]), str(overall["conversations"])],
        ["escalation rate", _pct(hv["escalation_rate"]), _pct(overall["escalation_rate"])],
        ["escalation accuracy", _accuracy_text(hv), _accuracy_text(overall)],
        [
            "time to pickup, median",
            duration(hv["seconds_to_pickup_median"]),
            duration(overall["seconds_to_pickup_median"]),
        ],
        ["post-escalation CSAT", _csat(hv["post_escalation_csat"]), _csat(overall["post_escalation_csat"])],
        ["overall CSAT", _csat(hv["overall_csat"]), _csat(overall["overall_csat"])],
        ["abandonment rate", _pct(hv["abandonment_rate"]), _pct(overall["abandonment_rate"])],
    ]
    lines += _table(["", "high-value", "all"], rows, right=(1, 2))

    threshold = result["movement_threshold"]
    lines += ["", f"Month over month (flagged when a figure moves more than {100 * threshold:.0f}%)"]
    for flag in result["flags"]:
        lines += textwrap.wrap(flag["message"], width=116, initial_indent="  ! ", subsequent_indent="    ")
    if not result["flags"]:
        lines.append("  nothing flagged")

    lines += ["", "Accuracy by trigger (an escalation counts under every trigger that fired)"]
    rows = [
        [
            t["trigger"],
            str(t["escalations"]),
            str(t["judged"]),
            str(t["judged_necessary"]),
            _pct(t["precision"]),
            str(t["late_necessary"]),
            t["recommendation"] or "",
        ]
        for t in result["triggers"]
    ]
    lines += _table(
        ["trigger", "esc", "judged", "necessary", "precision", "late", "recommendation"], rows, right=(1, 2, 3, 4, 5)
    )
    evidence = [t["evidence"] for t in result["triggers"] if t["evidence"]]
    for line in evidence:
        lines += textwrap.wrap(line, width=116, initial_indent="  ", subsequent_indent="    ")

    lines += ["", "Notes"]
    for note in result["notes"]:
        lines += textwrap.wrap(note, width=116, initial_indent="  - ", subsequent_indent="    ")
    return "\n".join(lines)


def render(result: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return to_json(result)
    if fmt == "csv":
        return to_csv(result)
    return to_table(result)


# --- the command --------------------------------------------------------------------------------------------


def parse_segments(text: str) -> tuple[str, ...]:
    segments = tuple(s.strip() for s in text.split(",") if s.strip())
    if not segments:
        raise argparse.ArgumentTypeError("give at least one segment")
    return segments


def month_argument(text: str) -> Month:
    try:
        return Month.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def run_report_command(args: argparse.Namespace, database_url: str) -> int:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    month = args.month or Month.last_complete()
    options = ReportOptions(
        by=args.by,
        high_value_segments=args.high_value,
        movement_threshold=args.threshold,
        min_judged=args.min_judged,
    )
    try:
        result = asyncio.run(report(database_url, month, options))
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as err:
        shown = make_url(database_url).render_as_string(hide_password=True)
        print(f"error: cannot read the store at {shown}: {type(err).__name__}: {err}".splitlines()[0], file=sys.stderr)
        return 2
    print(render(result, args.format))
    if args.chart:
        from baton.apps.chart import render_chart

        try:
            render_chart(result, args.chart)
        except OSError as err:
            print(f"error: cannot write the chart to {args.chart}: {err}", file=sys.stderr)
            return 2
        print(f"chart written to {args.chart}", file=sys.stderr)
    return 0
