"""Everything a conversation needs before its first decision, in one local activity."""

from __future__ import annotations

from temporalio import activity

from activities.crm import CrmAdapter, customer_context
from activities.policy import PolicyStore
from baton.messages import ConversationSetup, SetupRequest


class SetupActivities:
    def __init__(self, crm: CrmAdapter, policies: PolicyStore) -> None:
        self._crm = crm
        self._policies = policies

    @activity.defn(name="prepare_conversation")
    async def prepare_conversation(self, request: SetupRequest) -> ConversationSetup:
        policy = self._policies.get(request.policy)
        context = await customer_context(self._crm, request.context)
        return ConversationSetup(policy=policy.model_dump(mode="json"), context=context)
