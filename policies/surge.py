"""During a surge, which questions stay with the bot. Pure, like the engine."""

from __future__ import annotations

from baton.contract.messages import Intent, Signals
from baton.policies.schema import Policy

# Account-specific matters always reach a person, surge or not.
ACCOUNT_SPECIFIC = frozenset(
    {Intent.BILLING_DISPUTE, Intent.DATA_DELETION, Intent.LEGAL_THREAT, Intent.SAFETY_OR_DISTRESS, Intent.CANCELLATION}
)


def is_incident_question(policy: Policy, text: str, signals: Signals | None) -> bool:
    """A general question about the incident: mentions it, and asks nothing about the customer's own account."""
    lowered = text.lower()
    if not any(term in lowered for term in policy.surge.incident_terms):
        return False
    intents = set(signals.intents) if signals else set()
    return not (intents & ACCOUNT_SPECIFIC)


def incident_text(policy: Policy, description: str | None) -> str:
    return policy.templates.render(
        "incident_status", incident=description or "we are handling an unusually high number of requests"
    )
