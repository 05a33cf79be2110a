"""Customer context from a CRM, behind an adapter interface.

The embedded adapter reads a JSON file (customer id -> facts) so Baton runs
with no CRM at all; vendor adapters (crm_hubspot, crm_stripe) implement the
same protocol. A CRM that is slow or down never blocks a conversation: the
lookup is retried within a bound, then the conversation goes on with the
backend's facts and the context marked unavailable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import httpx
from temporalio import activity

from baton.contract.messages import ContextInput, CustomerContext, CustomerFacts
from baton.logging import get_logger

DEMO_CRM_FILE = Path(__file__).with_name("crm_demo.json")
# The whole lookup, retries included, stays under the local activity's 10 s timeout.
CRM_DEADLINE_SECONDS = 8.0
CRM_ATTEMPTS = 3
CRM_BACKOFF_SECONDS = (0.2, 0.5)
log = get_logger(__name__)


class CrmError(Exception):
    """The CRM did not answer usefully.

    `retryable`: an outage, a rate limit or a timeout, worth another try.
    Otherwise a configuration problem (bad credentials, missing scope, bad request)
    that another try will not fix.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def check_response(vendor: str, response: httpx.Response) -> None:
    """Raise CrmError for any status but 2xx (callers handle 404 themselves first)."""
    status = response.status_code
    if response.is_success:
        return
    what = f"{vendor}: HTTP {status} from {response.request.method} {response.request.url.path}"
    if status in (401, 403):
        raise CrmError(f"{what}: check the credentials and their scopes", retryable=False)
    raise CrmError(what, retryable=status == 429 or status >= 500)


def transport_error(vendor: str, err: httpx.TransportError) -> CrmError:
    """Timeouts and connection failures are outages: retryable."""
    kind = "timed out" if isinstance(err, httpx.TimeoutException) else "unreachable"
    return CrmError(f"{vendor}: {kind} ({type(err).__name__})", retryable=True)


class CrmAdapter(Protocol):
    name: str

    async def fetch(self, customer_id: str) -> CustomerFacts | None:
        """The customer's facts, or None when the CRM does not know them."""
        ...


class EmbeddedCrm:
    """Customers from a JSON file (id -> facts), or from a dict given directly."""

    name = "embedded"

    def __init__(self, path: Path | None = None, customers: dict[str, CustomerFacts] | None = None) -> None:
        if customers is not None:
            self._customers = dict(customers)
            return
        raw = json.loads((path or DEMO_CRM_FILE).read_text(encoding="utf-8"))
        self._customers = {cid: CustomerFacts.model_validate(facts) for cid, facts in raw.items()}

    async def fetch(self, customer_id: str) -> CustomerFacts | None:
        return self._customers.get(customer_id)


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
