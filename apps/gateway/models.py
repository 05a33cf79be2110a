"""Request and response bodies of the gateway, and the conversation id as a path parameter.

The request bodies are the contract's models with the API's own, stricter bounds on top: ids match
documented patterns (contract/ids.py: a client's id never contains ":", which Baton keeps for the ids it
makes itself), every string is text Temporal can store (no lone surrogate, no NUL), numbers are finite, and
values that end up in a search attribute or in every later event of the history have a length. The contract
models stay as they were, so histories recorded under looser rules still replay; the bounds apply where a
request enters Baton.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, Field, field_validator

from baton.contract.ids import CLIENT_ID_PATTERN, CUSTOMER_ID_PATTERN, ID_MAX_CHARS
from baton.contract.messages import CustomerFacts, Incident, MessageIn, PickupRequest, ResolveRequest

# Bounds on the customer facts a backend sends. The tier becomes the `BatonTier` search attribute (Temporal
# refuses values over 2,048 bytes); the facts travel in the conversation's input and in every continue-as-new,
# so a few megabytes of flags would fail the start on Temporal's payload limit.
SHORT_TEXT_CHARS = 100
"""tier, lifecycle_stage, each flag"""
MAX_FLAGS = 100
TIMEZONE_CHARS = 64

ConversationId = Annotated[
    str,
    Path(
        description="The chat backend's conversation id: letters, digits, '.', '_' and '-', starting with a "
        f"letter or digit, at most {ID_MAX_CHARS} characters (never ':', which Baton keeps for its own ids)",
        min_length=1,
        max_length=ID_MAX_CHARS,
        pattern=CLIENT_ID_PATTERN,
    ),
]


def unstorable(value: Any) -> bool:
    """A string (or strings in a list) that cannot be stored as UTF-8 text: a lone surrogate or a NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, list | tuple):
        return any(unstorable(item) for item in value)
    if isinstance(value, dict):
        return any(unstorable(key) or unstorable(item) for key, item in value.items())
    return False


class StorableText(BaseModel):
    """Mixed into every request body: each string field must be text that UTF-8 (and so Temporal) can hold."""

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if unstorable(value):
            raise ValueError("must be valid Unicode text (no lone surrogate, no NUL character)")
        return value


class CustomerFactsBody(StorableText, CustomerFacts):
    """CustomerFacts as a backend may send them."""

    tier: str | None = Field(default=None, max_length=SHORT_TEXT_CHARS)
    mrr: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    health: float | None = Field(default=None, ge=0, le=100, allow_inf_nan=False)
    lifecycle_stage: str | None = Field(default=None, max_length=SHORT_TEXT_CHARS)
    flags: list[Annotated[str, Field(max_length=SHORT_TEXT_CHARS)]] = Field(default_factory=list, max_length=MAX_FLAGS)
    last_escalation_agent: str | None = Field(default=None, max_length=ID_MAX_CHARS)
    timezone: str | None = Field(
        default=None, max_length=TIMEZONE_CHARS, description="IANA zone: callback times are given in it"
    )


class MessageBody(StorableText, MessageIn):
    """A message as a backend sends it; `message_id` in the client id pattern."""

    message_id: str = Field(
        min_length=1,
        max_length=ID_MAX_CHARS,
        pattern=CLIENT_ID_PATTERN,
        description="Chosen by the backend, stable across retries: letters, digits, '.', '_' and '-', starting "
        "with a letter or digit (never ':', which Baton keeps for its own message ids)",
    )


class MessageRequest(StorableText):
    """A message in a conversation; the first one also starts the conversation."""

    customer_id: str = Field(
        min_length=1,
        max_length=ID_MAX_CHARS,
        pattern=CUSTOMER_ID_PATTERN,
        description="Letters, digits, '.', '_', '-', '@' and '+' (an email address will do), starting with a "
        "letter or digit",
    )
    channel: str = Field(default="chat", min_length=1, max_length=40)
    customer: CustomerFactsBody = Field(
        default_factory=CustomerFactsBody, description="Facts the backend knows; merged over CRM"
    )
    policy: str | None = Field(
        default=None,
        max_length=ID_MAX_CHARS,
        pattern=r"^[a-z][a-z0-9_\-]*$",
        description="Policy name under policies/; the worker's default when unset",
    )
    message: MessageBody


class PickupBody(StorableText, PickupRequest):
    """PickupRequest as an agent's tool sends it."""


class ResolveBody(StorableText, ResolveRequest):
    """ResolveRequest as an agent's tool sends it."""


class IncidentBody(StorableText, Incident):
    """Incident as an operator sends it."""


class CloseBody(StorableText):
    reason: str = Field(default="closed", min_length=1, max_length=200)


class CloseAccepted(BaseModel):
    conversation_id: str
    status: Literal["closing", "already_closed"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ErrorOut(BaseModel):
    detail: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of an endpoint that may answer with these error statuses."""
    return {code: {"model": ErrorOut} for code in codes}
