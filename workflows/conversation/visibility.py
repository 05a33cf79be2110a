"""What operators see of a conversation: search attributes and the current details."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from baton.contract import search_attributes as sa
from baton.contract.messages import ConversationState, Phase
from baton.workflows.conversation.builders import segment_of


def search_attribute_values(state: ConversationState) -> dict[str, object]:
    """Ids and labels only, never text or PII: search attributes are stored unencrypted."""
    facts = state.context.facts if state.context else None
    escalation = state.escalation
    return {
        sa.PHASE.name: state.phase.value,
        sa.URGENCY.name: escalation.urgency if escalation else None,
        sa.TIER.name: facts.tier if facts else None,
        sa.SEGMENT.name: segment_of(state),
        sa.TRIGGERS.name: [t.id for t in state.triggers_fired] or None,
        sa.AGENT.name: escalation.agent_id if escalation else None,
        sa.QUEUE.name: escalation.queue if escalation else None,
    }


def details(state: ConversationState) -> str:
    """The current details, in Markdown: where the conversation stands, in a few lines."""
    facts = state.context.facts if state.context else None
    who = f"{facts.tier or 'unknown tier'}" if facts else "unknown tier"
    if facts and facts.mrr is not None:
        who += f", MRR {facts.mrr:g}"
    lines = [f"**Phase:** {state.phase.value} · **customer messages:** {state.customer_messages} · **account:** {who}"]
    e = state.escalation
    if e is not None:
        fired = ", ".join(f"`{t.id}` ({t.detail})" for t in e.triggers)
        context = [n for n, on in (("during a surge", e.surge), ("returning customer", e.returning)) if on]
        if e.after_hours and e.callback_by is not None:
            context.append(f"after hours, callback by {e.callback_by:%Y-%m-%d %H:%M} UTC")
        lines.append(
            f"**Escalated** {e.urgency} at {e.at:%Y-%m-%d %H:%M:%S} UTC to queue `{e.queue}`: {fired}"
            + (f" ({'; '.join(context)})" if context else "")
        )
        if e.agent_id is not None and e.picked_up_at is not None:
            waited = int((e.picked_up_at - e.at).total_seconds())
            lines.append(f"**Owner:** agent `{e.agent_id}`, picked up after {waited // 60} min {waited % 60} s.")
        else:
            flags = [
                n for n, on in (("SLA breached", e.sla_breached), ("widened", e.widened), ("paged", e.paged)) if on
            ]
            lines.append(
                f"**Waiting** since {e.at:%H:%M:%S} UTC; position {e.last_position or '?'}; "
                f"{e.updates_sent} wait updates sent" + (f"; {', '.join(flags)}" if flags else "")
            )
    elif state.phase == Phase.BOT:
        lines.append("The bot is handling the conversation; no trigger has fired.")
    if state.runs > 1:
        lines.append(f"Run {state.runs} (continued as new to keep history small).")
    return "\n\n".join(lines)


class Visibility:
    """Upserts search attributes only when they change, and refreshes the current details."""

    def __init__(self) -> None:
        # Start with what the client set at start (or the previous run upserted), so only changes are upserted.
        current = workflow.info().typed_search_attributes
        self._published: dict[str, object] = {key.name: current.get(key) for key in sa.ALL}

    def publish(self, state: ConversationState) -> None:
        values = search_attribute_values(state)
        updates: list[SearchAttributeUpdate] = []
        for key in sa.ALL:
            value = values[key.name]
            if self._published.get(key.name) != value:
                updates.append(key.value_set(value) if value is not None else key.value_unset())  # type: ignore[arg-type]
                self._published[key.name] = value
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(details(state))
