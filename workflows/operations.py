"""OperationsWorkflow: is support in a surge right now?

A surge starts when the number of conversations waiting for a human, or the
escalation rate over the last hour, passes the policy's thresholds, or when
an operator declares an incident; it ends when those fall back or the
operator ends the incident. Conversations report joining and leaving the
human queue here, and read the status when they are about to escalate.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from baton.contract import ids
    from baton.contract.errors import ErrorType
    from baton.contract.messages import Incident, OperationsEvent, OperationsState, OperationsStatus
    from baton.contract.records import IncidentRecord

RATE_WINDOW = timedelta(hours=1)


@workflow.defn(name=ids.OPERATIONS_WORKFLOW)
class OperationsWorkflow:
    @workflow.init
    def __init__(self, state: OperationsState) -> None:
        self._state = state

    @workflow.run
    async def run(self, state: OperationsState) -> None:
        self._describe()
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._state)

    @workflow.signal(
        name=ids.OPERATIONS_EVENT, description="A conversation escalated or left a queue: counts toward the surge."
    )
    def event(self, event: OperationsEvent) -> None:
        s = self._state
        s.thresholds = event.thresholds
        if event.kind == "escalated":
            if event.conversation_id not in s.waiting:
                s.waiting.append(event.conversation_id)
            s.escalation_times.append(event.at)
        elif event.conversation_id in s.waiting:
            s.waiting.remove(event.conversation_id)
        cutoff = workflow.now() - RATE_WINDOW
        s.escalation_times = [t for t in s.escalation_times if t >= cutoff]
        self._describe()

    @workflow.update(
        name=ids.DECLARE_INCIDENT,
        description="An operator declares an incident: a surge starts at once and the bot gives its status.",
    )
    async def declare_incident(self, incident: Incident) -> OperationsStatus:
        self._state.incident = incident.model_copy(update={"started_at": workflow.now()})
        self._state.incidents_declared += 1
        self._describe()
        await self._record(self._state.incident, ended_at=None)
        return self.status()

    @workflow.update(name=ids.END_INCIDENT, description="An operator ends the declared incident.")
    async def end_incident(self, declared_by: str) -> OperationsStatus:
        incident = self._state.incident
        if incident is None:
            raise ApplicationError("incident: there is no declared incident to end", type=ErrorType.NO_INCIDENT)
        self._state.incident = None
        self._describe()
        await self._record(incident, ended_at=workflow.now())
        return self.status()

    async def _record(self, incident: Incident, ended_at: datetime | None) -> None:
        """Incidents go to the store too, so reports can tell a surge's escalations apart."""
        assert incident.started_at is not None
        record = IncidentRecord(
            id=f"{workflow.info().workflow_id}:{self._state.incidents_declared}",
            description=incident.description,
            started_at=incident.started_at,
            ended_at=ended_at,
            declared_by=incident.declared_by,
        )
        try:
            await workflow.execute_activity(
                "record_incident",
                record,
                start_to_close_timeout=timedelta(seconds=15),
                schedule_to_close_timeout=timedelta(minutes=10),
                summary="Record the incident for reporting",
            )
        except ActivityError as err:
            workflow.logger.warning("incident not recorded", extra={"error": str(err.cause or err)})

    @workflow.query(
        name=ids.OPERATIONS_STATUS,
        description="Surge or not and why: waiting conversations, escalations in the last hour, the incident.",
    )
    def status(self) -> OperationsStatus:
        s = self._state
        cutoff = workflow.now() - RATE_WINDOW
        rate = sum(1 for t in s.escalation_times if t >= cutoff)
        reason = None
        if s.incident is not None:
            reason = "incident"
        elif len(s.waiting) >= s.thresholds.queue_depth:
            reason = "queue_depth"
        elif rate >= s.thresholds.escalations_per_hour:
            reason = "escalation_rate"
        return OperationsStatus(
            surge=reason is not None,
            reason=reason,
            incident=s.incident,
            waiting=len(s.waiting),
            escalations_last_hour=rate,
        )

    def _describe(self) -> None:
        status = self.status()
        head = f"**SURGE** ({status.reason})" if status.surge else "Normal operations"
        incident = f" · incident: {status.incident.description}" if status.incident else ""
        workflow.set_current_details(
            f"{head}{incident} · {status.waiting} waiting for a human · "
            f"{status.escalations_last_hour} escalations in the last hour"
        )
