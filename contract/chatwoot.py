"""The Chatwoot adapter's contract: ids, the messages its workflows and activities exchange, its activities.

A Chatwoot conversation is a Baton conversation named ``chatwoot-<account>-<conversation>`` (Chatwoot's
per-account conversation number, as its REST paths use it); a Chatwoot message is the Baton message
``cw-<message id>``. Baton's /v1 API refuses messages to conversations in the ``chatwoot-`` namespace, so a
client cannot write into (or collide with the message ids of) a conversation Chatwoot owns. Everything Baton
posts to Chatwoot carries ``source_id = "baton:<key>"``: that is how a retry finds what an earlier attempt
posted, and how the gateway knows its own echoes. See docs/chatwoot.md.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import Field
from temporalio import activity

from baton.contract.labels import ContractModel
from baton.contract.messages import Decision

CONVERSATION_PREFIX = "chatwoot-"
MESSAGE_PREFIX = "cw-"
SOURCE_PREFIX = "baton:"

# Workflow type names (the gateway starts them by name, loading no workflow code).
REPLY_WORKFLOW = "ChatwootReplyWorkflow"
CSAT_WORKFLOW = "ChatwootCsatWorkflow"

_CONVERSATION = re.compile(r"^chatwoot-(\d+)-(\d+)(?:\.r(\d+))?$")


class ChatwootConversation(ContractModel):
    """Where in Chatwoot a Baton conversation lives."""

    account_id: int = Field(ge=1)
    conversation_id: int = Field(ge=1, description="Chatwoot's per-account number (display id)")

    @property
    def baton_id(self) -> str:
        return conversation_id(self.account_id, self.conversation_id)


def conversation_id(account_id: int, chatwoot_conversation: int, run: int = 1) -> str:
    """The Baton conversation of a Chatwoot conversation; ``run`` > 1 after Baton closed the earlier one."""
    base = f"{CONVERSATION_PREFIX}{account_id}-{chatwoot_conversation}"
    return base if run <= 1 else f"{base}.r{run}"


def message_id(chatwoot_message: int) -> str:
    return f"{MESSAGE_PREFIX}{chatwoot_message}"


def is_chatwoot(baton_conversation_id: str) -> bool:
    return baton_conversation_id.startswith(CONVERSATION_PREFIX)


def parse_conversation(baton_conversation_id: str) -> ChatwootConversation | None:
    """The Chatwoot conversation behind a Baton conversation id, or None when it is not one of Chatwoot's."""
    found = _CONVERSATION.match(baton_conversation_id)
    if found is None:
        return None
    return ChatwootConversation(account_id=int(found.group(1)), conversation_id=int(found.group(2)))


def source_id(key: str) -> str:
    """The ``source_id`` Baton gives a message it posts: stable across retries of one post."""
    return f"{SOURCE_PREFIX}{key}"


def reply_workflow_id(baton_conversation_id: str, baton_message_id: str) -> str:
    return f"chatwoot-reply-{baton_conversation_id}-{baton_message_id}"


def csat_workflow_id(baton_conversation_id: str, chatwoot_message: int, rating: int) -> str:
    # A customer may change the rating: each distinct rating is recorded once.
    return f"chatwoot-csat-{baton_conversation_id}-{chatwoot_message}-{rating}"


# --- workflow inputs --------------------------------------------------------------------------------


class ChatwootReply(ContractModel):
    """What Chatwoot must show after Baton decided on one incoming customer message."""

    chatwoot: ChatwootConversation
    baton_conversation_id: str
    message_id: str = Field(description="The customer's message in Baton (cw-<id>)")
    text: str = Field(description="The customer's message, for the bot endpoint")
    decision: Decision


class ChatwootCsat(ContractModel):
    """A CSAT survey answer: recorded on the conversation and on its last resolved escalation."""

    baton_conversation_id: str
    rating: int = Field(ge=1, le=5)
    chatwoot_message: int = Field(description="The survey message's id in Chatwoot")


# --- activity inputs and results ----------------------------------------------------------------------


class ChatwootPost(ContractModel):
    """One message Baton posts into a Chatwoot conversation; posted once per ``key``."""

    chatwoot: ChatwootConversation
    key: str = Field(description="Stable across retries; becomes the message's source_id")
    content: str
    private: bool = Field(default=False, description="A private note, seen by agents only")


class PostResult(ContractModel):
    posted: bool = Field(description="False when an earlier attempt had already posted it")
    message: int | None = Field(default=None, description="Chatwoot's message id")


class BotRequest(ContractModel):
    """What the configured bot endpoint receives (docs/chatwoot.md)."""

    conversation_id: str
    message_id: str
    text: str
    channel: str = "chatwoot"


class BotReply(ContractModel):
    reply: str | None = Field(default=None, description="None: the bot has nothing to say, or no endpoint is set")


class BotTranscriptEntry(ContractModel):
    """The bot's reply, recorded in Baton's transcript once Chatwoot shows it."""

    baton_conversation_id: str
    message_id: str
    text: str


class HandoffFacts(ContractModel):
    """What Chatwoot's agents see of an escalation: its note, its queue, its labels."""

    note: str
    queue: str | None = None
    labels: list[str] = Field(default_factory=list)
    note_ready: bool = Field(default=True, description="False when the note was written from the decision alone")


class HandoffFactsRequest(ContractModel):
    baton_conversation_id: str
    decision: Decision
    wait_seconds: float = Field(default=30, ge=0, description="How long to wait for the handoff note")


class TeamRequest(ContractModel):
    chatwoot: ChatwootConversation
    queue: str | None


class LabelRequest(ContractModel):
    chatwoot: ChatwootConversation
    labels: list[str]


class StatusRequest(ContractModel):
    chatwoot: ChatwootConversation
    status: Literal["open", "pending"] = "open"


class StepResult(ContractModel):
    done: bool = Field(description="False when nothing needed doing (already so, or not configured)")
    detail: str = ""


class CsatRecorded(ContractModel):
    escalation_id: str | None = None
    at: datetime | None = None


# --- the activities ----------------------------------------------------------------------------------


class Chatwoot:
    """Chatwoot's side effects; each is safe to retry (see docs/chatwoot.md, "Exactly once")."""

    @activity.defn
    async def post_to_chatwoot(self, post: ChatwootPost) -> PostResult:
        raise NotImplementedError

    @activity.defn
    async def ask_bot(self, request: BotRequest) -> BotReply:
        raise NotImplementedError

    @activity.defn
    async def record_bot_reply(self, entry: BotTranscriptEntry) -> StepResult:
        raise NotImplementedError

    @activity.defn
    async def chatwoot_handoff_facts(self, request: HandoffFactsRequest) -> HandoffFacts:
        raise NotImplementedError

    @activity.defn
    async def assign_chatwoot_team(self, request: TeamRequest) -> StepResult:
        raise NotImplementedError

    @activity.defn
    async def label_chatwoot_conversation(self, request: LabelRequest) -> StepResult:
        raise NotImplementedError

    @activity.defn
    async def set_chatwoot_status(self, request: StatusRequest) -> StepResult:
        raise NotImplementedError

    @activity.defn
    async def record_chatwoot_csat(self, csat: ChatwootCsat) -> CsatRecorded:
        raise NotImplementedError
