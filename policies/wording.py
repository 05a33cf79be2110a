"""Customer-facing text from the policy's templates. Pure, like the engine."""

from __future__ import annotations

from datetime import timedelta

from baton.contract.messages import TriggerHit, Urgency
from baton.policies.schema import Policy


def format_duration(duration: timedelta) -> str:
    """'about 4 minutes', 'about 2 hours': what a person says, not what a clock shows."""
    minutes = max(1, round(duration.total_seconds() / 60))
    if minutes < 60:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    if hours < 48:
        return f"about {hours} hour{'s' if hours != 1 else ''}"
    days = round(hours / 24)
    return f"about {days} days"


def transfer_reason(policy: Policy, triggers: list[TriggerHit]) -> str:
    """The reason of the most urgent trigger that fired, in the customer's terms."""
    known = {t.id: t for t in policy.triggers}
    fired = [known[t.id] for t in triggers if t.id in known]
    if not fired:
        return "so a person can help"
    fired.sort(key=lambda t: t.urgency != "immediate")
    return fired[0].customer_reason


def escalation_text(policy: Policy, urgency: Urgency, triggers: list[TriggerHit], wait: timedelta) -> str:
    name = "escalate_immediate" if urgency == "immediate" else "escalate_queued"
    return policy.templates.render(name, reason=transfer_reason(policy, triggers), wait=format_duration(wait))


def async_escalation_text(policy: Policy, urgency: Urgency, triggers: list[TriggerHit]) -> str:
    return policy.templates.render(
        "async_escalation",
        reason=transfer_reason(policy, triggers),
        reply_time=format_duration(policy.handoff.reply_time[urgency]),
    )


def waiting_text(policy: Policy, template: str, position: int, wait: timedelta) -> str:
    return policy.templates.render(template, position=position, wait=format_duration(wait))
