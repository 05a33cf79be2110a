"""What a replay keeps of each message's decision, and the conversation's record built from it: one collector
for both engines, so that the workflow mode and the engine mode print records the same way."""

from __future__ import annotations

from datetime import timedelta

from baton.apps.replay.records import (
    DecisionSignals,
    FiredTrigger,
    MessageDecision,
    RejectedMessage,
    ReplayRecord,
)
from baton.apps.replay.transcripts import Transcript
from baton.contract.messages import Decision, HandoffNote, TriggerHit


class RecordCollector:
    """The decisions of one replayed conversation, in message order; `record()` once its replay has ended."""

    def __init__(self, conv: Transcript, offsets: list[timedelta]) -> None:
        self.conv = conv
        self.offsets = offsets
        self.decisions: list[MessageDecision | RejectedMessage] = []
        self.at_message: int | None = None
        self.urgency: str | None = None
        self.fired: dict[str, TriggerHit] = {}
        self.handoff_message: str | None = None

    def rejected(self, index: int, error: str) -> None:
        self.decisions.append(RejectedMessage(message_index=index, error=error))

    def decided(self, index: int, decision: Decision) -> None:
        """A customer message's decision (other roles' are not logged)."""
        if decision.action == "escalate" and self.at_message is None:
            self.handoff_message = decision.customer_text
        if decision.action == "escalate":
            self.at_message = index if self.at_message is None else self.at_message
            self.urgency = decision.urgency
            for hit in decision.triggers:
                self.fired.setdefault(hit.id, hit)
        signals = decision.signals
        self.decisions.append(
            MessageDecision(
                message_index=index,
                action=decision.action,
                urgency=decision.urgency,
                signals=DecisionSignals(
                    sentiment=signals.sentiment,
                    frustration=signals.frustration,
                    intents=[i.value for i in signals.intents],
                )
                if signals
                else None,
            )
        )

    def record(self, note: HandoffNote | None = None) -> ReplayRecord:
        at = self.at_message
        return ReplayRecord(
            conversation_id=self.conv.conversation_id,
            escalated=at is not None,
            urgency=self.urgency,
            at_message=at,
            triggers=[FiredTrigger(id=t.id, category=t.category) for t in self.fired.values()],
            decisions=self.decisions,
            # Position of the escalating message among the customer's messages, 1-based.
            messages_to_escalation=None
            if at is None
            else sum(1 for m in self.conv.messages[: at + 1] if m.role == "customer"),
            seconds_to_escalation=None if at is None else self.offsets[at].total_seconds(),
            handoff_message=self.handoff_message,
            note_summary=note.summary if note else None,
            note_source=note.source if note else None,
            label=self.conv.label,
        )
