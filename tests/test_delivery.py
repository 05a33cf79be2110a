"""Outgoing webhooks against a real receiver on 127.0.0.1, through a real worker (so retries are real).

The receiver is what a careful chat backend does: it verifies the signature
with baton.webhooks.verify, records every receipt, and shows each message once
per Idempotency-Key (a repeat is acknowledged with 200 but not shown again).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import httpx
    import pytest
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from structlog.testing import capture_logs
    from temporalio.client import Client, WorkflowFailureError
    from temporalio.exceptions import ActivityError, ApplicationError, RetryState
    from temporalio.testing import ActivityEnvironment
    from temporalio.worker import Worker

    from baton.activities import webhooks
    from baton.activities.delivery import DeliveryActivities
    from baton.contract.messages import (
        DeliveryResult,
        HandoffNote,
        HelpdeskTicket,
        OutboundMessage,
        PageRequest,
        TranscriptEntry,
    )
    from baton.settings import Settings

SECRET = "whsec-test-7f3a"
SECRET_TEXT = "Sorry for the wait, a teammate will join shortly."


# --- the workflow that runs one activity with a real retry policy -------------------------------


class Send(BaseModel):
    message: OutboundMessage | None = None
    ticket: HelpdeskTicket | None = None
    page: PageRequest | None = None
    maximum_attempts: int = 5


class Sent(BaseModel):
    result: DeliveryResult
    seconds: float = Field(description="Workflow time the activity took, retries and their back-off included")


@workflow.defn(name="DeliveryTestWorkflow")
class DeliveryTestWorkflow:
    @workflow.run
    async def run(self, send: Send) -> Sent:
        options: dict[str, Any] = {
            "start_to_close_timeout": timedelta(seconds=30),
            "retry_policy": RetryPolicy(
                initial_interval=timedelta(seconds=0.1), maximum_attempts=send.maximum_attempts
            ),
        }
        started = workflow.now()
        if send.message is not None:
            result = await workflow.execute_activity_method(
                DeliveryActivities.deliver_to_customer, send.message, **options
            )
        elif send.ticket is not None:
            result = await workflow.execute_activity_method(
                DeliveryActivities.post_helpdesk_ticket, send.ticket, **options
            )
        else:
            assert send.page is not None
            result = await workflow.execute_activity_method(DeliveryActivities.page_on_call, send.page, **options)
        return Sent(result=result, seconds=(workflow.now() - started).total_seconds())


# --- the receiver ---------------------------------------------------------------------------------


@dataclass
class Step:
    """How the receiver answers one request: a status, after a delay, having shown the message or not."""

    status: int = 200
    show: bool = False
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    reason: str = ""


@dataclass
class Receipt:
    path: str
    event: str | None
    key: str | None
    signed: bool
    body: dict[str, Any]
    status: int


@dataclass
class Receiver:
    secret: str | None = SECRET
    script: list[Step] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    shown: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""

    def keys(self) -> list[str | None]:
        return [r.key for r in self.receipts]


def receiver_app(receiver: Receiver) -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def receive(path: str, request: Request) -> JSONResponse:
        raw = await request.body()
        h = request.headers
        key, event = h.get(webhooks.IDEMPOTENCY_HEADER), h.get(webhooks.EVENT_HEADER)
        signature = h.get(webhooks.SIGNATURE_HEADER)

        def record(status: int) -> None:
            receiver.receipts.append(Receipt("/" + path, event, key, signature is not None, json.loads(raw), status))

        if receiver.secret is not None and not webhooks.verify(
            receiver.secret, h.get(webhooks.TIMESTAMP_HEADER), signature, raw, now=int(time.time())
        ):
            record(401)
            return JSONResponse({"detail": "bad signature"}, status_code=401)
        step = receiver.script.pop(0) if receiver.script else Step()
        if step.delay:
            await asyncio.sleep(step.delay)
        duplicate = key in receiver.shown
        if key is not None and not duplicate and (step.status < 300 or step.show):
            receiver.shown[key] = json.loads(raw)
        record(step.status)
        content = {"detail": step.reason} if step.reason else {"duplicate": duplicate}
        return JSONResponse(content, status_code=step.status, headers=step.headers)

    return app


class QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The test runner keeps its own signal handlers.
        yield


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    config = uvicorn.Config(receiver_app(state), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    state.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def running(client: Client, task_queue: str, settings: Settings) -> AsyncIterator[DeliveryActivities]:
    activities = DeliveryActivities(settings)
    try:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[DeliveryTestWorkflow],
            activities=[activities.deliver_to_customer, activities.post_helpdesk_ticket, activities.page_on_call],
        ):
            yield activities
    finally:
        await activities.aclose()


async def send_timed(client: Client, settings: Settings, request: Send) -> Sent:
    async with running(client, settings.task_queue, settings):
        return await client.execute_workflow(
            DeliveryTestWorkflow.run, request, id=f"delivery-{uuid.uuid4().hex[:12]}", task_queue=settings.task_queue
        )


async def send(client: Client, settings: Settings, request: Send) -> DeliveryResult:
    return (await send_timed(client, settings, request)).result


async def send_failing(client: Client, settings: Settings, request: Send) -> tuple[ActivityError, ApplicationError]:
    with pytest.raises(WorkflowFailureError) as failed:
        await send(client, settings, request)
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError)
    return activity_error, cause


def configured(settings: Settings, receiver: Receiver, **update: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_secret": SecretStr(SECRET),
        "delivery_webhook_url": f"{receiver.url}/messages",
        "helpdesk_webhook_url": f"{receiver.url}/tickets",
        "oncall_webhook_url": f"{receiver.url}/pages",
    }
    return settings.model_copy(update=values | update)


def outbound(channel: str = "chat", message_id: str | None = None) -> OutboundMessage:
    return OutboundMessage(
        conversation_id="c-42",
        channel=channel,
        message_id=message_id or f"c-42:escalation:{uuid.uuid4().hex[:6]}",
        kind="escalation",
        text=SECRET_TEXT,
    )


def ticket() -> HelpdeskTicket:
    note = HandoffNote(
        summary="Export to CSV fails for a large report.",
        customer_wants="A working export before Friday's board meeting.",
        sentiment_trajectory="neutral -> frustrated",
        account="Enterprise, renews in 20 days",
        suggested_first_reply="Hi Dana, I'm looking at your export now.",
    )
    return HelpdeskTicket(
        idempotency_key="c-7:ticket",
        conversation_id="c-7",
        customer_id="cust-7",
        channel="email",
        subject="Export to CSV fails",
        priority="high",
        urgency="queued",
        reply_within_seconds=4 * 3600,
        note=note,
        transcript=[
            TranscriptEntry(message_id="m1", role="customer", text="export is broken", at="2025-01-02T10:00:00Z")
        ],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- sign / verify -------------------------------------------------------------------------------

NOW = 1_760_000_000
BODY = b'{"conversation_id":"c-1","text":"hello"}'


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert webhooks.sign(SECRET.encode(), NOW, BODY) == f"v1={expected}"
    assert webhooks.sign(SECRET, NOW, BODY) == f"v1={expected}"
    assert webhooks.verify(SECRET, str(NOW), f"v1={expected}", BODY, now=NOW)


def test_verify_rejects_tampering() -> None:
    signature = webhooks.sign(SECRET, NOW, BODY)
    assert not webhooks.verify(SECRET, str(NOW), signature, BODY.replace(b"hello", b"hellO"), now=NOW)
    assert not webhooks.verify(SECRET, str(NOW + 1), signature, BODY, now=NOW)
    assert not webhooks.verify("another secret", str(NOW), signature, BODY, now=NOW)
    assert not webhooks.verify(SECRET, str(NOW), "v1=" + "0" * 64, BODY, now=NOW)
    for missing in (None, ""):
        assert not webhooks.verify(SECRET, missing, signature, BODY, now=NOW)
        assert not webhooks.verify(SECRET, str(NOW), missing, BODY, now=NOW)
    assert not webhooks.verify(SECRET, "yesterday", signature, BODY, now=NOW)
    assert not webhooks.verify(SECRET, str(NOW), signature.removeprefix("v1="), BODY, now=NOW)
    assert not webhooks.verify(SECRET, str(NOW), signature.replace("v1=", "v0="), BODY, now=NOW)


def test_verify_rejects_stale_and_future_timestamps() -> None:
    old = NOW - 301
    assert not webhooks.verify(SECRET, str(old), webhooks.sign(SECRET, old, BODY), BODY, now=NOW)
    assert not webhooks.verify(SECRET, str(NOW + 301), webhooks.sign(SECRET, NOW + 301, BODY), BODY, now=NOW)
    edge = NOW - 300
    assert webhooks.verify(SECRET, str(edge), webhooks.sign(SECRET, edge, BODY), BODY, now=NOW)
    assert not webhooks.verify(
        SECRET, str(edge), webhooks.sign(SECRET, edge, BODY), BODY, now=NOW, tolerance_seconds=60
    )


def test_verify_supports_rotated_keys() -> None:
    old, new = "old-secret", "new-secret"
    both = webhooks.sign_all([old, new], NOW, BODY)
    assert both.count("v1=") == 2
    # A sender signing with both keys is accepted by a receiver holding either.
    assert webhooks.verify(old, str(NOW), both, BODY, now=NOW)
    assert webhooks.verify(new, str(NOW), both, BODY, now=NOW)
    # A receiver holding both keys accepts a sender that has switched to the new one.
    assert webhooks.verify([old, new], str(NOW), webhooks.sign(new, NOW, BODY), BODY, now=NOW)
    assert not webhooks.verify([old, new], str(NOW), webhooks.sign("retired", NOW, BODY), BODY, now=NOW)
    # Unknown schemes and junk entries are skipped, not fatal.
    mixed = f"v2=abc, junk, {webhooks.sign(new, NOW, BODY)}"
    assert webhooks.verify(new, str(NOW), mixed, BODY, now=NOW)


def test_headers_sign_only_with_a_secret() -> None:
    signed = webhooks.headers(webhooks.EVENT_PAGE, "k:trigger", NOW, BODY, SECRET)
    assert signed[webhooks.EVENT_HEADER] == "page"
    assert signed[webhooks.IDEMPOTENCY_HEADER] == "k:trigger"
    assert signed[webhooks.TIMESTAMP_HEADER] == str(NOW)
    assert webhooks.verify(SECRET, signed[webhooks.TIMESTAMP_HEADER], signed[webhooks.SIGNATURE_HEADER], BODY, NOW)
    assert webhooks.SIGNATURE_HEADER not in webhooks.headers(webhooks.EVENT_PAGE, "k", NOW, BODY, None)


# --- deliveries through a worker -----------------------------------------------------------------


async def test_signed_delivery_is_verified_and_shown_once(
    client: Client, settings: Settings, receiver: Receiver
) -> None:
    message = outbound()
    result = await send(client, configured(settings, receiver), Send(message=message))

    assert result == DeliveryResult(delivered=True, status=200)
    [receipt] = receiver.receipts
    assert receipt.path == "/messages"
    assert receipt.signed and receipt.status == 200
    assert receipt.event == "customer_message"
    assert receipt.key == message.message_id
    assert OutboundMessage.model_validate(receipt.body) == message
    assert list(receiver.shown) == [message.message_id]


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(Step(503), id="503"),
        pytest.param(Step(503, show=True), id="503-after-showing"),
        pytest.param(Step(500, show=True), id="500-after-showing"),
        pytest.param(Step(429, headers={"Retry-After": "1"}), id="429-retry-after"),
        pytest.param(Step(408), id="408"),
    ],
)
async def test_transient_failure_is_retried_and_shown_once(
    client: Client, settings: Settings, receiver: Receiver, first: Step
) -> None:
    receiver.script = [first]
    message = outbound()
    sent = await send_timed(client, configured(settings, receiver), Send(message=message))

    assert sent.result.delivered and sent.result.status == 200
    # Retry-After replaces the policy's 0.1 s back-off for that retry: the retry waits at least that long.
    # (Only the lower bound is checked: a loaded machine can make any retry slow.)
    if "Retry-After" in first.headers:
        assert sent.seconds >= 1
    assert receiver.keys() == [message.message_id, message.message_id]
    assert [r.status for r in receiver.receipts] == [first.status, 200]
    assert list(receiver.shown) == [message.message_id]


async def test_timeout_is_retried(client: Client, settings: Settings, receiver: Receiver) -> None:
    receiver.script = [Step(200, show=True, delay=1.0)]
    message = outbound()
    result = await send(client, configured(settings, receiver, webhook_timeout_seconds=0.3), Send(message=message))

    assert result.delivered
    await asyncio.sleep(0.9)  # let the slow first request finish on the receiver's side
    assert receiver.keys() == [message.message_id, message.message_id]
    assert list(receiver.shown) == [message.message_id]


async def test_unreachable_receiver_is_retryable(client: Client, settings: Settings) -> None:
    dead = f"http://127.0.0.1:{free_port()}/messages"
    settings = settings.model_copy(update={"webhook_secret": SecretStr(SECRET), "delivery_webhook_url": dead})
    activity_error, cause = await send_failing(client, settings, Send(message=outbound(), maximum_attempts=2))

    assert cause.type == "WebhookUnreachable"
    assert not cause.non_retryable
    assert activity_error.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED


async def test_bad_request_fails_without_retry(client: Client, settings: Settings, receiver: Receiver) -> None:
    receiver.script = [Step(400, reason="unknown conversation")]
    activity_error, cause = await send_failing(client, configured(settings, receiver), Send(message=outbound()))

    assert cause.type == "WebhookRejected"
    assert cause.non_retryable
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert cause.details[0]["status"] == 400
    assert "unknown conversation" in cause.message
    assert len(receiver.receipts) == 1
    assert receiver.shown == {}


async def test_wrong_secret_is_a_config_error_not_retried(
    client: Client, settings: Settings, receiver: Receiver
) -> None:
    receiver.secret = "the receiver's other secret"
    activity_error, cause = await send_failing(client, configured(settings, receiver), Send(message=outbound()))

    assert cause.type == "WebhookRejected"
    assert cause.non_retryable
    assert cause.details[0]["status"] == 401
    assert "BATON_WEBHOOK_SECRET" in cause.message
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert [r.status for r in receiver.receipts] == [401]
    assert receiver.shown == {}


async def test_no_url_configured_is_not_delivered(client: Client, settings: Settings) -> None:
    unset = settings.model_copy(
        update={"delivery_webhook_url": None, "delivery_webhooks": {}, "helpdesk_webhook_url": None}
    )
    unset = unset.model_copy(update={"oncall_webhook_url": None})

    result = await send(client, unset, Send(message=outbound(channel="sms")))
    assert result == DeliveryResult(delivered=False, detail="no delivery webhook configured for channel sms")
    assert not (await send(client, unset, Send(ticket=ticket()))).delivered
    page = PageRequest(dedup_key="c-9:sla", summary="SLA breached", conversation_id="c-9")
    assert not (await send(client, unset, Send(page=page))).delivered


async def test_channel_override_url_is_used(client: Client, settings: Settings, receiver: Receiver) -> None:
    overridden = configured(settings, receiver, delivery_webhooks={"whatsapp": f"{receiver.url}/whatsapp"})
    await send(client, overridden, Send(message=outbound(channel="whatsapp")))
    await send(client, overridden, Send(message=outbound(channel="chat")))

    assert [r.path for r in receiver.receipts] == ["/whatsapp", "/messages"]


async def test_helpdesk_ticket_and_pages(client: Client, settings: Settings, receiver: Receiver) -> None:
    configured_settings = configured(settings, receiver)
    the_ticket = ticket()
    trigger = PageRequest(
        dedup_key="c-7:sla", summary="SLA breached on c-7", severity="critical", conversation_id="c-7"
    )
    resolve = trigger.model_copy(update={"action": "resolve"})

    for request in (Send(ticket=the_ticket), Send(page=trigger), Send(page=resolve), Send(page=trigger)):
        assert (await send(client, configured_settings, request)).delivered

    assert [(r.path, r.event) for r in receiver.receipts] == [
        ("/tickets", "helpdesk_ticket"),
        ("/pages", "page"),
        ("/pages", "page"),
        ("/pages", "page"),
    ]
    keys = receiver.keys()
    assert keys[0] == "c-7:ticket"
    # Each page is keyed on its own (the dedup key, the action, then the page's activity execution): the second
    # trigger is a new page, not a repeat of the first, so a receiver deduping on the key shows it too.
    assert [str(key).rsplit(":", 2)[0] for key in keys[1:]] == ["c-7:sla:trigger", "c-7:sla:resolve", "c-7:sla:trigger"]
    assert len(set(keys)) == 4
    assert all(r.signed for r in receiver.receipts)
    assert HelpdeskTicket.model_validate(receiver.shown["c-7:ticket"]) == the_ticket
    assert PageRequest.model_validate(receiver.shown[str(keys[2])]) == resolve
    assert list(receiver.shown) == keys


# --- activity-level details ----------------------------------------------------------------------


async def test_unsigned_delivery_warns_once(settings: Settings, receiver: Receiver) -> None:
    receiver.secret = None
    activities = DeliveryActivities(configured(settings, receiver, webhook_secret=None))
    try:
        with capture_logs() as logs:
            for _ in range(2):
                result = await ActivityEnvironment().run(activities.deliver_to_customer, outbound())
                assert result.delivered
    finally:
        await activities.aclose()

    assert [r.signed for r in receiver.receipts] == [False, False]
    assert [e["event"] for e in logs].count("webhook_unsigned") == 1


async def test_logs_carry_ids_never_text(settings: Settings, receiver: Receiver) -> None:
    message = outbound()
    activities = DeliveryActivities(configured(settings, receiver))
    try:
        with capture_logs() as logs:
            await ActivityEnvironment().run(activities.deliver_to_customer, message)
    finally:
        await activities.aclose()

    [entry] = [e for e in logs if e["event"] == "webhook_delivered"]
    assert entry["conversation_id"] == "c-42"
    assert entry["idempotency_key"] == message.message_id
    assert entry["webhook_event"] == "customer_message"
    assert entry["kind"] == "escalation"
    assert entry["status"] == 200
    assert entry["attempt"] == 1
    assert SECRET_TEXT not in repr(logs)
    assert SECRET not in repr(logs)


async def test_unusable_url_is_not_retried(settings: Settings) -> None:
    activities = DeliveryActivities(settings.model_copy(update={"delivery_webhook_url": "ftp://example.invalid/x"}))
    try:
        with pytest.raises(ApplicationError) as failed:
            await ActivityEnvironment().run(activities.deliver_to_customer, outbound())
    finally:
        await activities.aclose()
    assert failed.value.type == "WebhookMisconfigured"
    assert failed.value.non_retryable


async def test_given_http_client_is_reused_and_left_open(settings: Settings, receiver: Receiver) -> None:
    async with httpx.AsyncClient() as http:
        activities = DeliveryActivities(configured(settings, receiver), http=http)
        for _ in range(2):
            await ActivityEnvironment().run(activities.deliver_to_customer, outbound())
        await activities.aclose()
        assert not http.is_closed
    assert len(receiver.shown) == 2
