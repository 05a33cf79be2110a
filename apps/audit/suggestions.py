"""A suggested trigger and urgency for each scenario type, in the policy schema's own terms.

The rule (docs/audit.md says it in prose):

- A scenario type grouped by an intent gets the trigger for that intent: the base policy's trigger whose
  condition is that intent when it has one (the default policy's ids: explicit_human_request, legal_threat,
  severe_distress, data_deletion_request, billing_dispute, contact_request), else a new one
  (cancellation_request). Its urgency is the default policy's for that intent.
- Otherwise the shortfall decides. Many turns: `bot_loop` when the bot repeated itself in most of them,
  `repeated_question` when the customer did, else `unresolved_conversation` with a turn threshold that
  healthy conversations rarely reach. Low CSAT with high frustration: `frustration_trend` with a threshold
  between healthy conversations' frustration and the scenario's. Missed escalations, hand escalations,
  abandonment and calm low ratings: a topic trigger for the scenario's topic (reviewers or agents said a
  person should have had those, or customers gave up on them), or, with no topic, the turn or frustration
  trigger.
- Urgency outside the intent table: immediate when the scenario's median peak frustration reaches
  ``IMMEDIATE_FRUSTRATION``, else queued.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from baton.apps.audit.reading import Reading
from baton.apps.audit.shortfalls import Shortfall, Thresholds
from baton.contract.labels import Intent, Topic
from baton.contract.messages import TriggerCategory, Urgency
from baton.policies.schema import IntentCondition, Policy, TopicCondition

IMMEDIATE_FRUSTRATION = 0.75
HIGH_FRUSTRATION = 0.6  # a low-CSAT scenario this frustrated gets a frustration trigger, not a topic one
TOPIC_MIN_PROBABILITY = 0.6
MOST = 0.5  # "most of them": the share of a scenario that decides bot_loop / repeated_question
FRUSTRATION_FLOOR, FRUSTRATION_CEILING = 0.4, 0.8
MIN_TURN_THRESHOLD = 3


@dataclass(frozen=True)
class IntentTrigger:
    trigger_id: str
    category: TriggerCategory
    urgency: Urgency
    high_priority: bool
    description: str
    customer_reason: str


# The default policy's trigger for each grouping intent (policies/default.yaml), and one it lacks.
INTENT_TRIGGERS: dict[Intent, IntentTrigger] = {
    Intent.SAFETY_OR_DISTRESS: IntentTrigger(
        "severe_distress", "sentiment", "immediate", True, "Self-harm, danger or severe distress",
        "because we want a person to help you right away",
    ),
    Intent.LEGAL_THREAT: IntentTrigger(
        "legal_threat", "contextual", "immediate", True, "Legal action, lawyers or regulators mentioned",
        "so that the right person handles this",
    ),
    Intent.DATA_DELETION: IntentTrigger(
        "data_deletion_request", "contextual", "queued", True, "A GDPR/CCPA deletion or data-access request",
        "because data requests are handled by our team",
    ),
    Intent.BILLING_DISPUTE: IntentTrigger(
        "billing_dispute", "contextual", "queued", True, "A disputed charge or refund",
        "because billing questions are handled by our team",
    ),
    Intent.CANCELLATION: IntentTrigger(
        "cancellation_request", "contextual", "queued", False, "The customer wants to cancel",
        "so that a person can help with your cancellation",
    ),
    Intent.HUMAN_REQUEST: IntentTrigger(
        "explicit_human_request", "behavioral", "immediate", True, "The customer asks for a person",
        "as you asked to speak with a person",
    ),
    Intent.CONTACT_REQUEST: IntentTrigger(
        "contact_request", "behavioral", "queued", False, "The customer asks for a callback or a phone number",
        "so that a person can get back to you",
    ),
}  # fmt: skip


_OUTCOME = {
    Shortfall.MISSED_ESCALATION: "reviewers marked them as missed escalations",
    Shortfall.HAND_ESCALATION: "agents took them over by hand",
    Shortfall.ABANDONED: "customers gave up",
    Shortfall.MANY_TURNS: "the bot was still answering them",
    Shortfall.LOW_CSAT: "customers rated them low",
}


@dataclass(frozen=True)
class Suggestion:
    trigger_id: str
    category: TriggerCategory
    urgency: Urgency
    when: dict[str, Any]  # the trigger's condition, as the policy file writes it
    description: str
    why: str
    high_priority: bool = False
    customer_reason: str | None = None
    in_base: bool = False  # the base policy has a trigger with this id

    def as_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger_id,
            "category": self.category,
            "urgency": self.urgency,
            "when": self.when,
            "new": not self.in_base,
            "why": self.why,
        }


@dataclass(frozen=True)
class Context:
    """What every suggestion is measured against: the base policy and the conversations that went well."""

    base: Policy
    thresholds: Thresholds
    healthy_turns: Sequence[int] = field(default_factory=list)
    healthy_frustration: Sequence[float] = field(default_factory=list)

    def turn_threshold(self) -> int:
        """Customer messages that at most 5% of healthy conversations reach, never above the long mark."""
        ceiling = self.thresholds.many_turns
        if not self.healthy_turns:
            return max(MIN_TURN_THRESHOLD, ceiling)
        return min(ceiling, max(MIN_TURN_THRESHOLD, _percentile(self.healthy_turns, 0.95) + 1))

    def frustration_threshold(self, scenario: Sequence[float]) -> float:
        """Above healthy conversations' mean frustration (95th percentile), at most the scenario's lower
        quartile, within 0.4-0.8, rounded down to 0.05."""
        healthy = _percentile(self.healthy_frustration, 0.95) + 0.05 if self.healthy_frustration else 0.0
        lower = _percentile(scenario, 0.25) if scenario else FRUSTRATION_CEILING
        value = max(healthy, min(lower, FRUSTRATION_CEILING))
        return round(math.floor(min(max(value, FRUSTRATION_FLOOR), FRUSTRATION_CEILING) * 20) / 20, 2)


def _conversations(count: int) -> str:
    return f"{count} conversation" if count == 1 else f"{count} conversations"


def _percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank, as baton replay's evaluation does."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def _base_id(base: Policy, *, intent: Intent | None = None, topic: Topic | None = None) -> str | None:
    for trigger in base.triggers:
        cond = trigger.when
        if intent is not None and isinstance(cond, IntentCondition) and cond.intent == intent:
            return trigger.id
        if (
            topic is not None
            and isinstance(cond, TopicCondition)
            and cond.topics == [topic]
            and cond.renewal_within_days is None
            and cond.account_younger_than_days is None
        ):
            return trigger.id
    return None


def _in_base(base: Policy, trigger_id: str) -> bool:
    return any(t.id == trigger_id for t in base.triggers)


def _urgency(readings: Sequence[Reading]) -> Urgency:
    peak = median(r.peak_frustration for r in readings)
    return "immediate" if peak >= IMMEDIATE_FRUSTRATION else "queued"


def suggest(
    readings: Sequence[Reading], shortfall: Shortfall, intent: Intent | None, topic: Topic, context: Context
) -> Suggestion:
    """The trigger that would have handed this scenario type's conversations to a person, and how urgently."""
    n = len(readings)
    median_turns = median(r.conversation.turns for r in readings)
    if intent is not None:
        known = INTENT_TRIGGERS[intent]
        trigger_id = _base_id(context.base, intent=intent) or known.trigger_id
        return Suggestion(
            trigger_id=trigger_id,
            category=known.category,
            urgency=known.urgency,
            when={"kind": "intent", "intent": intent.value},
            description=known.description,
            why=f"the classifier finds the {intent.value} intent in {'it' if n == 1 else f'all {n}'}; a trigger on "
            "it hands them to a person "
            f"at the first such message ({_OUTCOME[shortfall]} after a median {median_turns:g} turns)",
            high_priority=known.high_priority,
            customer_reason=known.customer_reason,
            in_base=_in_base(context.base, trigger_id),
        )
    urgency = _urgency(readings)
    if shortfall is Shortfall.MANY_TURNS:
        return _loop(readings, urgency, context, median_turns)
    frustrated = median(r.peak_frustration for r in readings) >= HIGH_FRUSTRATION
    if shortfall is Shortfall.LOW_CSAT and frustrated:
        return _frustration(readings, urgency, context)
    if topic is not Topic.OTHER:
        return _topic(readings, shortfall, topic, urgency, context)
    if frustrated:
        return _frustration(readings, urgency, context)
    return _unresolved(readings, urgency, context, median_turns)


def _loop(readings: Sequence[Reading], urgency: Urgency, context: Context, median_turns: float) -> Suggestion:
    n = len(readings)
    bot = sum(r.bot_repeated for r in readings)
    customer = sum(r.customer_repeated for r in readings)
    if bot >= customer and bot > MOST * n:
        return Suggestion(
            trigger_id="bot_loop",
            category="behavioral",
            urgency=urgency,
            when={"kind": "bot_repeating", "threshold": 2, "similarity": 0.7},
            description="The bot gives the same answer twice",
            why=f"the bot repeated an answer in {bot} of {n} conversations that ran a median {median_turns:g} turns",
            in_base=_in_base(context.base, "bot_loop"),
        )
    if customer > MOST * n:
        return Suggestion(
            trigger_id="repeated_question",
            category="behavioral",
            urgency=urgency,
            when={"kind": "repeated_question", "threshold": 3, "similarity": 0.5},
            description="The customer asks the same question three times",
            why=f"the customer asked the same thing three times in {customer} of {n} conversations that ran a "
            f"median {median_turns:g} turns",
            in_base=_in_base(context.base, "repeated_question"),
        )
    return _unresolved(readings, urgency, context, median_turns)


def _unresolved(readings: Sequence[Reading], urgency: Urgency, context: Context, median_turns: float) -> Suggestion:
    threshold = context.turn_threshold()
    return Suggestion(
        trigger_id="unresolved_conversation",
        category="behavioral",
        urgency=urgency,
        when={"kind": "unresolved_turns", "threshold": threshold},
        description=f"{threshold} customer messages without a resolution",
        why=f"{_conversations(len(readings))} ran a median {median_turns:g} turns; at most 5% of the "
        f"conversations that went well reach {threshold}",
        in_base=_in_base(context.base, "unresolved_conversation"),
    )


def _frustration(readings: Sequence[Reading], urgency: Urgency, context: Context) -> Suggestion:
    threshold = context.frustration_threshold([r.mean_frustration for r in readings])
    peak = median(r.peak_frustration for r in readings)
    return Suggestion(
        trigger_id="frustration_trend",
        category="sentiment",
        urgency=urgency,
        when={"kind": "frustration_trend", "window": 3, "threshold": threshold},
        description="Frustration stays high over the last three messages",
        why=f"median peak frustration {peak:.2f} in {_conversations(len(readings))}; the conversations that went "
        f"well stay below {threshold:g}",
        in_base=_in_base(context.base, "frustration_trend"),
    )


def _topic(
    readings: Sequence[Reading], shortfall: Shortfall, topic: Topic, urgency: Urgency, context: Context
) -> Suggestion:
    trigger_id = _base_id(context.base, topic=topic) or f"topic_{topic.value}"
    words = topic.value.replace("_", " ")
    return Suggestion(
        trigger_id=trigger_id,
        category="contextual",
        urgency=urgency,
        when={"kind": "topic", "topics": [topic.value], "min_probability": TOPIC_MIN_PROBABILITY},
        description=f"A question about {words}",
        why=f"{_OUTCOME[shortfall]} in {_conversations(len(readings))} about {words} that the bot never handed over",
        customer_reason=f"because {words} questions are handled by our team",
        in_base=_in_base(context.base, trigger_id),
    )
