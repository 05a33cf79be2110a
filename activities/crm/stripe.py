"""Customer facts from Stripe Billing: the customer and its subscriptions.

The customer id from the chat backend is the Stripe customer id (`cus_...`)
or the customer's email. MRR is computed from the subscriptions' prices,
normalised to a month, in the currency's major unit.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from baton.activities.crm.base import CrmError, check_response, require, transport_error
from baton.contract.messages import CustomerFacts
from baton.settings import Settings

# Subscriptions that bill (count towards MRR and the renewal date).
LIVE = frozenset({"active", "trialing", "past_due"})
# Customers who still have an account with you, paid up or not.
CURRENT = frozenset({"active", "past_due", "unpaid", "paused"})
DELINQUENT = frozenset({"past_due", "unpaid"})
ENDED = frozenset({"canceled", "incomplete_expired"})
# Stripe has no health score: a delinquent account gets this one, under the usual at-risk thresholds.
DELINQUENT_HEALTH = 30.0
# Amounts are in the currency's smallest unit; these are the exceptions to "divide by 100".
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())  # noqa: SIM905
MONTHS_PER = {"day": 12 / 365, "week": 12 / 52, "month": 1.0, "year": 12.0}


class StripeCrm:
    name = "stripe"

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        require(settings.stripe_api_key, "stripe_api_key", "stripe")
        assert settings.stripe_api_key is not None
        self._base = settings.stripe_base_url.rstrip("/")
        # Stripe documents HTTP Basic auth with the secret key as the username and no password.
        self._auth = httpx.BasicAuth(settings.stripe_api_key.get_secret_value(), "")
        self._timeout = settings.crm_timeout_seconds
        self._http = http
        self._owns_http = http is None

    async def fetch(self, customer_id: str) -> CustomerFacts | None:
        if "@" in customer_id:
            found = await self._get("/v1/customers", {"email": customer_id.strip(), "limit": "1"})
            customers = (found or {}).get("data") or []
            customer = customers[0] if customers else None
        else:
            customer = await self._get(f"/v1/customers/{quote(customer_id, safe='')}", {})
        if customer is None or customer.get("deleted"):
            return None
        listed = await self._get("/v1/subscriptions", {"customer": str(customer["id"]), "status": "all", "limit": "10"})
        return customer_facts(customer, (listed or {}).get("data") or [])

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _get(self, path: str, params: dict[str, str]) -> dict[str, Any] | None:
        """The JSON body, or None when Stripe says the object does not exist (404 resource_missing)."""
        if self._http is None:
            self._http = httpx.AsyncClient()
        try:
            response = await self._http.get(self._base + path, params=params, auth=self._auth, timeout=self._timeout)
        except httpx.TransportError as err:
            raise transport_error(self.name, err) from err
        if response.status_code == 404 and error_code(response) == "resource_missing":
            return None
        check_response(self.name, response)
        try:
            return response.json()
        except ValueError as err:
            raise CrmError(f"{self.name}: the answer to GET {path} is not JSON", retryable=False) from err


def customer_facts(customer: dict[str, Any], subscriptions: list[dict[str, Any]]) -> CustomerFacts:
    statuses = {s.get("status") for s in subscriptions}
    live = [s for s in subscriptions if s.get("status") in LIVE]
    delinquent = bool(customer.get("delinquent")) or bool(statuses & DELINQUENT)
    flags = []
    if delinquent:
        flags.append("delinquent")
    if any(s.get("cancel_at_period_end") or s.get("cancel_at") for s in live):
        flags.append("churn_risk")
    if statuses & CURRENT:
        stage: str | None = "customer"
    elif "trialing" in statuses:
        stage = "trial"
    elif "canceled" in statuses and statuses <= ENDED:
        stage = "churned"
    else:
        stage = None
    metadata = customer.get("metadata") or {}
    created = customer.get("created")
    return CustomerFacts(
        tier=metadata.get("tier") or None,
        mrr=round(sum(subscription_mrr(s) for s in live), 2),
        renewal_date=renewal_date(live),
        account_created_at=from_epoch(created),
        health=DELINQUENT_HEALTH if delinquent else None,
        lifecycle_stage=stage,
        flags=flags,
    )


def subscription_mrr(subscription: dict[str, Any]) -> float:
    """Licensed per-unit prices times quantity, per month; metered and tiered prices have no fixed amount."""
    total = 0.0
    for item in (subscription.get("items") or {}).get("data") or []:
        price = item.get("price") or item.get("plan") or {}
        recurring = price.get("recurring") or price  # a legacy plan carries interval fields itself
        if recurring.get("usage_type") == "metered":
            continue
        amount = price.get("unit_amount", price.get("amount"))
        if amount is None:
            decimal = price.get("unit_amount_decimal", price.get("amount_decimal"))
            if decimal is None:
                continue
            amount = float(decimal)
        months = billing_months(recurring)
        if months is None:
            continue
        quantity = item.get("quantity")
        currency = str(price.get("currency") or subscription.get("currency") or "usd")
        total += major_units(float(amount) * (1 if quantity is None else quantity), currency) / months
    return total


def billing_months(recurring: dict[str, Any]) -> float | None:
    per = MONTHS_PER.get(str(recurring.get("interval")))
    if per is None:
        return None
    return per * (recurring.get("interval_count") or 1)


def major_units(amount: float, currency: str) -> float:
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return amount
    if currency in THREE_DECIMAL:
        return amount / 1000
    return amount / 100


def renewal_date(live: list[dict[str, Any]]) -> date | None:
    """When the longest commitment next renews: an annual plan's date wins over a monthly add-on's."""
    best: tuple[float, int] | None = None
    for subscription in live:
        end = period_end(subscription)
        if end is None:
            continue
        key = (-longest_interval(subscription), end)
        if best is None or key < best:
            best = key
    return from_epoch(best[1]) if best else None


def period_end(subscription: dict[str, Any]) -> int | None:
    """`current_period_end` on the subscription, or (API 2025-03-31 and later) on its items."""
    if subscription.get("current_period_end"):
        return int(subscription["current_period_end"])
    ends = [
        int(item["current_period_end"])
        for item in (subscription.get("items") or {}).get("data") or []
        if item.get("current_period_end")
    ]
    return min(ends) if ends else None


def longest_interval(subscription: dict[str, Any]) -> float:
    months = []
    for item in (subscription.get("items") or {}).get("data") or []:
        price = item.get("price") or item.get("plan") or {}
        found = billing_months(price.get("recurring") or price)
        if found is not None:
            months.append(found)
    return max(months, default=0.0)


def from_epoch(seconds: object) -> date | None:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).date()


def error_code(response: httpx.Response) -> str | None:
    try:
        return ((response.json() or {}).get("error") or {}).get("code")
    except (ValueError, AttributeError):
        return None
