"""Which queue an escalation waits in. Pure, like the engine."""

from __future__ import annotations

from baton.contract.messages import TriggerHit
from baton.policies.schema import Policy


def choose_queue(
    policy: Policy, triggers: list[TriggerHit], segment: str | None, returning_queue: str | None = None
) -> str:
    """The most urgent trigger's team, else the team that handled a returning customer, else the segment's."""
    routing = policy.handoff.routing
    known = {t.id: t for t in policy.triggers}
    fired = sorted((known[t.id] for t in triggers if t.id in known), key=lambda t: t.urgency != "immediate")
    for trigger in fired:
        if trigger.id in routing.trigger_queues:
            return routing.trigger_queues[trigger.id]
    if returning_queue:
        return returning_queue
    if segment is not None and segment in routing.segment_queues:
        return routing.segment_queues[segment]
    return routing.default_queue


def segment_rank(policy: Policy, segment: str | None) -> int:
    """Segments are listed most valuable first; that order is the queue's tie-break."""
    ids = [s.id for s in policy.segments]
    return ids.index(segment) if segment in ids else len(ids)
