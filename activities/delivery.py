"""Outgoing webhooks: messages for the customer, helpdesk tickets, on-call pages.

Each activity POSTs one signed JSON body. The Idempotency-Key is the same on
every attempt, so a receiver that dedupes on it shows a retried message once.
Temporal's retry policy owns retries: a transient failure (timeout, connection
error, 408, 429, 5xx) raises a retryable error; a rejection (any other 4xx, an
unfollowed redirect) raises a non-retryable ``WebhookRejected`` (the mapping,
shared with the pagers, is activities/http_errors.py). The wire contract is in
docs/webhooks.md.

``page_on_call`` fans out to every configured pager: the signed ``page``
webhook, Slack and PagerDuty; the vendor parts and the fan-out's rules are in
activities/paging.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from temporalio import activity

from baton.activities import chatwoot, metrics, paging, webhooks
from baton.activities.http_errors import (
    REASON_CHARS,
    SEND_ERRORS,
    Receiver,
    origin,
    rejected,
    retry_after,
    send_error,
    short_reason,
    transient,
    unavailable,
)
from baton.contract.activities import Delivery
from baton.contract.chatwoot import is_chatwoot
from baton.contract.messages import DeliveryResult, HelpdeskTicket, OutboundMessage, PageRequest
from baton.logging import get_logger
from baton.settings import Settings

log = get_logger(__name__)

USER_AGENT = "Baton-Webhooks/1"


class DeliveryActivities(Delivery):
    """The webhook activities; one shared HTTP client, created on first use unless given."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._http = http
        self._owns_http = http is None
        self._warned_unsigned = False
        self._pager_ledger = paging.PagerLedger()
        self._chatwoot: chatwoot.ChatwootApi | None = None

    @activity.defn(name="deliver_to_customer")
    async def deliver_to_customer(self, message: OutboundMessage) -> DeliveryResult:
        if is_chatwoot(message.conversation_id) and self._settings.chatwoot_base_url:
            # A Chatwoot conversation hears Baton in Chatwoot itself (docs/chatwoot.md), not through the webhook.
            if self._chatwoot is None:
                self._chatwoot = chatwoot.ChatwootApi(self._settings, self._http)
            return await chatwoot.deliver(self._chatwoot, message)
        url = self._settings.delivery_webhooks.get(message.channel) or self._settings.delivery_webhook_url
        if not url:
            return self._not_configured(
                f"no delivery webhook configured for channel {message.channel}",
                webhooks.EVENT_CUSTOMER_MESSAGE,
                message.message_id,
                message.conversation_id,
            )
        return await self._post(
            url,
            webhooks.EVENT_CUSTOMER_MESSAGE,
            message.message_id,
            message.model_dump(mode="json"),
            conversation_id=message.conversation_id,
            kind=message.kind,
            channel=message.channel,
        )

    @activity.defn(name="post_helpdesk_ticket")
    async def post_helpdesk_ticket(self, ticket: HelpdeskTicket) -> DeliveryResult:
        if is_chatwoot(ticket.conversation_id) and self._settings.chatwoot_base_url:
            # Chatwoot is the helpdesk: the escalation's note is already a private note in the conversation.
            return DeliveryResult(delivered=True, detail="the handoff is in the Chatwoot conversation")
        url = self._settings.helpdesk_webhook_url
        if not url:
            return self._not_configured(
                "no helpdesk webhook configured",
                webhooks.EVENT_HELPDESK_TICKET,
                ticket.idempotency_key,
                ticket.conversation_id,
            )
        return await self._post(
            url,
            webhooks.EVENT_HELPDESK_TICKET,
            ticket.idempotency_key,
            ticket.model_dump(mode="json"),
            conversation_id=ticket.conversation_id,
            priority=ticket.priority,
            channel=ticket.channel,
        )

    @activity.defn(name="page_on_call")
    async def page_on_call(self, page: PageRequest) -> DeliveryResult:
        """Page every configured pager; delivered when at least one accepted (see paging.page_all)."""
        key = paging.page_key(page)
        senders = self._pagers(page, key)
        if not senders:
            result = self._not_configured(paging.NOT_CONFIGURED, webhooks.EVENT_PAGE, key, page.conversation_id)
        else:
            result = await paging.page_all(page, senders, self._pager_ledger)
        metrics.page(page.action, result.delivered)
        return result

    def _pagers(self, page: PageRequest, key: str) -> dict[str, paging.Sender]:
        """The configured pagers, each a coroutine that returns the status it got or raises ApplicationError."""
        settings = self._settings
        webhook_url = settings.oncall_webhook_url
        slack_url = settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else ""
        routing_key = settings.pagerduty_routing_key.get_secret_value() if settings.pagerduty_routing_key else ""
        senders: dict[str, paging.Sender] = {}
        if webhook_url:

            async def webhook() -> int | None:
                body = page.model_dump(mode="json")
                ids = {"conversation_id": page.conversation_id, "action": page.action, "severity": page.severity}
                return (await self._post(webhook_url, webhooks.EVENT_PAGE, key, body, **ids)).status

            senders[paging.WEBHOOK] = webhook
        if slack_url:
            message = paging.slack_message(page)
            senders[paging.SLACK] = lambda: paging.send_slack(self._client(), slack_url, message)
        if routing_key:
            event = paging.pagerduty_event(page, routing_key)
            events_url = settings.pagerduty_events_url
            senders[paging.PAGERDUTY] = lambda: paging.send_pagerduty(self._client(), events_url, event)
        return senders

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._chatwoot is not None and self._owns_http:
            await self._chatwoot.aclose()
            self._chatwoot = None

    # --- the one place that talks HTTP ------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self._settings.webhook_timeout_seconds,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
            )
        return self._http

    def _secret(self) -> bytes | None:
        secret = self._settings.webhook_secret
        if secret is not None and secret.get_secret_value():
            return secret.get_secret_value().encode("utf-8")
        if not self._warned_unsigned:
            self._warned_unsigned = True
            log.warning(
                "webhook_unsigned", reason="BATON_WEBHOOK_SECRET is not set; receivers cannot verify Baton's webhooks"
            )
        return None

    def _not_configured(self, detail: str, event: str, key: str, conversation_id: str) -> DeliveryResult:
        log.info(
            "webhook_skipped",
            conversation_id=conversation_id,
            webhook_event=event,
            idempotency_key=key,
            reason=detail,
            **_attempt(),
        )
        return DeliveryResult(delivered=False, detail=detail)

    async def _post(self, url: str, event: str, key: str, payload: dict[str, Any], **ids: str) -> DeliveryResult:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        # The timestamp and signature are fresh on each attempt; the body and the key are not.
        headers = webhooks.headers(event, key, int(time.time()), body, self._secret())
        fields = {"webhook_event": event, "idempotency_key": key, "target": origin(url), **ids, **_attempt()}
        receiver = Receiver("Webhook", f"{event} webhook", {"event": event})
        started = time.monotonic()
        try:
            response = await self._client().post(url, content=body, headers=headers)
        except SEND_ERRORS as exc:
            error = send_error(receiver, url, exc)
            if error.non_retryable:
                log.error("webhook_misconfigured", error=type(exc).__name__, **fields)
            else:
                log.warning("webhook_unreachable", error=type(exc).__name__, reason=str(exc)[:REASON_CHARS], **fields)
            raise error from None

        status = response.status_code
        fields |= {"status": status, "duration_ms": round((time.monotonic() - started) * 1000)}
        if 200 <= status < 300:
            log.info("webhook_delivered", **fields)
            return DeliveryResult(delivered=True, status=status)

        reason = short_reason(response)
        if transient(status):
            log.warning("webhook_unavailable", **fields)
            message = f"{event} webhook answered {status} (retryable)"
            raise unavailable(receiver, message, status, reason, retry_after(response))
        log.error("webhook_rejected", **fields)
        hint = " (check BATON_WEBHOOK_SECRET on both sides)" if status in (401, 403) else ""
        raise rejected(receiver, f"{event} webhook rejected with {status} {reason}{hint}", status, reason)


def _attempt() -> dict[str, Any]:
    if not activity.in_activity():
        return {}
    info = activity.info()
    return {"attempt": info.attempt, "workflow_id": info.workflow_id}
