"""Customer context from a CRM, behind an adapter interface.

The embedded adapter reads a JSON file (customer id -> facts) so Baton runs
with no CRM at all; vendor adapters implement the same protocol.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from temporalio import activity

from baton.logging import get_logger
from baton.messages import ContextInput, CustomerContext, CustomerFacts

DEMO_CRM_FILE = Path(__file__).with_name("crm_demo.json")
log = get_logger(__name__)


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


async def customer_context(adapter: CrmAdapter, request: ContextInput) -> CustomerContext:
    facts = await adapter.fetch(request.customer_id)
    log.info(
        "customer_context",
        workflow_id=activity.info().workflow_id if activity.in_activity() else None,
        customer_id=request.customer_id,
        source=adapter.name,
        found=facts is not None,
    )
    return CustomerContext(
        customer_id=request.customer_id,
        facts=merge_facts(facts, request.backend_facts),
        source=adapter.name if facts is not None else "backend",
    )
