"""What the Temporal UI shows of a conversation from its start: the static summary (the list's one line) and
the static details (the page's header), written for a support lead, not for the developer who wrote Baton.

Set once by the message that starts the conversation; everything that changes is in the current details
(workflows/conversation/visibility.py) and the search attributes. Ids and the channel only, never message text:
the summary is shown in every list.
"""

from __future__ import annotations

from baton.contract.messages import ConversationStart

SUMMARY_LIMIT = 200  # bytes: the UI's limit for a static summary


def static_summary(start: ConversationStart) -> str:
    """One line in the UI's list: which conversation, with whom, where."""
    tier = f", {start.customer.tier}" if start.customer.tier else ""
    text = f"Support {start.channel} {start.conversation_id} with customer {start.customer_id}{tier}"
    return text.encode()[:SUMMARY_LIMIT].decode(errors="ignore")


def static_details(start: ConversationStart) -> str:
    """The page's header: what this conversation is and how to read it."""
    return "\n\n".join(
        [
            f"**Support conversation** `{start.conversation_id}` with customer `{start.customer_id}` "
            f"on **{start.channel}**.",
            "Baton reads every customer message and decides whether the bot carries on or a person takes over. "
            "**Current details** (below) say where the conversation stands: with the bot, waiting for a person "
            "(queue, position in line, SLA), with an agent, or resolved (disposition, CSAT, time to pickup and to "
            "resolve), with every trigger that fired.",
            "To find conversations like this one, filter the list by `BatonPhase`, `BatonUrgency`, `BatonQueue`, "
            "`BatonTriggers`, `BatonAgent`, `BatonSegment`, `BatonTier` or `BatonWaitingSince` "
            "(docs/operators.md has ready-made queries). The timeline below shows each step Baton took: "
            "the handoff note, queueing, wait-time updates to the customer, pages.",
        ]
    )
