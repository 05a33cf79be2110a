"""An agent marks a missed escalation: "this should have come to me earlier", from which customer message.

Agents do it at pickup or at resolve, when they read the transcript. The conversation's own workflow says which
messages it holds, so the message id is checked against the transcript (a customer message of this
conversation, or 422 naming ``message_id``); the label goes to the store as `baton review label --missed` writes
it, with the agent as the reviewer. The store is opened only here, on the first call: importing the gateway
loads no SQLAlchemy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field
from temporalio.client import Client

from baton.apps import client as baton_client
from baton.apps.gateway.auth import caller_of, check_agent
from baton.apps.gateway.conversations import read_state
from baton.apps.gateway.errors import field_errors
from baton.apps.gateway.models import ConversationId, StorableText, error_responses
from baton.contract.messages import MAX_ID_CHARS
from baton.logging import get_logger
from baton.settings import Settings

log = get_logger("baton.gateway")
NOTE_CHARS = 2000


class MissedBody(StorableText):
    agent_id: Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
    message_id: Annotated[
        str,
        Field(min_length=1, max_length=MAX_ID_CHARS, description="The customer message it should have come at"),
    ]
    note: Annotated[str, Field(max_length=NOTE_CHARS)] | None = None


class MissedRecorded(BaseModel):
    conversation_id: str
    message_id: str
    agent_id: str


def add_routes(routes: APIRouter, client: Client, settings: Settings, decision_timeout: float) -> None:
    @routes.post(
        "/conversations/{conversation_id}/missed",
        response_model=MissedRecorded,
        responses=error_responses(404, 503, 504),
        summary="An agent marks that the conversation should have come to a person earlier, from which message",
    )
    async def missed(conversation_id: ConversationId, body: MissedBody, request_: Request) -> MissedRecorded:
        check_agent(caller_of(request_), body.agent_id)  # an agent token's agent marks only as itself
        state = await read_state(client, conversation_id, decision_timeout)
        bound = log.bind(conversation_id=conversation_id, workflow_id=baton_client.workflow_id(conversation_id))
        entry = next((m for m in state.transcript if m.message_id == body.message_id), None)
        if entry is None or entry.role != "customer":
            what = "not a message of this conversation" if entry is None else f"a message of the {entry.role}"
            problem = f"message_id: {body.message_id!r} is {what}; name the customer message it should have come at"
            raise field_errors(status.HTTP_422_UNPROCESSABLE_CONTENT, [problem], ("body",))
        # Imported here: the store's modules load on the first label, never with the gateway.
        from sqlalchemy.exc import SQLAlchemyError

        from baton.apps.report.loading import ReportError
        from baton.apps.review import label_missed

        try:
            await label_missed(
                settings.database_url,
                conversation_id,
                body.message_id,
                body.agent_id,
                body.note,
                source="agent",
                known_conversation=True,
            )
        except (SQLAlchemyError, ReportError, OSError) as err:
            bound.error("store_unavailable", error=type(err).__name__)
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the store cannot record the label now") from err
        bound.info("missed_escalation_marked", agent_id=body.agent_id, message_id=body.message_id)
        return MissedRecorded(conversation_id=conversation_id, message_id=body.message_id, agent_id=body.agent_id)
