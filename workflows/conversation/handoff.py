"""The handoff: from an escalation until an agent owns the conversation.

Joining and leaving the team queue, the customer's acknowledgement, after-hours callbacks, the
dead-zone ladder's steps, the handoff note (written in the background so that no decision waits on
the LLM), the helpdesk ticket, pages and what happens when an agent picks up.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from baton.contract.activities import Delivery, Handoff, Operations, Records, Routing
from baton.contract.messages import (
    ConversationState,
    Escalation,
    HandoffNote,
    OperationsStatus,
    PageRequest,
    Phase,
    QueueEntry,
    QueueRemoval,
    QueueRemovalRequest,
    QueueRequest,
    QueueStatus,
    QueueStatusRequest,
    TriggerHit,
    Urgency,
)
from baton.domain.handoff_note import fallback_note
from baton.domain.redaction import redact_page
from baton.policies.hours import format_callback, is_open, next_opening
from baton.policies.routing import segment_rank
from baton.policies.schema import Policy
from baton.policies.wording import async_escalation_text, escalation_text, transfer_reason, waiting_text
from baton.workflows.conversation import builders, decision, metrics, patches
from baton.workflows.conversation.effects import Effects
from baton.workflows.conversation.ladder import Step, StepKind, next_step

LOCAL_TIMEOUT = timedelta(seconds=10)
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)
# Routing answers are needed inside a decision: bounded tightly, with a fallback estimate.
ROUTING_DEADLINE = timedelta(seconds=5)
SURGE_READ_DEADLINE = timedelta(seconds=2)


class HandoffRun:
    """The handoff's logic over the conversation's state. `replans` counts changes the ladder's timer must see."""

    def __init__(self, state: ConversationState, policy: Policy, effects: Effects) -> None:
        self._state = state
        self._policy = policy
        self._effects = effects
        self.replans = 0
        self.note_task: asyncio.Task[None] | None = None
        self._last_operations: OperationsStatus | None = None

    # --- escalating ----------------------------------------------------------------------------

    async def escalate(
        self, message_id: str, urgency: Urgency, triggers: list[TriggerHit], segment: str | None, surge: bool
    ) -> str:
        """Open an escalation for the customer message `message_id`; returns the text for the customer."""
        state, policy = self._state, self._policy
        now = workflow.now()
        escalation = decision.open_escalation(state, policy, message_id, urgency, triggers, segment, surge, now)
        cooling = state.context.cooling if state.context else None
        returning = escalation.returning
        queue = escalation.queue
        metrics.count_escalation(escalation, segment)
        hours = policy.hours.for_queue(queue) if policy.hours else None
        if escalation.async_channel:
            text = async_escalation_text(policy, escalation.urgency, escalation.triggers)
        elif hours is not None and not is_open(hours, now):
            escalation.after_hours = True
            escalation.opens_at = next_opening(hours, now)
            if escalation.opens_at is not None:
                sla = getattr(policy.handoff.ladder, escalation.urgency).sla
                escalation.callback_by = escalation.opens_at + sla
            text = self.after_hours_text("after_hours", escalation)
            if escalation.urgency == "immediate":
                self._effects.in_background(Delivery.page_on_call, self._page("trigger"))
                escalation.paged = True
        else:
            await self.join_queue(escalation)
            wait = self.expected_wait(escalation)
            if surge:
                wait *= policy.surge.wait_factor
            text = escalation_text(policy, escalation.urgency, escalation.triggers, wait)
        # The acknowledgement goes back in the decision, shown by the backend at once; recorded here too.
        self._effects.append(f"{message_id}:ack", "baton", text)
        self.replans += 1
        self.start_note_if_needed()
        self._effects.in_background(Records.record_escalation, builders.escalation_record(state, escalation, segment))
        if not escalation.async_channel and not escalation.after_hours:
            self.report_operations("escalated")
        if returning and cooling is not None and cooling.escalations_in_window + 1 >= policy.cooling.page_lead_after:
            page = builders.lead_page(state, cooling.escalations_in_window + 1, workflow.now())
            page = redact_page(page) if policy.redaction.webhooks else page
            self._effects.in_background(Delivery.page_on_call, page)
        return text

    async def raise_to_immediate(self, escalation: Escalation) -> None:
        """A later message needs a human at once: re-ranked in the queue in place, keeping its wait so far."""
        decision.raise_urgency(escalation)
        await self.join_queue(escalation)
        self.replans += 1

    def status_text(self, escalation: Escalation) -> str | None:
        """What the customer hears while waiting, when they write again."""
        if self._state.phase != Phase.ESCALATED:
            return None
        if escalation.after_hours and not escalation.callback_queued:
            return self.after_hours_text("after_hours_status", escalation)
        if not escalation.async_channel:
            wait = self.expected_wait(escalation)
            return waiting_text(self._policy, "waiting_status", escalation.last_position or 1, wait)
        return None

    def after_hours_text(self, template: str, escalation: Escalation) -> str:
        facts = self._state.context.facts if self._state.context else None
        hours = self._policy.hours.for_queue(escalation.queue) if self._policy.hours else None
        zone = (facts.timezone if facts and facts.timezone else None) or (hours.timezone if hours else "UTC")
        when = (
            format_callback(escalation.callback_by, zone, workflow.now())
            if escalation.callback_by
            else "the next working day"
        )
        return self._policy.templates.render(
            template, reason=transfer_reason(self._policy, escalation.triggers), callback_time=when
        )

    def expected_wait(self, escalation: Escalation) -> timedelta:
        """The queue's last estimate, else the policy's average handle time."""
        return timedelta(seconds=escalation.last_wait_seconds or self.default_wait.total_seconds())

    @property
    def default_wait(self) -> timedelta:
        return self._policy.handoff.average_handle_time

    # --- surge ------------------------------------------------------------------------------------

    def report_operations(self, kind: str) -> None:
        event = builders.operations_event(self._state, kind, self._policy, workflow.now())
        self._effects.in_background(Operations.report_to_operations, event)

    async def operations_status(self) -> OperationsStatus:
        if not patches.patched(patches.SURGE_READ):
            try:
                return await workflow.execute_local_activity_method(
                    Operations.operations_status,
                    start_to_close_timeout=ROUTING_DEADLINE,
                    retry_policy=LOCAL_RETRY,
                    summary="Is support in a surge?",
                )
            except ActivityError:
                return OperationsStatus()
        try:
            status = await workflow.execute_local_activity_method(
                Operations.operations_status,
                schedule_to_close_timeout=SURGE_READ_DEADLINE,
                retry_policy=RetryPolicy(maximum_attempts=1),
                summary="Is support in a surge?",
            )
        except ActivityError as err:
            # The failed attempt is in the history; the escalation goes on with what this run last knew.
            workflow.logger.warning("surge check failed; using the last known state", extra={"error": str(err)})
            return (self._last_operations or OperationsStatus()).model_copy(update={"stale": True})
        self._last_operations = status
        return status

    # --- the queue --------------------------------------------------------------------------------

    async def join_queue(self, escalation: Escalation) -> None:
        assert escalation.queue is not None  # every live escalation has a queue (choose_queue's default)
        last = self._state.decisions.get(escalation.message_id)
        segment = last.segment if last else None
        entry = QueueEntry(
            conversation_id=self._state.start.conversation_id,
            urgency=escalation.urgency,
            segment_rank=segment_rank(self._policy, segment or builders.segment_of(self._state)),
            boost=2 if escalation.callback_queued else 1 if escalation.sla_breached else 0,
            enqueued_at=escalation.at,
            default_handle_seconds=self.default_wait.total_seconds(),
            preferred_agent_id=escalation.preferred_agent_id,
            callback=escalation.callback_queued,
        )
        try:
            status = await workflow.execute_activity_method(
                Routing.enqueue_conversation,
                QueueRequest(queue=escalation.queue, entry=entry),
                start_to_close_timeout=ROUTING_DEADLINE,
                schedule_to_close_timeout=ROUTING_DEADLINE * 2,
                summary=f"Queue for a human in '{escalation.queue}'",
            )
        except ActivityError as err:
            # The decision must not wait on routing; the ladder's next step enqueues again.
            workflow.logger.warning("enqueue failed; using the policy's wait estimate", extra={"error": str(err)})
            return
        self._remember(status)

    def _remember(self, status: QueueStatus) -> None:
        escalation = self._state.escalation
        if escalation is not None and status.position is not None:
            escalation.last_position = status.position
            escalation.last_wait_seconds = status.estimated_wait_seconds

    async def leave_queue(self, reason: str) -> None:
        escalation = self._state.escalation
        if escalation is None or escalation.queue is None or escalation.async_channel:
            return
        if self._state.phase != Phase.ESCALATED:
            return
        await self._dequeue(escalation.queue, reason, workflow.now())

    async def _dequeue(self, queue: str, reason: str, at: datetime) -> None:
        removal = QueueRemoval(conversation_id=self._state.start.conversation_id, reason=reason, at=at)
        request = QueueRemovalRequest(queue=queue, removal=removal)
        await self._effects.run(Routing.dequeue_conversation, request, "Leave the queue")

    # --- the dead-zone ladder ---------------------------------------------------------------------

    def next_step(self) -> Step | None:
        escalation = self._state.escalation
        if self._state.phase != Phase.ESCALATED or escalation is None or escalation.async_channel:
            return None
        return next_step(escalation, self._policy.handoff.ladder)

    async def run_step(self, step: Step) -> bool:
        """Run a due step; False when an agent picked up meanwhile and the step was dropped."""
        escalation = self._state.escalation
        assert escalation is not None  # next_step plans only while an escalation waits
        cid = self._state.start.conversation_id
        request = QueueStatusRequest(
            queue=escalation.queue or self._policy.handoff.routing.default_queue,
            conversation_id=cid,
            default_handle_seconds=self.default_wait.total_seconds(),
        )
        if step.kind == StepKind.CALLBACK:
            escalation.callback_queued = True
            await self.join_queue(escalation)
            self.report_operations("escalated")
        elif step.kind == StepKind.WAIT_UPDATE:
            number = escalation.updates_sent + 1
            status = await self._effects.run(Routing.queue_status, request, "Read the queue position")
            # An agent may have picked up while the position was read: then nothing more is said.
            if self._state.phase != Phase.ESCALATED:
                return False
            if status is not None and status.position is None:
                await self.join_queue(escalation)  # lost from the queue (it failed earlier): back in, same place
            elif status is not None:
                self._remember(status)
            text = waiting_text(
                self._policy, "wait_update", escalation.last_position or 1, self.expected_wait(escalation)
            )
            escalation.updates_sent = number
            await self._effects.say("wait_update", text, f"{cid}:wait-update:{escalation.message_id}:{number}")
        elif step.kind == StepKind.SLA:
            status = await self._effects.run(Routing.raise_queue_priority, request, "Raise the queue priority")
            if status is not None:
                self._remember(status)
            escalation.sla_breached = True
            if self._state.phase == Phase.ESCALATED:
                wait = self.expected_wait(escalation)
                text = waiting_text(self._policy, "sla_breached", escalation.last_position or 1, wait)
                await self._effects.say("sla_breached", text, f"{cid}:sla-breached:{escalation.message_id}")
        elif step.kind == StepKind.WIDEN:
            general = self._policy.handoff.routing.general_queue
            if escalation.queue != general:
                await self.leave_queue("moved")
                escalation.queue = general
                await self.join_queue(escalation)
            escalation.widened = True
        elif step.kind == StepKind.PAGE:
            await self._effects.run(Delivery.page_on_call, self._page("trigger"), "Page on-call")
            escalation.paged = True
        metrics.count_ladder_step(step.kind.value, escalation)
        return True

    def _page(self, action: str) -> PageRequest:
        escalation = self._state.escalation
        assert escalation is not None  # pages are about the current escalation
        page = builders.conversation_page(self._state, escalation, action, workflow.now())
        return redact_page(page) if self._policy.redaction.webhooks else page

    async def resolve_page(self) -> None:
        await self._effects.run(Delivery.page_on_call, self._page("resolve"), "Resolve the on-call page")

    # --- an agent picks up --------------------------------------------------------------------------

    async def after_claim(self, escalation: Escalation) -> None:
        """The first pickup: record it, leave the queue, resolve any page, tell the customer who joined."""
        picked_up_at = escalation.picked_up_at or workflow.now()
        cid = self._state.start.conversation_id
        metrics.observe_pickup(escalation, builders.segment_of(self._state), picked_up_at - escalation.at)
        self._effects.in_background(
            Records.record_pickup, builders.pickup_record(self._state, escalation, picked_up_at)
        )
        if escalation.queue and not escalation.async_channel:
            await self._dequeue(escalation.queue, "picked_up", picked_up_at)
        if escalation.paged:
            await self.resolve_page()
        if not escalation.async_channel:
            self.report_operations("left_queue")
        agent = escalation.agent_name or "A member of our team"
        text = self._policy.templates.render("agent_joined", agent=agent)
        await self._effects.say("agent_joined", text, f"{cid}:agent-joined:{escalation.message_id}")

    # --- the handoff note ---------------------------------------------------------------------------

    def start_note_if_needed(self) -> None:
        escalation = self._state.escalation
        if escalation is None or escalation.note is not None or self.note_task is not None:
            return
        if self._state.phase not in (Phase.ESCALATED, Phase.WITH_AGENT):
            return
        self.note_task = asyncio.create_task(self._write_note(escalation))

    async def _write_note(self, escalation: Escalation) -> None:
        request = builders.note_request(self._state, escalation, self._policy)
        timeout = self._policy.handoff.note.timeout
        try:
            note = await workflow.execute_activity_method(
                Handoff.write_handoff_note,
                request,
                start_to_close_timeout=timeout,
                schedule_to_close_timeout=timeout * 3 + timedelta(seconds=10),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3),
                summary="Write the handoff note",
            )
        except ActivityError as err:
            note = fallback_note(request, f"the note could not be written: {err.cause or err}")
        if escalation.note is None:
            escalation.note = builders.with_history(note, self._state)
        self.note_task = None
        if (escalation.async_channel or escalation.after_hours) and not escalation.ticket_posted:
            ticket = builders.helpdesk_ticket(self._state, escalation, self._policy)
            result = await self._effects.run(
                Delivery.post_helpdesk_ticket, ticket, "Post the summary ticket to the helpdesk"
            )
            escalation.ticket_posted = result is not None

    async def note_for_agent(self, escalation: Escalation) -> HandoffNote:
        """The LLM note if it is ready within the policy's bound, else the deterministic one."""
        if escalation.note is None:
            try:
                await workflow.wait_condition(
                    lambda: escalation.note is not None,
                    timeout=self._policy.handoff.note.timeout,
                    timeout_summary="Wait for the handoff note",
                )
            except TimeoutError:
                request = builders.note_request(self._state, escalation, self._policy)
                note = fallback_note(request, "the LLM note was not ready in time")
                escalation.note = builders.with_history(note, self._state)
        assert escalation.note is not None  # set by the writer or the fallback above
        return escalation.note


# Here rather than beside the workflow: the sandbox runs the workflow's module afresh for every conversation, and
# a dataclass costs a fraction of a millisecond to make.
@dataclass(frozen=True)
class Ready:
    """What start-up loads once (policy, and the handoff logic bound to it); carried across continue-as-new."""

    policy: Policy
    handoff: HandoffRun
