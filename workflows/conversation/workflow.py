"""ConversationWorkflow: one support conversation, from first message to close.

Each message arrives as the `add_message` update and is answered with a Decision. Messages are
processed strictly in arrival order under a lock, and a message id seen before returns the decision
it got the first time. After an escalation the main loop runs the dead-zone ladder (ladder.py) as
durable timers until an agent picks up; while the bot has the conversation, or once it is resolved,
the same loop closes it when nobody writes for the policy's idle time (idle.py). The handoff itself
(queue, note, ticket, pages) is in handoff.py, what operators see in visibility.py, what is sent out is
built in builders.py.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    # By full name: `from baton.workflows.conversation import ...` would load these again in every sandbox
    # (the package is the workflow's own there), at about 1.6 ms of CPU per conversation started.
    import baton.workflows.conversation.builders as builders
    import baton.workflows.conversation.decision as decision
    import baton.workflows.conversation.metrics as metrics
    import baton.workflows.conversation.patches as patches
    from baton.contract import ids
    from baton.contract.activities import Operations, Records, Setup
    from baton.contract.errors import ErrorType
    from baton.contract.messages import (
        CloseRequest,
        ContextInput,
        ConversationInput,
        ConversationState,
        ConversationSummary,
        Decision,
        Escalation,
        MessageIn,
        Phase,
        PickupRequest,
        PickupResult,
        ResolveRequest,
        SetupRequest,
        StartRow,
    )
    from baton.policies.engine import Assessment
    from baton.policies.schema import Policy
    from baton.policies.surge import asks_for_a_person, incident_text, is_incident_question
    from baton.workflows.conversation.decision import Outcome
    from baton.workflows.conversation.effects import Effects
    from baton.workflows.conversation.handoff import HandoffRun, Ready
    from baton.workflows.conversation.idle import IDLE_REASON, idle_deadline
    from baton.workflows.conversation.idle import SUMMARY as IDLE_SUMMARY
    from baton.workflows.conversation.ladder import Step
    from baton.workflows.conversation.understanding import understand
    from baton.workflows.conversation.visibility import Visibility

LOCAL_TIMEOUT = timedelta(seconds=10)
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)
# A run continues as new from this many events, so that with the messages in flight when it ends it stays under
# the 4,096 at which the server suggests it (and far from the hard limits: 51,200 events, 50 MB).
RUN_EVENTS = 4000


@workflow.defn(name=ids.CONVERSATION_WORKFLOW)
class ConversationWorkflow:
    @workflow.init
    def __init__(self, input: ConversationInput) -> None:
        self._state = input.carried_state or ConversationState(start=input.start)
        self._effects = Effects(self._state)
        self._loaded: Ready | None = None
        if input.carried_policy:
            self._load(Policy.model_validate(input.carried_policy))
        self._lock = asyncio.Lock()
        self._closing = False
        self._run_events_limit: int | None = None  # set in run(); see RUN_EVENTS
        self._visibility = Visibility()

    # --- main loop -------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: ConversationInput) -> ConversationSummary:
        async with self._lock:
            await self._ensure_ready()
        handoff = self._ready.handoff
        handoff.start_note_if_needed()
        # Runs recorded before idle close waited for a step of the ladder only; they replay that way.
        idle_close = patches.patched(patches.IDLE_CLOSE)
        # Runs recorded before this marker restarted the idle timer on every message (a cancelled and a started
        # timer in history each time), and continued as new only when the server suggested it (4,096 events by
        # default), ending a few events past it. After it the idle timer runs on and, when it fires, the loop
        # waits out the rest; and a run continues as new from RUN_EVENTS.
        kept = patches.patched(patches.STEADY_RUN)
        steady_idle = idle_close and kept
        self._run_events_limit = RUN_EVENTS if kept else None
        while not self._should_stop():
            seen = handoff.replans
            step = handoff.next_step()
            now = workflow.now()
            if step is not None and step.is_due(now):
                await self._run_step(step)
                continue
            idle = self._idle_deadline() if idle_close else None
            if idle is not None and idle <= now:
                if not workflow.all_handlers_finished():
                    # A message is being handled as the deadline passes: it moves the deadline.
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    continue
                self._close_idle()
                break
            due, summary = (step.due, step.summary) if step else (None, None)
            if idle is not None and (due is None or idle < due):
                due, summary = idle, IDLE_SUMMARY
            try:
                await workflow.wait_condition(
                    # A message, a pickup or a resolution moves the idle deadline: wait again from it.
                    lambda seen=seen, idle=idle: (
                        self._should_stop()
                        or handoff.replans != seen
                        or (idle_close and self._idle_moved(idle, steady_idle))
                    ),
                    timeout=(due - now) if due else None,
                    timeout_summary=summary,
                )
            except TimeoutError:
                if not idle_close:
                    assert step is not None  # only a wait with a step has a timeout
                    await self._run_step(step)
                # Else the loop runs what is due: the ladder's step, or the idle close.
        await self._quiesce()
        state = self._state
        if not self._closing:
            state.runs += 1
            # Runs recorded before this marker carried the whole transcript, however long.
            bounded = patches.patched(patches.CARRY_BOUNDED)
            workflow.continue_as_new(
                ConversationInput(
                    start=state.start,
                    carried_state=decision.carried(state) if bounded else state,
                    carried_policy=self._ready.policy.model_dump(mode="json"),
                )
            )
        if state.phase == Phase.ESCALATED:
            handoff.report_operations("left_queue")
        await handoff.leave_queue("closed")
        escalation = state.escalation
        if escalation is not None and escalation.paged and escalation.agent_id is None:
            await handoff.resolve_page()
        state.phase = Phase.CLOSED
        self._publish()
        if not state.start_recorded:  # runs recorded before the row was written at the first message
            self._effects.in_background(
                Records.record_conversation_start, builders.start_record(state, workflow.info().start_time)
            )
        self._effects.in_background(Records.record_conversation_end, builders.end_record(state, workflow.now()))
        await self._effects.flush()
        return builders.summary(state)

    async def _run_step(self, step: Step) -> None:
        if await self._ready.handoff.run_step(step):
            self._publish()

    async def _quiesce(self) -> None:
        """Wait until no handler, note or background effect is in flight. Awaiting one can let a new
        update in, so check again until all are done in the same breath, then end or continue as new."""
        handoff = self._ready.handoff
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if handoff.note_task is not None:
                await handoff.note_task
            await self._effects.flush()
            if workflow.all_handlers_finished() and handoff.note_task is None and not self._effects.pending:
                return

    def _record_start_once(self) -> None:
        """The conversation's row, when setup did not write it (the store was down or slow, or the run was
        recorded before setup wrote rows): written in the background after its first message so that the
        month's report counts it while it is still open; no decision waits on the write."""
        state = self._state
        if state.start_recorded or not state.transcript or not patches.patched(patches.START_RECORDED):
            return
        state.start_recorded = True
        self._effects.in_background(
            Records.record_conversation_start, builders.start_record(state, workflow.info().start_time)
        )

    def _idle_deadline(self) -> datetime | None:
        return idle_deadline(self._state, self._ready.policy.idle_close, workflow.info().start_time)

    def _idle_moved(self, waited_for: datetime | None, steady: bool) -> bool:
        """Whether the idle deadline moved so that the wait must start again: any move, or with `steady` only
        one that comes sooner (a deadline that moved later is waited out when the timer fires)."""
        deadline = self._idle_deadline()
        if not steady:
            return deadline != waited_for
        return deadline is not None and (waited_for is None or deadline < waited_for)

    def _close_idle(self) -> None:
        """Nobody wrote for the policy's idle time: the conversation ends as a closed one does."""
        self._closing = True
        self._state.closed_reason = IDLE_REASON

    def _should_stop(self) -> bool:
        info = workflow.info()
        if self._closing or info.is_continue_as_new_suggested():
            return True
        return self._run_events_limit is not None and info.get_current_history_length() >= self._run_events_limit

    # --- messages ----------------------------------------------------------------------------------

    @workflow.update(
        name=ids.ADD_MESSAGE,
        description="A message of the conversation (the customer's, the bot's, or the agent's who has it), answered "
        "with Baton's decision: continue with the bot, escalate to a person, or leave it to the person who has it.",
    )
    async def add_message(self, message: MessageIn) -> Decision:
        """A message of the conversation (customer, bot or agent), answered with a Decision."""
        async with self._lock:
            earlier = self._state.decisions.get(message.message_id)
            if earlier is not None:
                return earlier
            if self._closing:
                raise ApplicationError("conversation: already closed", type=ErrorType.CONVERSATION_CLOSED)
            await self._ensure_ready()
            # The validator of a conversation's first message ran before the policy was loaded.
            problems = decision.problems(self._state, message, self._ready.policy.limits.max_message_chars)
            if problems:
                raise ApplicationError(
                    "; ".join(problems), *problems, type=ErrorType.INVALID_MESSAGE, non_retryable=True
                )
            if message.role == "customer":
                answer = await self._on_customer(message)
            elif message.role == "agent":
                answer = await self._on_agent(message)
            else:
                self._effects.append(message.message_id, "bot", message.text)
                answer = Decision(message_id=message.message_id, action="continue", phase=self._state.phase)
            self._state.decisions[message.message_id] = answer
            metrics.count_decision(message.role, answer)
            self._record_start_once()
            self._publish()
            return answer

    @add_message.validator
    def _validate_message(self, message: MessageIn) -> None:
        if message.message_id in self._state.decisions:
            return  # a retry of a message already handled; answered with its decision
        if self._closing:
            raise ApplicationError("conversation: already closed", type=ErrorType.CONVERSATION_CLOSED)
        limit = self._loaded.policy.limits.max_message_chars if self._loaded else None
        problems = decision.problems(self._state, message, limit)
        if problems:
            raise ApplicationError("; ".join(problems), *problems, type=ErrorType.INVALID_MESSAGE)

    async def _on_customer(self, message: MessageIn) -> Decision:
        state, policy = self._state, self._ready.policy
        earlier = decision.scoring_window(state)
        signals = await understand(state, policy, message, earlier)
        assessment = decision.take_customer_message(
            state, policy, message.message_id, message.text, signals, workflow.now()
        )
        if state.phase == Phase.BOT:
            outcome = await self._with_the_bot(message, assessment)
        else:
            outcome = await self._with_humans(assessment)
        return decision.customer_decision(message.message_id, outcome, assessment, state.phase)

    async def _with_the_bot(self, message: MessageIn, assessment: Assessment) -> Outcome:
        policy, handoff = self._ready.policy, self._ready.handoff
        incident_question = is_incident_question(policy, message.text, assessment.signals)
        if incident_question and asks_for_a_person(assessment.signals) and patches.patched(patches.PERSON_BEATS_SURGE):
            incident_question = False  # "... not working. I want to talk to a human." goes to a human
        if assessment.urgency is None and not incident_question:
            return Outcome(action="continue")
        # Asked only for escalations and incident questions, so ordinary messages pay nothing for it.
        operations = await handoff.operations_status()
        if operations.surge and incident_question:
            # A general incident question in a surge: the bot triages and gives the status.
            incident = operations.incident.description if operations.incident else None
            text = incident_text(policy, incident)
            self._effects.append(f"{message.message_id}:incident", "baton", text)
            return Outcome(action="continue", customer_text=text, surge=True)
        if assessment.urgency is None:
            return Outcome(action="continue")
        decision.remember_triggers(self._state, assessment.triggers)
        text = await handoff.escalate(
            message.message_id, assessment.urgency, assessment.triggers, assessment.segment, surge=operations.surge
        )
        return Outcome(action="escalate", urgency=assessment.urgency, triggers=assessment.triggers, customer_text=text)

    async def _with_humans(self, assessment: Assessment) -> Outcome:
        """A person already owns the conversation (or is about to): the bot stays silent."""
        handoff = self._ready.handoff
        decision.remember_triggers(self._state, assessment.triggers)
        escalation = self._state.escalation
        assert escalation is not None  # phases other than bot always have one
        if decision.raises_urgency(assessment, escalation):
            await handoff.raise_to_immediate(escalation)
        return Outcome(
            action="human",
            urgency=escalation.urgency,
            triggers=assessment.triggers,
            customer_text=handoff.status_text(escalation),
        )

    async def _on_agent(self, message: MessageIn) -> Decision:
        self._effects.append(message.message_id, "agent", message.text)
        # Keys are global to the backend's webhook: scope the agent's message id to the conversation.
        key = f"{self._state.start.conversation_id}:{message.message_id}"
        await self._effects.deliver("agent", message.text, key, agent_id=message.agent_id)
        return Decision(message_id=message.message_id, action="human", phase=self._state.phase)

    # --- agents ------------------------------------------------------------------------------------

    @workflow.update(
        name=ids.PICKUP,
        description="An agent takes the waiting conversation; answered with the handoff note, the transcript and "
        "the customer's account, so the customer never repeats themself.",
    )
    async def pickup(self, request: PickupRequest) -> PickupResult:
        """An agent takes the conversation; answered with the handoff note, transcript and context."""
        handoff = self._ready.handoff
        escalation, first = self._claim(request)
        if first:
            await handoff.after_claim(escalation)
        note = await handoff.note_for_agent(escalation)
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

    @workflow.signal(
        name=ids.PICKUP_SIGNAL,
        description="The same pickup, for helpdesks that can only signal; a refused pickup is logged, not applied.",
    )
    async def pickup_signal(self, request: PickupRequest) -> None:
        """For backends that can only signal: same rules, and a refused pickup is logged, not applied."""
        problem = self._pickup_problem(request)
        if problem:
            workflow.logger.warning("pickup refused", extra={"agent_id": request.agent_id, "reason": problem})
            return
        escalation, first = self._claim(request)
        if first:
            await self._ready.handoff.after_claim(escalation)

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
        assert escalation is not None  # the validator admits pickups of a waiting escalation only
        if escalation.agent_id is not None:
            return escalation, False
        escalation.agent_id = request.agent_id
        escalation.agent_name = request.agent_name
        escalation.picked_up_at = workflow.now()
        self._state.phase = Phase.WITH_AGENT
        self._ready.handoff.replans += 1
        self._publish()
        return escalation, True

    @workflow.update(
        name=ids.RESOLVE,
        description="The agent is done: resolved, with the disposition (was a person needed?) and the customer's "
        "CSAT, or handed back to the bot.",
    )
    async def resolve(self, request: ResolveRequest) -> ConversationState:
        """The agent is done: resolved (cooling starts) or handed back to the bot."""
        policy = self._ready.policy
        state = self._state
        escalation = state.escalation
        assert escalation is not None  # the validator admits a conversation with an agent only
        resolved_at = workflow.now()
        escalation.resolved_at = resolved_at
        escalation.necessary = request.necessary
        escalation.csat = request.csat
        escalation.handback = request.handback
        escalation.resolution_note = request.note
        record = builders.resolution_record(state, escalation, request, resolved_at)
        self._effects.in_background(Records.record_resolution, record)
        resolved = builders.resolved_escalation(state, escalation, policy, resolved_at)
        self._effects.in_background(Operations.note_resolved_escalation, resolved)
        if request.handback:
            decision.archive_escalation(state)
            state.phase = Phase.BOT
            cid = state.start.conversation_id
            await self._effects.say("handback", policy.templates.handback, f"{cid}:handback:{escalation.message_id}")
        else:
            state.phase = Phase.RESOLVED
        self._ready.handoff.replans += 1
        self._publish()
        return state

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

    # --- queries and signals -----------------------------------------------------------------------

    @workflow.query(
        name=ids.STATE,
        description="The whole conversation: transcript, decisions, the escalation and the customer's account.",
    )
    def state(self) -> ConversationState:
        """The whole state: transcript, decisions, escalation, context."""
        return self._state

    @workflow.signal(
        name=ids.CLOSE,
        description="End the conversation: it leaves any queue, its outcome is recorded, later messages are refused.",
    )
    def close(self, request: CloseRequest) -> None:
        """End the conversation: leave any queue, record the outcome, finish."""
        if not self._closing:
            self._closing = True
            self._state.closed_reason = request.reason

    # --- start-up and visibility -----------------------------------------------------------------

    @property
    def _ready(self) -> Ready:
        if self._loaded is None:
            raise RuntimeError("the conversation's policy is used before start-up loaded it")
        return self._loaded

    def _load(self, policy: Policy) -> None:
        self._loaded = Ready(policy=policy, handoff=HandoffRun(self._state, policy, self._effects))

    async def _ensure_ready(self) -> None:
        """Load the policy and the customer's context once; both are carried across continue-as-new."""
        if self._loaded is not None and self._state.context is not None:
            return
        state = self._state
        start = state.start
        # Setup writes the conversation's row when it can (histories recorded before it answer no, and the row
        # is written by its own activity after the first message, as they recorded).
        row = None if state.start_recorded else StartRow(
            conversation_id=start.conversation_id, channel=start.channel, started_at=workflow.now()
        )
        setup = await workflow.execute_local_activity_method(
            Setup.prepare_conversation,
            SetupRequest(
                policy=start.policy,
                context=ContextInput(customer_id=start.customer_id, backend_facts=start.customer),
                start_row=row,
            ),
            start_to_close_timeout=LOCAL_TIMEOUT,
            retry_policy=LOCAL_RETRY,
            summary="Load the policy and the customer's CRM context",
        )
        policy = Policy.model_validate(setup.policy)
        state.policy_name = policy.name
        state.context = setup.context
        state.start_recorded = state.start_recorded or setup.start_recorded
        self._load(policy)

    def _publish(self) -> None:
        self._visibility.publish(self._state)
