"""A labelled conversation decided again by the replay engine, on the scores recorded for its messages.

The engine (apps/replay/engine.py) runs the conversation workflow's own decision functions; here each customer
message's signals are the ones the workflow recorded for it (a `baton export` line), not scored afresh, so a
threshold is tuned on exactly what the classifier said at the time. The customer's facts are those of the line
and the clock is the conversation's own, so lifecycle rules (new account, renewal) see the account as it was.
Business hours, surges and the returning-customer cooling are not replayed (as in `baton replay`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from baton.apps.replay.engine import decide_conversation
from baton.apps.replay.records import ReplayRecord
from baton.apps.tune.conversations import ScoredConversation
from baton.contract.messages import ConversationState, MessageIn, Signals
from baton.policies.schema import Policy

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def decide(policy: Policy, conv: ScoredConversation) -> ReplayRecord:
    """What ``policy`` decides on ``conv``: where it first escalates and on which triggers, as a replay record."""
    origin = conv.started_at or next((m.at for m in conv.messages if m.at is not None), None) or EPOCH

    def recorded(_state: ConversationState, _message: MessageIn, index: int) -> Signals:
        signals = conv.messages[index].signals
        assert signals is not None  # every customer message of a tune line carries its scores (checked on reading)
        return signals

    return decide_conversation(conv, policy, recorded, origin, run_id="tune")


def decide_all(policy: Policy, conversations: list[ScoredConversation]) -> list[ReplayRecord]:
    return [decide(policy, conv) for conv in conversations]
