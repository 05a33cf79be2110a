"""ConversationWorkflow: one support conversation, from first message to close.

Each message arrives as the `add_message` update and is answered with a
Decision. Messages are processed strictly in arrival order under a lock, and
a message id seen before returns the decision it got the first time.

After an escalation the main loop runs the dead-zone ladder (wait updates,
SLA breach, wider routing, paging) as durable timers until an agent picks
up; the handoff note is written in the background so that no decision waits
on the LLM.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from baton.contract import ids
    from baton.contract import search_attributes as sa
    from baton.contract.errors import ErrorType
    from baton.contract.messages import (
        CloseRequest,
        ContextInput,
        ConversationInput,
        ConversationSetup,
        ConversationState,
        ConversationSummary,
        Decision,
        Escalation,
        HandoffNote,
        HelpdeskTicket,
        MessageIn,
        NoteRequest,
        OperationsEvent,
        OperationsStatus,
        OutboundKind,
        OutboundMessage,
        PageRequest,
        Phase,
        PickupRequest,
        PickupResult,
        QueueEntry,
        QueueRemoval,
        QueueRemovalRequest,
        QueueRequest,
        QueueStatus,
        QueueStatusRequest,
        ResolvedEscalation,
        ResolveRequest,
        SetupRequest,
        SurgeThresholds,
        TranscriptEntry,
        message_problems,
    )
    from baton.contract.records import (
        ConversationEndRecord,
        ConversationStartRecord,
        EscalationRecord,
        PickupRecord,
        ResolutionRecord,
        conversation_outcome,
    )
    from baton.domain.handoff_note import fallback_note
    from baton.domain.scoring import score
    from baton.policies.engine import evaluate
    from baton.policies.hours import format_callback, is_open, next_opening
    from baton.policies.routing import choose_queue, segment_rank
    from baton.policies.schema import Policy
    from baton.policies.surge import incident_text, is_incident_question
    from baton.policies.wording import async_escalation_text, escalation_text, transfer_reason, waiting_text

SCORING_WINDOW = 6  # earlier customer messages the scorer sees
LOCAL_TIMEOUT = timedelta(seconds=10)
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)
# Side effects retry with backoff, but a customer message that cannot be delivered in
# ten minutes is stale: it stays in the transcript and is listed as undelivered.
EFFECT_TIMEOUT = timedelta(seconds=15)
EFFECT_DEADLINE = timedelta(minutes=10)
EFFECT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# Routing answers are needed inside a decision: bounded tightly, with a fallback estimate.
ROUTING_DEADLINE = timedelta(seconds=5)


@dataclass(frozen=True)
class LadderStep:
    due: datetime
    kind: str  # wait_update | sla | widen | page

    @property
    def summary(self) -> str:
        return {
            "wait_update": "Next wait-time update to the customer",
            "sla": "Pickup SLA",
            "widen": "Widen routing to the general queue",
            "page": "Page on-call",
            "callback": "Opening time: put the callback at the front of the queue",
        }[self.kind]


@workflow.defn(name=ids.CONVERSATION_WORKFLOW)
class ConversationWorkflow:
    @workflow.init
    def __init__(self, input: ConversationInput) -> None:
        self._state = input.carried_state or ConversationState(start=input.start)
        self._policy = Policy.model_validate(input.carried_policy) if input.carried_policy else None
        self._lock = asyncio.Lock()
        self._closing = False
        self._plan_version = 0  # bumped whenever the ladder must be planned again
        self._note_task: asyncio.Task[None] | None = None
        self._records: list[asyncio.Task[object]] = []
        # Start with what the client set at start (or the previous run upserted), so only changes are upserted.
        current = workflow.info().typed_search_attributes
        self._published: dict[str, object] = {key.name: current.get(key) for key in sa.ALL}

    # --- main loop -------------------------------------------------------------

    @workflow.run
    async def run(self, input: ConversationInput) -> ConversationSummary:
        async with self._lock:
            await self._ensure_ready()
        self._start_note_if_needed()
        while not self._should_stop():
            seen = self._plan_version
            step = self._next_step()
            if step is not None and step.due <= workflow.now():
                await self._run_step(step)
                continue
            timeout = (step.due - workflow.now()) if step else None
            try:
                await workflow.wait_condition(
                    lambda seen=seen: self._should_stop() or self._plan_version != seen,
                    timeout=timeout,
                    timeout_summary=step.summary if step else None,
                )
            except TimeoutError:
                assert step is not None
                await self._run_step(step)
        await self._quiesce()
        if not self._closing:
            self._state.runs += 1
            workflow.continue_as_new(
                ConversationInput(
                    start=self._state.start,
                    carried_state=self._state,
                    carried_policy=self._policy.model_dump(mode="json") if self._policy else None,
                )
            )
        if self._state.phase == Phase.ESCALATED:
            self._report_operations("left_queue")
        await self._leave_queue("closed")
        escalation = self._state.escalation
        if escalation is not None and escalation.paged and escalation.agent_id is None:
            await self._effect("page_on_call", self._page("resolve"), "Resolve the on-call page")
        self._state.phase = Phase.CLOSED
        self._publish()
        state = self._state
        # The conversation's row is written when it ends (escalations create it earlier if needed):
        # a record at the start would put a database write on every conversation's first message.
        self._in_background(
            "record_conversation_start",
            ConversationStartRecord(
                conversation_id=state.start.conversation_id,
                customer_id=state.start.customer_id,
                channel=state.start.channel,
                started_at=state.transcript[0].at if state.transcript else workflow.info().start_time,
                tier=state.context.facts.tier if state.context else None,
                policy_name=state.policy_name,
            ),
        )
        self._in_background(
            "record_conversation_end",
            ConversationEndRecord(
                conversation_id=state.start.conversation_id,
                closed_at=workflow.now(),
                outcome=conversation_outcome(bool(state.past_escalations or state.escalation), state.closed_reason),
                customer_messages=state.customer_messages,
                closed_reason=state.closed_reason,
                segment=self._segment(),
                tier=state.context.facts.tier if state.context else None,
            ),
        )
        await self._flush_records()
        return self._summary()

    async def _quiesce(self) -> None:
        """Wait until no handler, note or background effect is in flight. Awaiting one can let a new
        update in, so check again until all are done in the same breath, then end or continue as new."""
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._note_task is not None:
                await self._note_task
            await self._flush_records()
            if workflow.all_handlers_finished() and self._note_task is None and not self._records:
                return

    def _should_stop(self) -> bool:
        return self._closing or workflow.info().is_continue_as_new_suggested()

    # --- messages ----------------------------------------------------------------

    @workflow.update(name=ids.ADD_MESSAGE)
    async def add_message(self, message: MessageIn) -> Decision:
        async with self._lock:
            earlier = self._state.decisions.get(message.message_id)
            if earlier is not None:
                return earlier
            if self._closing:
                raise ApplicationError("conversation: already closed", type=ErrorType.CONVERSATION_CLOSED)
            await self._ensure_ready()
            assert self._policy is not None
            # The validator of a conversation's first message ran before the policy was loaded.
            problems = message_problems(message, self._policy.limits.max_message_chars)
            problems += self._role_problems(message)
            if problems:
                raise ApplicationError(
                    "; ".join(problems), *problems, type=ErrorType.INVALID_MESSAGE, non_retryable=True
                )
            if message.role == "customer":
                decision = await self._on_customer(message)
            elif message.role == "agent":
                decision = await self._on_agent(message)
            else:
                self._record(message.message_id, "bot", message.text)
                decision = Decision(message_id=message.message_id, action="continue", phase=self._state.phase)
            self._state.decisions[message.message_id] = decision
            self._publish()
            return decision

    @add_message.validator
    def _validate_message(self, message: MessageIn) -> None:
        if message.message_id in self._state.decisions:
            return  # a retry of a message already handled; answered with its decision
        if self._closing:
            raise ApplicationError("conversation: already closed", type=ErrorType.CONVERSATION_CLOSED)
        limit = self._policy.limits.max_message_chars if self._policy else None
        problems = message_problems(message, limit) if limit else message_problems(message)
        problems += self._role_problems(message)
        if problems:
            raise ApplicationError("; ".join(problems), *problems, type=ErrorType.INVALID_MESSAGE)

    def _role_problems(self, message: MessageIn) -> list[str]:
        phase = self._state.phase
        escalation = self._state.escalation
        if message.role == "bot" and phase in (Phase.ESCALATED, Phase.WITH_AGENT):
            return [f"role: the bot may not reply while a human owns the conversation (phase {phase.value})"]
        if message.role == "agent":
            if phase != Phase.WITH_AGENT or escalation is None:
                return [f"role: no agent has picked up this conversation (phase {phase.value})"]
            if message.agent_id != escalation.agent_id:
                return [f"agent_id: the conversation belongs to agent {escalation.agent_id}"]
        return []

    async def _on_customer(self, message: MessageIn) -> Decision:
        state = self._state
        assert self._policy is not None
        if state.phase == Phase.RESOLVED:
            self._archive_escalation()  # the customer wrote again: the bot takes it from here
            state.phase = Phase.BOT
        earlier = [m for m in state.transcript if m.role == "customer"][-SCORING_WINDOW:]
        # The rule-based scorer is pure and fast, so it runs here like the policy engine: as a local
        # activity it cost a second workflow activation and an event per message (see bench/README.md).
        signals = score(message.text, [m.text for m in earlier], [m.signals.frustration for m in earlier if m.signals])
        entry = self._record(message.message_id, "customer", message.text)
        entry.signals = signals
        state.customer_messages += 1
        decision = evaluate(self._policy, state, state.context, workflow.now(), message.message_id)
        incident_question = state.phase == Phase.BOT and is_incident_question(self._policy, message.text, signals)
        if decision.action != "escalate" and not incident_question:
            return decision
        if state.phase == Phase.BOT:
            # Asked only for escalations and incident questions, so ordinary messages pay nothing for it.
            operations = await self._operations_status()
            if operations.surge and incident_question:
                # A general incident question in a surge: the bot triages and gives the status.
                incident = operations.incident.description if operations.incident else None
                decision.action, decision.urgency, decision.triggers = "continue", None, []
                decision.surge = True
                decision.customer_text = incident_text(self._policy, incident)
                self._record(f"{message.message_id}:incident", "baton", decision.customer_text)
                return decision
            if decision.action != "escalate":
                return decision
            self._remember_triggers(decision)
            await self._escalate(decision, surge=operations.surge)
            return decision
        # A person already owns the conversation: the bot stays silent.
        self._remember_triggers(decision)
        escalation = state.escalation
        assert escalation is not None
        decision.action = "human"
        if decision.urgency == "immediate" and escalation.urgency == "queued":
            escalation.urgency = "immediate"
            await self._join_queue(escalation)  # re-ranked in place, keeping its wait so far
            self._plan_version += 1
        decision.urgency = escalation.urgency
        if state.phase == Phase.ESCALATED and escalation.after_hours and not escalation.callback_queued:
            decision.customer_text = self._after_hours_text("after_hours_status", escalation)
        elif state.phase == Phase.ESCALATED and not escalation.async_channel:
            wait = timedelta(seconds=escalation.last_wait_seconds or self._default_wait().total_seconds())
            decision.customer_text = waiting_text(self._policy, "waiting_status", escalation.last_position or 1, wait)
        return decision

    def _remember_triggers(self, decision: Decision) -> None:
        known = {t.id for t in self._state.triggers_fired}
        self._state.triggers_fired.extend(t for t in decision.triggers if t.id not in known)

    async def _on_agent(self, message: MessageIn) -> Decision:
        self._record(message.message_id, "agent", message.text)
        # Keys are global to the backend's webhook: scope the agent's message id to the conversation.
        key = f"{self._state.start.conversation_id}:{message.message_id}"
        await self._deliver("agent", message.text, key, agent_id=message.agent_id)
        return Decision(message_id=message.message_id, action="human", phase=self._state.phase)

    # --- escalation ----------------------------------------------------------------

    async def _escalate(self, decision: Decision, surge: bool = False) -> None:
        state = self._state
        policy = self._policy
        assert policy is not None and decision.urgency is not None
        now = workflow.now()
        cooling = state.context.cooling if state.context else None
        returning = cooling is not None and cooling.active(now)
        queue = choose_queue(policy, decision.triggers, decision.segment, cooling.last_queue if returning else None)
        escalation = Escalation(
            at=now,
            message_id=decision.message_id,
            urgency=decision.urgency,
            triggers=decision.triggers,
            queue=queue,
            async_channel=state.start.channel in policy.handoff.async_channels,
            returning=returning,
            preferred_agent_id=cooling.last_agent_id if returning and cooling else None,
            surge=surge,
        )
        state.escalation = escalation
        state.phase = Phase.ESCALATED
        hours = policy.hours.for_queue(queue) if policy.hours else None
        if escalation.async_channel:
            text = async_escalation_text(policy, escalation.urgency, escalation.triggers)
        elif hours is not None and not is_open(hours, now):
            escalation.after_hours = True
            escalation.opens_at = next_opening(hours, now)
            if escalation.opens_at is not None:
                sla = getattr(policy.handoff.ladder, escalation.urgency).sla
                escalation.callback_by = escalation.opens_at + sla
            text = self._after_hours_text("after_hours", escalation)
            if escalation.urgency == "immediate":
                self._in_background("page_on_call", self._page("trigger"))
                escalation.paged = True
        else:
            await self._join_queue(escalation)
            wait = timedelta(seconds=escalation.last_wait_seconds or self._default_wait().total_seconds())
            if surge:
                wait *= policy.surge.wait_factor
            text = escalation_text(policy, escalation.urgency, escalation.triggers, wait)
        decision.customer_text = text
        decision.phase = Phase.ESCALATED
        # The acknowledgement goes back in the decision, shown by the backend at once; recorded here too.
        self._record(f"{decision.message_id}:ack", "baton", text)
        self._plan_version += 1
        self._start_note_if_needed()
        self._record_escalation(escalation, decision.segment)
        if not escalation.async_channel and not escalation.after_hours:
            self._report_operations("escalated")
        if returning and cooling is not None and cooling.escalations_in_window + 1 >= policy.cooling.page_lead_after:
            self._in_background("page_on_call", self._lead_page(cooling.escalations_in_window + 1))

    def _after_hours_text(self, template: str, escalation: Escalation) -> str:
        assert self._policy is not None
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

    def _lead_page(self, count: int) -> PageRequest:
        cid = self._state.start.conversation_id
        customer = self._state.start.customer_id
        return PageRequest(
            dedup_key=f"baton-repeat-{customer}-{workflow.now():%Y%m%d}",
            summary=f"Customer {customer} escalated {count} times within the cooling period (now {cid}): "
            "team lead review",
            severity="warning",
            conversation_id=cid,
            details={"customer_id": customer, "escalations_in_window": str(count)},
        )

    def _report_operations(self, kind: str) -> None:
        assert self._policy is not None
        surge = self._policy.surge
        self._in_background(
            "report_to_operations",
            OperationsEvent(
                conversation_id=self._state.start.conversation_id,
                kind=kind,
                at=workflow.now(),
                thresholds=SurgeThresholds(
                    queue_depth=surge.queue_depth, escalations_per_hour=surge.escalations_per_hour
                ),
            ),
        )

    async def _operations_status(self) -> OperationsStatus:
        try:
            return await workflow.execute_local_activity(
                "operations_status",
                result_type=OperationsStatus,
                start_to_close_timeout=ROUTING_DEADLINE,
                retry_policy=LOCAL_RETRY,
                summary="Is support in a surge?",
            )
        except ActivityError:
            return OperationsStatus()

    def _record_escalation(self, escalation: Escalation, segment: str | None) -> None:
        state = self._state
        self._in_background(
            "record_escalation",
            EscalationRecord(
                conversation_id=state.start.conversation_id,
                message_id=escalation.message_id,
                customer_id=state.start.customer_id,
                channel=state.start.channel,
                urgency=escalation.urgency,
                escalated_at=escalation.at,
                messages_to_escalation=state.customer_messages,
                triggers=[t.id for t in escalation.triggers],
                queue=escalation.queue,
                segment=segment or self._segment(),
                conversation_started_at=state.transcript[0].at if state.transcript else None,
            ),
        )

    def _default_wait(self) -> timedelta:
        assert self._policy is not None
        return self._policy.handoff.average_handle_time

    async def _join_queue(self, escalation: Escalation) -> None:
        assert self._policy is not None and escalation.queue is not None
        last = self._state.decisions.get(escalation.message_id)
        segment = last.segment if last else None
        entry = QueueEntry(
            conversation_id=self._state.start.conversation_id,
            urgency=escalation.urgency,
            segment_rank=segment_rank(self._policy, segment or self._segment()),
            boost=2 if escalation.callback_queued else 1 if escalation.sla_breached else 0,
            enqueued_at=escalation.at,
            default_handle_seconds=self._default_wait().total_seconds(),
            preferred_agent_id=escalation.preferred_agent_id,
            callback=escalation.callback_queued,
        )
        try:
            status = await workflow.execute_activity(
                "enqueue_conversation",
                QueueRequest(queue=escalation.queue, entry=entry),
                result_type=QueueStatus,
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

    async def _leave_queue(self, reason: str) -> None:
        escalation = self._state.escalation
        if escalation is None or escalation.queue is None or escalation.async_channel:
            return
        if self._state.phase != Phase.ESCALATED:
            return
        removal = QueueRemoval(conversation_id=self._state.start.conversation_id, reason=reason, at=workflow.now())
        await self._effect(
            "dequeue_conversation", QueueRemovalRequest(queue=escalation.queue, removal=removal), "Leave the queue"
        )

    def _segment(self) -> str | None:
        return next((d.segment for d in reversed(self._state.decisions.values()) if d.segment), None)

    # --- the dead-zone ladder ---------------------------------------------------------

    def _next_step(self) -> LadderStep | None:
        escalation = self._state.escalation
        if self._state.phase != Phase.ESCALATED or escalation is None or escalation.async_channel:
            return None
        assert self._policy is not None
        if escalation.after_hours and not escalation.callback_queued:
            # Nobody on shift: nothing happens until the opening, when the callback joins the queue first.
            return LadderStep(escalation.opens_at, "callback") if escalation.opens_at else None
        ladder = getattr(self._policy.handoff.ladder, escalation.urgency)
        t0 = escalation.opens_at if escalation.after_hours and escalation.opens_at else escalation.at
        steps = [LadderStep(t0 + (escalation.updates_sent + 1) * ladder.update_every, "wait_update")]
        if not escalation.sla_breached:
            steps.append(LadderStep(t0 + ladder.sla, "sla"))
        if not escalation.widened:
            steps.append(LadderStep(t0 + ladder.widen_after, "widen"))
        if not escalation.paged:
            steps.append(LadderStep(t0 + ladder.page_after, "page"))
        return min(steps, key=lambda s: (s.due, s.kind != "wait_update"))

    async def _run_step(self, step: LadderStep) -> None:
        escalation = self._state.escalation
        assert escalation is not None and self._policy is not None
        cid = self._state.start.conversation_id
        request = QueueStatusRequest(
            queue=escalation.queue or self._policy.handoff.routing.default_queue,
            conversation_id=cid,
            default_handle_seconds=self._default_wait().total_seconds(),
        )
        if step.kind == "callback":
            escalation.callback_queued = True
            await self._join_queue(escalation)
            self._report_operations("escalated")
        elif step.kind == "wait_update":
            number = escalation.updates_sent + 1
            status = await self._effect("queue_status", request, "Read the queue position", QueueStatus)
            # An agent may have picked up while the position was read: then nothing more is said.
            if self._state.phase != Phase.ESCALATED:
                return
            if status is not None and status.position is None:
                await self._join_queue(escalation)  # lost from the queue (it failed earlier): back in, same place
            elif status is not None:
                self._remember(status)
            wait = timedelta(seconds=escalation.last_wait_seconds or self._default_wait().total_seconds())
            text = waiting_text(self._policy, "wait_update", escalation.last_position or 1, wait)
            escalation.updates_sent = number
            await self._say("wait_update", text, f"{cid}:wait-update:{escalation.message_id}:{number}")
        elif step.kind == "sla":
            status = await self._effect("raise_queue_priority", request, "Raise the queue priority", QueueStatus)
            if status is not None:
                self._remember(status)
            escalation.sla_breached = True
            if self._state.phase == Phase.ESCALATED:
                wait = timedelta(seconds=escalation.last_wait_seconds or self._default_wait().total_seconds())
                text = waiting_text(self._policy, "sla_breached", escalation.last_position or 1, wait)
                await self._say("sla_breached", text, f"{cid}:sla-breached:{escalation.message_id}")
        elif step.kind == "widen":
            general = self._policy.handoff.routing.general_queue
            if escalation.queue != general:
                await self._leave_queue("moved")
                escalation.queue = general
                await self._join_queue(escalation)
            escalation.widened = True
        elif step.kind == "page":
            await self._effect("page_on_call", self._page("trigger"), "Page on-call")
            escalation.paged = True
        self._publish()

    def _page(self, action: str) -> PageRequest:
        escalation = self._state.escalation
        assert escalation is not None
        cid = self._state.start.conversation_id
        waited = workflow.now() - escalation.at
        return PageRequest(
            dedup_key=f"baton-conversation-{cid}",
            action=action,
            summary=f"Conversation {cid} ({escalation.urgency}) has waited {int(waited.total_seconds() // 60)} min "
            f"for a human in queue {escalation.queue}",
            severity="critical" if escalation.urgency == "immediate" else "error",
            conversation_id=cid,
            details={"queue": escalation.queue or "", "triggers": ",".join(t.id for t in escalation.triggers)},
        )

    # --- the handoff note ------------------------------------------------------------

    def _start_note_if_needed(self) -> None:
        escalation = self._state.escalation
        if escalation is None or escalation.note is not None or self._note_task is not None:
            return
        if self._state.phase not in (Phase.ESCALATED, Phase.WITH_AGENT):
            return
        self._note_task = asyncio.create_task(self._write_note(escalation))

    def _note_request(self, escalation: Escalation) -> NoteRequest:
        assert self._policy is not None
        return NoteRequest(
            conversation_id=self._state.start.conversation_id,
            channel=self._state.start.channel,
            transcript=self._state.transcript,
            context=self._state.context,
            triggers=escalation.triggers,
            urgency=escalation.urgency,
            segment=self._segment(),
            max_tokens=self._policy.handoff.note.max_tokens,
        )

    async def _write_note(self, escalation: Escalation) -> None:
        assert self._policy is not None
        request = self._note_request(escalation)
        timeout = self._policy.handoff.note.timeout
        try:
            note = await workflow.execute_activity(
                "write_handoff_note",
                request,
                result_type=HandoffNote,
                start_to_close_timeout=timeout,
                schedule_to_close_timeout=timeout * 3 + timedelta(seconds=10),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3),
                summary="Write the handoff note",
            )
        except ActivityError as err:
            note = fallback_note(request, f"the note could not be written: {err.cause or err}")
        if escalation.note is None:
            escalation.note = self._with_history(note)
        self._note_task = None
        if (escalation.async_channel or escalation.after_hours) and not escalation.ticket_posted:
            await self._post_ticket(escalation)

    async def _note_for_agent(self, escalation: Escalation) -> HandoffNote:
        """The LLM note if it is ready within the policy's bound, else the deterministic one."""
        assert self._policy is not None
        if escalation.note is None:
            try:
                await workflow.wait_condition(
                    lambda: escalation.note is not None,
                    timeout=self._policy.handoff.note.timeout,
                    timeout_summary="Wait for the handoff note",
                )
            except TimeoutError:
                escalation.note = self._with_history(
                    fallback_note(self._note_request(escalation), "the LLM note was not ready in time")
                )
        assert escalation.note is not None
        return escalation.note

    def _with_history(self, note: HandoffNote) -> HandoffNote:
        """A returning customer's note opens with their last escalation, so the agent knows at once."""
        cooling = self._state.context.cooling if self._state.context else None
        escalation = self._state.escalation
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

    async def _post_ticket(self, escalation: Escalation) -> None:
        assert self._policy is not None and escalation.note is not None
        state = self._state
        segment = self._segment()
        priority = "urgent" if escalation.urgency == "immediate" else "high" if segment == "enterprise" else "normal"
        ticket = HelpdeskTicket(
            idempotency_key=f"{state.start.conversation_id}:ticket:{escalation.message_id}",
            conversation_id=state.start.conversation_id,
            customer_id=state.start.customer_id,
            channel=state.start.channel,
            subject=escalation.note.summary[:150],
            priority=priority,
            urgency=escalation.urgency,
            reply_within_seconds=int(self._policy.handoff.reply_time[escalation.urgency].total_seconds()),
            note=escalation.note,
            transcript=state.transcript,
        )
        result = await self._effect("post_helpdesk_ticket", ticket, "Post the summary ticket to the helpdesk")
        escalation.ticket_posted = result is not None

    # --- agents --------------------------------------------------------------------------

    @workflow.update(name=ids.PICKUP)
    async def pickup(self, request: PickupRequest) -> PickupResult:
        escalation, first = self._claim(request)
        if first:
            await self._after_claim(escalation)
        note = await self._note_for_agent(escalation)
        waited = (escalation.picked_up_at or workflow.now()) - escalation.at
        return PickupResult(
            conversation_id=self._state.start.conversation_id,
            agent_id=request.agent_id,
            waited_seconds=waited.total_seconds(),
            note=note,
            transcript=self._state.transcript,
            context=self._state.context,
            escalation=escalation,
        )

    @pickup.validator
    def _validate_pickup(self, request: PickupRequest) -> None:
        problem = self._pickup_problem(request)
        if problem:
            raise ApplicationError(problem, problem, type=ErrorType.AGENT_ACTION_REFUSED)

    @workflow.signal(name=ids.PICKUP_SIGNAL)
    async def pickup_signal(self, request: PickupRequest) -> None:
        """For backends that can only signal: same rules, and a refused pickup is logged, not applied."""
        problem = self._pickup_problem(request)
        if problem:
            workflow.logger.warning("pickup refused", extra={"agent_id": request.agent_id, "reason": problem})
            return
        escalation, first = self._claim(request)
        if first:
            await self._after_claim(escalation)

    def _pickup_problem(self, request: PickupRequest) -> str | None:
        escalation = self._state.escalation
        if self._closing:
            return "conversation: already closed"
        if self._state.phase == Phase.WITH_AGENT and escalation and escalation.agent_id == request.agent_id:
            return None  # the same agent again: a retry, answered with the same handoff
        if self._state.phase == Phase.WITH_AGENT and escalation:
            return f"agent_id: the conversation already belongs to agent {escalation.agent_id}"
        if self._state.phase != Phase.ESCALATED or escalation is None:
            return f"phase: the conversation is not waiting for a human (phase {self._state.phase.value})"
        return None

    def _claim(self, request: PickupRequest) -> tuple[Escalation, bool]:
        """Take ownership; True for the first claim. Synchronous: a second pickup's validator sees the owner."""
        escalation = self._state.escalation
        assert escalation is not None
        if escalation.agent_id is not None:
            return escalation, False
        escalation.agent_id = request.agent_id
        escalation.agent_name = request.agent_name
        escalation.picked_up_at = workflow.now()
        self._state.phase = Phase.WITH_AGENT
        self._plan_version += 1
        self._publish()
        return escalation, True

    async def _after_claim(self, escalation: Escalation) -> None:
        assert self._policy is not None and escalation.agent_id is not None and escalation.picked_up_at is not None
        cid = self._state.start.conversation_id
        self._in_background(
            "record_pickup",
            PickupRecord(
                conversation_id=cid,
                message_id=escalation.message_id,
                agent_id=escalation.agent_id,
                picked_up_at=escalation.picked_up_at,
                escalated_at=escalation.at,
            ),
        )
        if escalation.queue and not escalation.async_channel:
            removal = QueueRemoval(
                conversation_id=cid, reason="picked_up", at=escalation.picked_up_at or workflow.now()
            )
            await self._effect(
                "dequeue_conversation", QueueRemovalRequest(queue=escalation.queue, removal=removal), "Leave the queue"
            )
        if escalation.paged:
            await self._effect("page_on_call", self._page("resolve"), "Resolve the on-call page")
        if not escalation.async_channel:
            self._report_operations("left_queue")
        agent = escalation.agent_name or "A member of our team"
        text = self._policy.templates.render("agent_joined", agent=agent)
        await self._say("agent_joined", text, f"{cid}:agent-joined:{escalation.message_id}")

    @workflow.update(name=ids.RESOLVE)
    async def resolve(self, request: ResolveRequest) -> ConversationState:
        escalation = self._state.escalation
        assert escalation is not None and self._policy is not None
        escalation.resolved_at = workflow.now()
        escalation.necessary = request.necessary
        escalation.csat = request.csat
        escalation.handback = request.handback
        escalation.resolution_note = request.note
        self._in_background(
            "record_resolution",
            ResolutionRecord(
                conversation_id=self._state.start.conversation_id,
                message_id=escalation.message_id,
                agent_id=request.agent_id,
                resolved_at=escalation.resolved_at,
                necessary=request.necessary,
                csat=request.csat,
                handback=request.handback,
            ),
        )
        assert escalation.resolved_at is not None
        self._in_background(
            "note_resolved_escalation",
            ResolvedEscalation(
                customer_id=self._state.start.customer_id,
                conversation_id=self._state.start.conversation_id,
                escalated_at=escalation.at,
                resolved_at=escalation.resolved_at,
                agent_id=escalation.agent_id,
                queue=escalation.queue,
                cooling_seconds=self._policy.cooling.period.total_seconds(),
            ),
        )
        if request.handback:
            self._archive_escalation()
            self._state.phase = Phase.BOT
            cid = self._state.start.conversation_id
            await self._say("handback", self._policy.templates.handback, f"{cid}:handback:{escalation.message_id}")
        else:
            self._state.phase = Phase.RESOLVED
        self._plan_version += 1
        self._publish()
        return self._state

    @resolve.validator
    def _validate_resolve(self, request: ResolveRequest) -> None:
        escalation = self._state.escalation
        problem = None
        if self._state.phase != Phase.WITH_AGENT or escalation is None:
            problem = f"phase: only a conversation with an agent can be resolved (phase {self._state.phase.value})"
        elif escalation.agent_id != request.agent_id:
            problem = f"agent_id: the conversation belongs to agent {escalation.agent_id}"
        if problem:
            raise ApplicationError(problem, problem, type=ErrorType.AGENT_ACTION_REFUSED)

    def _archive_escalation(self) -> None:
        if self._state.escalation is not None:
            self._state.past_escalations.append(self._state.escalation)
            self._state.escalation = None

    # --- queries and signals --------------------------------------------------------------

    @workflow.query(name=ids.STATE)
    def state(self) -> ConversationState:
        return self._state

    @workflow.signal(name=ids.CLOSE)
    def close(self, request: CloseRequest) -> None:
        if not self._closing:
            self._closing = True
            self._state.closed_reason = request.reason

    # --- plumbing -------------------------------------------------------------------------

    async def _ensure_ready(self) -> None:
        """Load the policy and the customer's context once; both are carried across continue-as-new."""
        if self._policy is not None and self._state.context is not None:
            return
        start = self._state.start
        setup = await workflow.execute_local_activity(
            "prepare_conversation",
            SetupRequest(
                policy=start.policy,
                context=ContextInput(customer_id=start.customer_id, backend_facts=start.customer),
            ),
            result_type=ConversationSetup,
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=LOCAL_RETRY,
            summary="Load the policy and the customer's CRM context",
        )
        self._policy = Policy.model_validate(setup.policy)
        self._state.policy_name = self._policy.name
        self._state.context = setup.context

    def _record(self, message_id: str, role: str, text: str) -> TranscriptEntry:
        entry = TranscriptEntry(message_id=message_id, role=role, text=text, at=workflow.now())
        self._state.transcript.append(entry)
        return entry

    async def _say(self, kind: OutboundKind, text: str, message_id: str) -> None:
        """Tell the customer something ourselves: recorded, then delivered through the backend's webhook."""
        self._record(message_id, "baton", text)
        await self._deliver(kind, text, message_id)

    async def _deliver(self, kind: OutboundKind, text: str, message_id: str, agent_id: str | None = None) -> None:
        outbound = OutboundMessage(
            conversation_id=self._state.start.conversation_id,
            channel=self._state.start.channel,
            message_id=message_id,
            kind=kind,
            text=text,
            agent_id=agent_id,
        )
        if await self._effect("deliver_to_customer", outbound, f"Deliver a {kind} message to the customer") is None:
            escalation = self._state.escalation
            if escalation is not None:
                escalation.undelivered.append(message_id)

    def _in_background(self, activity: str, arg: object) -> None:
        """Side effects no decision waits on (store records, reports, pages): started now, all
        awaited before the run ends. Each is an idempotent upsert or keyed send, so order is harmless."""
        self._records = [t for t in self._records if not t.done()]
        summary = {"page_on_call": "Page on-call"}.get(activity, activity.replace("_", " ").capitalize())
        self._records.append(asyncio.create_task(self._effect(activity, arg, summary)))

    async def _flush_records(self) -> None:
        while self._records:
            await self._records.pop(0)

    async def _effect(self, activity: str, arg: object, summary: str, result_type: type | None = None) -> object:
        """Run a side effect; a failure is logged and reported as None, never fatal to the conversation."""
        try:
            return await workflow.execute_activity(
                activity,
                arg,
                result_type=result_type,
                start_to_close_timeout=EFFECT_TIMEOUT,
                schedule_to_close_timeout=EFFECT_DEADLINE,
                retry_policy=EFFECT_RETRY,
                summary=summary,
            )
        except ActivityError as err:
            workflow.logger.warning(f"{activity} failed", extra={"error": str(err.cause or err)})
            return None

    def _summary(self) -> ConversationSummary:
        s = self._state
        escalations = [*s.past_escalations, *([s.escalation] if s.escalation else [])]
        last = escalations[-1] if escalations else None
        return ConversationSummary(
            conversation_id=s.start.conversation_id,
            phase=s.phase,
            escalated=bool(escalations),
            urgency=last.urgency if last else None,
            triggers=[t.id for t in s.triggers_fired],
            customer_messages=s.customer_messages,
            closed_reason=s.closed_reason,
        )

    def _publish(self) -> None:
        """Search attributes and current details, upserted only when they change."""
        s = self._state
        facts = s.context.facts if s.context else None
        escalation = s.escalation
        values: dict[str, object] = {
            sa.PHASE.name: s.phase.value,
            sa.URGENCY.name: escalation.urgency if escalation else None,
            sa.TIER.name: facts.tier if facts else None,
            sa.SEGMENT.name: self._segment(),
            sa.TRIGGERS.name: [t.id for t in s.triggers_fired] or None,
            sa.AGENT.name: escalation.agent_id if escalation else None,
            sa.QUEUE.name: escalation.queue if escalation else None,
        }
        updates = []
        for key in sa.ALL:
            value = values[key.name]
            if self._published.get(key.name) != value:
                updates.append(key.value_set(value) if value is not None else key.value_unset())
                self._published[key.name] = value
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        s = self._state
        facts = s.context.facts if s.context else None
        who = f"{facts.tier or 'unknown tier'}" if facts else "unknown tier"
        if facts and facts.mrr is not None:
            who += f", MRR {facts.mrr:g}"
        lines = [f"**Phase:** {s.phase.value} · **customer messages:** {s.customer_messages} · **account:** {who}"]
        e = s.escalation
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
        elif s.phase == Phase.BOT:
            lines.append("The bot is handling the conversation; no trigger has fired.")
        if s.runs > 1:
            lines.append(f"Run {s.runs} (continued as new to keep history small).")
        return "\n\n".join(lines)
