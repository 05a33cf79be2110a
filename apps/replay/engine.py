"""Replay at engine speed: the conversation workflow's decision functions run without Temporal.

The decision on a customer message is a pure function of the policy, the conversation so far, the customer's
context, the clock and the message's scores (workflows/conversation/decision.py). This module feeds a
transcript through exactly those functions, as the workflow calls them, on the replay's clock: the same
records as `--engine workflow` for every field that does not need the handoff (what the customer is told
depends on the live queue; the note on the LLM activity), at thousands of conversations a second, in
parallel across cores (tests/test_replay_engine.py holds the two engines to identical decisions).

What only the workflow runs: the queue and its wait estimates, the handoff message and note, the ladder's
timers, surge mode (no incident is declared in a replay), the LLM judge. `baton replay` picks the workflow
when the output asks for one of them (`--handoff`, or a policy with the judge enabled).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

from baton.activities.crm.context import merge_facts
from baton.apps.replay.collect import RecordCollector
from baton.apps.replay.records import ReplayRecord
from baton.apps.replay.transcripts import ReplayConversation, Transcript, message_times, rebase_customer
from baton.classifier.scorer import Scorer
from baton.contract.errors import ErrorType
from baton.contract.messages import (
    ConversationStart,
    ConversationState,
    CustomerContext,
    Decision,
    MessageIn,
    Phase,
    Signals,
)
from baton.policies.schema import Policy
from baton.workflows.conversation import decision
from baton.workflows.conversation.decision import Outcome

# Conversations per task sent to a worker process: large enough that pickling is a small share of the work.
CHUNK = 200


def replay_conversation(
    conv: ReplayConversation, policy: Policy, scorer: Scorer, replay_now: datetime, run_id: str = "engine"
) -> ReplayRecord:
    """`conv` decided message by message as the conversation workflow decides it (see the module's docstring),
    each customer message scored by `scorer` as the gateway scores it."""

    def scored(state: ConversationState, message: MessageIn, _index: int) -> Signals:
        scores = scorer.score(message.text)
        return decision.signals_from(state, scores, message.text, decision.scoring_window(state))

    return decide_conversation(conv, policy, scored, replay_now, run_id)


def decide_conversation(
    conv: Transcript,
    policy: Policy,
    signals_of: Callable[[ConversationState, MessageIn, int], Signals],
    replay_now: datetime,
    run_id: str = "engine",
) -> ReplayRecord:
    """`conv` decided by the workflow's decision functions, with `signals_of(state, message, index)` giving each
    customer message's signals (scored afresh, or as recorded: `baton policy tune`). The customer's dates are
    moved onto `replay_now` (the conversation's own start keeps them as they were)."""
    offsets = message_times(conv)
    start = ConversationStart(
        conversation_id=f"replay-{run_id}-{conv.conversation_id}",
        customer_id=conv.customer.id,
        channel=conv.channel,
        customer=rebase_customer(conv, replay_now),
    )
    # As the start-up activity builds it when the CRM does not know the customer (a replay consults none).
    context = CustomerContext(customer_id=start.customer_id, facts=merge_facts(None, start.customer), source="backend")
    state = ConversationState(start=start, context=context, policy_name=policy.name)
    collected = RecordCollector(conv, offsets)
    limit = policy.limits.max_message_chars
    for index, (written, offset) in enumerate(zip(conv.messages, offsets, strict=True)):
        now = replay_now + offset
        message = MessageIn(message_id=f"m{index}", role=written.role, text=written.text)
        problems = decision.problems(state, message, limit)
        if problems:
            # As the client reads the workflow's refusal: the error's type, then its message.
            collected.rejected(index, f"{ErrorType.INVALID_MESSAGE}: {'; '.join(problems)}")
            continue
        if message.role == "customer":
            signals = signals_of(state, message, index)
            collected.decided(index, _on_customer(state, policy, message, signals, now))
        else:  # the bot's reply (an agent's message is refused above: nobody picks up in a replay)
            decision.record(state, message.message_id, message.role, message.text, now)
    return collected.record()


def _on_customer(
    state: ConversationState, policy: Policy, message: MessageIn, signals: Signals, now: datetime
) -> Decision:
    """The workflow's `_on_customer` with no queue, surge or judge: see ConversationWorkflow."""
    assessment = decision.take_customer_message(state, policy, message.message_id, message.text, signals, now)
    if state.phase == Phase.BOT:
        if assessment.urgency is None:
            outcome = Outcome(action="continue")
        else:
            decision.remember_triggers(state, assessment.triggers)
            decision.open_escalation(
                state,
                policy,
                message.message_id,
                assessment.urgency,
                assessment.triggers,
                assessment.segment,
                surge=False,
                now=now,
            )
            outcome = Outcome(action="escalate", urgency=assessment.urgency, triggers=assessment.triggers)
    else:
        decision.remember_triggers(state, assessment.triggers)
        escalation = state.escalation
        assert escalation is not None  # phases other than bot always have one
        if decision.raises_urgency(assessment, escalation):
            decision.raise_urgency(escalation)
        outcome = Outcome(action="human", urgency=escalation.urgency, triggers=assessment.triggers)
    return decision.customer_decision(message.message_id, outcome, assessment, state.phase)


# --- in parallel -------------------------------------------------------------------------------------

# What each worker process decides with, set once per process (inherited on fork, else by the initializer).
_job: tuple[Policy, Scorer, datetime] | None = None


def _set_job(policy: Policy, scorer: Scorer, replay_now: datetime) -> None:
    global _job
    _job = (policy, scorer, replay_now)


def _replay_chunk(chunk: list[ReplayConversation]) -> list[ReplayRecord]:
    assert _job is not None, "the worker process was started without its job"
    policy, scorer, replay_now = _job
    return [replay_conversation(conv, policy, scorer, replay_now) for conv in chunk]


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def replay_engine(
    conversations: Sequence[ReplayConversation],
    policy: Policy,
    scorer: Scorer,
    *,
    workers: int | None = None,
    replay_now: datetime | None = None,
    on_records: Callable[[list[ReplayRecord]], None] | None = None,
) -> list[ReplayRecord]:
    """Every conversation decided by the engine, in input order; `on_records` gets them chunk by chunk as soon as
    they and all before them are done. With more than one worker, chunks run in worker processes that inherit the
    loaded policy and classifier (fork), so nothing is loaded twice."""
    now = replay_now or datetime.now(UTC)
    count = workers or default_workers()
    chunks = [list(conversations[i : i + CHUNK]) for i in range(0, len(conversations), CHUNK)]
    records: list[ReplayRecord] = []
    for batch in _run_chunks(chunks, policy, scorer, now, count):
        records.extend(batch)
        if on_records is not None:
            on_records(batch)
    return records


def _run_chunks(
    chunks: list[list[ReplayConversation]], policy: Policy, scorer: Scorer, now: datetime, workers: int
) -> Iterator[list[ReplayRecord]]:
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield [replay_conversation(conv, policy, scorer, now) for conv in chunk]
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(
        max_workers=min(workers, len(chunks)), mp_context=context, initializer=_set_job, initargs=(policy, scorer, now)
    ) as pool:
        yield from pool.map(_replay_chunk, chunks)
