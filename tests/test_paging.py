"""On-call pages to PagerDuty and Slack, against strict fakes on 127.0.0.1, through a real worker.

The fakes check the request shapes the vendors document and answer as they do:

- PagerDuty Events API v2, ``POST /v2/enqueue``: ``routing_key`` (32 characters), ``event_action``
  (trigger, acknowledge, resolve), ``dedup_key`` (at most 255; required to acknowledge or resolve), and for a
  trigger a ``payload`` with ``summary`` (at most 1024), ``source`` and ``severity`` (critical, error, warning,
  info). It answers 202 ``{"status": "success", "message": "Event processed", "dedup_key": ...}`` or 400
  ``{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}``, and keeps alerts
  the way PagerDuty does: a trigger for an open ``dedup_key`` is added to that alert; a resolve closes it.
- Slack incoming webhook, ``POST /services/T/B/X``: a JSON object with ``text`` and valid Block Kit ``blocks``;
  it answers 200 ``ok``, or an error word as text (400 ``invalid_payload``/``invalid_blocks``, 404
  ``no_service``, 410 ``channel_is_archived``, 429 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import httpx
    import pytest
    import uvicorn
    from fastapi import FastAPI, Request, Response
    from fastapi.responses import JSONResponse, PlainTextResponse
    from structlog.testing import capture_logs
    from temporalio.client import Client, WorkflowFailureError
    from temporalio.exceptions import ActivityError, ApplicationError, RetryState
    from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
    from temporalio.worker import Worker

    from baton.activities import paging
    from baton.activities.delivery import DeliveryActivities
    from baton.contract.messages import DeliveryResult, PageRequest
    from baton.settings import Settings
    from tests.receiver import WebhookReceiver

ROUTING_KEY = "R0123456789abcdef0123456789ABCDE"  # 32 characters, like an integration key
WEBHOOK_SECRET = "whsec-paging-test"
SLACK_PATH = "/services/T/B/X"


# --- the workflow: pages in order, each one activity with a real retry policy ----------------------


class PageRun(BaseModel):
    pages: list[PageRequest]
    maximum_attempts: int = 5


class Paged(BaseModel):
    results: list[DeliveryResult]
    seconds: float = Field(description="Workflow time for all pages, retries and their back-off included")


@workflow.defn(name="PagingTestWorkflow")
class PagingTestWorkflow:
    @workflow.run
    async def run(self, run: PageRun) -> Paged:
        started = workflow.now()
        results = []
        for page in run.pages:
            result = await workflow.execute_activity_method(
                DeliveryActivities.page_on_call,
                page,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=0.1), maximum_attempts=run.maximum_attempts
                ),
            )
            results.append(result)
        return Paged(results=results, seconds=(workflow.now() - started).total_seconds())


# --- scripted answers -----------------------------------------------------------------------------


@dataclass
class Reply:
    """How a fake answers one request instead of accepting it."""

    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    process: bool = False  # act on the request before failing: the answer was lost, not the work


# --- fake PagerDuty -------------------------------------------------------------------------------

PD_TOP_LEVEL = {"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}
PD_PAYLOAD = {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_SEVERITIES = {"critical", "error", "warning", "info"}


def pagerduty_problems(event: object) -> list[str]:
    """Why PagerDuty would answer 400, following the Events API v2 reference; empty when the event is valid."""
    if not isinstance(event, dict):
        return ["Event must be a JSON object"]
    problems = [f"Unknown field '{k}'" for k in event if k not in PD_TOP_LEVEL]
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        problems.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in PD_ACTIONS:
        problems.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or not 0 < len(dedup_key) <= 255):
        problems.append("'dedup_key' must be a string of 1 to 255 characters")
    if action in ("acknowledge", "resolve") and dedup_key is None:
        problems.append(f"'dedup_key' is required to {action}")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*problems, "'payload' is missing or not an object"]
        problems += [f"Unknown field 'payload.{k}'" for k in payload if k not in PD_PAYLOAD]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not summary.strip() or len(summary) > 1024:
            problems.append("'payload.summary' must be a non-empty string of at most 1024 characters")
        if not isinstance(payload.get("source"), str) or not payload["source"].strip():
            problems.append("'payload.source' is missing or blank")
        if payload.get("severity") not in PD_SEVERITIES:
            problems.append("'payload.severity' is invalid (must be one of: critical, error, warning, info)")
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            problems.append("'payload.custom_details' must be an object")
        if "timestamp" in payload:
            try:
                datetime.fromisoformat(str(payload["timestamp"]))
            except ValueError:
                problems.append("'payload.timestamp' is not an ISO 8601 timestamp")
    return problems


@dataclass
class Alert:
    dedup_key: str
    summary: str
    severity: str
    custom_details: dict[str, Any]
    status: str = "triggered"
    log: list[str] = field(default_factory=lambda: ["trigger"])


@dataclass
class FakePagerDuty:
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    url: str = ""

    @property
    def events_url(self) -> str:
        return f"{self.url}/v2/enqueue"

    def open_alert(self, dedup_key: str) -> Alert | None:
        return next((a for a in self.alerts if a.dedup_key == dedup_key and a.status != "resolved"), None)

    def process(self, event: dict[str, Any]) -> str:
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        alert = self.open_alert(dedup_key)
        action = event["event_action"]
        if action == "trigger":
            payload = event["payload"]
            if alert is None:
                details = payload.get("custom_details", {})
                self.alerts.append(Alert(dedup_key, payload["summary"], payload["severity"], details))
            else:
                alert.log.append("trigger")
        elif alert is not None:  # acknowledge or resolve; dropped when no alert is open
            alert.status = "resolved" if action == "resolve" else "acknowledged"
            alert.log.append(action)
        return dedup_key

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v2/enqueue")
        async def enqueue(request: Request) -> Response:
            def answer(status: int, content: Any, headers: dict[str, str] | None = None) -> Response:
                self.answers.append(status)
                return JSONResponse(content, status_code=status, headers=headers)

            try:
                event = json.loads(await request.body())
            except ValueError:
                event = None
            self.requests.append(event if isinstance(event, dict) else {"invalid": True})
            problems = pagerduty_problems(event)
            if not request.headers.get("content-type", "").startswith("application/json"):
                problems.append("Content-Type must be application/json")
            if problems:
                invalid = {"status": "invalid event", "message": "Event object is invalid", "errors": problems}
                return answer(400, invalid)
            assert isinstance(event, dict)
            step = self.script.pop(0) if self.script else None
            if step is not None:
                if step.delay:
                    await asyncio.sleep(step.delay)
                if step.process:
                    self.process(event)
                content = {"status": "error", "message": step.body or "Service unavailable"}
                return answer(step.status, content, step.headers)
            dedup_key = self.process(event)
            return answer(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})

        return app


# --- fake Slack -----------------------------------------------------------------------------------

TEXT_TYPES = {"plain_text", "mrkdwn"}
BLOCK_TYPES = {"section", "header", "context", "divider", "actions", "image", "rich_text", "input", "file", "video"}


def text_object_problems(value: object, where: str, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: must be a text object"]
    kind = value.get("type")
    allowed = {"plain_text"} if plain_only else TEXT_TYPES
    problems = [] if kind in allowed else [f"{where}.type: must be one of {sorted(allowed)}"]
    text = value.get("text")
    if not isinstance(text, str) or not text or len(text) > limit:
        problems.append(f"{where}.text: must be 1 to {limit} characters")
    extra = set(value) - {"type", "text", "emoji" if kind == "plain_text" else "verbatim"}
    problems += [f"{where}.{k}: not allowed" for k in sorted(extra)]
    return problems


def block_problems(block: object, where: str) -> list[str]:
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        return [f"{where}.type: unknown block type"]
    kind = block["type"]
    if "block_id" in block and (not isinstance(block["block_id"], str) or len(block["block_id"]) > 255):
        return [f"{where}.block_id: must be a string of at most 255 characters"]
    keys = set(block) - {"type", "block_id"}
    if kind == "header":
        problems = [f"{where}.{k}: not allowed" for k in sorted(keys - {"text"})]
        return problems + text_object_problems(block.get("text"), f"{where}.text", 150, plain_only=True)
    if kind == "section":
        problems = [f"{where}.{k}: not allowed" for k in sorted(keys - {"text", "fields", "accessory", "expand"})]
        if "text" not in block and "fields" not in block:
            problems.append(f"{where}: needs text or fields")
        if "text" in block:
            problems += text_object_problems(block["text"], f"{where}.text", 3000)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not 0 < len(fields) <= 10:
                return [*problems, f"{where}.fields: must hold 1 to 10 text objects"]
            for i, item in enumerate(fields):
                problems += text_object_problems(item, f"{where}.fields[{i}]", 2000)
        return problems
    if kind == "context":
        elements = block.get("elements")
        problems = [f"{where}.{k}: not allowed" for k in sorted(keys - {"elements"})]
        if not isinstance(elements, list) or not 0 < len(elements) <= 10:
            return [*problems, f"{where}.elements: must hold 1 to 10 elements"]
        for i, element in enumerate(elements):
            if isinstance(element, dict) and element.get("type") == "image":
                continue
            problems += text_object_problems(element, f"{where}.elements[{i}]", 3000)
        return problems
    if kind == "divider":
        return [f"{where}.{k}: not allowed" for k in sorted(keys)]
    return []  # other block types are not used by Baton


def slack_problems(message: object) -> tuple[str, list[str]] | None:
    """The error word Slack answers with (and why), or None for a valid incoming-webhook message."""
    if not isinstance(message, dict):
        return "invalid_payload", ["body must be a JSON object"]
    text, blocks = message.get("text"), message.get("blocks")
    if not isinstance(text, str) or not text.strip():
        return "no_text", ["text (the notification and fallback) is required"]
    if len(text) > 40_000:
        return "invalid_payload", ["text is longer than 40,000 characters"]
    if blocks is None:
        return None
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return "invalid_blocks", ["blocks must hold 1 to 50 blocks"]
    problems = [p for i, block in enumerate(blocks) for p in block_problems(block, f"blocks[{i}]")]
    return ("invalid_blocks", problems) if problems else None


@dataclass
class FakeSlack:
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    channel: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    url: str = ""

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{SLACK_PATH}"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def incoming(path: str, request: Request) -> Response:
            def answer(status: int, word: str, headers: dict[str, str] | None = None) -> Response:
                self.answers.append(status)
                return PlainTextResponse(word, status_code=status, headers=headers)

            if "/" + path != SLACK_PATH:
                return answer(404, "no_service")
            try:
                message = json.loads(await request.body())
            except ValueError:
                return answer(400, "invalid_payload")
            self.requests.append(message if isinstance(message, dict) else {"invalid": True})
            wrong = slack_problems(message)
            if not request.headers.get("content-type", "").startswith("application/json"):
                wrong = ("invalid_payload", ["Content-Type must be application/json"])
            if wrong is not None:
                self.problems += wrong[1]
                return answer(400, wrong[0])
            step = self.script.pop(0) if self.script else None
            if step is not None:
                if step.delay:
                    await asyncio.sleep(step.delay)
                if step.process:
                    self.channel.append(message)
                return answer(step.status, step.body, step.headers)
            self.channel.append(message)
            return answer(200, "ok")

        return app


# --- serving the fakes ----------------------------------------------------------------------------


class QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the test runner keeps its own signal handlers


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    server = QuietServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    fake = FakePagerDuty()
    async with serving(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    async with serving(fake.app()) as url:
        fake.url = url
        yield fake


def pagers(
    settings: Settings,
    slack: FakeSlack | None = None,
    pagerduty: FakePagerDuty | None = None,
    webhook: WebhookReceiver | None = None,
    **update: Any,
) -> Settings:
    """Settings with only the given pagers configured."""
    values: dict[str, Any] = {
        "slack_webhook_url": SecretStr(slack.webhook_url) if slack else None,
        "pagerduty_routing_key": SecretStr(ROUTING_KEY) if pagerduty else None,
        "pagerduty_events_url": pagerduty.events_url if pagerduty else "http://127.0.0.1:9/v2/enqueue",
        "oncall_webhook_url": f"{webhook.url}/pages" if webhook else None,
        "webhook_secret": SecretStr(WEBHOOK_SECRET),
    }
    return settings.model_copy(update=values | update)


def trigger(cid: str = "c-7", **update: Any) -> PageRequest:
    page = PageRequest(
        dedup_key=f"baton-conversation-{cid}",
        summary=f"Conversation {cid} (immediate) has waited 12 min for a human in queue billing",
        severity="critical",
        conversation_id=cid,
        details={"queue": "billing", "triggers": "legal_threat,vip_customer"},
    )
    return page.model_copy(update=update)


def resolve(page: PageRequest) -> PageRequest:
    return page.model_copy(update={"action": "resolve"})


@contextlib.asynccontextmanager
async def running(client: Client, settings: Settings) -> AsyncIterator[DeliveryActivities]:
    activities = DeliveryActivities(settings)
    try:
        async with Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[PagingTestWorkflow],
            activities=[activities.page_on_call],
        ):
            yield activities
    finally:
        await activities.aclose()


async def run_pages(client: Client, settings: Settings, *pages: PageRequest, maximum_attempts: int = 5) -> Paged:
    async with running(client, settings) as activities:
        paged = await client.execute_workflow(
            PagingTestWorkflow.run,
            PageRun(pages=list(pages), maximum_attempts=maximum_attempts),
            id=f"paging-{uuid.uuid4().hex[:12]}",
            task_queue=settings.task_queue,
        )
        # Nothing is remembered once an activity has completed.
        assert len(activities._pager_ledger) == 0
        return paged


async def run_failing(
    client: Client, settings: Settings, page: PageRequest, maximum_attempts: int = 5
) -> ActivityError:
    with pytest.raises(WorkflowFailureError) as failed:
        await run_pages(client, settings, page, maximum_attempts=maximum_attempts)
    error = failed.value.cause
    assert isinstance(error, ActivityError)
    assert isinstance(error.cause, ApplicationError)
    return error


def cause(error: ActivityError) -> ApplicationError:
    assert isinstance(error.cause, ApplicationError)
    return error.cause


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- bodies ---------------------------------------------------------------------------------------


def test_pagerduty_trigger_is_a_documented_alert_event() -> None:
    page = trigger(summary="x" * 1500)
    event = paging.pagerduty_event(page, ROUTING_KEY)

    assert pagerduty_problems(event) == []
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "baton-conversation-c-7"
    payload = event["payload"]
    assert len(payload["summary"]) == 1024 and payload["summary"].endswith("…")
    assert payload["source"] == "baton"
    assert payload["severity"] == "critical"
    assert payload["custom_details"] == {
        "queue": "billing",
        "triggers": "legal_threat,vip_customer",
        "conversation_id": "c-7",
    }


def test_pagerduty_resolve_names_only_the_alert() -> None:
    event = paging.pagerduty_event(resolve(trigger()), ROUTING_KEY)

    assert event == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "baton-conversation-c-7"}
    assert pagerduty_problems(event) == []


def test_long_dedup_keys_are_shortened_stably() -> None:
    long_key = "baton-conversation-" + "k" * 400
    shortened = paging.pagerduty_dedup_key(long_key)

    assert len(shortened) == 255
    assert shortened == paging.pagerduty_dedup_key(long_key)
    assert shortened != paging.pagerduty_dedup_key(long_key + "x")
    assert paging.pagerduty_dedup_key("short") == "short"


@pytest.mark.parametrize("severity", ["critical", "error", "warning", "info"])
def test_every_severity_is_one_pagerduty_accepts(severity: str) -> None:
    assert pagerduty_problems(paging.pagerduty_event(trigger(severity=severity), ROUTING_KEY)) == []


def test_slack_trigger_is_valid_block_kit() -> None:
    message = paging.slack_message(trigger())

    assert slack_problems(message) is None
    assert message["text"].startswith("[critical] Conversation c-7 (immediate) has waited 12 min")
    header, fields, context = message["blocks"]
    assert header["type"] == "header"
    assert header["text"]["text"] == trigger().summary
    texts = [f["text"] for f in fields["fields"]]
    assert texts == [
        "*Conversation*\n`c-7`",
        "*Severity*\ncritical",
        "*Queue*\nbilling",
        "*Triggers*\nlegal_threat,vip_customer",
    ]
    assert "baton-conversation-c-7" in context["elements"][0]["text"]


def test_slack_message_stays_within_block_kit_limits() -> None:
    details = {f"detail_{i}": "v" * 3000 for i in range(12)} | {"empty": " "}
    page = trigger(summary="Customer wrote <b>help</b> & " + "s" * 4000, details=details)
    message = paging.slack_message(page)

    assert slack_problems(message) is None
    header, summary, fields, _ = message["blocks"]
    assert len(header["text"]["text"]) == 150
    assert summary["text"]["text"].startswith("Customer wrote &lt;b&gt;help&lt;/b&gt; &amp; ")
    assert len(fields["fields"]) == 10
    assert fields["fields"][-1]["text"] == "*More details*\n5 not shown"
    assert "<b>" not in message["text"]


def test_slack_resolve_is_a_short_resolved_message() -> None:
    message = paging.slack_message(resolve(trigger()))

    assert slack_problems(message) is None
    assert message["text"] == "Resolved: conversation c-7 no longer needs on-call."
    assert "*Resolved*" in message["blocks"][0]["text"]["text"]


# --- through a worker -----------------------------------------------------------------------------


async def test_trigger_then_resolve_reach_pagerduty_and_slack(
    client: Client, settings: Settings, slack: FakeSlack, pagerduty: FakePagerDuty
) -> None:
    page = trigger()
    paged = await run_pages(client, pagers(settings, slack, pagerduty), page, resolve(page))

    assert paged.results == [DeliveryResult(delivered=True, detail="paged slack, pagerduty")] * 2
    assert [e["event_action"] for e in pagerduty.requests] == ["trigger", "resolve"]
    assert {e["dedup_key"] for e in pagerduty.requests} == {"baton-conversation-c-7"}
    assert pagerduty.answers == [202, 202]
    [alert] = pagerduty.alerts
    assert (alert.status, alert.log) == ("resolved", ["trigger", "resolve"])
    assert alert.summary == page.summary
    assert alert.severity == "critical"
    assert alert.custom_details["conversation_id"] == "c-7"

    assert slack.answers == [200, 200]
    shown, resolved = slack.channel
    assert page.summary in shown["text"]
    assert resolved["text"].startswith("Resolved: conversation c-7")


@pytest.mark.parametrize(
    "outage",
    [
        pytest.param([Reply(503), Reply(503)], id="503-twice"),
        pytest.param([Reply(503, process=True), Reply(502)], id="503-after-processing"),
        pytest.param([Reply(429, headers={"Retry-After": "2"})], id="429"),
        pytest.param([Reply(202, delay=1.0, process=True)], id="timeout"),
    ],
)
async def test_pagerduty_outage_is_retried_into_one_alert_and_slack_is_not_reposted(
    client: Client, settings: Settings, slack: FakeSlack, pagerduty: FakePagerDuty, outage: list[Reply]
) -> None:
    pagerduty.script = list(outage)
    configured = pagers(settings, slack, pagerduty, webhook_timeout_seconds=0.5)
    paged = await run_pages(client, configured, trigger())

    assert paged.results == [DeliveryResult(delivered=True, detail="paged slack, pagerduty")]
    await asyncio.sleep(0.6)  # a slow first answer finishes on the fake's side
    assert len(pagerduty.requests) == len(outage) + 1
    assert {e["dedup_key"] for e in pagerduty.requests} == {"baton-conversation-c-7"}
    [alert] = pagerduty.alerts
    assert alert.status == "triggered"
    # Slack was accepted on the first attempt and remembered: the retries went to PagerDuty only.
    assert len(slack.requests) == 1
    assert len(slack.channel) == 1


async def test_slack_rate_limit_honours_retry_after(client: Client, settings: Settings, slack: FakeSlack) -> None:
    slack.script = [Reply(429, "rate_limited", headers={"Retry-After": "3"})]
    paged = await run_pages(client, pagers(settings, slack), trigger())

    assert paged.results == [DeliveryResult(delivered=True, status=200, detail="paged slack")]
    # Retry-After replaces the policy's 0.1 s back-off.
    assert paged.seconds >= 3
    assert slack.answers == [429, 200]
    assert len(slack.channel) == 1


@pytest.mark.parametrize(
    ("status", "word"),
    [(404, "no_service"), (410, "channel_is_archived"), (403, "action_prohibited"), (400, "invalid_payload")],
)
async def test_slack_rejection_is_not_retried_when_slack_is_the_only_pager(
    client: Client, settings: Settings, slack: FakeSlack, status: int, word: str
) -> None:
    slack.script = [Reply(status, word)]
    error = await run_failing(client, pagers(settings, slack), trigger())

    assert error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert cause(error).type == "PagerRejected"
    assert cause(error).non_retryable
    assert word in cause(error).message
    assert cause(error).details[0] == {"pager": "slack", "status": status, "reason": f"{status} {word}"}
    assert slack.answers == [status]
    assert slack.channel == []


async def test_unknown_slack_webhook_is_no_service(client: Client, settings: Settings, slack: FakeSlack) -> None:
    configured = pagers(settings, slack, slack_webhook_url=SecretStr(f"{slack.url}/services/T/B/revoked"))
    error = await run_failing(client, configured, trigger())

    assert error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert "404: no_service" in cause(error).message
    assert "BATON_SLACK_WEBHOOK_URL" in cause(error).message
    assert "revoked" not in str(cause(error).message) + str(cause(error).details)


async def test_slack_archived_and_pagerduty_fine_is_delivered_naming_slack(
    client: Client, settings: Settings, slack: FakeSlack, pagerduty: FakePagerDuty
) -> None:
    slack.script = [Reply(410, "channel_is_archived")]
    paged = await run_pages(client, pagers(settings, slack, pagerduty), trigger())

    [result] = paged.results
    assert result.delivered
    assert result.detail == "paged pagerduty; not paged: slack (410 channel_is_archived)"
    assert slack.answers == [410]
    assert len(pagerduty.alerts) == 1


async def test_pagerduty_invalid_event_and_slack_fine_is_delivered_naming_pagerduty(
    client: Client, settings: Settings, slack: FakeSlack, pagerduty: FakePagerDuty
) -> None:
    # A routing key of the wrong length is what a mistyped BATON_PAGERDUTY_ROUTING_KEY looks like.
    configured = pagers(settings, slack, pagerduty, pagerduty_routing_key=SecretStr("not-a-routing-key"))
    with capture_logs() as logs:
        paged = await run_pages(client, configured, trigger())

    [result] = paged.results
    assert result.delivered
    assert result.detail.startswith("paged slack; not paged: pagerduty (400 Length of 'routing_key' is incorrect")
    assert pagerduty.answers == [400]
    assert pagerduty.alerts == []
    assert len(slack.channel) == 1
    [invalid] = [e for e in logs if e["event"] == "pagerduty_invalid_event"]
    assert invalid["errors"] == ["Length of 'routing_key' is incorrect (should be 32 characters)"]
    assert "not-a-routing-key" not in repr(logs)
    assert SLACK_PATH not in repr(logs)


async def test_every_pager_rejecting_is_not_retried(
    client: Client, settings: Settings, slack: FakeSlack, pagerduty: FakePagerDuty
) -> None:
    slack.script = [Reply(410, "channel_is_archived")]
    configured = pagers(settings, slack, pagerduty, pagerduty_routing_key=SecretStr("short"))
    error = await run_failing(client, configured, trigger())

    assert error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    assert cause(error).type == "PageRejected"
    assert cause(error).message.startswith("every pager rejected the page: slack (410 channel_is_archived); pagerduty")
    assert [p["pager"] for p in cause(error).details[0]["pagers"]] == ["slack", "pagerduty"]
    assert (slack.answers, pagerduty.answers) == ([410], [400])


async def test_last_attempt_reports_a_partial_page_as_delivered(
    dev_env: WorkflowEnvironment, task_queue: str, slack: FakeSlack, pagerduty: FakePagerDuty
) -> None:
    # On the real dev server: the time-skipping server does not tell activities their retry policy.
    pagerduty.script = [Reply(503)] * 3
    settings = pagers(Settings(task_queue=task_queue), slack, pagerduty)
    paged = await run_pages(dev_env.client, settings, trigger(), maximum_attempts=3)

    [result] = paged.results
    assert result.delivered
    assert result.detail == "paged slack; not paged: pagerduty (503 Service unavailable)"
    assert pagerduty.answers == [503, 503, 503]
    assert len(slack.requests) == 1


async def test_all_pagers_down_fails_retryably_until_attempts_run_out(
    client: Client, settings: Settings, slack: FakeSlack
) -> None:
    slack.script = [Reply(503, "service_unavailable")] * 2
    dead = f"http://127.0.0.1:{free_port()}/v2/enqueue"
    configured = pagers(settings, slack, pagerduty_routing_key=SecretStr(ROUTING_KEY), pagerduty_events_url=dead)
    error = await run_failing(client, configured, trigger(), maximum_attempts=2)

    assert error.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED
    assert cause(error).type == "PagerUnavailable"
    assert not cause(error).non_retryable
    assert cause(error).message == (
        "page not yet accepted by slack (503 service_unavailable); pagerduty (unreachable (ConnectError))"
    )
    assert slack.answers == [503, 503]


async def test_signed_webhook_slack_and_pagerduty_each_page_once(
    client: Client, settings: Settings, slack: FakeSlack, pagerduty: FakePagerDuty
) -> None:
    pagerduty.script = [Reply(500)]
    async with WebhookReceiver(secret=WEBHOOK_SECRET) as webhook:
        paged = await run_pages(client, pagers(settings, slack, pagerduty, webhook), trigger())

    assert paged.results == [DeliveryResult(delivered=True, detail="paged webhook, slack, pagerduty")]
    [receipt] = webhook.receipts
    assert (receipt.path, receipt.event) == ("pages", "page")
    # The dedup key and the action, then the page's own activity execution (run id, activity id).
    assert receipt.key.startswith("baton-conversation-c-7:trigger:") and receipt.key.endswith(":1")
    assert len(slack.requests) == 1
    assert pagerduty.answers == [500, 202]


async def test_the_same_dedup_key_pages_again_after_a_resolve(
    client: Client, settings: Settings, slack: FakeSlack, pagerduty: FakePagerDuty
) -> None:
    # A conversation handed back to the bot and escalated again: one workflow, the same dedup key.
    page = trigger()
    paged = await run_pages(client, pagers(settings, slack, pagerduty), page, resolve(page), page)

    assert all(r.delivered for r in paged.results)
    assert len(slack.channel) == 3
    assert [(a.status, a.log) for a in pagerduty.alerts] == [
        ("resolved", ["trigger", "resolve"]),
        ("triggered", ["trigger"]),
    ]


async def test_nothing_configured_is_not_delivered(settings: Settings) -> None:
    activities = DeliveryActivities(pagers(settings))
    try:
        result = await ActivityEnvironment().run(activities.page_on_call, trigger())
    finally:
        await activities.aclose()

    assert result == DeliveryResult(delivered=False, detail=paging.NOT_CONFIGURED)


async def test_a_retry_in_another_worker_process_skips_the_pagers_that_answered(
    settings: Settings, slack: FakeSlack, pagerduty: FakePagerDuty
) -> None:
    """Heartbeat details carry the settled pagers to the next attempt, wherever it runs."""
    pagerduty.script = [Reply(503)]
    configured = pagers(settings, slack, pagerduty)
    heartbeats: list[Any] = []
    first = ActivityEnvironment()
    first.on_heartbeat = lambda *details: heartbeats.append(details)
    activities = DeliveryActivities(configured)
    try:
        with pytest.raises(ApplicationError) as failed:
            await first.run(activities.page_on_call, trigger())
    finally:
        await activities.aclose()
    assert not failed.value.non_retryable
    assert failed.value.message == "page not yet accepted by pagerduty (503 Service unavailable); already paged slack"

    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2, heartbeat_details=heartbeats[-1])
    elsewhere = DeliveryActivities(configured)  # another process: nothing in memory
    try:
        result = await retry.run(elsewhere.page_on_call, trigger())
    finally:
        await elsewhere.aclose()

    assert result == DeliveryResult(delivered=True, detail="paged slack, pagerduty")
    assert len(slack.requests) == 1
    assert pagerduty.answers == [503, 202]


async def test_the_fakes_reject_what_the_vendors_reject(slack: FakeSlack, pagerduty: FakePagerDuty) -> None:
    good = paging.pagerduty_event(trigger(), ROUTING_KEY)
    bad_events = [
        good | {"routing_key": "short"},
        good | {"event_action": "escalate"},
        good | {"payload": good["payload"] | {"severity": "high"}},
        good | {"payload": {k: v for k, v in good["payload"].items() if k != "source"}},
        good | {"payload": good["payload"] | {"summary": "s" * 1025}},
        {"routing_key": ROUTING_KEY, "event_action": "resolve"},
        good | {"dedup_key": "d" * 256},
    ]
    message = paging.slack_message(trigger())
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    bad_messages = [
        {"blocks": message["blocks"]},
        message | {"blocks": [{"type": "banner"}]},
        message | {"blocks": [header]},
        message | {"blocks": [{"type": "section"}]},
        message | {"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]},
        message | {"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]},
    ]
    async with httpx.AsyncClient() as http:
        for event in bad_events:
            answer = await http.post(pagerduty.events_url, json=event)
            assert answer.status_code == 400, event
            assert answer.json()["status"] == "invalid event" and answer.json()["errors"]
        for bad in bad_messages:
            answer = await http.post(slack.webhook_url, json=bad)
            assert answer.status_code == 400, bad
            assert answer.text in ("no_text", "invalid_blocks")
        assert (await http.post(f"{slack.url}/services/T/B/Y", json=message)).text == "no_service"
        assert (await http.post(slack.webhook_url, json=message)).text == "ok"
        accepted = await http.post(pagerduty.events_url, json=good)
    assert accepted.status_code == 202
    assert accepted.json() == {"status": "success", "message": "Event processed", "dedup_key": "baton-conversation-c-7"}
    assert len(slack.channel) == 1 and len(pagerduty.alerts) == 1
