"""A labelled conversation decided again by the policy engine, on the scores recorded for its messages.

The engine's ``assess`` is what the conversation workflow asks on every customer message; while the bot has
the conversation, an assessment with an urgency is an escalation. The customer's facts are those of the line
and the clock is the message's own time, so lifecycle rules (new account, renewal) see the account as it was.
Business hours, surges and the returning-customer cooling are not replayed (as in `baton replay`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from baton.apps.replay.records import FiredTrigger, ReplayRecord
from baton.apps.replay.transcripts import message_times
from baton.apps.tune.conversations import ScoredConversation
from baton.contract.messages import (
    ConversationStart,
    ConversationState,
    CustomerContext,
    CustomerFacts,
    TranscriptEntry,
)
from baton.policies.engine import assess
from baton.policies.schema import Policy

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _times(conv: ScoredConversation) -> list[datetime]:
    origin = conv.started_at or next((m.at for m in conv.messages if m.at is not None), None) or EPOCH
    # message_times spaces messages without `at` as `baton replay` does; it only reads roles, texts and times.
    offsets: list[timedelta] = message_times(conv)  # type: ignore[arg-type]
    return [origin + offset for offset in offsets]


def decide(policy: Policy, conv: ScoredConversation) -> ReplayRecord:
    """What ``policy`` decides on ``conv``: where it first escalates and on which triggers, as a replay record."""
    facts = CustomerFacts.model_validate(conv.customer.model_dump(exclude={"id"}))
    context = CustomerContext(customer_id=conv.customer.id, facts=facts, source="transcript")
    start = ConversationStart(conversation_id=conv.conversation_id, customer_id=conv.customer.id, channel=conv.channel)
    state = ConversationState(start=start, context=context)
    customer_messages = 0
    for index, (message, at) in enumerate(zip(conv.messages, _times(conv), strict=True)):
        entry = TranscriptEntry(
            message_id=message.message_id or f"m{index}", role=message.role, text=message.text, at=at
        )
        entry.signals = message.signals
        state.transcript.append(entry)
        if message.role != "customer":
            continue
        customer_messages += 1
        assessment = assess(policy, state, context, at)
        if assessment.urgency is not None:
            return ReplayRecord(
                conversation_id=conv.conversation_id,
                escalated=True,
                urgency=assessment.urgency,
                at_message=index,
                triggers=[FiredTrigger(id=hit.id, category=hit.category) for hit in assessment.triggers],
                messages_to_escalation=customer_messages,
                seconds_to_escalation=(at - state.transcript[0].at).total_seconds(),
                label=conv.label,
            )
    return ReplayRecord(conversation_id=conv.conversation_id, escalated=False, label=conv.label)


def decide_all(policy: Policy, conversations: list[ScoredConversation]) -> list[ReplayRecord]:
    return [decide(policy, conv) for conv in conversations]
