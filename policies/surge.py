"""During a surge, which questions stay with the bot. Pure, like the engine."""

from __future__ import annotations

from baton.contract.messages import Intent, Signals
from baton.policies.schema import Policy

# Account-specific matters always reach a person, surge or not.
ACCOUNT_SPECIFIC = frozenset(
    {Intent.BILLING_DISPUTE, Intent.DATA_DELETION, Intent.LEGAL_THREAT, Intent.SAFETY_OR_DISTRESS, Intent.CANCELLATION}
)


def asks_for_a_person(signals: Signals | None) -> bool:
    """The customer asked for a person: never deflected by surge mode, whatever else the message says."""
    return signals is not None and Intent.HUMAN_REQUEST in signals.intents


def is_incident_question(policy: Policy, text: str, signals: Signals | None) -> bool:
    """A general question about the incident: mentions it, and asks nothing about the customer's own account.

    A message that also asks for a person is still an incident question by its words; the workflow
    lets `asks_for_a_person` win (conversations recorded before that rule replay as they ran)."""
    lowered = text.lower()
    if not any(term in lowered for term in policy.surge.incident_terms):
        return False
    intents = set(signals.intents) if signals else set()
    return not (intents & ACCOUNT_SPECIFIC)


def incident_text(policy: Policy, description: str | None) -> str:
    return policy.templates.render(
        "incident_status", incident=description or "we are handling an unusually high number of requests"
    )
