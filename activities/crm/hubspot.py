"""Customer facts from HubSpot (CRM API v3): the contact and its primary company.

The customer id from the chat backend is the HubSpot contact id, or the
contact's email (then the contact is found with the CRM search endpoint).
Account facts live on the company: MRR (or ARR) and the renewal date in
configurable properties, and an optional `tier` property.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from baton.activities.crm.base import CrmError, check_response, require, transport_error
from baton.contract.messages import CustomerFacts
from baton.settings import Settings

CONTACT_PROPERTIES = ("lifecyclestage", "hubspot_owner_id", "createdate")
COMPANY_PROPERTIES = ("name", "hs_lead_status", "createdate", "hubspot_owner_id", "tier")
# HubSpot's association type for a contact's primary company (typeId 1); others are "..._unlabeled" or custom labels.
PRIMARY_COMPANY = "contact_to_company"


class HubSpotCrm:
    name = "hubspot"

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        require(settings.hubspot_token, "hubspot_token", "hubspot")
        assert settings.hubspot_token is not None
        self._base = settings.hubspot_base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {settings.hubspot_token.get_secret_value()}"}
        self._timeout = settings.crm_timeout_seconds
        self._mrr_property = settings.hubspot_mrr_property
        self._mrr_is_arr = settings.hubspot_mrr_is_arr
        self._renewal_property = settings.hubspot_renewal_property
        self._http = http
        self._owns_http = http is None

    async def fetch(self, customer_id: str) -> CustomerFacts | None:
        contact_id = await self._find_by_email(customer_id) if "@" in customer_id else customer_id
        if contact_id is None:
            return None
        contact = await self._get(
            f"/crm/v3/objects/contacts/{quote(contact_id, safe='')}",
            {"properties": ",".join(CONTACT_PROPERTIES), "associations": "companies"},
        )
        if contact is None:
            return None
        company_id = primary_company_id(contact)
        company = None
        if company_id is not None:
            properties = ",".join(dict.fromkeys((*COMPANY_PROPERTIES, self._mrr_property, self._renewal_property)))
            company = await self._get(
                f"/crm/v3/objects/companies/{quote(company_id, safe='')}", {"properties": properties}
            )
        return self.facts(contact, company)

    def facts(self, contact: dict[str, Any], company: dict[str, Any] | None) -> CustomerFacts:
        person = contact.get("properties") or {}
        account = (company or {}).get("properties") or {}
        mrr = to_number(account.get(self._mrr_property))
        if mrr is not None and self._mrr_is_arr:
            mrr = mrr / 12
        owner = person.get("hubspot_owner_id") or account.get("hubspot_owner_id")
        stage = person.get("lifecyclestage")
        return CustomerFacts(
            tier=(account.get("tier") or None),
            mrr=round(mrr, 2) if mrr is not None and mrr >= 0 else None,
            renewal_date=to_date(account.get(self._renewal_property)),
            account_created_at=to_date(account.get("createdate")) or to_date(person.get("createdate")),
            lifecycle_stage=stage.strip().lower() if stage and stage.strip() else None,
            flags=[f"owner:{owner}"] if owner else [],
        )

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- HTTP ---------------------------------------------------------------------------

    async def _find_by_email(self, email: str) -> str | None:
        body = {
            "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email.strip()}]}],
            "properties": ["email"],
            "limit": 1,
        }
        found = await self._send("POST", "/crm/v3/objects/contacts/search", json=body)
        results = (found or {}).get("results") or []
        return str(results[0]["id"]) if results else None

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any] | None:
        return await self._send("GET", path, params=params)

    async def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        """The JSON body, or None on 404 (no such record)."""
        if self._http is None:
            self._http = httpx.AsyncClient()
        try:
            response = await self._http.request(
                method, self._base + path, headers=self._headers, timeout=self._timeout, **kwargs
            )
        except httpx.TransportError as err:
            raise transport_error(self.name, err) from err
        if response.status_code == 404:
            return None
        check_response(self.name, response)
        try:
            return response.json()
        except ValueError as err:
            raise CrmError(f"{self.name}: the answer to {method} {path} is not JSON", retryable=False) from err


def primary_company_id(contact: dict[str, Any]) -> str | None:
    """The contact's primary company; the first associated one when none is marked primary."""
    results = ((contact.get("associations") or {}).get("companies") or {}).get("results") or []
    for link in results:
        if link.get("type") == PRIMARY_COMPANY:
            return str(link["id"])
    return str(results[0]["id"]) if results else None


def to_number(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def to_date(value: object) -> date | None:
    """A HubSpot date or datetime property: epoch milliseconds, an ISO date, or an ISO datetime (UTC)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC).date()
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()
