"""Everything a conversation needs before its first decision, in one local activity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import activity

from baton.activities.crm import CRM_DEADLINE_SECONDS, CrmAdapter, customer_context
from baton.activities.policy import PolicyStore
from baton.contract.activities import Setup
from baton.contract.messages import ConversationSetup, CoolingStatus, SetupRequest


class SetupActivities(Setup):
    def __init__(
        self, crm: CrmAdapter, policies: PolicyStore, cooling: Callable[[str], Awaitable[CoolingStatus | None]]
    ) -> None:
        self._crm = crm
        self._policies = policies
        self._cooling = cooling

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
        return ConversationSetup(policy=policy.model_dump(mode="json"), context=context)


def crm_deadline(info: activity.Info) -> float:
    """The CRM lookup's bound: the default, and always 2 s under this activity's own timeout."""
    timeout = info.start_to_close_timeout
    if not timeout:
        return CRM_DEADLINE_SECONDS
    return max(0.5, min(CRM_DEADLINE_SECONDS, timeout.total_seconds() - 2.0))
