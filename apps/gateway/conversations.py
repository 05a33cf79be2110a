"""Conversation endpoints: add a message (starting the conversation), read its state, close it."""

from __future__ import annotations

import asyncio
from typing import Annotated

import structlog
from fastapi import APIRouter, Body, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from baton.apps import client as baton_client
from baton.apps.gateway.auth import caller_of, check_message_role, scoped
from baton.apps.gateway.errors import (
    ERRORS,
    Failure,
    field_errors,
    http_error,
    message_failure_of,
    not_found,
    rpc_status,
    timed_out,
    unavailable,
)
from baton.apps.gateway.models import CloseAccepted, CloseBody, ConversationId, MessageRequest, error_responses
from baton.apps.gateway.openings import POLICY_FIELD, Openings
from baton.classifier.scorer import Scorer
from baton.contract.errors import ErrorType
from baton.contract.messages import ConversationStart, ConversationState, Decision, MessageIn, message_problems
from baton.logging import get_logger
from baton.settings import Settings

log = get_logger("baton.gateway")


async def read_state(client: Client, conversation_id: str, timeout: float) -> ConversationState:
    """The conversation's state, or the HTTP error a client should get: 404 unknown, 504 past `timeout`, 503
    when Temporal cannot answer."""
    bound = log.bind(conversation_id=conversation_id, workflow_id=baton_client.workflow_id(conversation_id))
    try:
        return await asyncio.wait_for(baton_client.get_state(client, conversation_id), timeout)
    except TimeoutError as err:
        bound.warning("state_timeout", timeout_seconds=timeout)
        raise timed_out() from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise not_found(conversation_id) from err
        bound.error("temporal_unavailable", status=rpc_status(err))
        raise unavailable(err) from err


def router(
    client: Client,
    settings: Settings,
    decision_timeout: float,
    scorer: Scorer | None = None,
    openings: Openings | None = None,
) -> APIRouter:
    routes = APIRouter()
    openings = openings or Openings(settings.policy)

    @routes.post(
        "/conversations/{conversation_id}/messages",
        response_model=Decision,
        responses=error_responses(409, 500, 503),
        summary="Add a message; start the conversation if new",
        dependencies=[scoped("messages", "agent")],
    )
    async def post_message(conversation_id: ConversationId, request: MessageRequest, http: Request) -> Decision:
        # Customer and bot messages need the messages scope; an agent's, the agent scope and its own agent_id.
        check_message_role(caller_of(http), request.message.role, request.message.agent_id)
        message = MessageIn.model_validate(request.message.model_dump())
        bound = log.bind(
            conversation_id=conversation_id,
            message_id=message.message_id,
            workflow_id=baton_client.workflow_id(conversation_id),
            role=message.role,
        )
        problems = message_problems(message)
        if problems:
            invalid = Failure(ErrorType.INVALID_MESSAGE, "; ".join(problems), tuple(problems))
            raise _message_error(invalid, request, bound)
        try:
            start = ConversationStart(conversation_id=conversation_id, **request.model_dump(exclude={"message"}))
        except ValidationError as err:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False, include_context=False)]
            ) from err
        # A message that could not open the conversation is never used to start it (openings.py).
        opening = openings.problems(request.policy, message)
        try:
            decision = await asyncio.wait_for(
                _send(client, settings.task_queue, start, message, scorer, may_start=not opening), decision_timeout
            )
        except _NotStarted as err:
            bound.info("message_rejected", problems=[problem.partition(":")[0] for problem in opening], started=False)
            raise _opening_error(opening) from err
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
        responses=error_responses(404, 503),
        summary="The conversation's state and transcript",
        dependencies=[scoped("operator", "agent")],
    )
    async def get_conversation(conversation_id: ConversationId) -> ConversationState:
        return await read_state(client, conversation_id, decision_timeout)

    @routes.post(
        "/conversations/{conversation_id}/close",
        response_model=CloseAccepted,
        status_code=status.HTTP_202_ACCEPTED,
        responses=error_responses(404, 503),
        summary="Close the conversation",
        dependencies=[scoped("messages", "operator")],
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


class _NotStarted(Exception):
    """A message that could not open a conversation was sent to one that does not exist."""


async def _send(
    client: Client,
    task_queue: str,
    start: ConversationStart,
    message: MessageIn,
    scorer: Scorer | None,
    *,
    may_start: bool,
) -> Decision:
    if may_start:
        return await baton_client.send_message(client, task_queue, start, message, scorer)
    try:
        return await baton_client.add_message(client, start.conversation_id, message, scorer)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        if await _ended(client, start.conversation_id):
            raise baton_client.ConversationClosedError(start.conversation_id) from err
        raise _NotStarted() from err


def _opening_error(problems: list[str]) -> HTTPException:
    """422 naming each field: the request's policy, or the message's field."""
    policy = [p for p in problems if p.partition(":")[0] == POLICY_FIELD]
    message = [p for p in problems if p not in policy]
    details = field_errors(status.HTTP_422_UNPROCESSABLE_CONTENT, policy, ("body",)).detail
    details += field_errors(status.HTTP_422_UNPROCESSABLE_CONTENT, message, ("body", "message")).detail
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, details)


async def _ended(client: Client, conversation_id: str) -> bool:
    """The conversation existed and has ended (False: it never existed, or it is running)."""
    try:
        description = await baton_client.handle(client, conversation_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status != WorkflowExecutionStatus.RUNNING


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
