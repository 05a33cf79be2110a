"""What operators see of a conversation: search attributes and the current details.

The current details are written for a support lead reading the Temporal UI (or `temporal workflow metadata`):
where the conversation stands, how urgent it is, every trigger that fired (a later one that raised the urgency
included), who has it, and once resolved the agent's disposition, the customer's CSAT, the time to pickup and
the time to resolve. Ids and policy names only: never the customer's words.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from baton.contract import search_attributes as sa
from baton.contract.messages import ConversationState, Escalation, Phase, TriggerHit
from baton.workflows.conversation import patches
from baton.workflows.conversation.builders import segment_of

# Published behind their own patch markers (runs recorded before them never set these), asked only when the
# value would change.
PATCHED = {sa.WAITING_SINCE.name: patches.WAITING_SINCE, sa.MODEL_VERSION.name: patches.MODEL_VERSION}

PHASES = {
    Phase.BOT: "With the bot",
    Phase.ESCALATED: "Waiting for a person",
    Phase.WITH_AGENT: "With an agent",
    Phase.RESOLVED: "Resolved by an agent",
    Phase.CLOSED: "Closed",
}


def search_attribute_values(state: ConversationState) -> dict[str, object]:
    """Ids, labels and times only, never text or PII: search attributes are stored unencrypted."""
    facts = state.context.facts if state.context else None
    escalation = state.escalation
    # Set at each escalation and kept afterwards (with BatonPhase = "escalated" it is the time the customer
    # has been waiting since): an unset datetime comes back from the time-skipping test server as a null
    # that the SDK cannot read, so it is never unset once set.
    last = _last_escalation(state)
    return {
        sa.PHASE.name: state.phase.value,
        sa.URGENCY.name: escalation.urgency if escalation else None,
        sa.TIER.name: facts.tier if facts else None,
        sa.SEGMENT.name: segment_of(state),
        sa.TRIGGERS.name: [t.id for t in state.triggers_fired] or None,
        sa.AGENT.name: escalation.agent_id if escalation else None,
        sa.QUEUE.name: escalation.queue if escalation else None,
        sa.WAITING_SINCE.name: last.at if last else None,
        sa.MODEL_VERSION.name: state.model_version,
    }


def duration(span: timedelta) -> str:
    seconds = max(int(span.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s" if seconds % 60 else f"{seconds // 60} min"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _time(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _last_escalation(state: ConversationState) -> Escalation | None:
    return state.escalation or (state.past_escalations[-1] if state.past_escalations else None)


def _triggers_line(state: ConversationState, escalation: Escalation | None) -> str:
    if not state.triggers_fired:
        return "**Triggers:** none fired"
    at_escalation = {t.id for e in [*state.past_escalations, *([state.escalation] if state.escalation else [])]
                     for t in e.triggers}  # fmt: skip

    def shown(t: TriggerHit) -> str:
        later = escalation is not None and t.id not in at_escalation  # e.g. a request that raised the urgency
        return f"`{t.id}`" + (f" ({t.detail})" if t.detail else "") + (" *after the escalation*" if later else "")

    return "**Triggers:** " + "; ".join(shown(t) for t in state.triggers_fired)


def _urgency_line(state: ConversationState, escalation: Escalation | None) -> str:
    if escalation is None:
        return "**Urgency:** none (no escalation)"
    first = state.decisions.get(escalation.message_id)
    raised = first is not None and first.urgency is not None and first.urgency != escalation.urgency
    return f"**Urgency:** {escalation.urgency}" + (f" (raised from {first.urgency})" if raised and first else "")


def _account(state: ConversationState) -> str:
    facts = state.context.facts if state.context else None
    segment = segment_of(state)
    parts = [f"segment {segment}"] if segment else []
    if facts and facts.tier:
        parts.append(f"tier {facts.tier}")
    if facts and facts.mrr is not None:
        parts.append(f"MRR {facts.mrr:g}")
    return ", ".join(parts) or "account unknown"


def _escalation_lines(state: ConversationState, e: Escalation) -> list[str]:
    context = [n for n, on in (("during a surge", e.surge), ("returning customer", e.returning)) if on]
    if e.after_hours and e.callback_by is not None:
        context.append(f"after hours, callback promised by {_time(e.callback_by)}")
    if e.async_channel:
        context.append("answered by email or ticket")
    lines = [f"**Escalated** at {_time(e.at)} to queue `{e.queue}`" + (f" ({'; '.join(context)})" if context else "")]
    if e.picked_up_at is None:
        if state.phase == Phase.ESCALATED:
            flags = [
                n for n, on in (("SLA breached", e.sla_breached), ("widened", e.widened), ("paged", e.paged)) if on
            ]
            lines.append(
                f"**Waiting** since {_time(e.at)}: position {e.last_position or '?'} in line, "
                f"{e.updates_sent} wait update{'s' if e.updates_sent != 1 else ''} sent"
                + (f"; {', '.join(flags)}" if flags else "")
            )
        return lines
    agent = f"`{e.agent_id}`" + (f" ({e.agent_name})" if e.agent_name else "")
    lines.append(f"**Agent:** {agent}, picked up after {duration(e.picked_up_at - e.at)}")
    if e.resolved_at is not None:
        disposition = {True: "the escalation was needed", False: "the bot could have handled it", None: "not given"}
        lines.append(
            f"**Resolved** at {_time(e.resolved_at)}: disposition: {disposition[e.necessary]}; "
            f"CSAT {e.csat if e.csat is not None else 'not given'}; "
            f"time to pickup {duration(e.picked_up_at - e.at)}; time to resolve {duration(e.resolved_at - e.at)}"
            + ("; handed back to the bot" if e.handback else "")
        )
    return lines


def details(state: ConversationState) -> str:
    """The current details, in Markdown: where the conversation stands, in a few lines."""
    escalation = _last_escalation(state)
    lines = [
        f"**{PHASES[state.phase]}** · {state.customer_messages} customer "
        f"message{'s' if state.customer_messages != 1 else ''} · {state.start.channel} · {_account(state)}",
        f"{_urgency_line(state, escalation)} · {_triggers_line(state, escalation)}",
    ]
    if escalation is not None:
        if state.escalation is None:
            lines.append("Last escalation:")
        lines.extend(_escalation_lines(state, escalation))
    elif state.phase == Phase.BOT:
        lines.append("The bot is handling the conversation; no person is needed so far.")
    if state.past_escalations and state.escalation is not None:
        lines.append(f"Escalated {len(state.past_escalations) + 1} times in this conversation.")
    if state.phase == Phase.CLOSED:
        lines.append(f"**Closed** ({state.closed_reason or 'no reason given'}).")
    if state.runs > 1:
        lines.append(f"Run {state.runs} (continued as new to keep its history small).")
    return "\n\n".join(lines)


class Visibility:
    """Upserts search attributes only when they change, and refreshes the current details."""

    def __init__(self) -> None:
        # Start with what the client set at start (or the previous run upserted), so only changes are upserted.
        current = workflow.info().typed_search_attributes
        self._published: dict[str, object] = {key.name: current.get(key) for key in sa.ALL}

    def publish(self, state: ConversationState) -> None:
        values = search_attribute_values(state)
        keys = [k for k in sa.ALL if k.name not in PATCHED or self._patched(k.name, values[k.name])]
        updates: list[SearchAttributeUpdate] = []
        for key in keys:
            value = values[key.name]
            if self._published.get(key.name) != value:
                updates.append(key.value_set(value) if value is not None else key.value_unset())  # type: ignore[arg-type]
                self._published[key.name] = value
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(details(state))

    def _patched(self, name: str, value: object) -> bool:
        """Whether an attribute added later (BatonWaitingSince, BatonModelVersion) is published; asked only
        when it would change, so that a run recorded before it replays unchanged."""
        if self._published.get(name) == value:
            return False
        return patches.patched(PATCHED[name])
