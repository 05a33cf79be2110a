"""Request and response bodies of the gateway, and the conversation id as a path parameter."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, Field

from baton.contract.messages import ConversationStart, CustomerFacts, MessageIn


def _id_constraints() -> dict[str, Any]:
    # Read from the message contract so the path and the workflow id can never disagree.
    found: dict[str, Any] = {}
    for item in ConversationStart.model_fields["conversation_id"].metadata:
        for name in ("min_length", "max_length", "pattern"):
            if getattr(item, name, None) is not None:
                found[name] = getattr(item, name)
    return found


ConversationId = Annotated[str, Path(description="The chat backend's conversation id", **_id_constraints())]


def _start_field(name: str) -> Any:
    return ConversationStart.model_fields[name]


class MessageRequest(BaseModel):
    """A message in a conversation; the first one also starts the conversation."""

    customer_id: Annotated[str, _start_field("customer_id")]
    channel: Annotated[str, _start_field("channel")] = "chat"
    customer: CustomerFacts = Field(
        default_factory=CustomerFacts, description="Facts the backend knows; merged over CRM"
    )
    policy: Annotated[str | None, _start_field("policy")] = None
    message: MessageIn


class CloseBody(BaseModel):
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
