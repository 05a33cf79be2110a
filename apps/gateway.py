"""HTTP gateway for chat backends: one request per customer message, answered with a Decision.

Stateless: every request goes to the conversation's workflow, so gateways scale
horizontally and a retried request (same message_id) gets the same answer.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal, NoReturn

import structlog
import uvicorn
from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Security, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from baton.apps import client as baton_client
from baton.contract.messages import (
    ConversationStart,
    ConversationState,
    CustomerFacts,
    Decision,
    Incident,
    MessageIn,
    OperationsStatus,
    PickupRequest,
    PickupResult,
    ResolveRequest,
    message_problems,
)
from baton.logging import configure_logging, get_logger
from baton.settings import Settings, get_settings

log = get_logger("baton.gateway")

# Long enough for a slow scoring model behind local-activity retries; a timed-out
# request is safe to retry with the same message_id, which the workflow dedupes.
DECISION_TIMEOUT_SECONDS = 30.0
API_KEY_HEADER = "X-API-Key"

# Module level: FastAPI resolves the (string) annotations of endpoints against module globals.
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Required when the gateway has a key")


def _id_constraints() -> dict[str, Any]:
    # Read from the message contract so the path and the workflow id can never disagree.
    found: dict[str, Any] = {}
    for item in ConversationStart.model_fields["conversation_id"].metadata:
        for name in ("min_length", "max_length", "pattern"):
            if getattr(item, name, None) is not None:
                found[name] = getattr(item, name)
    return found


ConversationId = Annotated[str, Path(description="The chat backend's conversation id", **_id_constraints())]


def _start_field(name: str) -> Any:
    return ConversationStart.model_fields[name]


class MessageRequest(BaseModel):
    """A message in a conversation; the first one also starts the conversation."""

    customer_id: Annotated[str, _start_field("customer_id")]
    channel: Annotated[str, _start_field("channel")] = "chat"
    customer: CustomerFacts = Field(
        default_factory=CustomerFacts, description="Facts the backend knows; merged over CRM"
    )
    policy: Annotated[str | None, _start_field("policy")] = None
    message: MessageIn


class CloseBody(BaseModel):
    reason: str = Field(default="closed", min_length=1, max_length=200)


class CloseAccepted(BaseModel):
    conversation_id: str
    status: Literal["closing", "already_closed"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ErrorOut(BaseModel):
    detail: str


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in codes}


def _field_errors(problems: list[str], prefix: tuple[str, ...]) -> NoReturn:
    """Turn "field: reason" strings from the contract into FastAPI's 422 shape."""
    details = []
    for problem in problems:
        field, sep, msg = problem.partition(": ")
        loc = (*prefix, field) if sep else prefix
        details.append({"loc": loc, "msg": msg if sep else problem, "type": "value_error"})
    raise RequestValidationError(details)


def _update_failed(
    err: WorkflowUpdateFailedError, request: MessageRequest, bound: structlog.stdlib.BoundLogger
) -> NoReturn:
    """Map a failed add_message update to a status; the reason always reaches the client."""
    cause = err.cause
    reason = cause.message if isinstance(cause, FailureError) else str(cause or err)
    if isinstance(cause, ApplicationError) and cause.type == "PolicyError":
        bound.error("policy_unavailable", policy=request.policy, reason=reason)
        if request.policy is not None:
            # The backend chose the policy, so it is a bad request; the reason holds a server path.
            _field_errors([f"policy: policy {request.policy!r} cannot be loaded"], ("body",))
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, "the default policy cannot be loaded") from err
    if reason.startswith("conversation:"):
        bound.info("message_rejected", reason=reason)
        raise HTTPException(status.HTTP_409_CONFLICT, reason) from err
    problems = reason.split("; ")
    if all(p.partition(":")[0] in MessageIn.model_fields for p in problems):
        bound.info("message_rejected", problems=[p.partition(":")[0] for p in problems])
        _field_errors(problems, ("body", "message"))
    bound.error("message_failed", reason=reason)
    raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, f"the message could not be processed: {reason}") from err


def _unavailable(err: RPCError) -> HTTPException:
    # Every RPC failure is worth a retry from the backend's side (server down, overloaded,
    # or a worker failing the workflow task until it is fixed), hence 503 for all.
    code = err.status.name if err.status else "UNKNOWN"
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, f"Temporal could not serve the request ({code}): {err.message}"
    )


def _timed_out() -> HTTPException:
    return HTTPException(
        status.HTTP_504_GATEWAY_TIMEOUT, "no answer from the conversation in time; retry with the same message_id"
    )


def create_app(client: Client, settings: Settings, *, decision_timeout: float = DECISION_TIMEOUT_SECONDS) -> FastAPI:
    try:
        app_version = version("baton")
    except PackageNotFoundError:
        app_version = "0"
    app = FastAPI(
        title="Baton gateway",
        version=app_version,
        description="Send customer messages, get escalation decisions; read and close conversations.",
    )
    expected = (settings.gateway_api_key or "").encode()
    if not expected:
        log.warning("gateway_open", reason="BATON_GATEWAY_API_KEY is not set; /v1 needs no key")

    async def require_key(key: Annotated[str | None, Security(api_key_header)]) -> None:
        if expected and not hmac.compare_digest((key or "").encode(), expected):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"missing or wrong {API_KEY_HEADER} header")

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=_errors(401))

    @v1.post(
        "/conversations/{conversation_id}/messages",
        response_model=Decision,
        responses=_errors(409, 500, 503, 504),
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
            bound.info("message_rejected", problems=[p.partition(":")[0] for p in problems])
            _field_errors(problems, ("body", "message"))
        try:
            start = ConversationStart(conversation_id=conversation_id, **request.model_dump(exclude={"message"}))
        except ValidationError as err:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False, include_context=False)]
            ) from err
        try:
            decision = await asyncio.wait_for(
                baton_client.send_message(client, settings.task_queue, start, request.message), decision_timeout
            )
        except WorkflowUpdateFailedError as err:
            _update_failed(err, request, bound)
        except baton_client.ConversationClosedError as err:
            bound.info("message_rejected", reason="conversation closed")
            raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            bound.warning("message_timeout", timeout_seconds=decision_timeout)
            raise _timed_out() from err
        except RPCError as err:
            bound.error("temporal_unavailable", status=err.status.name if err.status else None)
            raise _unavailable(err) from err
        bound.info(
            "message_decided",
            action=decision.action,
            urgency=decision.urgency,
            triggers=[t.id for t in decision.triggers],
            phase=decision.phase.value,
        )
        return decision

    @v1.get(
        "/conversations/{conversation_id}",
        response_model=ConversationState,
        responses=_errors(404, 503, 504),
        summary="The conversation's state and transcript",
    )
    async def get_conversation(conversation_id: ConversationId) -> ConversationState:
        bound = log.bind(conversation_id=conversation_id, workflow_id=baton_client.workflow_id(conversation_id))
        try:
            return await asyncio.wait_for(baton_client.get_state(client, conversation_id), decision_timeout)
        except TimeoutError as err:
            bound.warning("state_timeout", timeout_seconds=decision_timeout)
            raise _timed_out() from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"conversation {conversation_id} not found") from err
            bound.error("temporal_unavailable", status=err.status.name if err.status else None)
            raise _unavailable(err) from err

    @v1.post(
        "/conversations/{conversation_id}/close",
        response_model=CloseAccepted,
        status_code=status.HTTP_202_ACCEPTED,
        responses=_errors(404, 503),
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
                bound.error("temporal_unavailable", status=err.status.name if err.status else None)
                raise _unavailable(err) from err
            # The server says NOT_FOUND for a finished workflow too; a retried close
            # is normal for at-least-once backends, so answer it rather than 404.
            if not await _finished(client, conversation_id):
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"conversation {conversation_id} not found") from err
            bound.info("close_repeated")
            return CloseAccepted(conversation_id=conversation_id, status="already_closed")
        bound.info("close_requested")
        return CloseAccepted(conversation_id=conversation_id, status="closing")

    async def agent_update(conversation_id: str, call: Any, what: str) -> Any:
        """Run a pickup/resolve update; a refusal is 409 with the workflow's reason (it names the field)."""
        bound = log.bind(conversation_id=conversation_id, workflow_id=baton_client.workflow_id(conversation_id))
        try:
            return await asyncio.wait_for(call, decision_timeout)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            reason = cause.message if isinstance(cause, FailureError) else str(cause or err)
            bound.info(f"{what}_refused", reason=reason)
            raise HTTPException(status.HTTP_409_CONFLICT, reason) from err
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            raise _timed_out() from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"conversation {conversation_id} not found") from err
            raise _unavailable(err) from err

    @v1.post(
        "/conversations/{conversation_id}/pickup",
        response_model=PickupResult,
        responses=_errors(404, 409, 503, 504),
        summary="An agent picks up a waiting conversation and receives the handoff note and transcript",
    )
    async def pickup(conversation_id: ConversationId, request: PickupRequest) -> PickupResult:
        result = await agent_update(conversation_id, baton_client.pickup(client, conversation_id, request), "pickup")
        log.info("picked_up", conversation_id=conversation_id, agent_id=request.agent_id)
        return result

    @v1.post(
        "/conversations/{conversation_id}/resolve",
        response_model=ConversationState,
        responses=_errors(404, 409, 503, 504),
        summary="The owning agent resolves: disposition, CSAT, and whether to hand back to the bot",
    )
    async def resolve(conversation_id: ConversationId, request: ResolveRequest) -> ConversationState:
        state = await agent_update(conversation_id, baton_client.resolve(client, conversation_id, request), "resolve")
        log.info("resolved", conversation_id=conversation_id, agent_id=request.agent_id, handback=request.handback)
        return state

    @v1.post(
        "/incidents",
        response_model=OperationsStatus,
        responses=_errors(503, 504),
        summary="Declare an incident: a surge starts for live and new conversations",
    )
    async def declare(incident: Incident) -> OperationsStatus:
        status_now = await agent_update(
            "operations", baton_client.declare_incident(client, settings.task_queue, incident), "declare"
        )
        log.warning("incident_declared", declared_by=incident.declared_by)
        return status_now

    @v1.delete(
        "/incidents/current",
        response_model=OperationsStatus,
        responses=_errors(409, 503, 504),
        summary="End the declared incident",
    )
    async def end_current() -> OperationsStatus:
        return await agent_update("operations", baton_client.end_incident(client, settings.task_queue), "end")

    @v1.get("/operations", response_model=OperationsStatus, summary="Surge state and queue load")
    async def operations() -> OperationsStatus:
        try:
            return await baton_client.operations_status(client, settings.task_queue)
        except RPCError as err:
            raise _unavailable(err) from err

    app.include_router(v1)

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        return Health()

    return app


async def _finished(client: Client, conversation_id: str) -> bool:
    try:
        await baton_client.handle(client, conversation_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def serve_app(
    app: FastAPI,
    host: str,
    port: int,
    *,
    sock: socket.socket | None = None,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run uvicorn in the current event loop until it exits or `stop` is set."""
    # log_config=None keeps the structlog set-up instead of uvicorn's own.
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock] if sock else None))
    watchers: list[asyncio.Task[Any]] = []
    if stop is not None:

        async def stop_on_event() -> None:
            await stop.wait()
            server.should_exit = True

        watchers.append(asyncio.create_task(stop_on_event()))
    try:
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            # The bound address, not the configured one: port 0 means "any free port".
            # A stop racing the start can leave no servers or sockets behind; fall back to the configured address.
            sockets = server.servers[0].sockets if server.servers else []
            address = sockets[0].getsockname() if sockets else (host, port)
            log.info("gateway_listening", host=address[0], port=address[1])
            if ready is not None:
                ready.set()
        await serving
    finally:
        server.should_exit = True
        for task in watchers:
            task.cancel()
        if not serving.done():
            await asyncio.shield(serving)


async def serve(
    settings: Settings,
    client: Client | None = None,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    *,
    sock: socket.socket | None = None,
) -> None:
    """Serve the gateway in the caller's event loop (the dev stack runs it next to a worker)."""
    if client is None:
        # Imported here: worker.wiring pulls in the activity modules, which a gateway never runs.
        from baton.worker.connection import connect

        client = await connect(settings)
    app = create_app(client, settings)
    await serve_app(app, settings.gateway_host, settings.gateway_port, sock=sock, ready=ready, stop=stop)


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(serve(settings))
