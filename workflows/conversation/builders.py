"""Pure builders of what the conversation sends out: store records, pages, events, the note request,
the ticket and the run's summary. Each is a function of the state (and the time, passed in)."""

from __future__ import annotations

from datetime import datetime

from baton.contract.messages import (
    ConversationState,
    ConversationSummary,
    Escalation,
    HandoffNote,
    HelpdeskTicket,
    NoteRequest,
    OperationsEvent,
    PageRequest,
    ResolvedEscalation,
    ResolveRequest,
    SurgeThresholds,
)
from baton.contract.records import (
    ConversationEndRecord,
    ConversationStartRecord,
    EscalationRecord,
    PickupRecord,
    ResolutionRecord,
    conversation_outcome,
)
from baton.domain.redaction import redact_ticket
from baton.policies.schema import Policy


def segment_of(state: ConversationState) -> str | None:
    """The customer's segment as the latest decision that knew it saw it."""
    return next((d.segment for d in reversed(state.decisions.values()) if d.segment), None)


def start_record(state: ConversationState, started_at: datetime) -> ConversationStartRecord:
    return ConversationStartRecord(
        conversation_id=state.start.conversation_id,
        customer_id=state.start.customer_id,
        channel=state.start.channel,
        started_at=state.transcript[0].at if state.transcript else started_at,
        segment=segment_of(state),  # as first decided; the close records the final one
        tier=state.context.facts.tier if state.context else None,
        policy_name=state.policy_name,
    )


def end_record(state: ConversationState, now: datetime) -> ConversationEndRecord:
    return ConversationEndRecord(
        conversation_id=state.start.conversation_id,
        closed_at=now,
        outcome=conversation_outcome(bool(state.past_escalations or state.escalation), state.closed_reason),
        customer_messages=state.customer_messages,
        closed_reason=state.closed_reason,
        segment=segment_of(state),
        tier=state.context.facts.tier if state.context else None,
    )


def escalation_record(state: ConversationState, escalation: Escalation, segment: str | None) -> EscalationRecord:
    return EscalationRecord(
        conversation_id=state.start.conversation_id,
        message_id=escalation.message_id,
        customer_id=state.start.customer_id,
        channel=state.start.channel,
        urgency=escalation.urgency,
        escalated_at=escalation.at,
        messages_to_escalation=state.customer_messages,
        triggers=[t.id for t in escalation.triggers],
        queue=escalation.queue,
        segment=segment or segment_of(state),
        conversation_started_at=state.transcript[0].at if state.transcript else None,
    )


def pickup_record(state: ConversationState, escalation: Escalation, picked_up_at: datetime) -> PickupRecord:
    assert escalation.agent_id is not None  # set by the claim that precedes every pickup record
    return PickupRecord(
        conversation_id=state.start.conversation_id,
        message_id=escalation.message_id,
        agent_id=escalation.agent_id,
        picked_up_at=picked_up_at,
        escalated_at=escalation.at,
    )


def resolution_record(
    state: ConversationState, escalation: Escalation, request: ResolveRequest, resolved_at: datetime
) -> ResolutionRecord:
    return ResolutionRecord(
        conversation_id=state.start.conversation_id,
        message_id=escalation.message_id,
        agent_id=request.agent_id,
        resolved_at=resolved_at,
        necessary=request.necessary,
        csat=request.csat,
        handback=request.handback,
    )


def resolved_escalation(
    state: ConversationState, escalation: Escalation, policy: Policy, resolved_at: datetime
) -> ResolvedEscalation:
    return ResolvedEscalation(
        customer_id=state.start.customer_id,
        conversation_id=state.start.conversation_id,
        escalated_at=escalation.at,
        resolved_at=resolved_at,
        agent_id=escalation.agent_id,
        queue=escalation.queue,
        cooling_seconds=policy.cooling.period.total_seconds(),
    )


def conversation_page(state: ConversationState, escalation: Escalation, action: str, now: datetime) -> PageRequest:
    """Page on-call about a conversation waiting too long (`trigger`), or resolve that page (`resolve`)."""
    cid = state.start.conversation_id
    waited = now - escalation.at
    return PageRequest(
        dedup_key=f"baton-conversation-{cid}",
        action=action,
        summary=f"Conversation {cid} ({escalation.urgency}) has waited {int(waited.total_seconds() // 60)} min "
        f"for a human in queue {escalation.queue}",
        severity="critical" if escalation.urgency == "immediate" else "error",
        conversation_id=cid,
        details={"queue": escalation.queue or "", "triggers": ",".join(t.id for t in escalation.triggers)},
    )


def lead_page(state: ConversationState, count: int, now: datetime) -> PageRequest:
    """A customer escalating again and again within the cooling period: the team lead should look."""
    cid = state.start.conversation_id
    customer = state.start.customer_id
    return PageRequest(
        dedup_key=f"baton-repeat-{customer}-{now:%Y%m%d}",
        summary=f"Customer {customer} escalated {count} times within the cooling period (now {cid}): team lead review",
        severity="warning",
        conversation_id=cid,
        details={"customer_id": customer, "escalations_in_window": str(count)},
    )


def operations_event(state: ConversationState, kind: str, policy: Policy, now: datetime) -> OperationsEvent:
    surge = policy.surge
    return OperationsEvent(
        conversation_id=state.start.conversation_id,
        kind=kind,
        at=now,
        thresholds=SurgeThresholds(queue_depth=surge.queue_depth, escalations_per_hour=surge.escalations_per_hour),
    )


def note_request(state: ConversationState, escalation: Escalation, policy: Policy) -> NoteRequest:
    return NoteRequest(
        conversation_id=state.start.conversation_id,
        channel=state.start.channel,
        transcript=state.transcript,
        context=state.context,
        triggers=escalation.triggers,
        urgency=escalation.urgency,
        segment=segment_of(state),
        max_tokens=policy.handoff.note.max_tokens,
        redact=policy.redaction.llm,
    )


def with_history(note: HandoffNote, state: ConversationState) -> HandoffNote:
    """A returning customer's note opens with their last escalation, so the agent knows at once."""
    cooling = state.context.cooling if state.context else None
    escalation = state.escalation
    if escalation is None or not escalation.returning or cooling is None or cooling.last_escalation_at is None:
        return note
    by = f", handled by {cooling.last_agent_id}" if cooling.last_agent_id else ""
    history = f"Returning customer: escalated on {cooling.last_escalation_at:%Y-%m-%d}{by}. "
    actions = [f"Route to {cooling.last_agent_id} if available", *note.recommended_actions]
    return note.model_copy(
        update={
            "summary": history + note.summary,
            "recommended_actions": actions if by else note.recommended_actions,
        }
    )


def helpdesk_ticket(state: ConversationState, escalation: Escalation, policy: Policy) -> HelpdeskTicket:
    """The ticket for an escalation nobody can take live (async channel or after hours)."""
    assert escalation.note is not None  # posted once the note is written
    segment = segment_of(state)
    priority = "urgent" if escalation.urgency == "immediate" else "high" if segment == "enterprise" else "normal"
    ticket = HelpdeskTicket(
        idempotency_key=f"{state.start.conversation_id}:ticket:{escalation.message_id}",
        conversation_id=state.start.conversation_id,
        customer_id=state.start.customer_id,
        channel=state.start.channel,
        subject=escalation.note.summary[:150],
        priority=priority,
        urgency=escalation.urgency,
        reply_within_seconds=int(policy.handoff.reply_time[escalation.urgency].total_seconds()),
        note=escalation.note,
        transcript=state.transcript,
    )
    return redact_ticket(ticket) if policy.redaction.helpdesk else ticket


def summary(state: ConversationState) -> ConversationSummary:
    escalations = [*state.past_escalations, *([state.escalation] if state.escalation else [])]
    last = escalations[-1] if escalations else None
    return ConversationSummary(
        conversation_id=state.start.conversation_id,
        phase=state.phase,
        escalated=bool(escalations),
        urgency=last.urgency if last else None,
        triggers=[t.id for t in state.triggers_fired],
        customer_messages=state.customer_messages,
        closed_reason=state.closed_reason,
    )
