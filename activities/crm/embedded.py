"""The embedded CRM: customers from a JSON file (customer id -> facts), so Baton runs with no CRM at all."""

from __future__ import annotations

import json
from pathlib import Path

from baton.contract.messages import CustomerFacts

DEMO_CRM_FILE = Path(__file__).with_name("crm_demo.json")


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
