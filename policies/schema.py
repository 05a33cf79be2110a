"""The policy file's schema.

A policy is data: triggers (each with a category, urgency and condition),
segments that scale thresholds, lifecycle rules, and customer-facing
templates. Everything here is validated on load so that a typo fails at
`baton policy check`, never in a live conversation.
"""

from __future__ import annotations

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


class Templates(_Strict):
    escalate_immediate: str
    escalate_queued: str
    already_escalated: str


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

    @model_validator(mode="after")
    def _unique_ids(self) -> Policy:
        for kind, ids in (("triggers", [t.id for t in self.triggers]), ("segments", [s.id for s in self.segments])):
            seen: set[str] = set()
            for i, ident in enumerate(ids):
                if ident in seen:
                    raise ValueError(f"{kind}[{i}].id: duplicate id '{ident}'")
                seen.add(ident)
        if self.default_segment not in {s.id for s in self.segments}:
            raise ValueError(f"default_segment: '{self.default_segment}' is not one of the segments' ids")
        return self

    def trigger(self, trigger_id: str) -> Trigger:
        return next(t for t in self.triggers if t.id == trigger_id)
