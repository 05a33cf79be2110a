"""CustomerWorkflow: a customer's recent escalations, across conversations.

After an escalation is resolved the customer is sensitive for the policy's
cooling period (default 48 hours): a durable timer here ends the window. A
new conversation reads this state at its start, so a returning customer gets
lower thresholds and is routed back to the agent who helped last time. The
workflow ends when the window closes with nothing new, and starts again with
the next resolved escalation.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from baton.contract import ids
    from baton.contract.messages import CoolingStatus, ResolvedEscalation


@workflow.defn(name=ids.CUSTOMER_WORKFLOW)
class CustomerWorkflow:
    @workflow.init
    def __init__(self, status: CoolingStatus) -> None:
        self._status = status

    @workflow.run
    async def run(self, status: CoolingStatus) -> CoolingStatus:
        while True:
            until = self._status.cooling_until
            if until is None or workflow.now() >= until:
                break
            seen = until
            try:
                await workflow.wait_condition(
                    lambda seen=seen: (
                        self._status.cooling_until != seen or workflow.info().is_continue_as_new_suggested()
                    ),
                    timeout=until - workflow.now(),
                    timeout_summary="End of the cooling period",
                )
            except TimeoutError:
                continue
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._status)
        self._status.escalations_in_window = 0
        self._status.cooling_until = None
        self._describe()
        return self._status

    @workflow.signal(
        name="escalation_resolved",
        description="An escalation of this customer was resolved: the cooling period starts or goes on.",
    )
    def escalation_resolved(self, resolved: ResolvedEscalation) -> None:
        status = self._status
        in_window = status.cooling_until is not None and resolved.escalated_at < status.cooling_until
        status.escalations_in_window = status.escalations_in_window + 1 if in_window else 1
        status.last_escalation_at = resolved.escalated_at
        status.last_agent_id = resolved.agent_id or status.last_agent_id
        status.last_queue = resolved.queue or status.last_queue
        status.cooling_until = resolved.resolved_at + timedelta(seconds=resolved.cooling_seconds)
        self._describe()

    @workflow.query(
        name="status", description="The customer's recent escalations and whether they are in a cooling period."
    )
    def status(self) -> CoolingStatus:
        return self._status

    def _describe(self) -> None:
        s = self._status
        if s.cooling_until is None:
            workflow.set_current_details("Not cooling: normal handling.")
            return
        workflow.set_current_details(
            f"**Cooling** until {s.cooling_until:%Y-%m-%d %H:%M} UTC after {s.escalations_in_window} escalation(s); "
            f"last handled by `{s.last_agent_id}` in queue `{s.last_queue}`."
        )
