"""Conversation endpoints: add a message (starting the conversation), read its state, close it."""

from __future__ import annotations

import asyncio
from typing import Annotated

import structlog
from fastapi import APIRouter, Body, HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from baton.apps import client as baton_client
from baton.apps.gateway.errors import (
    ERRORS,
    Failure,
    http_error,
    message_failure_of,
    not_found,
    rpc_status,
    timed_out,
    unavailable,
)
from baton.apps.gateway.models import CloseAccepted, CloseBody, ConversationId, MessageRequest, error_responses
from baton.classifier.scorer import Scorer
from baton.contract.errors import ErrorType
from baton.contract.messages import ConversationStart, ConversationState, Decision, message_problems
from baton.logging import get_logger
from baton.settings import Settings

log = get_logger("baton.gateway")


def router(client: Client, settings: Settings, decision_timeout: float, scorer: Scorer | None = None) -> APIRouter:
    routes = APIRouter()

    @routes.post(
        "/conversations/{conversation_id}/messages",
        response_model=Decision,
        responses=error_responses(409, 500, 503, 504),
        summary="Add a message; start the conversation if new",
    )
    async def post_message(conversation_id: ConversationId, request: MessageRequest) -> Decision:
        bound = log.bind(
            conversation_id=conversation_id,
            message_id=request.message.message_id,
            workflow_id=baton_client.workflow_id(conversation_id),
            role=request.message.role,
        )
        problems = message_problems(request.message)
        if problems:
            invalid = Failure(ErrorType.INVALID_MESSAGE, "; ".join(problems), tuple(problems))
            raise _message_error(invalid, request, bound)
        try:
            start = ConversationStart(conversation_id=conversation_id, **request.model_dump(exclude={"message"}))
        except ValidationError as err:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False, include_context=False)]
            ) from err
        try:
            decision = await asyncio.wait_for(
                baton_client.send_message(client, settings.task_queue, start, request.message, scorer), decision_timeout
            )
        except (WorkflowUpdateFailedError, baton_client.ConversationClosedError) as err:
            raise _message_error(message_failure_of(err), request, bound) from err
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            bound.warning("message_timeout", timeout_seconds=decision_timeout)
            raise timed_out() from err
        except RPCError as err:
            bound.error("temporal_unavailable", status=rpc_status(err))
            raise unavailable(err) from err
        bound.info(
            "message_decided",
            action=decision.action,
            urgency=decision.urgency,
            triggers=[t.id for t in decision.triggers],
            phase=decision.phase.value,
        )
        return decision

    @routes.get(
        "/conversations/{conversation_id}",
        response_model=ConversationState,
        responses=error_responses(404, 503, 504),
        summary="The conversation's state and transcript",
    )
    async def get_conversation(conversation_id: ConversationId) -> ConversationState:
        bound = log.bind(conversation_id=conversation_id, workflow_id=baton_client.workflow_id(conversation_id))
        try:
            return await asyncio.wait_for(baton_client.get_state(client, conversation_id), decision_timeout)
        except TimeoutError as err:
            bound.warning("state_timeout", timeout_seconds=decision_timeout)
            raise timed_out() from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise not_found(conversation_id) from err
            bound.error("temporal_unavailable", status=rpc_status(err))
            raise unavailable(err) from err

    @routes.post(
        "/conversations/{conversation_id}/close",
        response_model=CloseAccepted,
        status_code=status.HTTP_202_ACCEPTED,
        responses=error_responses(404, 503),
        summary="Close the conversation",
    )
    async def close_conversation(
        conversation_id: ConversationId, body: Annotated[CloseBody | None, Body()] = None
    ) -> CloseAccepted:
        bound = log.bind(conversation_id=conversation_id, workflow_id=baton_client.workflow_id(conversation_id))
        try:
            await baton_client.close(client, conversation_id, (body or CloseBody()).reason)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                bound.error("temporal_unavailable", status=rpc_status(err))
                raise unavailable(err) from err
            # The server says NOT_FOUND for a finished workflow too; a retried close
            # is normal for at-least-once backends, so answer it rather than 404.
            if not await _finished(client, conversation_id):
                raise not_found(conversation_id) from err
            bound.info("close_repeated")
            return CloseAccepted(conversation_id=conversation_id, status="already_closed")
        bound.info("close_requested")
        return CloseAccepted(conversation_id=conversation_id, status="closing")

    return routes


def _message_error(failure: Failure, request: MessageRequest, bound: structlog.stdlib.BoundLogger) -> HTTPException:
    """Log a refused or failed message under the events operators search for; the answer comes from the table."""
    if failure.type == ErrorType.INVALID_MESSAGE:
        bound.info("message_rejected", problems=failure.fields)
    elif failure.type == ErrorType.POLICY_ERROR:
        bound.error("policy_unavailable", policy=request.policy, reason=failure.reason)
    elif failure.type in ERRORS:
        bound.info("message_rejected", reason=failure.reason)
    else:
        bound.error("message_failed", reason=failure.reason)
    return http_error(failure, failed="the message could not be processed", policy=request.policy)


async def _finished(client: Client, conversation_id: str) -> bool:
    try:
        await baton_client.handle(client, conversation_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
