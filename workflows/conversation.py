"""ConversationWorkflow: one support conversation, from first message to close.

Each message arrives as the `add_message` update and is answered with a
Decision. Messages are processed strictly in arrival order under a lock, and
a message id seen before returns the decision it got the first time.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.scoring import score
    from baton.messages import (
        CloseRequest,
        ContextInput,
        ConversationInput,
        ConversationSetup,
        ConversationState,
        ConversationSummary,
        Decision,
        MessageIn,
        Phase,
        SetupRequest,
        TranscriptEntry,
        message_problems,
    )
    from policies.engine import evaluate
    from policies.schema import Policy
    from policies.wording import escalation_text, waiting_text
    from workflows import search_attributes as sa

SCORING_WINDOW = 6  # earlier customer messages the scorer sees
LOCAL_TIMEOUT = timedelta(seconds=10)
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)


@workflow.defn(name="ConversationWorkflow")
class ConversationWorkflow:
    @workflow.init
    def __init__(self, input: ConversationInput) -> None:
        self._state = input.carried_state or ConversationState(start=input.start)
        self._policy = Policy.model_validate(input.carried_policy) if input.carried_policy else None
        self._lock = asyncio.Lock()
        self._closing = False
        # Start with what the client set at start (or the previous run upserted), so only changes are upserted.
        current = workflow.info().typed_search_attributes
        self._published: dict[str, object] = {key.name: current.get(key) for key in sa.ALL}

    @workflow.run
    async def run(self, input: ConversationInput) -> ConversationSummary:
        async with self._lock:
            await self._ensure_ready()
        await workflow.wait_condition(
            lambda: self._closing or workflow.info().is_continue_as_new_suggested(),
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not self._closing:
            self._state.runs += 1
            workflow.continue_as_new(
                ConversationInput(
                    start=self._state.start,
                    carried_state=self._state,
                    carried_policy=self._policy.model_dump(mode="json") if self._policy else None,
                )
            )
        self._state.phase = Phase.CLOSED
        self._publish()
        s = self._state
        return ConversationSummary(
            conversation_id=s.start.conversation_id,
            phase=s.phase,
            escalated=s.escalated_at is not None,
            urgency=s.urgency,
            triggers=[t.id for t in s.triggers_fired],
            customer_messages=s.customer_messages,
            closed_reason=s.closed_reason,
        )

    @workflow.update(name="add_message")
    async def add_message(self, message: MessageIn) -> Decision:
        async with self._lock:
            earlier = self._state.decisions.get(message.message_id)
            if earlier is not None:
                return earlier
            if self._closing:
                raise ApplicationError("conversation: already closed", type="ConversationClosed")
            await self._ensure_ready()
            assert self._policy is not None
            # The validator of a conversation's first message ran before the policy was loaded.
            problems = message_problems(message, self._policy.limits.max_message_chars)
            if problems:
                raise ApplicationError("; ".join(problems), type="InvalidMessage", non_retryable=True)
            decision = await self._process(message)
            self._state.decisions[message.message_id] = decision
            self._publish()
            return decision

    @add_message.validator
    def _validate_message(self, message: MessageIn) -> None:
        if message.message_id in self._state.decisions:
            return  # a retry of a message already handled; answered with its decision
        if self._closing:
            raise ValueError("conversation: already closed")
        limit = self._policy.limits.max_message_chars if self._policy else None
        problems = message_problems(message, limit) if limit else message_problems(message)
        if problems:
            raise ValueError("; ".join(problems))

    @workflow.query(name="state")
    def state(self) -> ConversationState:
        return self._state

    @workflow.signal(name="close")
    def close(self, request: CloseRequest) -> None:
        if not self._closing:
            self._closing = True
            self._state.closed_reason = request.reason

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

    async def _process(self, message: MessageIn) -> Decision:
        state = self._state
        now = workflow.now()
        entry = TranscriptEntry(message_id=message.message_id, role=message.role, text=message.text, at=now)
        if message.role != "customer":
            state.transcript.append(entry)
            return Decision(
                message_id=message.message_id,
                action="continue" if state.phase == Phase.BOT else "escalate",
                urgency=state.urgency,
                phase=state.phase,
            )
        earlier = [m for m in state.transcript if m.role == "customer"][-SCORING_WINDOW:]
        # The rule-based scorer is pure and fast, so it runs here like the policy engine: as a local
        # activity it cost a second workflow activation and an event per message (see bench/README.md).
        entry.signals = score(
            message.text,
            [m.text for m in earlier],
            [m.signals.frustration for m in earlier if m.signals],
        )
        state.transcript.append(entry)
        state.customer_messages += 1
        assert self._policy is not None
        decision = evaluate(self._policy, state, state.context, now, message.message_id)
        if decision.action == "escalate":
            wait = self._policy.handoff.average_handle_time
            if state.phase == Phase.BOT:
                state.phase = Phase.ESCALATED
                state.escalated_at = now
                state.escalated_at_message = message.message_id
                decision.customer_text = escalation_text(self._policy, decision.urgency, decision.triggers, wait)
            else:
                decision.customer_text = waiting_text(self._policy, "waiting_status", 1, wait)
            state.urgency = decision.urgency
            known = {t.id for t in state.triggers_fired}
            state.triggers_fired.extend(t for t in decision.triggers if t.id not in known)
        decision.phase = state.phase
        return decision

    def _publish(self) -> None:
        """Search attributes and current details, upserted only when they change."""
        s = self._state
        facts = s.context.facts if s.context else None
        last = next((d for d in reversed(list(s.decisions.values())) if d.segment), None)
        values: dict[str, object] = {
            sa.PHASE.name: s.phase.value,
            sa.URGENCY.name: s.urgency,
            sa.TIER.name: facts.tier if facts else None,
            sa.SEGMENT.name: last.segment if last else None,
            sa.TRIGGERS.name: [t.id for t in s.triggers_fired] or None,
        }
        updates = []
        for key in sa.ALL:
            value = values[key.name]
            if self._published.get(key.name, None) != value:
                updates.append(key.value_set(value) if value is not None else key.value_unset())
                self._published[key.name] = value
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        s = self._state
        facts = s.context.facts if s.context else None
        who = f"{facts.tier or 'unknown tier'}" + (f", MRR {facts.mrr:g}" if facts and facts.mrr is not None else "")
        lines = [f"**Phase:** {s.phase.value} · **customer messages:** {s.customer_messages} · **account:** {who}"]
        if s.escalated_at is not None:
            fired = ", ".join(f"`{t.id}` ({t.detail})" for t in s.triggers_fired)
            lines.append(f"**Escalated** {s.urgency} at {s.escalated_at:%Y-%m-%d %H:%M:%S} UTC: {fired}")
        else:
            lines.append("The bot is handling the conversation; no trigger has fired.")
        if s.runs > 1:
            lines.append(f"Run {s.runs} (continued as new to keep history small).")
        return "\n\n".join(lines)
