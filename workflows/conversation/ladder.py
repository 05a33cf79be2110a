"""The dead-zone ladder as a pure planner: the next step of a waiting escalation, and when it is due.

The workflow's loop sleeps until the step is due (or the plan changes), runs it, and asks again. Keeping
the arithmetic here, free of Temporal, lets it be tested with plain datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from baton.contract.messages import Escalation
from baton.policies.schema import Ladder


class StepKind(StrEnum):
    WAIT_UPDATE = "wait_update"  # tell the customer their position and wait
    SLA = "sla"  # the pickup SLA has passed: raise the queue priority
    WIDEN = "widen"  # route to the general queue
    PAGE = "page"  # page on-call
    CALLBACK = "callback"  # after hours: the team opens, the callback joins the queue first


SUMMARIES = {
    StepKind.WAIT_UPDATE: "Next wait-time update to the customer",
    StepKind.SLA: "Pickup SLA",
    StepKind.WIDEN: "Widen routing to the general queue",
    StepKind.PAGE: "Page on-call",
    StepKind.CALLBACK: "Opening time: put the callback at the front of the queue",
}


@dataclass(frozen=True)
class Step:
    due: datetime
    kind: StepKind

    @property
    def summary(self) -> str:
        return SUMMARIES[self.kind]

    def is_due(self, now: datetime) -> bool:
        return self.due <= now


def next_step(escalation: Escalation, ladder: Ladder) -> Step | None:
    """The escalation's next ladder step; None when nothing is left to do while it waits.

    The caller asks only while the conversation waits for a human on a live channel (not async).
    At equal times a wait update goes first, so the customer hears before the team is paged.
    """
    if escalation.after_hours and not escalation.callback_queued:
        # Nobody on shift: nothing happens until the opening, when the callback joins the queue first.
        return Step(escalation.opens_at, StepKind.CALLBACK) if escalation.opens_at else None
    rungs = getattr(ladder, escalation.urgency)
    t0 = escalation.opens_at if escalation.after_hours and escalation.opens_at else escalation.at
    steps = [Step(t0 + (escalation.updates_sent + 1) * rungs.update_every, StepKind.WAIT_UPDATE)]
    if not escalation.sla_breached:
        steps.append(Step(t0 + rungs.sla, StepKind.SLA))
    if not escalation.widened:
        steps.append(Step(t0 + rungs.widen_after, StepKind.WIDEN))
    if not escalation.paged:
        steps.append(Step(t0 + rungs.page_after, StepKind.PAGE))
    return min(steps, key=lambda s: (s.due, s.kind != StepKind.WAIT_UPDATE))
