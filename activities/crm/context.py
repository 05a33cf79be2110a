"""The customer's context for a conversation, from whichever CRM adapter is configured.

A CRM that is slow or down never blocks a conversation: the lookup is retried
within a bound, then the conversation goes on with the backend's facts and the
context marked unavailable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from temporalio import activity

from baton.activities.crm.base import CrmAdapter, CrmError
from baton.contract.messages import ContextInput, CustomerContext, CustomerFacts
from baton.logging import get_logger

# The whole lookup, retries included, stays under the local activity's 10 s timeout.
CRM_DEADLINE_SECONDS = 8.0
CRM_ATTEMPTS = 3
CRM_BACKOFF_SECONDS = (0.2, 0.5)
log = get_logger(__name__)


def merge_facts(crm: CustomerFacts | None, backend: CustomerFacts) -> CustomerFacts:
    """Backend facts win field by field: they are what the customer sees right now."""
    if crm is None:
        return backend
    given = backend.model_dump(exclude_unset=True, exclude_none=True)
    if not given.get("flags"):
        given.pop("flags", None)
    return crm.model_copy(update=given)


async def customer_context(
    adapter: CrmAdapter,
    request: ContextInput,
    *,
    deadline_seconds: float = CRM_DEADLINE_SECONDS,
    attempts: int = CRM_ATTEMPTS,
    backoff: Sequence[float] = CRM_BACKOFF_SECONDS,
) -> CustomerContext:
    """The customer's context; never raises and never takes longer than `deadline_seconds`.

    Retryable CRM failures are tried again (at most `attempts` tries, pausing
    `backoff` seconds in between) while the deadline allows. When the CRM still
    has not answered, the context holds the backend's facts only and is marked
    unavailable, so the conversation goes on without the CRM.
    """
    loop = asyncio.get_running_loop()
    ends = loop.time() + deadline_seconds
    reason = "no attempt made"
    tries = 0
    for attempt in range(max(attempts, 1)):
        remaining = ends - loop.time()
        if remaining <= 0:
            break
        tries += 1
        try:
            async with asyncio.timeout(remaining) as bound:
                facts = await adapter.fetch(request.customer_id)
        except TimeoutError:
            if bound.expired():
                reason = f"{adapter.name}: no answer within the {deadline_seconds:g} s deadline"
                break
            reason = f"{adapter.name}: timed out"
        except CrmError as err:
            reason = str(err)
            if not err.retryable:
                break
        except Exception as err:  # an unexpected answer must not block the conversation either
            reason = f"{adapter.name}: {type(err).__name__}: {err}"
            break
        else:
            log.info(
                "customer_context",
                workflow_id=_workflow_id(),
                customer_id=request.customer_id,
                source=adapter.name,
                found=facts is not None,
                tries=tries,
            )
            return CustomerContext(
                customer_id=request.customer_id,
                facts=merge_facts(facts, request.backend_facts),
                source=adapter.name if facts is not None else "backend",
            )
        if attempt + 1 < attempts and backoff:
            pause = backoff[min(attempt, len(backoff) - 1)]
            if loop.time() + pause >= ends:
                break
            await asyncio.sleep(pause)
    log.warning(
        "customer_context_unavailable",
        workflow_id=_workflow_id(),
        customer_id=request.customer_id,
        source=adapter.name,
        tries=tries,
        reason=reason,
    )
    return CustomerContext(
        customer_id=request.customer_id,
        facts=request.backend_facts,
        source=adapter.name,
        available=False,
    )


def _workflow_id() -> str | None:
    return activity.info().workflow_id if activity.in_activity() else None
