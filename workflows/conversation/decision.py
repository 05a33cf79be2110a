"""The decision on one message, as pure functions over the conversation's state.

The workflow runs these between its I/O (the scores come in with the message or from a local activity; the
queue, the note and the deliveries go out through the handoff), and `baton replay --engine engine` runs the
very same functions without Temporal (apps/replay/engine.py). Nothing here reads a clock or does I/O: the
time and the scores are arguments, so the two give the same decision records (tests/test_replay_engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from baton.contract.messages import (
    ConversationState,
    Decision,
    Escalation,
    MessageIn,
    Phase,
    Signals,
    TranscriptEntry,
    TranscriptRole,
    TriggerHit,
    Urgency,
    message_problems,
)
from baton.contract.scoring import MessageScores
from baton.domain.scoring import compose
from baton.policies.engine import Assessment, assess
from baton.policies.routing import choose_queue
from baton.policies.schema import Policy

SCORING_WINDOW = 6  # earlier customer messages the scorer sees
# What a new run carries of a long conversation (continue-as-new): Temporal refuses a payload over 2 MiB, and a
# conversation carrying everything stopped for good at about 1,900 messages (bench/growth.py). Far more than any
# trigger reads (the longest look back is a few turns), and what an agent reads at pickup with the note.
CARRIED_MESSAGES = 300
CARRIED_TEXT_CHARS = 300_000


@dataclass
class Outcome:
    """The decision's answer to one customer message; the Decision is built from it once."""

    action: str
    urgency: Urgency | None = None
    triggers: list[TriggerHit] = field(default_factory=list)
    customer_text: str | None = None
    surge: bool = False


def problems(state: ConversationState, message: MessageIn, max_chars: int | None) -> list[str]:
    """Why the message is refused in the conversation's current phase (each naming its field); empty when fine."""
    found = message_problems(message, max_chars) if max_chars else message_problems(message)
    return found + role_problems(state, message)


def role_problems(state: ConversationState, message: MessageIn) -> list[str]:
    phase = state.phase
    escalation = state.escalation
    if message.role == "bot" and phase in (Phase.ESCALATED, Phase.WITH_AGENT):
        return [f"role: the bot may not reply while a human owns the conversation (phase {phase.value})"]
    if message.role == "agent":
        if phase != Phase.WITH_AGENT or escalation is None:
            return [f"role: no agent has picked up this conversation (phase {phase.value})"]
        if message.agent_id != escalation.agent_id:
            return [f"agent_id: the conversation belongs to agent {escalation.agent_id}"]
    return []


def record(state: ConversationState, message_id: str, role: TranscriptRole, text: str, at: datetime) -> TranscriptEntry:
    """The message, appended to the transcript at `at`."""
    entry = TranscriptEntry(message_id=message_id, role=role, text=text, at=at)
    state.transcript.append(entry)
    return entry


def scoring_window(state: ConversationState) -> list[TranscriptEntry]:
    """The earlier customer messages the classifier's scores are composed with."""
    return [m for m in state.transcript if m.role == "customer"][-SCORING_WINDOW:]


def signals_from(state: ConversationState, scores: MessageScores, text: str, earlier: list[TranscriptEntry]) -> Signals:
    """The message's signals: the classifier's scores composed with the conversation so far. The first scored
    message pins the conversation's model version (a running conversation keeps its model)."""
    if state.model_version is None:
        state.model_version = scores.model_version
    return compose(scores, text, [m.text for m in earlier], [m.signals.frustration for m in earlier if m.signals])


def archive_escalation(state: ConversationState) -> None:
    if state.escalation is not None:
        state.past_escalations.append(state.escalation)
        state.escalation = None


def take_customer_message(
    state: ConversationState, policy: Policy, message_id: str, text: str, signals: Signals, now: datetime
) -> Assessment:
    """Add the customer's message with its signals to the conversation and assess it under the policy. A
    resolved conversation goes back to the bot first: the customer wrote again."""
    if state.phase == Phase.RESOLVED:
        archive_escalation(state)
        state.phase = Phase.BOT
    entry = record(state, message_id, "customer", text, now)
    entry.signals = signals
    state.customer_messages += 1
    return assess(policy, state, state.context, now)


def remember_triggers(state: ConversationState, triggers: list[TriggerHit]) -> None:
    known = {t.id for t in state.triggers_fired}
    state.triggers_fired.extend(t for t in triggers if t.id not in known)


def open_escalation(
    state: ConversationState,
    policy: Policy,
    message_id: str,
    urgency: Urgency,
    triggers: list[TriggerHit],
    segment: str | None,
    surge: bool,
    now: datetime,
) -> Escalation:
    """The escalation of the customer message `message_id`, in its queue: the conversation is now waiting for a
    person. What the customer is told, the queue entry and the note are the handoff's (handoff.py)."""
    cooling = state.context.cooling if state.context else None
    returning = cooling is not None and cooling.active(now)
    queue = choose_queue(policy, triggers, segment, cooling.last_queue if returning and cooling else None)
    escalation = Escalation(
        at=now,
        message_id=message_id,
        urgency=urgency,
        triggers=triggers,
        queue=queue,
        async_channel=state.start.channel in policy.handoff.async_channels,
        returning=returning,
        preferred_agent_id=cooling.last_agent_id if returning and cooling else None,
        surge=surge,
    )
    state.escalation = escalation
    state.phase = Phase.ESCALATED
    return escalation


def raises_urgency(assessment: Assessment, escalation: Escalation) -> bool:
    """A later message that needs a person at once while the conversation waits in the queued lane."""
    return assessment.urgency == "immediate" and escalation.urgency == "queued"


def carried(state: ConversationState) -> ConversationState:
    """The state a new run starts from: all of it, except that a long transcript keeps its first message (what
    the customer came with, and when) and its latest ones, up to CARRIED_MESSAGES entries and CARRIED_TEXT_CHARS
    of text; decisions are kept for the latest CARRIED_MESSAGES message ids (a retry of an older one is long over)."""
    transcript = state.transcript
    recent: list[TranscriptEntry] = []
    chars = len(transcript[0].text) if transcript else 0
    for entry in reversed(transcript[1:]):
        if len(recent) + 1 >= CARRIED_MESSAGES or chars + len(entry.text) > CARRIED_TEXT_CHARS:
            break
        recent.append(entry)
        chars += len(entry.text)
    dropped = max(0, len(transcript) - 1 - len(recent))
    if not dropped and len(state.decisions) <= CARRIED_MESSAGES:
        return state
    kept = [transcript[0], *reversed(recent)] if transcript else []
    decisions = dict(list(state.decisions.items())[-CARRIED_MESSAGES:])
    return state.model_copy(
        update={"transcript": kept, "decisions": decisions, "dropped_messages": state.dropped_messages + dropped}
    )


def raise_urgency(escalation: Escalation) -> None:
    """Re-ranked as immediate, in place: the escalation keeps its wait so far."""
    escalation.urgency = "immediate"


def customer_decision(message_id: str, outcome: Outcome, assessment: Assessment, phase: Phase) -> Decision:
    return Decision(
        message_id=message_id,
        action=outcome.action,
        urgency=outcome.urgency,
        triggers=outcome.triggers,
        customer_text=outcome.customer_text,
        signals=assessment.signals,
        segment=assessment.segment,
        phase=phase,
        surge=outcome.surge,
    )
