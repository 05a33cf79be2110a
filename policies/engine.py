"""The decision engine: a pure function from (policy, state, context, now) to an Assessment.

No I/O, no clock, no randomness, so that it runs inside workflow code (and
replays identically) as well as in plain unit tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

from baton.contract.messages import (
    ConversationState,
    CustomerContext,
    CustomerFacts,
    Decision,
    Intent,
    Phase,
    Signals,
    TranscriptEntry,
    TriggerHit,
    Urgency,
)
from baton.domain.text import content_terms, similarity
from baton.policies.schema import (
    COUNT_CONDITIONS,
    Policy,
    Segment,
    TopicCondition,
    Trigger,
)


@dataclass(frozen=True)
class Standing:
    """Where the customer stands at this moment: segment and threshold factor."""

    segment: Segment
    factor: float
    reasons: tuple[str, ...]


def classify(policy: Policy, facts: CustomerFacts) -> Segment:
    if facts.tier is None and facts.mrr is None:
        return next(s for s in policy.segments if s.id == policy.default_segment)
    tier = (facts.tier or "").lower()
    for segment in policy.segments:
        match = segment.match
        if not match.tiers and match.min_mrr is None:
            return segment
        if tier and tier in (t.lower() for t in match.tiers):
            return segment
        if match.min_mrr is not None and facts.mrr is not None and facts.mrr >= match.min_mrr:
            return segment
    return next(s for s in policy.segments if s.id == policy.default_segment)


def standing(policy: Policy, facts: CustomerFacts, today: date) -> Standing:
    """Segment and lifecycle, evaluated at `today` so they can change mid-conversation."""
    segment = classify(policy, facts)
    factor = segment.threshold_factor
    reasons = [f"segment {segment.id} x{segment.threshold_factor:g}"]
    life = policy.lifecycle
    if facts.account_created_at is not None and 0 <= (today - facts.account_created_at).days < life.new_account_days:
        factor *= life.new_account_factor
        reasons.append(f"new account x{life.new_account_factor:g}")
    if facts.renewal_date is not None and 0 <= (facts.renewal_date - today).days <= life.renewal_window_days:
        factor *= life.renewal_factor
        reasons.append(f"renewal within {life.renewal_window_days} days x{life.renewal_factor:g}")
    return Standing(segment, factor, tuple(reasons))


def effective_threshold(trigger: Trigger, factor: float) -> float | None:
    """The trigger's threshold after segment and lifecycle scaling (None when it has none)."""
    base = getattr(trigger.when, "threshold", None)
    if base is None:
        return None
    if not trigger.scales:
        return base
    if trigger.when.kind in COUNT_CONDITIONS:
        floor = 1 if trigger.when.kind == "unresolved_turns" else 2
        # Round half up: 3 x 0.7 = 2.1 -> 2 (sooner), 3 x 1.4 = 4.2 -> 4 (later).
        return max(floor, math.floor(base * factor + 0.5))
    return min(1.0, round(base * factor, 4))


@dataclass(frozen=True)
class Assessment:
    """What the policy makes of the latest customer message: the triggers that fired, the urgency they
    call for (None when none fired), the customer's segment and the message's signals. The workflow
    turns it into the Decision, knowing the conversation's phase and the queue."""

    triggers: list[TriggerHit]
    urgency: Urgency | None
    segment: str
    signals: Signals | None


def assess(policy: Policy, state: ConversationState, context: CustomerContext | None, now: datetime) -> Assessment:
    """Assess the latest customer message, already appended to `state.transcript`."""
    facts = context.facts if context is not None else CustomerFacts()
    stand = standing(policy, facts, now.date())
    if context is not None and context.cooling is not None and context.cooling.active(now):
        # A customer back within the cooling period after an escalation: escalate sooner.
        factor = policy.cooling.threshold_factor
        stand = Standing(stand.segment, stand.factor * factor, (*stand.reasons, f"returning customer x{factor:g}"))
    hits: list[tuple[Trigger, TriggerHit]] = []
    customer = _customer(state.transcript)
    for trigger in policy.triggers:
        if stand.segment.high_priority_only and not trigger.high_priority:
            continue
        threshold = effective_threshold(trigger, stand.factor)
        detail = _check(trigger, threshold, state.transcript, customer, facts, now.date())
        if detail is not None:
            hits.append((trigger, TriggerHit(id=trigger.id, category=trigger.category, detail=detail)))
    urgency: Urgency | None = None
    if hits:
        urgency = "immediate" if any(t.urgency == "immediate" for t, _ in hits) else "queued"
    return Assessment(
        triggers=[hit for _, hit in hits],
        urgency=urgency,
        segment=stand.segment.id,
        signals=state.transcript[-1].signals,
    )


def evaluate(
    policy: Policy,
    state: ConversationState,
    context: CustomerContext | None,
    now: datetime,
    message_id: str,
) -> Decision:
    """The policy's decision on the customer message `message_id`, already appended to `state.transcript`,
    before the queue is asked: continue, or escalate with the urgency and triggers (the customer-facing
    text needs the queue's wait estimate; the workflow adds it, see policies/wording.py). A conversation
    already with the humans keeps escalating, its urgency raised when a message calls for it."""
    assessment = assess(policy, state, context, now)
    common = {"triggers": assessment.triggers, "signals": assessment.signals, "segment": assessment.segment}
    if state.phase != Phase.BOT:
        current = state.escalation.urgency if state.escalation else None
        urgency = "immediate" if "immediate" in (current, assessment.urgency) else (current or "queued")
        return Decision(message_id=message_id, action="escalate", urgency=urgency, phase=state.phase, **common)
    if assessment.urgency is None:
        return Decision(
            message_id=message_id, action="continue", signals=assessment.signals, segment=assessment.segment
        )
    return Decision(
        message_id=message_id, action="escalate", urgency=assessment.urgency, phase=Phase.ESCALATED, **common
    )


def _customer(transcript: list[TranscriptEntry]) -> list[TranscriptEntry]:
    return [m for m in transcript if m.role == "customer"]


def _topic(cond: TopicCondition, signals: Signals | None, facts: CustomerFacts, today: date) -> str | None:
    if signals is None or signals.topic is None or signals.topic not in cond.topics:
        return None
    probability = signals.topic_probability
    if cond.min_probability is not None and (probability is None or probability < cond.min_probability):
        return None
    why = [f"topic {signals.topic.value}"]
    if cond.renewal_within_days is not None:
        if facts.renewal_date is None or not 0 <= (facts.renewal_date - today).days <= cond.renewal_within_days:
            return None
        why.append(f"renewal in {(facts.renewal_date - today).days} days")
    if cond.account_younger_than_days is not None:
        created = facts.account_created_at
        if created is None or not 0 <= (today - created).days < cond.account_younger_than_days:
            return None
        why.append(f"account {(today - created).days} days old")
    return ", ".join(why)


def _check(
    trigger: Trigger,
    threshold: float | None,
    transcript: list[TranscriptEntry],
    customer: list[TranscriptEntry],
    facts: CustomerFacts,
    today: date,
) -> str | None:
    """Return why the trigger fires on the latest customer message (`customer`: the transcript's customer
    messages), or None."""
    # Told apart by `kind`, not isinstance: in the workflow sandbox isinstance is a wrapped builtin, 50 times
    # slower, and this runs for every trigger of every customer message.
    cond = trigger.when
    latest = customer[-1]
    signals = latest.signals
    intents = set(signals.intents) if signals else set()
    frustration = signals.frustration if signals else 0.0

    if cond.kind == "intent":
        if cond.intent not in intents:
            return None
        probability = signals.probabilities.get(cond.intent) if signals else None
        if cond.min_probability is not None and probability is not None:
            if probability < cond.min_probability:
                return None
            return f"intent {cond.intent.value} (p={probability:.2f})"
        return f"intent {cond.intent.value}"
    if cond.kind == "topic":
        return _topic(cond, signals, facts, today)
    if cond.kind == "marker":
        return f"marker {cond.marker}" if signals and cond.marker in signals.markers else None
    if cond.kind == "repeated_question":
        terms = content_terms(latest.text)
        if len(terms) < 2:
            return None
        same = sum(1 for m in customer if similarity(content_terms(m.text), terms) >= cond.similarity)
        return f"asked {same} times (threshold {threshold:g})" if same >= threshold else None
    if cond.kind == "bot_repeating":
        bot = [m for m in transcript if m.role == "bot"]
        if not bot:
            return None
        terms = content_terms(bot[-1].text)
        if len(terms) < 2:
            return None
        same = sum(1 for m in bot if similarity(content_terms(m.text), terms) >= cond.similarity)
        return f"bot gave the same answer {same} times (threshold {threshold:g})" if same >= threshold else None
    if cond.kind == "unresolved_turns":
        since = 0
        for m in customer:
            since = 0 if m.signals and Intent.RESOLVED in m.signals.intents else since + 1
        return f"{since} messages without resolution (threshold {threshold:g})" if since >= threshold else None
    if cond.kind == "frustration_trend":
        trail = [m.signals.frustration for m in customer[-cond.window :] if m.signals]
        if len(trail) < 2:
            return None
        # Recent messages weigh more: a conversation that is getting worse matters more than one that was bad.
        weights = range(1, len(trail) + 1)
        mean = sum(w * f for w, f in zip(weights, trail, strict=True)) / sum(weights)
        if mean >= threshold and trail[-1] >= trail[0]:
            return f"weighted frustration {mean:.2f} over {len(trail)} messages (threshold {threshold:g})"
        return None
    if cond.kind == "high_value":
        high_value = (facts.mrr is not None and facts.mrr >= cond.min_mrr) or (
            facts.tier is not None and facts.tier.lower() in (t.lower() for t in cond.tiers)
        )
        if high_value and frustration >= threshold:
            return f"high-value account, frustration {frustration:.2f} (threshold {threshold:g})"
        return None
    if cond.kind == "at_risk":
        reasons = []
        if facts.health is not None and facts.health < cond.health_below:
            reasons.append(f"health {facts.health:g}")
        if facts.lifecycle_stage and facts.lifecycle_stage.lower() in cond.lifecycle_stages:
            reasons.append(f"lifecycle {facts.lifecycle_stage}")
        reasons.extend(f"flag {f}" for f in facts.flags if f in cond.flags)
        if not reasons:
            return None
        if Intent.CANCELLATION in intents:
            return ", ".join(reasons) + ", wants to cancel"
        if frustration >= threshold:
            return ", ".join(reasons) + f", frustration {frustration:.2f}"
        return None
    raise AssertionError(f"unhandled condition {cond.kind}")
