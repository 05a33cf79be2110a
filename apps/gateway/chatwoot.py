"""Chatwoot's webhook and Agent Bot events, as Baton messages, pickups, resolutions and CSAT.

One route, ``POST /chatwoot/events``, takes every event of a Chatwoot account webhook or Agent Bot
(docs/chatwoot.md lists which and how each maps). It is outside /v1: Chatwoot cannot send Baton's API
key, so it signs instead. With ``BATON_CHATWOOT_WEBHOOK_SECRET`` set, a request must carry
``X-Chatwoot-Timestamp`` and ``X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``
(Chatwoot's scheme) within five minutes of the gateway's clock.

An incoming customer message is decided at once (the same update as /v1's messages) and what Chatwoot
must show is handed to a ``ChatwootReplyWorkflow`` whose id is the message's: a webhook Chatwoot delivers
twice is decided once (the conversation dedupes message ids) and answered once. Chatwoot retries an
event answered with 5xx or 429, so a Temporal outage is answered 503; a message Baton refuses is answered
422, which in an Agent Bot inbox opens the conversation to the agents.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from baton.apps import client as baton_client
from baton.apps.gateway.errors import failure_of, http_error, message_failure_of, rpc_status, timed_out, unavailable
from baton.classifier.scorer import Scorer
from baton.contract import chatwoot, ids
from baton.contract.chatwoot import ChatwootConversation, ChatwootCsat, ChatwootReply
from baton.contract.messages import (
    ConversationStart,
    CustomerFacts,
    Decision,
    MessageIn,
    Phase,
    PickupRequest,
    ResolveRequest,
)
from baton.logging import get_logger
from baton.settings import Settings

log = get_logger("baton.gateway.chatwoot")

TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
SIGNATURE_HEADER = "X-Chatwoot-Signature"
DELIVERY_HEADER = "X-Chatwoot-Delivery"
TOLERANCE_SECONDS = 300
# After Baton closed a conversation, the Chatwoot conversation's next message starts run 2, then 3...
MAX_RUNS = 50

# Chatwoot's inbox types, as Baton's channels (policies key async handling and idle close on them).
CHANNELS = {
    "Channel::WebWidget": "chat",
    "Channel::Api": "chat",
    "Channel::Email": "email",
    "Channel::Whatsapp": "whatsapp",
    "Channel::Sms": "sms",
    "Channel::TwilioSms": "sms",
    "Channel::Telegram": "telegram",
    "Channel::FacebookPage": "messenger",
    "Channel::Instagram": "instagram",
    "Channel::Line": "line",
}
# A contact's custom attributes Baton reads as CRM facts (a CRM adapter still has the last word).
FACT_ATTRIBUTES = ("tier", "mrr", "renewal_date", "lifecycle_stage", "health", "timezone")
MESSAGE_TYPES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}


class ChatwootAck(BaseModel):
    """What Baton did with an event; Chatwoot ignores the body, operators read it in logs and tests."""

    event: str
    outcome: str
    conversation_id: str | None = None
    detail: str = ""


# --- signatures ----------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Chatwoot's signature header value for one body."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secrets: list[str], timestamp: str | None, signature: str | None, body: bytes, now: int) -> bool:
    """Signed by a holder of any of `secrets` (an account webhook's and an agent bot's differ) within the tolerance."""
    if not timestamp or not signature or not timestamp.strip().isdigit():
        return False
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    given = signature.strip()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(secret, int(timestamp), body), given)
    return matched


# --- reading a payload -----------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def message_type(payload: Mapping[str, Any]) -> str:
    """Webhooks name the type ("incoming"); some payloads carry Chatwoot's number (0)."""
    value = payload.get("message_type")
    return MESSAGE_TYPES.get(value, "") if isinstance(value, int) else str(value or "")


def customer_facts(contact: Mapping[str, Any]) -> CustomerFacts:
    """Facts from the contact's custom attributes; a value Baton cannot read is left out, not fatal."""
    attributes = _dict(contact.get("custom_attributes"))
    facts: dict[str, Any] = {}
    for name in FACT_ATTRIBUTES:
        if attributes.get(name) in (None, ""):
            continue
        try:
            CustomerFacts.model_validate({name: attributes[name]})
        except ValidationError:
            continue
        facts[name] = attributes[name]
    return CustomerFacts.model_validate(facts)


def csat_rating(payload: Mapping[str, Any]) -> int | None:
    """The rating of a submitted CSAT survey (content_attributes.submitted_values.csat_survey_response)."""
    submitted = _dict(_dict(payload.get("content_attributes")).get("submitted_values"))
    rating = _int(_dict(submitted.get("csat_survey_response")).get("rating"))
    return rating if rating is not None and 1 <= rating <= 5 else None


# --- the route --------------------------------------------------------------------------------------


Handler = Callable[[dict[str, Any]], Awaitable[ChatwootAck]]


class ChatwootEvents:
    """The events' handlers over one Temporal client; each answers with what it did."""

    def __init__(self, client: Client, settings: Settings, timeout: float, scorer: Scorer | None) -> None:
        self._client = client
        self._settings = settings
        self._timeout = timeout
        self._scorer = scorer
        self.handlers: dict[str, Handler] = {
            "message_created": self.message_created,
            "message_updated": self.message_updated,
            "conversation_updated": self.conversation_updated,
            "conversation_status_changed": self.status_changed,
            "conversation_resolved": self.status_changed,  # an Agent Bot's name for the same change
        }

    # --- which Baton conversation ----------------------------------------------------------------

    def _target(self, payload: Mapping[str, Any], conversation: Mapping[str, Any]) -> ChatwootConversation | None:
        account = (
            _int(_dict(payload.get("account")).get("id"))
            or _int(payload.get("account_id"))
            or _int(conversation.get("account_id"))
            or self._settings.chatwoot_account_id
        )
        number = _int(conversation.get("id"))
        if account is None or number is None or number < 1:
            return None
        return ChatwootConversation(account_id=account, conversation_id=number)

    async def _current(self, target: ChatwootConversation) -> str | None:
        """The Baton conversation now serving a Chatwoot conversation: its newest run (None if Baton never saw it)."""
        latest = None
        for run in range(1, MAX_RUNS + 1):
            candidate = chatwoot.conversation_id(target.account_id, target.conversation_id, run)
            try:
                described = await baton_client.handle(self._client, candidate).describe()
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return latest
                raise
            if described.status == WorkflowExecutionStatus.RUNNING:
                return candidate
            latest = candidate
        return latest

    # --- messages ------------------------------------------------------------------------------------

    async def message_created(self, payload: dict[str, Any]) -> ChatwootAck:
        event = "message_created"
        kind = message_type(payload)
        if payload.get("private"):
            return ChatwootAck(event=event, outcome="ignored", detail="private note")
        if self._echo(payload):
            return ChatwootAck(event=event, outcome="ignored", detail="Baton's own message")
        if kind not in ("incoming", "outgoing"):
            return ChatwootAck(event=event, outcome="ignored", detail=f"{kind or 'unknown'} message")
        conversation = _dict(payload.get("conversation"))
        target = self._target(payload, conversation)
        number = _int(payload.get("id"))
        if target is None or number is None:
            return ChatwootAck(event=event, outcome="ignored", detail="no conversation or message id")
        if kind == "incoming":
            return await self._customer_message(payload, conversation, target, number)
        return await self._outgoing(payload, target, number)

    def _echo(self, payload: Mapping[str, Any]) -> bool:
        """Baton's own post: its source id says so, or (for a Chatwoot that drops source ids) its sender is the
        user whose token Baton posts with."""
        if str(payload.get("source_id") or "").startswith(chatwoot.SOURCE_PREFIX):
            return True
        sender = _dict(payload.get("sender"))
        own = self._settings.chatwoot_baton_user_id
        return own is not None and sender.get("type") == "user" and _int(sender.get("id")) == own

    async def _customer_message(
        self, payload: dict[str, Any], conversation: dict[str, Any], target: ChatwootConversation, number: int
    ) -> ChatwootAck:
        text = str(payload.get("content") or "").strip()
        if not text and payload.get("attachments"):
            text = "(the customer sent an attachment)"
        if not text:
            return ChatwootAck(event="message_created", outcome="ignored", detail="no text")
        contact = _dict(payload.get("sender")) or _dict(_dict(conversation.get("meta")).get("sender"))
        contact_id = _int(contact.get("id"))
        customer = f"chatwoot-{target.account_id}-{contact_id}" if contact_id else f"{target.baton_id}-contact"
        message = _customer_message(number, text, payload.get("created_at"))
        decision: Decision | None = None
        conversation_id = target.baton_id
        for run in range(1, MAX_RUNS + 1):
            conversation_id = chatwoot.conversation_id(target.account_id, target.conversation_id, run)
            start = ConversationStart(
                conversation_id=conversation_id,
                customer_id=customer,
                channel=CHANNELS.get(str(conversation.get("channel") or ""), "chat"),
                customer=customer_facts(contact),
            )
            try:
                decision = await asyncio.wait_for(
                    baton_client.send_message(self._client, self._settings.task_queue, start, message, self._scorer),
                    self._timeout,
                )
                break
            except baton_client.ConversationClosedError:
                continue  # Baton closed that run (idle, or closed by a backend): the conversation goes on in the next
            except WorkflowUpdateFailedError as err:
                failure = message_failure_of(err)
                log.info("chatwoot_message_refused", conversation_id=conversation_id, reason=failure.reason)
                raise http_error(failure, failed="the message could not be processed") from err
        if decision is None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"{target.baton_id}: every run up to {MAX_RUNS} is closed")
        log.info(
            "chatwoot_message_decided",
            conversation_id=conversation_id,
            message_id=message.message_id,
            action=decision.action,
            urgency=decision.urgency,
        )
        if not (decision.action == "escalate" or decision.customer_text or decision.action == "continue"):
            # A person owns the conversation and Baton has nothing to add: the agent answers in Chatwoot.
            return ChatwootAck(event="message_created", outcome=decision.action, conversation_id=conversation_id)
        if decision.action == "continue" and not decision.customer_text and not self._settings.chatwoot_bot_url:
            return ChatwootAck(
                event="message_created", outcome=decision.action, conversation_id=conversation_id, detail="agent bot"
            )
        reply = ChatwootReply(
            chatwoot=target,
            baton_conversation_id=conversation_id,
            message_id=message.message_id,
            text=text,
            decision=decision,
        )
        what = {"escalate": "hand off to the agents", "human": "tell the customer about the wait"}
        summary = (
            f"Chatwoot {target.conversation_id}: {what.get(decision.action, 'the bot replies')} ({message.message_id})"
        )
        workflow_id = chatwoot.reply_workflow_id(conversation_id, reply.message_id)
        await self._start(chatwoot.REPLY_WORKFLOW, reply, workflow_id, summary)
        return ChatwootAck(event="message_created", outcome=decision.action, conversation_id=conversation_id)

    async def _start(self, workflow: str, arg: BaseModel, workflow_id: str, summary: str) -> None:
        """Start once per id: a duplicate webhook finds it running or done; a failed one may run again."""
        try:
            await self._client.start_workflow(
                workflow,
                arg,
                id=workflow_id,
                task_queue=self._settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                static_summary=summary[:200],  # ids and numbers only: no message text in what the UI lists
            )
        except WorkflowAlreadyStartedError:
            log.info("chatwoot_duplicate", workflow_id=workflow_id)

    async def _outgoing(self, payload: dict[str, Any], target: ChatwootConversation, number: int) -> ChatwootAck:
        """An agent bot's reply is the bot's message in Baton; a person's first reply is the pickup."""
        event = "message_created"
        sender = _dict(payload.get("sender"))
        conversation_id = await self._current(target)
        if conversation_id is None:
            return ChatwootAck(event=event, outcome="ignored", detail="not a Baton conversation")
        if sender.get("type") == "agent_bot":
            text = str(payload.get("content") or "").strip()
            if not text:
                return ChatwootAck(event=event, outcome="ignored", detail="no text", conversation_id=conversation_id)
            bot = MessageIn(message_id=chatwoot.message_id(number), role="bot", text=text)
            handle = baton_client.handle(self._client, conversation_id)
            refused = await self._refusal(handle.execute_update(ids.ADD_MESSAGE, bot, result_type=Decision))
            outcome = "ignored" if refused else "bot_reply"
            return ChatwootAck(event=event, outcome=outcome, conversation_id=conversation_id, detail=refused or "")
        agent = _int(sender.get("id"))
        if sender.get("type") not in ("user", None) or agent is None:
            return ChatwootAck(event=event, outcome="ignored", detail="not an agent", conversation_id=conversation_id)
        return await self._pickup(event, conversation_id, agent, sender.get("name"))

    async def _pickup(self, event: str, conversation_id: str, agent: int, name: Any) -> ChatwootAck:
        request = PickupRequest(
            agent_id=agent_id(agent), agent_name=str(name)[:100] if isinstance(name, str) and name else None
        )
        refused = await self._refusal(baton_client.pickup(self._client, conversation_id, request))
        outcome = "ignored" if refused else "pickup"
        return ChatwootAck(event=event, outcome=outcome, conversation_id=conversation_id, detail=refused or "")

    async def _refusal(self, call: Awaitable[Any]) -> str | None:
        """Run an update; the workflow's reason when it refused (not waiting, another agent...), else None."""
        try:
            await asyncio.wait_for(call, self._timeout)
        except WorkflowUpdateFailedError as err:
            return failure_of(err).reason
        return None

    async def message_updated(self, payload: dict[str, Any]) -> ChatwootAck:
        event = "message_updated"
        rating = csat_rating(payload)
        conversation = _dict(payload.get("conversation"))
        target = self._target(payload, conversation)
        number = _int(payload.get("id"))
        if rating is None or target is None or number is None:
            return ChatwootAck(event=event, outcome="ignored", detail="not a CSAT answer")
        conversation_id = await self._current(target)
        if conversation_id is None:
            return ChatwootAck(event=event, outcome="ignored", detail="not a Baton conversation")
        csat = ChatwootCsat(baton_conversation_id=conversation_id, rating=rating, chatwoot_message=number)
        workflow_id = chatwoot.csat_workflow_id(conversation_id, number, rating)
        await self._start(
            chatwoot.CSAT_WORKFLOW, csat, workflow_id, f"Chatwoot {target.conversation_id}: CSAT {rating}"
        )
        return ChatwootAck(event=event, outcome="csat", conversation_id=conversation_id, detail=str(rating))

    # --- conversations -------------------------------------------------------------------------------

    async def conversation_updated(self, payload: dict[str, Any]) -> ChatwootAck:
        """An assignee set (by a person, a rule or auto-assignment) is the pickup."""
        event = "conversation_updated"
        assigned = _changed(payload, "assignee_id")
        if assigned is None:
            return ChatwootAck(event=event, outcome="ignored", detail="no new assignee")
        target = self._target(payload, payload)
        if target is None:
            return ChatwootAck(event=event, outcome="ignored", detail="no conversation id")
        conversation_id = await self._current(target)
        if conversation_id is None:
            return ChatwootAck(event=event, outcome="ignored", detail="not a Baton conversation")
        assignee = _dict(_dict(payload.get("meta")).get("assignee"))
        name = assignee.get("name") if _int(assignee.get("id")) == assigned else None
        return await self._pickup(event, conversation_id, assigned, name)

    async def status_changed(self, payload: dict[str, Any]) -> ChatwootAck:
        """Resolved: Baton resolves. Pending (back to the bot): Baton hands back. Open, snoozed: nothing."""
        event = str(payload.get("event"))
        new_status = str(payload.get("status") or "")
        if event == "conversation_resolved":
            new_status = "resolved"
        if new_status not in ("resolved", "pending"):
            return ChatwootAck(event=event, outcome="ignored", detail=f"status {new_status or 'unknown'}")
        target = self._target(payload, payload)
        if target is None:
            return ChatwootAck(event=event, outcome="ignored", detail="no conversation id")
        conversation_id = await self._current(target)
        if conversation_id is None:
            return ChatwootAck(event=event, outcome="ignored", detail="not a Baton conversation")
        state = await asyncio.wait_for(baton_client.get_state(self._client, conversation_id), self._timeout)
        escalation = state.escalation
        if escalation is None or state.phase not in (Phase.ESCALATED, Phase.WITH_AGENT):
            return ChatwootAck(
                event=event, outcome="ignored", conversation_id=conversation_id, detail=f"phase {state.phase.value}"
            )
        owner = escalation.agent_id
        if owner is None:
            # Resolved or handed back before anyone was assigned: whoever is assigned now (or the team) owns it.
            assignee = _dict(_dict(payload.get("meta")).get("assignee"))
            number = _int(assignee.get("id"))
            owner = agent_id(number) if number else "chatwoot"
            name = assignee.get("name")
            refused = await self._refusal(
                baton_client.pickup(
                    self._client,
                    conversation_id,
                    PickupRequest(agent_id=owner, agent_name=name if isinstance(name, str) and name else None),
                )
            )
            if refused:
                return ChatwootAck(event=event, outcome="ignored", conversation_id=conversation_id, detail=refused)
        labels = payload.get("labels")
        necessary = not (isinstance(labels, list) and self._settings.chatwoot_unneeded_label in labels)
        handback = new_status == "pending"
        request = ResolveRequest(agent_id=owner, necessary=necessary, handback=handback)
        refused = await self._refusal(baton_client.resolve(self._client, conversation_id, request))
        outcome = "ignored" if refused else "handback" if handback else "resolved"
        return ChatwootAck(event=event, outcome=outcome, conversation_id=conversation_id, detail=refused or "")


def _customer_message(number: int, text: str, created: Any) -> MessageIn:
    """The Baton message; a field Baton cannot take (text over the limit) is refused naming it."""
    fields: dict[str, Any] = {"message_id": chatwoot.message_id(number), "role": "customer", "text": text}
    try:
        return MessageIn.model_validate(
            {**fields, "sent_at": created if isinstance(created, str) and created else None}
        )
    except ValidationError:
        pass
    try:
        return MessageIn.model_validate(fields)  # Chatwoot's time in a form Baton does not read: left out
    except ValidationError as err:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors(include_url=False)]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems) from err


def agent_id(chatwoot_user: int) -> str:
    return f"chatwoot-user-{chatwoot_user}"


def _changed(payload: Mapping[str, Any], attribute: str) -> int | None:
    """The new value of `attribute` in a conversation_updated's changed_attributes, when it was set."""
    changes = payload.get("changed_attributes")
    for change in changes if isinstance(changes, list) else [changes]:
        value = _dict(_dict(change).get(attribute))
        if value:
            return _int(value.get("current_value"))
    return None


_V1_MESSAGES = re.compile(r"^/v1/conversations/([^/]+)/messages/?$")


class ReservedNamespace:
    """ASGI middleware: refuses /v1 messages to a ``chatwoot-`` conversation (see ``reserve_namespace``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            found = _V1_MESSAGES.match(scope["path"])
            if found and chatwoot.is_chatwoot(found.group(1)):
                problem = {
                    "loc": ["path", "conversation_id"],
                    "msg": f"'{chatwoot.CONVERSATION_PREFIX}' conversations belong to Chatwoot (POST /chatwoot/events)",
                    "type": "value_error",
                }
                response = JSONResponse({"detail": [problem]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def reserve_namespace(app: FastAPI) -> None:
    """Refuse /v1 messages to a ``chatwoot-`` conversation: those conversations and their message ids are
    Chatwoot's, so no /v1 client can write into one or collide with its ``cw-<id>`` messages."""
    app.add_middleware(ReservedNamespace)


def router(client: Client, settings: Settings, decision_timeout: float, scorer: Scorer | None = None) -> APIRouter:
    routes = APIRouter()
    events = ChatwootEvents(client, settings, decision_timeout, scorer)
    configured = settings.chatwoot_webhook_secret.get_secret_value() if settings.chatwoot_webhook_secret else ""
    secrets = [part.strip() for part in configured.split(",") if part.strip()]
    if not secrets:
        log.warning("chatwoot_unsigned", reason="BATON_CHATWOOT_WEBHOOK_SECRET is not set; events are not verified")

    @routes.post(
        "/chatwoot/events",
        response_model=ChatwootAck,
        summary="Chatwoot's webhook and Agent Bot events (signed by Chatwoot; see docs/chatwoot.md)",
        tags=["chatwoot"],
    )
    async def receive(request: Request) -> ChatwootAck:
        body = await request.body()
        headers = request.headers
        if secrets and not verify(
            secrets, headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER), body, int(time.time())
        ):
            log.warning("chatwoot_bad_signature", delivery=headers.get(DELIVERY_HEADER))
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"missing, stale or wrong {SIGNATURE_HEADER}")
        try:
            payload = json.loads(body)
        except ValueError as err:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "body: not JSON") from err
        if not isinstance(payload, dict):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "body: not a JSON object")
        event = str(payload.get("event") or "")
        account = _int(_dict(payload.get("account")).get("id")) or _int(payload.get("account_id"))
        if account is not None and settings.chatwoot_account_id and account != settings.chatwoot_account_id:
            return ChatwootAck(event=event, outcome="ignored", detail=f"account {account} is not served here")
        handler = events.handlers.get(event)
        if handler is None:
            return ChatwootAck(event=event, outcome="ignored", detail="event not used")
        try:
            ack = await handler(payload)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            raise timed_out() from err
        except RPCError as err:
            log.error("temporal_unavailable", status=rpc_status(err), chatwoot_event=event)
            raise unavailable(err) from err
        log.info("chatwoot_event", chatwoot_event=event, outcome=ack.outcome, conversation_id=ack.conversation_id)
        return ack

    return routes
