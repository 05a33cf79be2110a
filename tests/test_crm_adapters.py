"""HubSpot and Stripe adapters against local servers that answer as the vendors document.

Each fake checks what a real API would refuse (the auth header, the paths, the
query and body it needs) and records every request, so the tests also assert
what Baton asks for. Outages are simulated by the same servers: errors for a
number of requests, a permanent error, or an answer that never comes in time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from structlog.testing import capture_logs
from temporalio.client import Client

from baton.activities.crm import CrmConfigError, EmbeddedCrm, build_crm, customer_context
from baton.activities.crm.hubspot import HubSpotCrm
from baton.activities.crm.stripe import StripeCrm
from baton.apps.client import get_state, send_message
from baton.contract.messages import ContextInput, ConversationStart, CustomerFacts, MessageIn
from baton.settings import Settings
from baton.worker.wiring import build_worker


def epoch_ms(day: date) -> str:
    """HubSpot's legacy form of a date property: midnight UTC in epoch milliseconds, as a string."""
    return str(int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000))


def epoch_s(day: date, hour: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp())


# --- The fake vendors ------------------------------------------------------------------------


class FakeVendor:
    """A vendor API on 127.0.0.1 with switchable outages; subclasses add the routes."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.bodies: list[Any] = []
        self.fail_next: list[int] = []  # answer these statuses to the next requests, in order
        self.always: int | None = None  # answer this status to every request
        self.delay: float = 0.0  # hold every answer this long (released on shutdown)
        self.url = ""
        self._release = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def error(self, status: int) -> dict[str, Any]:
        raise NotImplementedError

    def routes(self, app: FastAPI) -> None:
        raise NotImplementedError

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def outages(request: Request, call_next: Any) -> Response:
            body = await request.body()
            self.requests.append(request)
            self.bodies.append(body)
            if self.delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), self.delay)
            status = self.fail_next.pop(0) if self.fail_next else self.always
            if status is not None:
                return JSONResponse(self.error(status), status_code=status)
            return await call_next(request)

        self.routes(app)
        return app

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

    async def __aenter__(self) -> Any:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            await asyncio.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._release.set()
        self._server.should_exit = True
        await self._task


HUBSPOT_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
# Returned with every HubSpot record whether asked for or not.
HUBSPOT_DEFAULTS = ("createdate", "hs_object_id", "lastmodifieddate")


class FakeHubSpot(FakeVendor):
    """CRM v3 objects: contacts (with company associations), companies, contact search."""

    def __init__(self) -> None:
        super().__init__()
        # id -> properties; "companies" lists (company id, association type)
        self.contacts: dict[str, dict[str, Any]] = {}
        self.associations: dict[str, list[tuple[str, str]]] = {}
        self.companies: dict[str, dict[str, Any]] = {}

    def error(self, status: int) -> dict[str, Any]:
        categories = {
            401: "INVALID_AUTHENTICATION",
            404: "OBJECT_NOT_FOUND",
            429: "RATE_LIMITS",
            400: "VALIDATION_ERROR",
        }
        return {
            "status": "error",
            "message": f"HTTP {status}",
            "correlationId": str(uuid.uuid4()),
            "category": categories.get(status, "INTERNAL_ERROR"),
        }

    def record(self, object_id: str, stored: dict[str, Any], requested: list[str]) -> dict[str, Any]:
        # Only requested (and default) properties come back; unknown property names are left out.
        names = [*requested, *HUBSPOT_DEFAULTS]
        properties = {name: stored.get(name) for name in names if name in stored}
        properties["hs_object_id"] = object_id
        return {
            "id": object_id,
            "properties": properties,
            "createdAt": stored.get("createdate", "2020-01-01T00:00:00Z"),
            "updatedAt": "2026-01-01T00:00:00Z",
            "archived": False,
        }

    def routes(self, app: FastAPI) -> None:
        def denied(request: Request) -> JSONResponse | None:
            if request.headers.get("authorization") != f"Bearer {HUBSPOT_TOKEN}":
                return JSONResponse(self.error(401), status_code=401)
            return None

        def requested(request: Request) -> list[str]:
            return [p for p in request.query_params.get("properties", "").split(",") if p]

        @app.get("/crm/v3/objects/contacts/{contact_id}")
        async def contact(contact_id: str, request: Request) -> Response:
            if refused := denied(request):
                return refused
            if contact_id not in self.contacts:
                return JSONResponse(self.error(404), status_code=404)
            body = self.record(contact_id, self.contacts[contact_id], requested(request))
            links = self.associations.get(contact_id, [])
            if "companies" in request.query_params.get("associations", "").split(",") and links:
                body["associations"] = {"companies": {"results": [{"id": cid, "type": kind} for cid, kind in links]}}
            return JSONResponse(body)

        @app.get("/crm/v3/objects/companies/{company_id}")
        async def company(company_id: str, request: Request) -> Response:
            if refused := denied(request):
                return refused
            if company_id not in self.companies:
                return JSONResponse(self.error(404), status_code=404)
            return JSONResponse(self.record(company_id, self.companies[company_id], requested(request)))

        @app.post("/crm/v3/objects/contacts/search")
        async def search(request: Request) -> Response:
            if refused := denied(request):
                return refused
            query = await request.json()
            try:
                [group] = query["filterGroups"]
                [condition] = group["filters"]
                assert condition["propertyName"] == "email" and condition["operator"] == "EQ"
                wanted = condition["value"].lower()
            except (KeyError, ValueError, AssertionError, AttributeError):
                return JSONResponse(self.error(400), status_code=400)
            found = [
                self.record(cid, props, query.get("properties", []))
                for cid, props in self.contacts.items()
                if str(props.get("email", "")).lower() == wanted
            ][: query.get("limit", 10)]
            return JSONResponse({"total": len(found), "results": found})


STRIPE_KEY = "sk_test_51BatonExampleKey"


class FakeStripe(FakeVendor):
    """/v1/customers (retrieve, list by email) and /v1/subscriptions (list by customer)."""

    def __init__(self) -> None:
        super().__init__()
        self.customers: dict[str, dict[str, Any]] = {}
        self.subscriptions: list[dict[str, Any]] = []

    def error(self, status: int) -> dict[str, Any]:
        kinds = {401: "invalid_request_error", 404: "invalid_request_error", 429: "invalid_request_error"}
        return {"error": {"type": kinds.get(status, "api_error"), "message": f"HTTP {status}"}}

    def customer(self, cid: str, *, created: date, email: str = "", **extra: Any) -> dict[str, Any]:
        self.customers[cid] = {
            "id": cid,
            "object": "customer",
            "created": epoch_s(created, 15),
            "currency": "usd",
            "delinquent": False,
            "email": email or None,
            "livemode": False,
            "metadata": {},
            **extra,
        }
        return self.customers[cid]

    def subscription(
        self,
        customer: str,
        status: str,
        items: list[tuple[int | None, int, str, int]],
        *,
        period_end: date,
        item_periods: bool = False,
        currency: str = "usd",
        **extra: Any,
    ) -> None:
        """items: (unit_amount, quantity, interval, interval_count). item_periods: the 2025-03-31 API shape."""
        sid = f"sub_{uuid.uuid4().hex[:14]}"
        end = epoch_s(period_end)
        data = []
        for unit_amount, quantity, interval, count in items:
            item: dict[str, Any] = {
                "id": f"si_{uuid.uuid4().hex[:14]}",
                "object": "subscription_item",
                "price": {
                    "id": f"price_{uuid.uuid4().hex[:14]}",
                    "object": "price",
                    "active": True,
                    "billing_scheme": "per_unit" if unit_amount is not None else "tiered",
                    "currency": currency,
                    "type": "recurring",
                    "unit_amount": unit_amount,
                    "unit_amount_decimal": None if unit_amount is None else str(unit_amount),
                    "recurring": {"interval": interval, "interval_count": count, "usage_type": "licensed"},
                },
                "quantity": quantity,
                "subscription": sid,
            }
            if item_periods:
                item["current_period_start"] = end - 86400 * 30
                item["current_period_end"] = end
            data.append(item)
        subscription: dict[str, Any] = {
            "id": sid,
            "object": "subscription",
            "customer": customer,
            "status": status,
            "currency": currency,
            "cancel_at_period_end": False,
            "cancel_at": None,
            "items": {
                "object": "list",
                "data": data,
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={sid}",
            },
            **extra,
        }
        if not item_periods:
            subscription["current_period_start"] = end - 86400 * 30
            subscription["current_period_end"] = end
        self.subscriptions.append(subscription)

    def routes(self, app: FastAPI) -> None:
        def denied(request: Request) -> JSONResponse | None:
            header = request.headers.get("authorization", "")
            basic = "Basic " + base64.b64encode(f"{STRIPE_KEY}:".encode()).decode()
            if header not in (basic, f"Bearer {STRIPE_KEY}"):
                return JSONResponse(self.error(401), status_code=401)
            return None

        def listing(data: list[dict[str, Any]], url: str) -> JSONResponse:
            return JSONResponse({"object": "list", "data": data, "has_more": False, "url": url})

        @app.get("/v1/customers/{customer_id}")
        async def retrieve(customer_id: str, request: Request) -> Response:
            if refused := denied(request):
                return refused
            if customer_id not in self.customers:
                missing = {
                    "code": "resource_missing",
                    "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
                    "message": f"No such customer: '{customer_id}'",
                    "param": "id",
                    "type": "invalid_request_error",
                }
                return JSONResponse({"error": missing}, status_code=404)
            return JSONResponse(self.customers[customer_id])

        @app.get("/v1/customers")
        async def customers(request: Request) -> Response:
            if refused := denied(request):
                return refused
            email = request.query_params.get("email")
            limit = int(request.query_params.get("limit", "10"))
            found = [c for c in self.customers.values() if email is None or c.get("email") == email]
            return listing(found[:limit], "/v1/customers")

        @app.get("/v1/subscriptions")
        async def subscriptions(request: Request) -> Response:
            if refused := denied(request):
                return refused
            customer = request.query_params.get("customer")
            status = request.query_params.get("status")
            limit = int(request.query_params.get("limit", "10"))
            # Without status=all Stripe leaves canceled subscriptions out.
            found = [
                s
                for s in self.subscriptions
                if (customer is None or s["customer"] == customer) and (status == "all" or s["status"] != "canceled")
            ]
            return listing(found[:limit], "/v1/subscriptions")


# --- Data --------------------------------------------------------------------------------


def hubspot_accounts(hub: FakeHubSpot) -> None:
    hub.contacts["501"] = {
        "email": "ana@acme.test",
        "lifecyclestage": "customer",
        "hubspot_owner_id": "7001",
        "createdate": "2022-04-01T09:30:00.000Z",
    }
    # An unlabeled company first: the primary one must win.
    hub.associations["501"] = [
        ("9009", "contact_to_company_unlabeled"),
        ("9001", "contact_to_company"),
        ("9001", "contact_to_company_unlabeled"),
    ]
    hub.companies["9001"] = {
        "name": "Acme",
        "mrr": "1800",
        "renewal_date": "2027-06-15",
        "createdate": "2021-03-01T12:00:00Z",
        "hs_lead_status": "OPEN",
        "hubspot_owner_id": "7002",
        "tier": "mid_market",
    }
    hub.companies["9009"] = {"name": "Acme Labs", "mrr": "5", "createdate": "2024-01-01T00:00:00Z"}
    # A contact with no company at all.
    hub.contacts["502"] = {
        "email": "li@solo.test",
        "lifecyclestage": "Evangelist",
        "createdate": "2025-02-10T08:00:00Z",
    }
    # A company that keeps ARR and a renewal date in epoch milliseconds, in custom properties.
    hub.contacts["503"] = {"lifecyclestage": "customer", "createdate": "2023-01-01T00:00:00Z"}
    hub.associations["503"] = [("9003", "contact_to_company")]
    hub.companies["9003"] = {
        "name": "Globex",
        "contract_arr": "120000",
        "contract_renewal": epoch_ms(date(2027, 9, 30)),
        "createdate": "1614556800000",  # 2021-03-01 as epoch ms
        "hubspot_owner_id": "7003",
    }


def hubspot_settings(hub: FakeHubSpot, **overrides: Any) -> Settings:
    return Settings(**{"hubspot_base_url": hub.url, "hubspot_token": HUBSPOT_TOKEN, "crm": "hubspot", **overrides})


def stripe_settings(fake: FakeStripe, **overrides: Any) -> Settings:
    return Settings(**{"stripe_base_url": fake.url, "stripe_api_key": STRIPE_KEY, "crm": "stripe", **overrides})


# --- HubSpot -----------------------------------------------------------------------------


async def test_hubspot_contact_by_id_with_its_primary_company() -> None:
    async with FakeHubSpot() as hub:
        hubspot_accounts(hub)
        crm = HubSpotCrm(hubspot_settings(hub))
        try:
            facts = await crm.fetch("501")
        finally:
            await crm.aclose()

    assert facts == CustomerFacts(
        tier="mid_market",
        mrr=1800,
        renewal_date=date(2027, 6, 15),
        account_created_at=date(2021, 3, 1),  # the company's, not the contact's
        lifecycle_stage="customer",
        flags=["owner:7001"],  # the contact's owner before the company's
    )
    contact, company = hub.requests
    assert all(r.headers["authorization"] == f"Bearer {HUBSPOT_TOKEN}" for r in hub.requests)
    assert contact.method == "GET" and contact.url.path == "/crm/v3/objects/contacts/501"
    assert set(contact.query_params["properties"].split(",")) == {"lifecyclestage", "hubspot_owner_id", "createdate"}
    assert contact.query_params["associations"] == "companies"
    assert company.url.path == "/crm/v3/objects/companies/9001"
    asked = set(company.query_params["properties"].split(","))
    assert {"name", "mrr", "renewal_date", "hs_lead_status", "createdate", "hubspot_owner_id", "tier"} <= asked


async def test_hubspot_contact_by_email_uses_the_search_endpoint() -> None:
    async with FakeHubSpot() as hub:
        hubspot_accounts(hub)
        async with httpx.AsyncClient() as http:
            crm = HubSpotCrm(hubspot_settings(hub), http=http)
            facts = await crm.fetch("Ana@Acme.test")
            unknown = await crm.fetch("nobody@acme.test")

    assert facts is not None and facts.mrr == 1800 and facts.tier == "mid_market"
    assert unknown is None
    search = hub.requests[0]
    assert search.method == "POST" and search.url.path == "/crm/v3/objects/contacts/search"
    assert hub.paths()[1:3] == ["/crm/v3/objects/contacts/501", "/crm/v3/objects/companies/9001"]
    assert hub.paths()[3] == "/crm/v3/objects/contacts/search"  # the unknown email: no further request
    assert len(hub.requests) == 4


async def test_hubspot_arr_property_and_epoch_millisecond_dates() -> None:
    async with FakeHubSpot() as hub:
        hubspot_accounts(hub)
        settings = hubspot_settings(
            hub,
            hubspot_mrr_property="contract_arr",
            hubspot_mrr_is_arr=True,
            hubspot_renewal_property="contract_renewal",
        )
        crm = HubSpotCrm(settings)
        try:
            facts = await crm.fetch("503")
        finally:
            await crm.aclose()

    assert facts is not None
    assert facts.mrr == 10000  # ARR 120,000 / 12
    assert facts.renewal_date == date(2027, 9, 30)
    assert facts.account_created_at == date(2021, 3, 1)
    assert facts.tier is None and facts.flags == ["owner:7003"]
    asked = set(hub.requests[1].query_params["properties"].split(","))
    assert {"contract_arr", "contract_renewal"} <= asked and "mrr" not in asked


async def test_hubspot_contact_without_company_and_unknown_contact() -> None:
    async with FakeHubSpot() as hub:
        hubspot_accounts(hub)
        crm = HubSpotCrm(hubspot_settings(hub))
        try:
            solo = await crm.fetch("502")
            unknown = await crm.fetch("404404")
        finally:
            await crm.aclose()

    assert solo == CustomerFacts(lifecycle_stage="evangelist", account_created_at=date(2025, 2, 10))
    assert unknown is None
    assert hub.paths() == ["/crm/v3/objects/contacts/502", "/crm/v3/objects/contacts/404404"]


# --- Stripe ------------------------------------------------------------------------------


async def test_stripe_mrr_across_monthly_quarterly_yearly_and_quantities() -> None:
    async with FakeStripe() as fake:
        fake.customer("cus_Multi", created=date(2022, 5, 3), metadata={"tier": "enterprise"})
        fake.subscription("cus_Multi", "active", [(4900, 3, "month", 1)], period_end=date(2026, 8, 1))
        fake.subscription(
            "cus_Multi",
            "active",
            [(120000, 1, "year", 1), (30000, 2, "month", 3)],
            period_end=date(2027, 2, 1),
            item_periods=True,  # current_period_end on the items (API 2025-03-31 and later)
        )
        fake.subscription("cus_Multi", "trialing", [(1000, 1, "week", 2)], period_end=date(2026, 7, 20))
        fake.subscription("cus_Multi", "canceled", [(99999, 1, "month", 1)], period_end=date(2025, 1, 1))
        crm = StripeCrm(stripe_settings(fake))
        try:
            facts = await crm.fetch("cus_Multi")
        finally:
            await crm.aclose()

    # 49.00 x 3 + 1,200.00 / 12 + 300.00 x 2 / 3 + 10.00 x 52/12 / 2 (every two weeks); the canceled one not at all
    assert facts is not None
    assert facts.mrr == pytest.approx(147 + 100 + 200 + 21.67, abs=0.01)
    assert facts.renewal_date == date(2027, 2, 1)  # the annual commitment's, not the monthly add-on's
    assert facts.account_created_at == date(2022, 5, 3)
    assert facts.tier == "enterprise" and facts.lifecycle_stage == "customer"
    assert facts.flags == [] and facts.health is None

    retrieve, listing = fake.requests
    basic = "Basic " + base64.b64encode(f"{STRIPE_KEY}:".encode()).decode()
    assert retrieve.headers["authorization"] == basic and listing.headers["authorization"] == basic
    assert retrieve.url.path == "/v1/customers/cus_Multi"
    assert listing.url.path == "/v1/subscriptions"
    assert dict(listing.query_params) == {"customer": "cus_Multi", "status": "all", "limit": "10"}


async def test_stripe_zero_decimal_currency_and_single_period_end() -> None:
    async with FakeStripe() as fake:
        fake.customer("cus_Tokyo", created=date(2024, 4, 1))
        fake.subscription("cus_Tokyo", "active", [(9800, 2, "month", 1)], period_end=date(2026, 9, 1), currency="jpy")
        crm = StripeCrm(stripe_settings(fake))
        try:
            facts = await crm.fetch("cus_Tokyo")
        finally:
            await crm.aclose()
    assert facts is not None and facts.mrr == 19600 and facts.renewal_date == date(2026, 9, 1)


async def test_stripe_past_due_or_delinquent_customer_is_flagged() -> None:
    async with FakeStripe() as fake:
        fake.customer("cus_Late", created=date(2023, 1, 9))
        fake.subscription("cus_Late", "past_due", [(2000, 1, "month", 1)], period_end=date(2026, 7, 1))
        fake.customer("cus_Owes", created=date(2023, 1, 9), delinquent=True)
        fake.subscription("cus_Owes", "active", [(5000, 1, "month", 1)], period_end=date(2026, 7, 1))
        crm = StripeCrm(stripe_settings(fake))
        try:
            late = await crm.fetch("cus_Late")
            owes = await crm.fetch("cus_Owes")
        finally:
            await crm.aclose()

    assert late is not None and owes is not None
    assert late.flags == ["delinquent"] and late.health == 30 and late.lifecycle_stage == "customer"
    assert late.mrr == 20  # past_due still bills
    assert owes.flags == ["delinquent"] and owes.health == 30 and owes.mrr == 50


async def test_stripe_canceled_only_is_churned() -> None:
    async with FakeStripe() as fake:
        fake.customer("cus_Gone", created=date(2021, 6, 1))
        fake.subscription("cus_Gone", "canceled", [(9900, 1, "month", 1)], period_end=date(2025, 12, 1))
        fake.subscription("cus_Gone", "canceled", [(99000, 1, "year", 1)], period_end=date(2025, 3, 1))
        crm = StripeCrm(stripe_settings(fake))
        try:
            facts = await crm.fetch("cus_Gone")
        finally:
            await crm.aclose()
    assert facts == CustomerFacts(lifecycle_stage="churned", mrr=0, account_created_at=date(2021, 6, 1))


async def test_stripe_lookup_by_email_and_unknown_customers() -> None:
    async with FakeStripe() as fake:
        fake.customer("cus_Mail", created=date(2024, 2, 2), email="ops@initech.test")
        fake.subscription("cus_Mail", "active", [(1500, 4, "month", 1)], period_end=date(2026, 7, 2))
        crm = StripeCrm(stripe_settings(fake))
        try:
            by_email = await crm.fetch("ops@initech.test")
            no_email = await crm.fetch("nobody@initech.test")
            no_id = await crm.fetch("cus_Nope")
        finally:
            await crm.aclose()

    assert by_email is not None and by_email.mrr == 60 and by_email.renewal_date == date(2026, 7, 2)
    assert no_email is None and no_id is None
    lookup = fake.requests[0]
    assert lookup.url.path == "/v1/customers"
    assert dict(lookup.query_params) == {"email": "ops@initech.test", "limit": "1"}
    assert fake.requests[1].query_params["customer"] == "cus_Mail"
    assert fake.paths()[2:] == ["/v1/customers", "/v1/customers/cus_Nope"]


# --- Outages: bounded retries, then the conversation goes on without the CRM -------------


def context_request(customer_id: str = "501") -> ContextInput:
    return ContextInput(customer_id=customer_id, backend_facts=CustomerFacts(tier="enterprise", flags=["vip"]))


async def timed(coro: Any) -> tuple[Any, float]:
    began = time.monotonic()
    result = await coro
    return result, time.monotonic() - began


async def test_two_outages_then_an_answer_is_retried_within_the_bound() -> None:
    async with FakeHubSpot() as hub:
        hubspot_accounts(hub)
        hub.fail_next = [503, 503]
        crm = HubSpotCrm(hubspot_settings(hub))
        try:
            context, took = await timed(customer_context(crm, context_request()))
        finally:
            await crm.aclose()

    assert context.available and context.source == "hubspot"
    assert context.facts.mrr == 1800 and context.facts.tier == "enterprise"  # the backend's tier still wins
    assert hub.paths() == ["/crm/v3/objects/contacts/501"] * 3 + ["/crm/v3/objects/companies/9001"]
    assert 0.7 <= took < 3  # two pauses (0.2 s, 0.5 s), well inside the 8 s deadline


async def test_rate_limited_stripe_is_retried() -> None:
    async with FakeStripe() as fake:
        fake.customer("cus_Busy", created=date(2024, 2, 2))
        fake.fail_next = [429]
        crm = StripeCrm(stripe_settings(fake))
        try:
            context = await customer_context(crm, context_request("cus_Busy"))
        finally:
            await crm.aclose()
    assert context.available and context.source == "stripe" and context.facts.mrr == 0
    assert len(fake.requests) == 3


async def test_crm_always_failing_gives_backend_facts_marked_unavailable() -> None:
    async with FakeHubSpot() as hub:
        hubspot_accounts(hub)
        hub.always = 503
        crm = HubSpotCrm(hubspot_settings(hub))
        try:
            with capture_logs() as logs:
                context, took = await timed(customer_context(crm, context_request()))
        finally:
            await crm.aclose()

    assert not context.available and context.source == "hubspot" and context.customer_id == "501"
    assert context.facts == context_request().backend_facts
    assert len(hub.requests) == 3 and took < 2
    [warning] = [e for e in logs if e["event"] == "customer_context_unavailable"]
    assert warning["log_level"] == "warning" and warning["tries"] == 3 and "HTTP 503" in warning["reason"]


async def test_slow_crm_requests_time_out_and_are_retried_within_the_deadline() -> None:
    async with FakeHubSpot() as hub:
        hubspot_accounts(hub)
        hub.delay = 30
        crm = HubSpotCrm(hubspot_settings(hub, crm_timeout_seconds=0.3))
        try:
            context, took = await timed(customer_context(crm, context_request(), deadline_seconds=3))
        finally:
            await crm.aclose()
    assert not context.available and context.facts == context_request().backend_facts
    # Each request timed out after 0.3 s and was retried after a pause; three fit in the deadline on an idle
    # machine, two on a busy one. The deadline holds either way (the bound leaves room for scheduling).
    assert 2 <= len(hub.requests) <= 3
    assert 0.3 * len(hub.requests) <= took < 3.5


async def test_a_hanging_crm_is_cut_off_at_the_deadline() -> None:
    async with FakeStripe() as fake:
        fake.customer("cus_Slow", created=date(2024, 2, 2))
        fake.delay = 30
        crm = StripeCrm(stripe_settings(fake))  # 5 s per request: longer than the whole deadline
        try:
            with capture_logs() as logs:
                context, took = await timed(customer_context(crm, context_request("cus_Slow"), deadline_seconds=1.0))
        finally:
            await crm.aclose()
    assert not context.available and context.source == "stripe" and context.facts.tier == "enterprise"
    # Cut off at the deadline, long before the request's own 5 s (the upper bound leaves room for a busy machine).
    assert 1.0 <= took < 4.0 and len(fake.requests) == 1
    [warning] = [e for e in logs if e["event"] == "customer_context_unavailable"]
    assert "deadline" in warning["reason"]


async def test_the_default_deadline_stays_under_the_local_activity_timeout() -> None:
    async with FakeStripe() as fake:
        fake.customer("cus_Slow", created=date(2024, 2, 2))
        fake.delay = 30
        crm = StripeCrm(stripe_settings(fake))
        try:
            context, took = await timed(customer_context(crm, context_request("cus_Slow")))
        finally:
            await crm.aclose()
    # 5 s for the first request, a pause, then what is left of 8 s for the second.
    # Under the local activity's 10 s timeout, whatever the machine's load.
    assert not context.available and 8.0 <= took < 10 and len(fake.requests) == 2


async def test_bad_credentials_are_not_retried() -> None:
    async with FakeHubSpot() as hub:
        hubspot_accounts(hub)
        crm = HubSpotCrm(hubspot_settings(hub, hubspot_token="pat-na1-revoked"))
        try:
            with capture_logs() as logs:
                context, took = await timed(customer_context(crm, context_request()))
        finally:
            await crm.aclose()
    assert not context.available and context.facts == context_request().backend_facts
    assert len(hub.requests) == 1 and took < 0.5
    [warning] = [e for e in logs if e["event"] == "customer_context_unavailable"]
    assert "HTTP 401" in warning["reason"] and warning["tries"] == 1


async def test_unreachable_crm_is_unavailable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    crm = StripeCrm(Settings(stripe_base_url=f"http://127.0.0.1:{port}", stripe_api_key=STRIPE_KEY))
    try:
        context, took = await timed(customer_context(crm, context_request("cus_X")))
    finally:
        await crm.aclose()
    assert not context.available and context.source == "stripe" and took < 2


async def test_unknown_customer_is_available_with_backend_facts() -> None:
    async with FakeHubSpot() as hub:
        crm = HubSpotCrm(hubspot_settings(hub))
        try:
            context = await customer_context(crm, context_request("123"))
        finally:
            await crm.aclose()
    assert context.available and context.source == "backend" and context.facts.tier == "enterprise"


# --- Choosing the adapter ----------------------------------------------------------------


def test_build_crm_by_setting() -> None:
    assert isinstance(build_crm(Settings()), EmbeddedCrm)
    assert isinstance(build_crm(Settings(crm="hubspot", hubspot_token="t")), HubSpotCrm)
    assert isinstance(build_crm(Settings(crm="stripe", stripe_api_key="sk_test_x")), StripeCrm)
    with pytest.raises(CrmConfigError, match="BATON_HUBSPOT_TOKEN is required when BATON_CRM=hubspot"):
        build_crm(Settings(crm="hubspot"))
    with pytest.raises(CrmConfigError, match="BATON_STRIPE_API_KEY is required when BATON_CRM=stripe"):
        build_crm(Settings(crm="stripe", stripe_api_key=""))


# --- End to end: a worker with the HubSpot adapter ---------------------------------------


def new_start(customer_id: str) -> ConversationStart:
    return ConversationStart(
        conversation_id=f"crm-{uuid.uuid4().hex[:10]}", customer_id=customer_id, customer=CustomerFacts()
    )


async def test_worker_with_hubspot_context_and_with_hubspot_down(client: Client, task_queue: str) -> None:
    async with FakeHubSpot() as hub:
        hubspot_accounts(hub)
        settings = hubspot_settings(hub, task_queue=task_queue)
        crm = HubSpotCrm(settings)
        try:
            async with build_worker(client, settings, crm=crm):
                start = new_start("501")
                decision = await send_message(
                    client, task_queue, start, MessageIn(message_id="m1", role="customer", text="Where is my invoice?")
                )
                state = await get_state(client, start.conversation_id)

                hub.always = 503
                down = new_start("501")
                fallback = await send_message(
                    client, task_queue, down, MessageIn(message_id="m1", role="customer", text="I want a human")
                )
                down_state = await get_state(client, down.conversation_id)
        finally:
            await crm.aclose()

    assert decision.action == "continue" and decision.segment == "mid_market"
    assert state.context is not None and state.context.source == "hubspot" and state.context.available
    assert state.context.facts.mrr == 1800 and state.context.facts.renewal_date == date(2027, 6, 15)
    assert state.context.facts.lifecycle_stage == "customer" and "owner:7001" in state.context.facts.flags

    assert fallback.action == "escalate"  # the decision does not wait for the CRM
    assert down_state.context is not None and down_state.context.available is False
    assert down_state.context.source == "hubspot" and down_state.context.facts.mrr is None
