"""When a quiet conversation closes itself: a pure planner, like the ladder's.

The deadline is a function of the state alone (the phase, the last message, the resolution), so it is
carried through continue-as-new with the state, and every message that arrives moves it: the workflow's
loop sleeps until the deadline unless it changes, samples-python's UpdatableTimer in one comparison.
"""

from __future__ import annotations

from datetime import datetime

from baton.contract.messages import ConversationState, Phase
from baton.policies.schema import IdleClose

IDLE_REASON = "idle"
SUMMARY = "Close the conversation if nobody writes"


def idle_deadline(state: ConversationState, idle: IdleClose, started_at: datetime) -> datetime | None:
    """When the conversation closes for want of messages; None while it must stay open.

    With the bot, the idle time counts from the last message of any kind (a backend that never reports
    the bot's answers still gets its conversations closed), else from `started_at`. Once resolved, from the
    resolution or a later message. Never while the customer waits for a person or a person has the
    conversation: the dead-zone ladder and the agent own that time, and a support team expects no
    conversation to vanish from under an agent.
    """
    after = idle.after(state.start.channel)
    if after is None:
        return None
    last = state.transcript[-1].at if state.transcript else started_at
    if state.phase == Phase.BOT:
        return last + after
    if state.phase == Phase.RESOLVED:
        escalation = state.escalation
        resolved_at = escalation.resolved_at if escalation and escalation.resolved_at else last
        return max(last, resolved_at) + after
    return None
