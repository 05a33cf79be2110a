"""Agent and operator updates: a refusal is answered from the error table with the workflow's reason."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from baton.apps import client as baton_client
from baton.apps.gateway.errors import ERRORS, failure_of, http_error, not_found, timed_out, unavailable
from baton.logging import get_logger

log = get_logger("baton.gateway")

T = TypeVar("T")


async def run_update(call: Awaitable[T], *, conversation_id: str, what: str, timeout: float) -> T:
    """Await an update; `what` names its log events (`{what}_refused`) and its failure message."""
    bound = log.bind(conversation_id=conversation_id, workflow_id=baton_client.workflow_id(conversation_id))
    try:
        return await asyncio.wait_for(call, timeout)
    except WorkflowUpdateFailedError as err:
        failure = failure_of(err)
        if failure.type in ERRORS:
            bound.info(f"{what}_refused", reason=failure.reason)
        else:
            bound.error(f"{what}_failed", reason=failure.reason)
        raise http_error(failure, failed=f"{what} could not be completed") from err
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
        raise timed_out() from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise not_found(conversation_id) from err
        raise unavailable(err) from err
