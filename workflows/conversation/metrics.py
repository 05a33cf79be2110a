"""The conversation's own series, recorded through the workflow's metric meter.

The SDK's workflow meter records nothing while a workflow replays (a worker rebuilding a
conversation from history after a restart, the Replayer, `baton replay` on a fresh worker), so a
decision counts once however often its history is replayed. Recording issues no command: nothing
here changes a history. Series and labels are listed in contract/metrics.py.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from baton.contract import metrics
from baton.contract.messages import Decision, Escalation


def count_decision(role: str, decision: Decision) -> None:
    """A decision answered to a customer message (bot and agent messages are not decisions)."""
    if role != "customer":
        return
    meter = workflow.metric_meter()
    urgency = decision.urgency or "none"
    meter.create_counter(metrics.DECISIONS.instrument, metrics.DECISIONS.help).add(
        1, {"action": decision.action, "urgency": urgency}
    )
    if decision.triggers:
        triggers = meter.create_counter(metrics.DECISION_TRIGGERS.instrument, metrics.DECISION_TRIGGERS.help)
        for hit in decision.triggers:
            triggers.add(1, {"action": decision.action, "trigger": hit.id, "category": str(hit.category)})


def count_escalation(escalation: Escalation, segment: str | None) -> None:
    workflow.metric_meter().create_counter(metrics.ESCALATIONS.instrument, metrics.ESCALATIONS.help).add(
        1, {"urgency": escalation.urgency, "segment": segment or "none", "queue": escalation.queue or "none"}
    )


def observe_pickup(escalation: Escalation, segment: str | None, waited: timedelta) -> None:
    workflow.metric_meter().create_histogram_float(
        metrics.TIME_TO_PICKUP.name, metrics.TIME_TO_PICKUP.help, "s"
    ).record(max(waited.total_seconds(), 0.0), {"urgency": escalation.urgency, "segment": segment or "none"})


def count_ladder_step(step: str, escalation: Escalation) -> None:
    workflow.metric_meter().create_counter(metrics.LADDER_STEPS.instrument, metrics.LADDER_STEPS.help).add(
        1, {"step": step, "urgency": escalation.urgency}
    )
