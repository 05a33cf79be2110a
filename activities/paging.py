"""On-call pagers: PagerDuty (Events API v2) and Slack (incoming webhooks), and the fan-out over them.

``page_on_call`` (activities/delivery.py) sends one ``PageRequest`` to every configured pager: the signed
``page`` webhook, Slack and PagerDuty. This module holds the vendor parts:

- ``pagerduty_event`` and ``slack_message`` build each vendor's documented body (pure functions);
- ``send_pagerduty`` and ``send_slack`` POST it and map the answer onto Temporal's retry model, as the webhooks
  do (activities/http_errors.py): accepted returns the status; a transient failure (timeout, connection error,
  408, 429, 5xx) raises a retryable ``ApplicationError`` (with the vendor's ``Retry-After`` as
  ``next_retry_delay``); a rejection (PagerDuty 400, a Slack 4xx such as ``invalid_payload``, ``no_service`` or
  ``channel_is_archived``) raises a non-retryable one;
- ``page_all`` runs the senders concurrently and settles their outcomes into one result (see its docstring).

Retries must not page anyone twice. PagerDuty dedups natively on ``dedup_key``, and the signed webhook carries
an ``Idempotency-Key``, but a Slack incoming webhook posts every request it gets. So each pager that answered
(accepted or rejected for good) is remembered for the activity execution, twice over: in a ``PagerLedger`` in the
worker's memory, and in the activity's heartbeat details, which Temporal hands to the next attempt even when it
runs in another worker process. A retry sends only to the pagers that have not answered. Slack can still show a
page twice if the worker process dies (or the attempt times out and the retry runs in another process) after
Slack accepted the post but before the heartbeat recording it reached the Temporal server.

Neither the Slack webhook URL (its path is the credential) nor the PagerDuty routing key is ever logged or put
in an error: errors are stored in workflow history.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from baton.activities import http_errors
from baton.activities.http_errors import REASON_CHARS, origin, retry_after
from baton.contract.messages import DeliveryResult, PageRequest
from baton.logging import get_logger

log = get_logger(__name__)

WEBHOOK = "webhook"
SLACK = "slack"
PAGERDUTY = "pagerduty"

NOT_CONFIGURED = (
    "no pager configured (set BATON_ONCALL_WEBHOOK_URL, BATON_SLACK_WEBHOOK_URL or BATON_PAGERDUTY_ROUTING_KEY)"
)

# PagerDuty Events API v2 limits (developer docs, "Send an Alert Event").
PAGERDUTY_SUMMARY_CHARS = 1024
PAGERDUTY_DEDUP_KEY_CHARS = 255
# A 429 from PagerDuty rarely says when to come back; its docs suggest waiting about 30 seconds.
PAGERDUTY_THROTTLED_DELAY = timedelta(seconds=30)

# Block Kit limits (Slack docs, "Blocks reference").
SLACK_HEADER_CHARS = 150
SLACK_SECTION_CHARS = 3000
SLACK_FIELD_CHARS = 2000
SLACK_MAX_FIELDS = 10

Sender = Callable[[], Awaitable[int | None]]


# --- bodies ---------------------------------------------------------------------------------------


def pagerduty_dedup_key(key: str) -> str:
    """The page's dedup key, shortened stably (prefix + SHA-256) when it exceeds PagerDuty's 255 characters."""
    if len(key) <= PAGERDUTY_DEDUP_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{key[: PAGERDUTY_DEDUP_KEY_CHARS - len(digest) - 1]}~{digest}"


def page_key(page: PageRequest) -> str:
    """The page's Idempotency-Key: ``<dedup_key>:<action>:<workflow run id>:<activity id>``.

    The dedup key groups the pages about one thing (PagerDuty keeps them as one incident: a conversation, or a
    customer escalating again and again on one day), so it cannot tell pages apart: a receiver that dedupes on
    it would drop every page after the first. One page is one activity execution: all its retries share the
    workflow run and the activity id, and no other page has both. Outside an activity (a direct call), the
    dedup key and the action.
    """
    key = f"{page.dedup_key}:{page.action}"
    if not activity.in_activity():
        return key
    info = activity.info()
    return f"{key}:{info.workflow_run_id}:{info.activity_id}"


def pagerduty_event(page: PageRequest, routing_key: str, source: str = "baton") -> dict[str, Any]:
    """The Events API v2 body: a trigger with its payload, or a resolve naming only the alert."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": page.action,
        "dedup_key": pagerduty_dedup_key(page.dedup_key),
    }
    if page.action == "resolve":
        return event
    event["payload"] = {
        "summary": _clip(_summary(page), PAGERDUTY_SUMMARY_CHARS),
        "source": source,
        "severity": page.severity,
        "custom_details": {**page.details, "conversation_id": page.conversation_id},
    }
    event["client"] = "Baton"
    return event


def slack_message(page: PageRequest) -> dict[str, Any]:
    """An incoming-webhook message: ``text`` (the notification and fallback) plus Block Kit ``blocks``."""
    cid = page.conversation_id
    context = {"type": "context", "elements": [_mrkdwn(f"Baton · page `{_escape(page.dedup_key)}`")]}
    if page.action == "resolve":
        line = f"Resolved: conversation {cid} no longer needs on-call."
        section = f":white_check_mark: *Resolved* · conversation `{_escape(cid)}` no longer needs on-call."
        return {"text": _escape(line), "blocks": [_section(section), context]}

    summary = _summary(page)
    fields = [_field("Conversation", f"`{cid}`"), _field("Severity", page.severity)]
    shown = [(key, value) for key, value in page.details.items() if value.strip()]
    room = SLACK_MAX_FIELDS - len(fields)
    if len(shown) > room:
        hidden = len(shown) - room + 1
        shown = [*shown[: room - 1], ("more details", f"{hidden} not shown")]
    fields += [_field(key.replace("_", " ").capitalize(), value) for key, value in shown]

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(summary, SLACK_HEADER_CHARS), "emoji": True}}
    ]
    if len(summary) > SLACK_HEADER_CHARS:
        blocks.append(_section(_escape(summary)))
    blocks += [{"type": "section", "fields": fields}, context]
    return {"text": _escape(_clip(f"[{page.severity}] {summary}", SLACK_SECTION_CHARS)), "blocks": blocks}


def _summary(page: PageRequest) -> str:
    return page.summary.strip() or f"Conversation {page.conversation_id} needs on-call"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Slack's mrkdwn control characters; everything else is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _mrkdwn(text: str, limit: int = SLACK_SECTION_CHARS) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _clip(text, limit)}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _field(label: str, value: str) -> dict[str, Any]:
    return _mrkdwn(f"*{_escape(label)}*\n{_escape(value)}", SLACK_FIELD_CHARS)


# --- sending --------------------------------------------------------------------------------------


async def send_pagerduty(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> int:
    """POST one event to the Events API v2; 202 is accepted (PagerDuty dedups retries on ``dedup_key``)."""
    response = await _post(http, PAGERDUTY, url, body)
    status = response.status_code
    if 200 <= status < 300:
        return status
    if status == 400:
        # {"status": "invalid event", "message": "Event object is invalid", "errors": [...]}
        answer = http_errors.json_object(response)
        errors = [str(e)[:REASON_CHARS] for e in answer.get("errors") or [] if e][:10]
        log.error("pagerduty_invalid_event", target=origin(url), status=status, errors=errors)
        reason = "; ".join(errors) or str(answer.get("message") or "") or http_errors.text(response)
        raise _rejected(PAGERDUTY, status, reason, errors=errors)
    delay = retry_after(response) or (PAGERDUTY_THROTTLED_DELAY if status == 429 else None)
    raise _failure(PAGERDUTY, response, delay)


async def send_slack(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> int:
    """POST one message to an incoming webhook; 200 ``ok`` is accepted."""
    response = await _post(http, SLACK, url, body)
    status = response.status_code
    if 200 <= status < 300:
        if response.text.strip() != "ok":
            log.warning("slack_unexpected_answer", target=origin(url), status=status, answer=http_errors.text(response))
        return status
    hint = " (the webhook is gone or disabled: check BATON_SLACK_WEBHOOK_URL)" if status in (403, 404, 410) else ""
    raise _failure(SLACK, response, retry_after(response), hint)


async def _post(http: httpx.AsyncClient, pager: str, url: str, body: dict[str, Any]) -> httpx.Response:
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    try:
        return await http.post(url, content=content, headers={"Content-Type": "application/json"})
    except http_errors.SEND_ERRORS as exc:
        raise http_errors.send_error(_receiver(pager), url, exc) from None


def _receiver(pager: str) -> http_errors.Receiver:
    return http_errors.Receiver("Pager", pager, {"pager": pager}, reason_when_unreachable=True)


def _failure(pager: str, response: httpx.Response, delay: timedelta | None, hint: str = "") -> ApplicationError:
    """A transient answer (408, 425, 429, 5xx) is retryable; any other is a rejection."""
    status = response.status_code
    message = http_errors.json_object(response).get("message") if pager == PAGERDUTY else None
    if message:
        reason = " ".join(str(message).split())[:REASON_CHARS]
    else:
        reason = http_errors.text(response) or response.reason_phrase
    if http_errors.transient(status):
        summary = f"{pager} answered {status} {reason} (retryable)"
        return http_errors.unavailable(_receiver(pager), summary, status, f"{status} {reason}", delay)
    return _rejected(pager, status, reason, hint=hint)


def _rejected(pager: str, status: int, reason: str, hint: str = "", **extra: Any) -> ApplicationError:
    message = f"{pager} rejected the page with {status}: {reason}{hint}"
    return http_errors.rejected(_receiver(pager), message, status, f"{status} {reason}", **extra)


# --- remembering who answered ---------------------------------------------------------------------


@dataclass(frozen=True)
class PagerOutcome:
    """How one pager answered one page."""

    pager: str
    accepted: bool
    status: int | None = None
    reason: str = ""
    retryable: bool = False
    retry_after: timedelta | None = None
    error: ApplicationError | None = field(default=None, compare=False, repr=False)

    def settled(self) -> bool:
        """Accepted or rejected for good: a retry must not send to this pager again."""
        return self.accepted or not self.retryable

    def as_detail(self) -> dict[str, Any]:
        return {"pager": self.pager, "accepted": self.accepted, "status": self.status, "reason": self.reason}

    @classmethod
    def from_detail(cls, value: object) -> PagerOutcome | None:
        if not isinstance(value, dict) or not isinstance(value.get("pager"), str):
            return None
        status = value.get("status")
        return cls(
            pager=value["pager"],
            accepted=bool(value.get("accepted")),
            status=status if isinstance(status, int) else None,
            reason=str(value.get("reason") or ""),
        )


Scope = tuple[str, ...]


class PagerLedger:
    """The pagers that settled a page, per activity execution, in memory and in the activity's heartbeat.

    Keyed by (workflow id, run id, activity id, dedup key, action): a later page with the same dedup key (a
    conversation escalated again after a resolve) is a new activity execution and pages everyone again. An
    entry is dropped when its activity completes; the oldest go first past ``max_executions``.
    """

    def __init__(self, max_executions: int = 10_000) -> None:
        self._max = max_executions
        self._settled: OrderedDict[Scope, dict[str, PagerOutcome]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._settled)

    @staticmethod
    def scope(page: PageRequest) -> Scope | None:
        if not activity.in_activity():
            return None
        info = activity.info()
        return (info.workflow_id or "", info.workflow_run_id or "", info.activity_id, page.dedup_key, page.action)

    def load(self, scope: Scope | None) -> dict[str, PagerOutcome]:
        """What earlier attempts of this execution settled: the heartbeat (any worker), then this worker's memory."""
        if scope is None:
            return {}
        known: dict[str, PagerOutcome] = {}
        details = activity.info().heartbeat_details
        if details and isinstance(details[-1], list):
            for value in details[-1]:
                outcome = PagerOutcome.from_detail(value)
                if outcome is not None:
                    known[outcome.pager] = outcome
        known.update(self._settled.get(scope, {}))
        if known:
            self._remember(scope, known)
        return dict(known)

    def record(self, scope: Scope | None, outcome: PagerOutcome) -> None:
        if scope is None or not outcome.settled():
            return
        settled = self._settled.get(scope, {})
        settled[outcome.pager] = outcome
        self._remember(scope, settled)
        activity.heartbeat([o.as_detail() for o in settled.values()])

    def forget(self, scope: Scope | None) -> None:
        if scope is not None:
            self._settled.pop(scope, None)

    def _remember(self, scope: Scope, settled: dict[str, PagerOutcome]) -> None:
        self._settled[scope] = settled
        self._settled.move_to_end(scope)
        while len(self._settled) > self._max:
            self._settled.popitem(last=False)


# --- the fan-out ----------------------------------------------------------------------------------


async def page_all(page: PageRequest, senders: Mapping[str, Sender], ledger: PagerLedger) -> DeliveryResult:
    """Send ``page`` to every pager in ``senders`` (name → coroutine returning the accepted status).

    - Pagers that settled in an earlier attempt of this activity are not sent to again.
    - Every pager accepted: ``delivered=True``.
    - A pager failed retryably: a retryable error, so Temporal retries the ones still missing; with one pager,
      that pager's own error. On the last attempt the retry policy allows (``maximum_attempts``), a page that
      some pager accepted is reported delivered instead, naming the pagers that never accepted it.
    - The others rejected it for good: ``delivered=True`` if any accepted, the detail naming those that failed;
      otherwise a non-retryable error (with one pager, that pager's own error).
    """
    scope = ledger.scope(page)
    known = ledger.load(scope)
    pending = [name for name in senders if name not in known]
    fresh = await asyncio.gather(*(_send_one(page, name, senders[name], ledger, scope) for name in pending))
    by_pager = {**{name: known[name] for name in senders if name in known}, **{o.pager: o for o in fresh}}
    outcomes = [by_pager[name] for name in senders]
    final = _final_attempt()
    try:
        result = _settle(page, outcomes, final)
    except ApplicationError as err:
        if err.non_retryable or final:
            ledger.forget(scope)
        raise
    ledger.forget(scope)
    return result


async def _send_one(
    page: PageRequest, pager: str, send: Sender, ledger: PagerLedger, scope: Scope | None
) -> PagerOutcome:
    fields = {
        "pager": pager,
        "conversation_id": page.conversation_id,
        "dedup_key": page.dedup_key,
        "action": page.action,
        **_attempt(),
    }
    try:
        status = await send()
    except ApplicationError as err:
        details = err.details[0] if err.details and isinstance(err.details[0], dict) else {}
        outcome = PagerOutcome(
            pager=pager,
            accepted=False,
            status=details.get("status"),
            reason=str(details.get("reason") or err.message)[:REASON_CHARS],
            retryable=not err.non_retryable,
            retry_after=err.next_retry_delay,
            error=err,
        )
    except Exception as exc:  # a bug in one pager must not hide what the others did
        log.exception("page_failed", error=type(exc).__name__, **fields)
        error = ApplicationError(f"{pager}: {type(exc).__name__}", {"pager": pager}, type="PagerFailed")
        outcome = PagerOutcome(pager, accepted=False, reason=type(exc).__name__, retryable=True, error=error)
    else:
        outcome = PagerOutcome(pager=pager, accepted=True, status=status)

    if outcome.accepted:
        log.info("page_sent", status=outcome.status, **fields)
    elif outcome.retryable:
        log.warning("page_unavailable", status=outcome.status, reason=outcome.reason, **fields)
    else:
        log.error("page_rejected", status=outcome.status, reason=outcome.reason, **fields)
    ledger.record(scope, outcome)
    return outcome


def _settle(page: PageRequest, outcomes: list[PagerOutcome], final: bool) -> DeliveryResult:
    accepted = [o for o in outcomes if o.accepted]
    failed = [o for o in outcomes if not o.accepted]
    retrying = [o for o in failed if o.retryable]
    status = outcomes[0].status if len(outcomes) == 1 else None
    if not failed:
        return DeliveryResult(delivered=True, status=status, detail="paged " + _names(accepted))
    if accepted and (final or not retrying):
        return DeliveryResult(delivered=True, detail=f"paged {_names(accepted)}; not paged: {_reasons(failed)}")
    if len(outcomes) == 1 and failed[0].error is not None:
        raise failed[0].error
    details = {"event": "page", "pagers": [o.as_detail() for o in outcomes]}
    if retrying:
        rejected = [o for o in failed if not o.retryable]
        message = f"page not yet accepted by {_reasons(retrying)}"
        message += f"; rejected by {_reasons(rejected)}" if rejected else ""
        message += f"; already paged {_names(accepted)}" if accepted else ""
        delays = [o.retry_after for o in retrying if o.retry_after is not None]
        raise ApplicationError(
            message, details, type="PagerUnavailable", next_retry_delay=max(delays) if delays else None
        )
    raise ApplicationError(
        f"every pager rejected the page: {_reasons(failed)}", details, type="PageRejected", non_retryable=True
    )


def _reasons(outcomes: list[PagerOutcome]) -> str:
    return "; ".join(f"{o.pager} ({o.reason})" for o in outcomes)


def _names(outcomes: list[PagerOutcome]) -> str:
    return ", ".join(o.pager for o in outcomes)


def _final_attempt() -> bool:
    """The retry policy's last attempt, when the server tells the worker the policy (the dev server and Cloud do)."""
    if not activity.in_activity():
        return False
    info = activity.info()
    policy = info.retry_policy
    return policy is not None and policy.maximum_attempts > 0 and info.attempt >= policy.maximum_attempts


def _attempt() -> dict[str, Any]:
    if not activity.in_activity():
        return {}
    info = activity.info()
    return {"attempt": info.attempt, "workflow_id": info.workflow_id}
