"""The report's figures: one typed set (``Figures``) per month and group of conversations or escalations.

Figures are computed raw (unrounded); ``Figures.rounded()`` gives the values the report shows. See the
definitions in this package's docstring and in docs/reporting.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from baton.apps.evaluation import median, p90
from baton.apps.report.loading import ConversationFacts, EscalationFacts, MonthData

GROUPINGS = ("segment", "trigger", "channel", "urgency")
UNKNOWN = "(unknown)"
NO_TRIGGER = "(none)"

Number = int | float


@dataclass(frozen=True)
class Figures:
    """Every figure of one set of conversations or escalations, in the report's order.

    Counts are ints; ratios, times and CSAT are floats, None with nothing to measure. The conversation-level
    figures (overall CSAT, abandonment) are None for escalation-level sets (a trigger, an urgency).
    """

    conversations: int
    escalated_conversations: int
    escalations: int
    escalation_rate: float | None
    judged: int
    judged_necessary: int
    judged_by_review: int
    escalation_accuracy: float | None
    messages_to_escalation_median: float | None
    messages_to_escalation_p90: float | None
    seconds_to_escalation_median: float | None
    seconds_to_escalation_p90: float | None
    picked_up: int
    seconds_to_pickup_median: float | None
    post_escalation_csat: float | None
    post_escalation_csat_n: int
    overall_csat: float | None = None
    overall_csat_n: int | None = None
    abandoned: int | None = None
    abandonment_rate: float | None = None

    def value(self, name: str) -> Number | None:
        """One figure by its name (one of FIGURES)."""
        if name not in _NAMES:
            raise KeyError(name)
        value: Number | None = getattr(self, name)
        return value

    def as_dict(self) -> dict[str, Any]:
        """The figures by name, in the order of FIGURES (the report's JSON keys)."""
        return asdict(self)

    def rounded(self) -> Figures:
        """Ratios to 4 places, CSAT to 2, messages and times to 1; counts as they are."""
        return Figures(**{name: round_figure(name, value) for name, value in self.as_dict().items()})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Figures:
        return cls(**{name: values[name] for name in FIGURES})


FIGURES = tuple(f.name for f in fields(Figures))
_NAMES = frozenset(FIGURES)


def round_figure(name: str, value: Any) -> Any:
    """A figure (or a ratio named like one) as the report shows it."""
    if value is None or isinstance(value, int):  # counts (and booleans) stay as they are
        return value
    if name.endswith("_csat"):
        return round(value, 2)
    if name.startswith(("seconds_", "messages_")):
        return round(value, 1)
    return round(value, 4)


def ratio(numerator: float, denominator: float) -> float | None:
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


def compute_figures(
    escalations: Sequence[EscalationFacts],
    total_conversations: int,
    conversations: Sequence[ConversationFacts] | None = None,
    by_conversation: Mapping[str, Sequence[EscalationFacts]] | None = None,
) -> Figures:
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
    conversation_level: dict[str, Any] = {}
    if conversations is not None:
        by_conversation = by_conversation or {}
        ratings = [
            float(rating)
            for c in conversations
            if (rating := conversation_csat(c, by_conversation.get(c.conversation_id, ()))) is not None
        ]
        abandoned = sum(1 for c in conversations if c.outcome == "abandoned")
        conversation_level = {
            "overall_csat": _mean(ratings),
            "overall_csat_n": len(ratings),
            "abandoned": abandoned,
            "abandonment_rate": ratio(abandoned, total_conversations),
        }
    return Figures(
        conversations=total_conversations,
        escalated_conversations=len(escalated),
        escalations=len(escalations),
        escalation_rate=ratio(len(escalated), total_conversations),
        judged=len(verdicts),
        judged_necessary=sum(verdicts),
        judged_by_review=sum(1 for e in escalations if e.review is not None),
        escalation_accuracy=ratio(sum(verdicts), len(verdicts)),
        messages_to_escalation_median=median(messages),
        messages_to_escalation_p90=p90(messages),
        seconds_to_escalation_median=median(seconds),
        seconds_to_escalation_p90=p90(seconds),
        picked_up=sum(1 for e in escalations if e.picked_up_at is not None or e.seconds_to_pickup is not None),
        seconds_to_pickup_median=median(pickups),
        post_escalation_csat=_mean(post_csat),
        post_escalation_csat_n=len(post_csat),
        **conversation_level,
    )


def month_figures(data: MonthData) -> Figures:
    return compute_figures(
        data.escalations, len(data.conversations), data.conversations, data.escalations_by_conversation()
    )


def _key(value: str | None) -> str:
    return value if value else UNKNOWN


def group_figures(data: MonthData, by: str) -> dict[str, Figures]:
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
            name: compute_figures(
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
    return {name: compute_figures(escs, total) for name, escs in escalations.items()}


def high_value_figures(data: MonthData, segments: Iterable[str]) -> Figures:
    wanted = set(segments)
    convs = [c for c in data.conversations if c.segment in wanted]
    by_conversation = data.escalations_by_conversation()
    escs = [e for c in convs for e in by_conversation.get(c.conversation_id, ())]
    return compute_figures(escs, len(convs), convs, by_conversation)


def empty_figures(data: MonthData, by: str) -> Figures:
    """The figures of a group with nothing in this month."""
    if by in ("segment", "channel"):
        return compute_figures([], 0, [], {})
    return compute_figures([], len(data.conversations))
