"""The policy file's schema.

A policy is data: triggers (each with a category, urgency and condition),
segments that scale thresholds, lifecycle rules, and customer-facing
templates. Everything here is validated on load so that a typo fails at
`baton policy check`, never in a live conversation.
"""

from __future__ import annotations

import string
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from baton.messages import Intent, TriggerCategory, Urgency


class _Strict(BaseModel):
    # Unknown keys in a policy are almost always typos; reject them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntentCondition(_Strict):
    kind: Literal["intent"]
    intent: Intent


class MarkerCondition(_Strict):
    kind: Literal["marker"]
    marker: str


class RepeatedQuestionCondition(_Strict):
    """The customer asks the same question (similar wording) `threshold` times."""

    kind: Literal["repeated_question"]
    threshold: int = Field(ge=2)
    similarity: float = Field(default=0.5, gt=0, le=1)


class BotRepeatingCondition(_Strict):
    """The bot gives the same answer `threshold` times."""

    kind: Literal["bot_repeating"]
    threshold: int = Field(ge=2)
    similarity: float = Field(default=0.7, gt=0, le=1)


class UnresolvedTurnsCondition(_Strict):
    """`threshold` customer messages since the start or the last resolution."""

    kind: Literal["unresolved_turns"]
    threshold: int = Field(ge=1)


class FrustrationTrendCondition(_Strict):
    """Recency-weighted mean frustration over the last `window` customer messages
    reaches `threshold`, and is not falling."""

    kind: Literal["frustration_trend"]
    window: int = Field(default=3, ge=2, le=20)
    threshold: float = Field(gt=0, le=1)


class HighValueCondition(_Strict):
    """A high-value account shows friction: frustration reaches `threshold`."""

    kind: Literal["high_value"]
    min_mrr: float = Field(ge=0)
    tiers: list[str] = Field(default_factory=list)
    threshold: float = Field(gt=0, le=1)


class AtRiskCondition(_Strict):
    """A churned or at-risk account shows friction or wants to cancel."""

    kind: Literal["at_risk"]
    health_below: float = Field(ge=0, le=100)
    lifecycle_stages: list[str] = Field(default_factory=lambda: ["churned", "at_risk"])
    flags: list[str] = Field(default_factory=lambda: ["at_risk", "churn_risk"])
    threshold: float = Field(gt=0, le=1)


Condition = Annotated[
    IntentCondition
    | MarkerCondition
    | RepeatedQuestionCondition
    | BotRepeatingCondition
    | UnresolvedTurnsCondition
    | FrustrationTrendCondition
    | HighValueCondition
    | AtRiskCondition,
    Field(discriminator="kind"),
]

# Conditions whose `threshold` is a count (scaled and rounded up) rather than a score.
COUNT_CONDITIONS = ("repeated_question", "bot_repeating", "unresolved_turns")


class Trigger(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    category: TriggerCategory
    urgency: Urgency
    description: str
    high_priority: bool = Field(
        default=False,
        description="Still applies in segments that reserve escalation for high-priority scenarios",
    )
    scales: bool = Field(default=True, description="Segment and lifecycle factors scale its threshold")
    customer_reason: str = Field(
        default="so a person can help", description="Why the customer is being transferred, in their terms"
    )
    when: Condition


class SegmentMatch(_Strict):
    tiers: list[str] = Field(default_factory=list)
    min_mrr: float | None = Field(default=None, ge=0)


class Segment(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    match: SegmentMatch = Field(default_factory=SegmentMatch)
    threshold_factor: float = Field(gt=0, le=5, description="<1 escalates sooner, >1 later")
    high_priority_only: bool = False


class Lifecycle(_Strict):
    new_account_days: int = Field(default=30, ge=0)
    new_account_factor: float = Field(default=0.8, gt=0, le=5)
    renewal_window_days: int = Field(default=60, ge=0)
    renewal_factor: float = Field(default=0.8, gt=0, le=5)


TEMPLATE_FIELDS = {
    "escalate_immediate": {"reason", "wait"},
    "escalate_queued": {"reason", "wait"},
    "waiting_status": {"position", "wait"},
    "wait_update": {"position", "wait"},
    "sla_breached": {"position", "wait"},
    "agent_joined": {"agent"},
    "async_escalation": {"reason", "reply_time"},
    "handback": set(),
}


class Templates(_Strict):
    """Customer-facing wording. Placeholders in braces; each template allows only its own."""

    escalate_immediate: str
    escalate_queued: str
    waiting_status: str
    wait_update: str
    sla_breached: str
    agent_joined: str
    async_escalation: str
    handback: str

    @model_validator(mode="after")
    def _known_placeholders(self) -> Templates:
        for name, allowed in TEMPLATE_FIELDS.items():
            text = getattr(self, name)
            try:
                used = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from err
            unknown = used - allowed
            if unknown:
                allowed_text = ", ".join(sorted(allowed)) or "none"
                raise ValueError(f"{name}: unknown placeholder {{{sorted(unknown)[0]}}}; allowed: {allowed_text}")
        return self

    def render(self, name: str, **values: object) -> str:
        return getattr(self, name).format(**{k: v for k, v in values.items() if k in TEMPLATE_FIELDS[name]})


class LadderStep(_Strict):
    """The dead-zone ladder for one urgency: all times from the moment the conversation is queued."""

    update_every: timedelta = Field(description="Interval between wait-time updates to the customer")
    sla: timedelta = Field(description="Pickup target; past it the priority is raised")
    widen_after: timedelta = Field(description="Route to any available team")
    page_after: timedelta = Field(description="Page on-call")

    @model_validator(mode="after")
    def _ordered(self) -> LadderStep:
        if not timedelta(0) < self.update_every:
            raise ValueError("update_every: must be positive")
        if not (timedelta(0) < self.sla <= self.widen_after <= self.page_after):
            raise ValueError("sla, widen_after, page_after: must be positive and in that order")
        return self


class Ladder(_Strict):
    immediate: LadderStep
    queued: LadderStep


class NoteSettings(_Strict):
    max_tokens: int = Field(default=700, ge=100, le=4000)
    timeout: timedelta = Field(default=timedelta(seconds=20), description="Longest wait for the LLM note")


class Routing(_Strict):
    """Which team queue an escalation waits in: the most urgent trigger's team, else the segment's, else the default."""

    default_queue: str = "support"
    general_queue: str = Field(default="support", description="Where a conversation goes when routing is widened")
    trigger_queues: dict[str, str] = Field(default_factory=dict)
    segment_queues: dict[str, str] = Field(default_factory=dict)


class Handoff(_Strict):
    ladder: Ladder
    routing: Routing = Field(default_factory=Routing)
    reply_time: dict[Urgency, timedelta] = Field(description="Promised reply time on asynchronous channels")
    async_channels: list[str] = Field(default_factory=lambda: ["email", "ticket"])
    note: NoteSettings = Field(default_factory=NoteSettings)
    average_handle_time: timedelta = Field(
        default=timedelta(minutes=6), description="Wait estimate per position when the queue has no history yet"
    )


class Limits(_Strict):
    max_message_chars: int = Field(default=4000, ge=1, le=8000)


class Policy(_Strict):
    version: Literal[1]
    name: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")
    description: str = ""
    limits: Limits = Field(default_factory=Limits)
    segments: list[Segment] = Field(min_length=1, description="First match wins; the last should match everyone")
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    triggers: list[Trigger] = Field(min_length=1)
    default_segment: str = Field(description="Segment for customers with neither tier nor MRR known")
    templates: Templates
    handoff: Handoff

    @model_validator(mode="after")
    def _unique_ids(self) -> Policy:
        for kind, ids in (("triggers", [t.id for t in self.triggers]), ("segments", [s.id for s in self.segments])):
            seen: set[str] = set()
            for i, ident in enumerate(ids):
                if ident in seen:
                    raise ValueError(f"{kind}[{i}].id: duplicate id '{ident}'")
                seen.add(ident)
        trigger_ids, segment_ids = {t.id for t in self.triggers}, {s.id for s in self.segments}
        for tid in self.handoff.routing.trigger_queues:
            if tid not in trigger_ids:
                raise ValueError(f"handoff.routing.trigger_queues: '{tid}' is not a trigger id")
        for sid in self.handoff.routing.segment_queues:
            if sid not in segment_ids:
                raise ValueError(f"handoff.routing.segment_queues: '{sid}' is not a segment id")
        if self.default_segment not in {s.id for s in self.segments}:
            raise ValueError(f"default_segment: '{self.default_segment}' is not one of the segments' ids")
        return self

    def trigger(self, trigger_id: str) -> Trigger:
        return next(t for t in self.triggers if t.id == trigger_id)
