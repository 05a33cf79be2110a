"""One table from Baton's error types to HTTP answers, used by every endpoint.

Workflows fail updates with ``ApplicationError(type=ErrorType..., details=...)``; a failure
inside an activity arrives as ActivityError -> ApplicationError, so the type is found by
walking ``.cause``. A type outside the table is a server fault (500). Failures of the
Temporal connection itself (503, 404) and a decision not ready in time (503 with Retry-After) are
answered here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError

from baton.apps.client import ConversationClosedError
from baton.contract.errors import ErrorType
from baton.contract.messages import MessageIn

_TYPES = frozenset(ErrorType)


@dataclass(frozen=True)
class Failure:
    """Why a workflow refused or failed a request."""

    type: ErrorType | None  # None: not one of Baton's error types
    reason: str  # the failure's message; the client sees it unless the table says otherwise
    details: tuple[str, ...] = ()  # "field: problem" strings for the field-naming types

    @property
    def fields(self) -> list[str]:
        return [problem.partition(":")[0] for problem in self.details]


# How a type is answered: (status from the table, the failure, the policy the request named).
Render = Callable[[int, Failure, str | None], HTTPException]


def field_errors(code: int, problems: Sequence[str], prefix: tuple[str, ...]) -> HTTPException:
    """The "field: problem" strings in FastAPI's validation-error shape, each located under `prefix`."""
    details = []
    for problem in problems:
        field, sep, msg = problem.partition(": ")
        loc = (*prefix, field) if sep else prefix
        details.append({"loc": loc, "msg": msg if sep else problem, "type": "value_error"})
    return HTTPException(code, details)


def _reason(code: int, failure: Failure, policy: str | None) -> HTTPException:
    return HTTPException(code, failure.reason)


def _message_fields(code: int, failure: Failure, policy: str | None) -> HTTPException:
    if not failure.details:  # a worker from before the details: the reason, on the message as a whole
        return HTTPException(code, [{"loc": ("body", "message"), "msg": failure.reason, "type": "value_error"}])
    return field_errors(code, failure.details, ("body", "message"))


def _policy_field(code: int, failure: Failure, policy: str | None) -> HTTPException:
    if policy is None:
        # The server's default policy is broken: no fault of the request.
        return HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, "the default policy cannot be loaded")
    # The backend chose the policy, so it is a bad request; the reason holds a server path, never shown.
    return field_errors(code, [f"policy: policy {policy!r} cannot be loaded"], ("body",))


ERRORS: dict[ErrorType, tuple[int, Render]] = {
    ErrorType.CONVERSATION_CLOSED: (status.HTTP_409_CONFLICT, _reason),
    ErrorType.INVALID_MESSAGE: (status.HTTP_422_UNPROCESSABLE_CONTENT, _message_fields),
    ErrorType.AGENT_ACTION_REFUSED: (status.HTTP_409_CONFLICT, _reason),
    ErrorType.POLICY_ERROR: (status.HTTP_422_UNPROCESSABLE_CONTENT, _policy_field),
    ErrorType.NO_INCIDENT: (status.HTTP_409_CONFLICT, _reason),
}


def http_error(failure: Failure, *, failed: str, policy: str | None = None) -> HTTPException:
    """The answer to a failure; `failed` opens the 500 message for a type outside the table."""
    if failure.type in ERRORS:
        code, render = ERRORS[failure.type]
        return render(code, failure, policy)
    return HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, f"{failed}: {failure.reason}")


def failure_of(err: BaseException) -> Failure:
    """The typed failure behind a failed update (or a closed conversation), found by walking `.cause`."""
    if isinstance(err, ConversationClosedError):
        return Failure(ErrorType.CONVERSATION_CLOSED, str(err))
    top = err.cause if isinstance(err, WorkflowUpdateFailedError) else err
    cause: BaseException | None = top
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.type in _TYPES:
            return Failure(ErrorType(cause.type), cause.message, tuple(str(d) for d in cause.details))
        cause = cause.__cause__
    return Failure(None, top.message if isinstance(top, FailureError) else str(top))


# Workers from before the error types rejected a message with an untyped error (a validator's
# ValueError) whose message joined "field: problem" strings with "; ". Until none run (a rolling
# deploy), such a rejection is still answered as InvalidMessage; this is the one place a message
# text is read, only for add_message and only for errors that carry no Baton type.
_UNTYPED = (None, "", "ValueError")


def message_failure_of(err: BaseException) -> Failure:
    """failure_of for add_message, which also understands the untyped rejections of older workers."""
    failure = failure_of(err)
    cause = err.cause if isinstance(err, WorkflowUpdateFailedError) else err
    if failure.type is not None or not isinstance(cause, ApplicationError) or cause.type not in _UNTYPED:
        return failure
    problems = tuple(cause.message.split("; "))
    if all(problem.partition(":")[0] in MessageIn.model_fields for problem in problems):
        return Failure(ErrorType.INVALID_MESSAGE, failure.reason, problems)
    return failure


def rpc_status(err: RPCError) -> str | None:
    return err.status.name if err.status else None


def unavailable(err: RPCError) -> HTTPException:
    # Every RPC failure is worth a retry from the backend's side (server down, overloaded,
    # or a worker failing the workflow task until it is fixed), hence 503 for all.
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"Temporal could not serve the request ({rpc_status(err) or 'UNKNOWN'}): {err.message}",
    )


# Seconds a client waits before retrying a request the conversation did not answer in time.
RETRY_AFTER_SECONDS = 2
NOT_READY = "the decision is not ready yet; retry with the same message_id"


def timed_out() -> HTTPException:
    """No answer within the gateway's bound. The request may still be applied (the update stays in the
    workflow), so the answer is a retryable 503, never a 504 reading as a failure: the retry with the same
    message_id is deduplicated by the workflow and answered with the decision it got."""
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, NOT_READY, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def not_found(conversation_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"conversation {conversation_id} not found")


MAX_ECHOED_INPUT_CHARS = 500
MAX_VALIDATION_ERRORS = 50


async def validation_failed(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body, except that an input JSON cannot carry back (NaN, Infinity, a lone surrogate) or a
    long one (megabytes of flags) is left out of its error, rather than failing the answer with a 500 or
    echoing the request back; at most MAX_VALIDATION_ERRORS errors."""
    errors = jsonable_encoder(exc.errors()[:MAX_VALIDATION_ERRORS])
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": [_echo(e) for e in errors]}
    )


def _echo(error: dict[str, Any]) -> dict[str, Any]:
    for dropped in ((), ("input",), ("input", "ctx")):
        candidate = {key: value for key, value in error.items() if key not in dropped}
        try:
            encoded = json.dumps(candidate.get("input"), allow_nan=False, ensure_ascii=False)
            json.dumps(candidate, allow_nan=False, ensure_ascii=False).encode("utf-8")
        except (ValueError, UnicodeEncodeError):
            continue
        if len(encoded) <= MAX_ECHOED_INPUT_CHARS:
            return candidate
    loc = [str(part).encode("utf-8", "replace").decode("utf-8") for part in error.get("loc", ())]
    return {"loc": loc, "msg": str(error.get("msg", "invalid value")), "type": str(error.get("type", "value_error"))}
