"""Agent endpoints: pick up a waiting conversation, resolve it, mark a missed escalation (missed.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from temporalio.client import Client

from baton.apps import client as baton_client
from baton.apps.gateway import missed
from baton.apps.gateway.auth import caller_of, check_agent, scoped
from baton.apps.gateway.models import ConversationId, PickupBody, ResolveBody, error_responses
from baton.apps.gateway.updates import run_update
from baton.contract.messages import ConversationState, PickupRequest, PickupResult, ResolveRequest
from baton.logging import get_logger
from baton.settings import Settings

log = get_logger("baton.gateway")


def router(client: Client, decision_timeout: float, settings: Settings | None = None) -> APIRouter:
    # Every agent endpoint needs the agent scope; each checks that a token-bound caller acts as its own agent.
    routes = APIRouter(dependencies=[scoped("agent")])

    @routes.post(
        "/conversations/{conversation_id}/pickup",
        response_model=PickupResult,
        responses=error_responses(404, 409, 503),
        summary="An agent picks up a waiting conversation and receives the handoff note and transcript",
    )
    async def pickup(conversation_id: ConversationId, body: PickupBody, request_: Request) -> PickupResult:
        check_agent(caller_of(request_), body.agent_id)
        request = PickupRequest.model_validate(body.model_dump())
        result = await run_update(
            baton_client.pickup(client, conversation_id, request),
            conversation_id=conversation_id,
            what="pickup",
            timeout=decision_timeout,
        )
        log.info("picked_up", conversation_id=conversation_id, agent_id=request.agent_id)
        return result

    @routes.post(
        "/conversations/{conversation_id}/resolve",
        response_model=ConversationState,
        responses=error_responses(404, 409, 503),
        summary="The owning agent resolves: disposition, CSAT, and whether to hand back to the bot",
    )
    async def resolve(conversation_id: ConversationId, body: ResolveBody, request_: Request) -> ConversationState:
        check_agent(caller_of(request_), body.agent_id)
        request = ResolveRequest.model_validate(body.model_dump())
        state = await run_update(
            baton_client.resolve(client, conversation_id, request),
            conversation_id=conversation_id,
            what="resolve",
            timeout=decision_timeout,
        )
        log.info("resolved", conversation_id=conversation_id, agent_id=request.agent_id, handback=request.handback)
        return state

    if settings is not None:  # the store a missed escalation is recorded in
        missed.add_routes(routes, client, settings, decision_timeout)
    return routes
