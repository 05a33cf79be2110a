"""Everything a conversation needs before its first decision, in one local activity."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import activity

from baton.activities.crm import CRM_DEADLINE_SECONDS, CrmAdapter, customer_context
from baton.activities.policy import PolicyStore
from baton.contract.activities import Setup
from baton.contract.messages import ConversationSetup, CoolingStatus, CustomerContext, SetupRequest, StartRow
from baton.contract.records import ConversationStartRecord
from baton.logging import get_logger
from baton.policies.engine import classify
from baton.policies.schema import Policy

log = get_logger(__name__)

# The row's write is bounded tightly: the first decision waits for it. Past the bound, or on any error, the
# workflow writes the row with an activity of its own, retried until the store takes it.
START_ROW_DEADLINE_SECONDS = 1.0

RecordStart = Callable[[ConversationStartRecord], Awaitable[None]]


class SetupActivities(Setup):
    def __init__(
        self,
        crm: CrmAdapter,
        policies: PolicyStore,
        cooling: Callable[[str], Awaitable[CoolingStatus | None]],
        record_start: RecordStart | None = None,
    ) -> None:
        self._crm = crm
        self._policies = policies
        self._cooling = cooling
        # Writes the conversation's row (activities/start_rows.py); None: the workflow writes it itself.
        self._record_start = record_start

    @activity.defn(name="prepare_conversation")
    async def prepare_conversation(self, request: SetupRequest) -> ConversationSetup:
        policy = self._policies.get(request.policy)
        context = await customer_context(self._crm, request.context, deadline_seconds=crm_deadline(activity.info()))
        context.cooling = await self._cooling(request.context.customer_id)
        if context.cooling is not None and context.cooling.last_escalation_at is not None:
            context.facts = context.facts.model_copy(
                update={
                    "last_escalation_at": context.cooling.last_escalation_at,
                    "last_escalation_agent": context.cooling.last_agent_id,
                }
            )
        recorded = await self._write_start_row(request, policy, context)
        return ConversationSetup(policy=policy.model_dump(mode="json"), context=context, start_recorded=recorded)

    async def _write_start_row(self, request: SetupRequest, policy: Policy, context: CustomerContext) -> bool:
        """The conversation's row, written here rather than by an activity after the first message: the same
        write, without a task on the server and a workflow task to take its result, for every conversation."""
        if self._record_start is None or request.start_row is None:
            return False
        record = start_record(request.start_row, request.context.customer_id, policy, context)
        try:
            await asyncio.wait_for(self._record_start(record), START_ROW_DEADLINE_SECONDS)
        except Exception as err:  # the activity's write is the fallback; no decision waits on a store
            log.warning(
                "conversation_start_deferred",
                conversation_id=record.conversation_id,
                error_type=type(err).__name__,
            )
            return False
        return True


def start_record(row: StartRow, customer_id: str, policy: Policy, context: CustomerContext) -> ConversationStartRecord:
    """The row as the first decision will see the customer: the segment its policy gives the CRM's facts."""
    facts = context.facts
    return ConversationStartRecord(
        conversation_id=row.conversation_id,
        customer_id=customer_id,
        channel=row.channel,
        started_at=row.started_at,
        segment=classify(policy, facts).id,
        tier=facts.tier,
        policy_name=policy.name,
    )


def crm_deadline(info: activity.Info) -> float:
    """The CRM lookup's bound: the default, and always 2 s under this activity's own timeout."""
    timeout = info.start_to_close_timeout
    if not timeout:
        return CRM_DEADLINE_SECONDS
    return max(0.5, min(CRM_DEADLINE_SECONDS, timeout.total_seconds() - 2.0))
