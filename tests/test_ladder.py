"""The dead-zone ladder's planner, with plain datetimes: no Temporal server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from baton.contract.messages import Escalation
from baton.policies import Policy, load_policy
from baton.workflows.conversation.ladder import StepKind, next_step

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy("default")


def escalation(**changes: object) -> Escalation:
    return Escalation(at=T0, message_id="m1", urgency="queued", queue="support").model_copy(update=changes)


def test_the_first_step_is_a_wait_update(policy: Policy) -> None:
    rungs = policy.handoff.ladder.queued
    step = next_step(escalation(), policy.handoff.ladder)
    assert step is not None and step.kind == StepKind.WAIT_UPDATE and step.due == T0 + rungs.update_every
    assert not step.is_due(T0) and step.is_due(step.due)


def test_steps_follow_the_ladder_in_order(policy: Policy) -> None:
    rungs = policy.handoff.ladder.immediate
    e = escalation(urgency="immediate")
    seen: list[tuple[StepKind, timedelta]] = []
    while (step := next_step(e, policy.handoff.ladder)) is not None and step.due <= T0 + rungs.page_after:
        seen.append((step.kind, step.due - T0))
        if step.kind == StepKind.WAIT_UPDATE:
            e.updates_sent += 1
        elif step.kind == StepKind.SLA:
            e.sla_breached = True
        elif step.kind == StepKind.WIDEN:
            e.widened = True
        elif step.kind == StepKind.PAGE:
            e.paged = True
    kinds = [kind for kind, _ in seen]
    assert kinds.index(StepKind.SLA) < kinds.index(StepKind.WIDEN) < kinds.index(StepKind.PAGE)
    assert (StepKind.SLA, rungs.sla) in seen and (StepKind.PAGE, rungs.page_after) in seen
    # At equal times the customer hears first: the wait update due at the SLA comes before it.
    if rungs.sla % rungs.update_every == timedelta(0):
        assert kinds[kinds.index(StepKind.SLA) - 1] == StepKind.WAIT_UPDATE
    assert [d for _, d in seen] == sorted(d for _, d in seen)


def test_done_rungs_are_not_planned_again(policy: Policy) -> None:
    step = next_step(escalation(sla_breached=True, widened=True, paged=True, updates_sent=3), policy.handoff.ladder)
    assert step is not None and step.kind == StepKind.WAIT_UPDATE
    assert step.due == T0 + 4 * policy.handoff.ladder.queued.update_every


def test_after_hours_waits_for_the_opening_then_counts_from_it(policy: Policy) -> None:
    opens = T0 + timedelta(hours=14)
    waiting = escalation(after_hours=True, opens_at=opens)
    step = next_step(waiting, policy.handoff.ladder)
    assert step is not None and step.kind == StepKind.CALLBACK and step.due == opens
    assert next_step(escalation(after_hours=True), policy.handoff.ladder) is None  # no opening known
    queued = escalation(after_hours=True, opens_at=opens, callback_queued=True)
    step = next_step(queued, policy.handoff.ladder)
    assert step is not None and step.due == opens + policy.handoff.ladder.queued.update_every
