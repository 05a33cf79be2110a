"""The policy as a replay applies it, in either engine."""

from __future__ import annotations

from baton.policies import load_policy
from baton.policies.schema import IdleClose, Policy, Surge

UNREACHABLE = 2**31 - 1  # a surge threshold no replay reaches


def replayed_policy(policy_file: str | None) -> Policy:
    """`policy_file` (or the bundled default) without business hours, idle close and surges.

    The replay clock is not the conversation's clock, so every escalation is judged as if people were on shift
    (after-hours handling has its own tests); a recorded conversation is replayed to its last message, however
    long its pauses; and nobody picks up in a replay, so its queues only grow and its conversations run closer
    together than they happened: a surge there would be the replay's own, and would keep incident questions
    with the bot that the recorded day escalated. Each conversation is decided on its own.
    """
    policy = load_policy(policy_file or "default")
    never = Surge(
        queue_depth=UNREACHABLE,
        escalations_per_hour=UNREACHABLE,
        incident_terms=policy.surge.incident_terms,
        wait_factor=policy.surge.wait_factor,
    )
    return policy.model_copy(update={"hours": None, "idle_close": IdleClose(default=None, channels={}), "surge": never})
