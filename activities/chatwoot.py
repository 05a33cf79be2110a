"""Chatwoot's REST API and the adapter's activities: posts, the bot endpoint, team, labels, status, CSAT.

Every call authenticates with the ``api_access_token`` header (an agent's or administrator's access token:
labels and teams are not open to agent bot tokens). Every step is safe to retry, because a retry happens
whenever an answer is lost, not only when a call failed:

- a post carries ``source_id = "baton:<key>"``; before posting, the conversation's latest messages are
  read and a message with that source id (or, for Chatwoot versions that drop the field, the same
  content and privacy posted since the activity was first scheduled) means it is already there;
- the team is set, not toggled, and only when it differs; labels are the union with those present;
- the status is toggled to ``open`` only while the conversation is ``pending`` (the bot's state), so a
  retry never reopens a conversation an agent has since resolved.

The wire shapes are Chatwoot's documented application API (``/api/v1/accounts/{account}/conversations/...``);
docs/chatwoot.md lists them. Failures map to Temporal's retry model as for webhooks
(activities/http_errors.py): no answer, 408/425/429 and 5xx are retried; other answers are not.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from baton.activities.http_errors import (
    SEND_ERRORS,
    Receiver,
    json_object,
    rejected,
    retry_after,
    send_error,
    short_reason,
    transient,
    unavailable,
)
from baton.contract import chatwoot, ids
from baton.contract.chatwoot import (
    BotReply,
    BotRequest,
    BotTranscriptEntry,
    Chatwoot,
    ChatwootConversation,
    ChatwootCsat,
    ChatwootPost,
    CsatRecorded,
    HandoffFacts,
    HandoffFactsRequest,
    LabelRequest,
    PostResult,
    StatusRequest,
    StepResult,
    TeamRequest,
)
from baton.contract.messages import (
    ConversationState,
    Decision,
    DeliveryResult,
    Escalation,
    MessageIn,
    OutboundMessage,
)
from baton.contract.records import ResolutionRecord, escalation_id
from baton.domain.chatwoot import decision_note, labels_for, note_text
from baton.logging import get_logger
from baton.settings import Settings
from baton.store import records
from baton.store.database import session_factory

log = get_logger(__name__)

USER_AGENT = "Baton-Chatwoot/1"
# Chatwoot's clock and the worker's may differ a little: a post found up to this long before the first
# attempt was scheduled still counts as that attempt's (only when Chatwoot dropped the source_id).
CLOCK_SKEW = timedelta(seconds=5)
NOTE_POLL_SECONDS = 0.5


class ChatwootApi:
    """The few application-API calls the adapter makes, over one shared HTTP client."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        if not settings.chatwoot_base_url or settings.chatwoot_api_token is None:
            raise ApplicationError(
                "BATON_CHATWOOT_BASE_URL and BATON_CHATWOOT_API_TOKEN are both needed for Chatwoot",
                type="ChatwootMisconfigured",
                non_retryable=True,
            )
        self._base = settings.chatwoot_base_url.rstrip("/")
        self._token = settings.chatwoot_api_token.get_secret_value()
        self._timeout = settings.chatwoot_timeout_seconds
        self._http = http

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT}
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @staticmethod
    def _path(target: ChatwootConversation, tail: str = "") -> str:
        return f"/api/v1/accounts/{target.account_id}/conversations/{target.conversation_id}{tail}"

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self._base}{path}"
        headers = {"api_access_token": self._token, "Accept": "application/json"}
        receiver = Receiver("Chatwoot", "Chatwoot API", {"call": f"{method} {path}"})
        started = time.monotonic()
        try:
            response = await self._client().request(method, url, json=body, headers=headers)
        except SEND_ERRORS as exc:
            log.warning("chatwoot_unreachable", call=f"{method} {path}", error=type(exc).__name__)
            raise send_error(receiver, url, exc) from None
        status = response.status_code
        fields = {
            "call": f"{method} {path}",
            "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000),
        }
        if 200 <= status < 300:
            log.info("chatwoot_called", **fields)
            return json_object(response)
        reason = short_reason(response)
        if transient(status):
            log.warning("chatwoot_unavailable", **fields)
            raise unavailable(
                receiver, f"Chatwoot answered {status} (retryable)", status, reason, retry_after(response)
            )
        log.error("chatwoot_rejected", **fields)
        hint = " (check BATON_CHATWOOT_API_TOKEN)" if status in (401, 403) else ""
        raise rejected(receiver, f"Chatwoot rejected {method} {path} with {status} {reason}{hint}", status, reason)

    async def messages(self, target: ChatwootConversation) -> list[dict[str, Any]]:
        """The conversation's latest messages (Chatwoot's first page, newest last)."""
        payload = (await self._call("GET", self._path(target, "/messages"))).get("payload")
        return [m for m in payload if isinstance(m, dict)] if isinstance(payload, list) else []

    async def create_message(
        self, target: ChatwootConversation, content: str, private: bool, source: str
    ) -> int | None:
        body = {
            "content": content,
            "message_type": "outgoing",
            "private": private,
            "content_type": "text",
            "source_id": source,
        }
        created = await self._call("POST", self._path(target, "/messages"), body)
        message = created.get("id")
        return message if isinstance(message, int) else None

    async def conversation(self, target: ChatwootConversation) -> dict[str, Any]:
        return await self._call("GET", self._path(target))

    async def assign_team(self, target: ChatwootConversation, team_id: int) -> None:
        await self._call("POST", self._path(target, "/assignments"), {"team_id": team_id})

    async def labels(self, target: ChatwootConversation) -> list[str]:
        payload = (await self._call("GET", self._path(target, "/labels"))).get("payload")
        return [str(label) for label in payload] if isinstance(payload, list) else []

    async def set_labels(self, target: ChatwootConversation, labels: list[str]) -> None:
        await self._call("POST", self._path(target, "/labels"), {"labels": labels})

    async def toggle_status(self, target: ChatwootConversation, status: str) -> None:
        await self._call("POST", self._path(target, "/toggle_status"), {"status": status})

    async def post_once(self, post: ChatwootPost, since: datetime) -> PostResult:
        """Post unless an earlier attempt of the same post (same key) already did."""
        source = chatwoot.source_id(post.key)
        for message in reversed(await self.messages(post.chatwoot)):
            if _same_post(message, source, post, since):
                log.info("chatwoot_post_found", key=post.key, message=message.get("id"))
                found = message.get("id")
                return PostResult(posted=False, message=found if isinstance(found, int) else None)
        created = await self.create_message(post.chatwoot, post.content, post.private, source)
        log.info("chatwoot_posted", key=post.key, message=created, private=post.private)
        return PostResult(posted=True, message=created)


def _same_post(message: dict[str, Any], source: str, post: ChatwootPost, since: datetime) -> bool:
    if message.get("source_id") == source:
        return True
    if message.get("source_id"):
        return False  # another post's source id, or a channel's own id
    if message.get("content") != post.content or bool(message.get("private")) != post.private:
        return False
    if message.get("message_type") not in (1, "outgoing"):
        return False
    created = _created_at(message.get("created_at"))
    return created is not None and created >= since - CLOCK_SKEW


def _created_at(value: Any) -> datetime | None:
    """Chatwoot gives epoch seconds in message lists, ISO 8601 elsewhere."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _first_scheduled() -> datetime:
    """When this activity's first attempt was scheduled: the same on every retry."""
    if activity.in_activity():
        return activity.info().scheduled_time
    return datetime.now(UTC)


async def deliver(api: ChatwootApi, message: OutboundMessage) -> DeliveryResult:
    """A message Baton tells the customer (acknowledgement, wait update, agent joined, handback) as an outgoing
    Chatwoot message. An agent's own message is already in Chatwoot: it is not posted again."""
    target = chatwoot.parse_conversation(message.conversation_id)
    if target is None:
        return DeliveryResult(delivered=False, detail=f"{message.conversation_id} is not a Chatwoot conversation")
    if message.kind == "agent":
        return DeliveryResult(delivered=False, detail="the agent wrote it in Chatwoot")
    post = ChatwootPost(chatwoot=target, key=message.message_id, content=message.text)
    result = await api.post_once(post, _first_scheduled())
    return DeliveryResult(delivered=True, status=200, detail="" if result.posted else "already in Chatwoot")


def _escalation_of(state: ConversationState, message_id: str) -> Escalation | None:
    for escalation in [state.escalation, *reversed(state.past_escalations)]:
        if escalation is not None and escalation.message_id == message_id:
            return escalation
    return None


def _last_resolved(state: ConversationState) -> Escalation | None:
    for escalation in [state.escalation, *reversed(state.past_escalations)]:
        if escalation is not None and escalation.resolved_at is not None:
            return escalation
    return None


# --- the activities ----------------------------------------------------------------------------------


class ChatwootActivities(Chatwoot):
    """The adapter's activities. The API client is created on first use, so a worker without Chatwoot
    settings registers them all the same (and they fail, not retried, if a Chatwoot workflow runs anyway)."""

    def __init__(
        self,
        client: Client,
        settings: Settings,
        store: AsyncEngine | async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._sessions = session_factory(store) if isinstance(store, AsyncEngine) else store
        self._http = http
        self._api: ChatwootApi | None = None

    def api(self) -> ChatwootApi:
        if self._api is None:
            self._api = ChatwootApi(self._settings, self._http)
        return self._api

    @activity.defn(name="post_to_chatwoot")
    async def post_to_chatwoot(self, post: ChatwootPost) -> PostResult:
        return await self.api().post_once(post, _first_scheduled())

    @activity.defn(name="ask_bot")
    async def ask_bot(self, request: BotRequest) -> BotReply:
        url = self._settings.chatwoot_bot_url
        if not url:
            return BotReply()
        headers = {"User-Agent": USER_AGENT}
        if self._settings.chatwoot_bot_token is not None:
            headers["Authorization"] = f"Bearer {self._settings.chatwoot_bot_token.get_secret_value()}"
        receiver = Receiver("Bot", "bot endpoint", {"conversation_id": request.conversation_id})
        http = self._http or httpx.AsyncClient(timeout=self._settings.chatwoot_timeout_seconds)
        try:
            response = await http.post(url, json=request.model_dump(mode="json"), headers=headers)
        except SEND_ERRORS as exc:
            raise send_error(receiver, url, exc) from None
        finally:
            if http is not self._http:
                await http.aclose()
        status = response.status_code
        if transient(status):
            raise unavailable(receiver, f"bot endpoint answered {status}", status, short_reason(response))
        if not 200 <= status < 300:
            raise rejected(receiver, f"bot endpoint rejected the message with {status}", status, short_reason(response))
        reply = json_object(response).get("reply")
        return BotReply(reply=reply if isinstance(reply, str) and reply.strip() else None)

    @activity.defn(name="record_bot_reply")
    async def record_bot_reply(self, entry: BotTranscriptEntry) -> StepResult:
        message = MessageIn(message_id=entry.message_id, role="bot", text=entry.text)
        handle = self._client.get_workflow_handle(ids.conversation_workflow_id(entry.baton_conversation_id))
        try:
            await handle.execute_update(ids.ADD_MESSAGE, message, result_type=Decision)
        except WorkflowUpdateFailedError as err:
            # A human took the conversation meanwhile: the reply was shown, Baton's transcript says why not here.
            return StepResult(done=False, detail=str(err.cause or err)[:200])
        return StepResult(done=True)

    @activity.defn(name="chatwoot_handoff_facts")
    async def chatwoot_handoff_facts(self, request: HandoffFactsRequest) -> HandoffFacts:
        handle = self._client.get_workflow_handle(ids.conversation_workflow_id(request.baton_conversation_id))
        decision = request.decision
        deadline = time.monotonic() + request.wait_seconds
        escalation: Escalation | None = None
        while True:
            state = await handle.query(ids.STATE, result_type=ConversationState)
            escalation = _escalation_of(state, decision.message_id)
            if escalation is not None and escalation.note is not None:
                return HandoffFacts(
                    note=note_text(escalation.note, escalation),
                    queue=escalation.queue,
                    labels=labels_for(decision, escalation),
                )
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(NOTE_POLL_SECONDS)
        return HandoffFacts(
            note=decision_note(decision),
            queue=escalation.queue if escalation else None,
            labels=labels_for(decision, escalation),
            note_ready=False,
        )

    @activity.defn(name="assign_chatwoot_team")
    async def assign_chatwoot_team(self, request: TeamRequest) -> StepResult:
        team = self._settings.chatwoot_teams.get(request.queue or "")
        if team is None:
            return StepResult(done=False, detail=f"no Chatwoot team mapped to queue {request.queue}")
        api = self.api()
        meta = (await api.conversation(request.chatwoot)).get("meta")
        current = meta.get("team") if isinstance(meta, dict) else None
        if isinstance(current, dict) and current.get("id") == team:
            return StepResult(done=False, detail=f"already team {team}")
        await api.assign_team(request.chatwoot, team)
        return StepResult(done=True, detail=f"team {team}")

    @activity.defn(name="label_chatwoot_conversation")
    async def label_chatwoot_conversation(self, request: LabelRequest) -> StepResult:
        api = self.api()
        present = await api.labels(request.chatwoot)
        wanted = present + [label for label in request.labels if label not in present]
        if wanted == present:
            return StepResult(done=False, detail="labels already present")
        # Chatwoot replaces the conversation's labels with the list sent: send the union.
        await api.set_labels(request.chatwoot, wanted)
        return StepResult(done=True, detail=", ".join(wanted))

    @activity.defn(name="set_chatwoot_status")
    async def set_chatwoot_status(self, request: StatusRequest) -> StepResult:
        api = self.api()
        status = (await api.conversation(request.chatwoot)).get("status")
        if request.status == "open" and status != "pending":
            # Open already, or resolved/snoozed by an agent since: a retry must not undo what an agent did.
            return StepResult(done=False, detail=f"the conversation is {status}")
        if status == request.status:
            return StepResult(done=False, detail=f"already {status}")
        await api.toggle_status(request.chatwoot, request.status)
        return StepResult(done=True, detail=f"{status} -> {request.status}")

    @activity.defn(name="record_chatwoot_csat")
    async def record_chatwoot_csat(self, csat: ChatwootCsat) -> CsatRecorded:
        handle = self._client.get_workflow_handle(ids.conversation_workflow_id(csat.baton_conversation_id))
        escalation = None
        try:
            state = await handle.query(ids.STATE, result_type=ConversationState)
            escalation = _last_resolved(state)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        async with self._sessions.begin() as session:
            await records.record_conversation_csat(session, csat.baton_conversation_id, csat.rating)
            if escalation is not None and escalation.resolved_at is not None:
                record = ResolutionRecord(
                    conversation_id=csat.baton_conversation_id,
                    message_id=escalation.message_id,
                    agent_id=escalation.agent_id or "chatwoot",
                    resolved_at=escalation.resolved_at,
                    necessary=escalation.necessary if escalation.necessary is not None else True,
                    csat=csat.rating,
                    handback=escalation.handback,
                )
                await records.record_resolution(session, record)
        log.info("chatwoot_csat_recorded", conversation_id=csat.baton_conversation_id, rating=csat.rating)
        if escalation is None:
            return CsatRecorded()
        return CsatRecorded(
            escalation_id=escalation_id(csat.baton_conversation_id, escalation.message_id), at=escalation.resolved_at
        )
