"""Activities that write a conversation's milestones to the store (see store/records.py).

Every write is an idempotent upsert, so Temporal may retry any of them freely,
even after a commit whose acknowledgement was lost. A record the database
rejects outright (a constraint it will never satisfy) fails without retrying.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from baton.activities import metrics
from baton.contract.activities import Records
from baton.contract.records import (
    ConversationEndRecord,
    ConversationStartRecord,
    EscalationRecord,
    IncidentRecord,
    PickupRecord,
    ResolutionRecord,
)
from baton.logging import get_logger
from baton.store import records
from baton.store.database import session_factory

log = get_logger(__name__)

R = TypeVar("R", bound=BaseModel)


class RecordActivities(Records):
    """The store's activities; give them the worker's engine (or a session factory on it)."""

    def __init__(self, store: AsyncEngine | async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory(store) if isinstance(store, AsyncEngine) else store

    async def _write(
        self, write: Callable[[AsyncSession, R], Awaitable[None]], record: R, event: str, **ids: str
    ) -> None:
        try:
            async with self._sessions.begin() as session:
                await write(session, record)
        except (IntegrityError, DataError) as err:
            error = type(err.orig or err).__name__
            metrics.store_write_failure(event.removesuffix("_recorded"), error)
            log.error(f"{event}_rejected", error_type=error, **ids)
            raise ApplicationError(
                f"the store rejected the record: {error}", type="RecordRejected", non_retryable=True
            ) from err
        except Exception as err:
            # Every failed attempt counts, also those Temporal retries (a database down): alert on the rate.
            metrics.store_write_failure(event.removesuffix("_recorded"), type(err).__name__)
            raise
        log.info(event, attempt=activity.info().attempt, **ids)

    @activity.defn(name="record_conversation_start")
    async def record_conversation_start(self, record: ConversationStartRecord) -> None:
        await self._write(
            records.record_conversation_start,
            record,
            "conversation_start_recorded",
            conversation_id=record.conversation_id,
        )

    @activity.defn(name="record_escalation")
    async def record_escalation(self, record: EscalationRecord) -> None:
        await self._write(
            records.record_escalation,
            record,
            "escalation_recorded",
            conversation_id=record.conversation_id,
            escalation_id=record.escalation_id,
        )

    @activity.defn(name="record_pickup")
    async def record_pickup(self, record: PickupRecord) -> None:
        await self._write(
            records.record_pickup,
            record,
            "pickup_recorded",
            conversation_id=record.conversation_id,
            escalation_id=record.escalation_id,
            agent_id=record.agent_id,
        )

    @activity.defn(name="record_resolution")
    async def record_resolution(self, record: ResolutionRecord) -> None:
        await self._write(
            records.record_resolution,
            record,
            "resolution_recorded",
            conversation_id=record.conversation_id,
            escalation_id=record.escalation_id,
            agent_id=record.agent_id,
        )

    @activity.defn(name="record_conversation_end")
    async def record_conversation_end(self, record: ConversationEndRecord) -> None:
        await self._write(
            records.record_conversation_end,
            record,
            "conversation_end_recorded",
            conversation_id=record.conversation_id,
        )

    @activity.defn(name="record_incident")
    async def record_incident(self, record: IncidentRecord) -> None:
        await self._write(records.record_incident, record, "incident_recorded", incident_id=record.id)

    @property
    def all(self) -> list[Callable[..., Awaitable[None]]]:
        """Every activity here, for a worker's ``activities=[...]``."""
        return [
            self.record_conversation_start,
            self.record_escalation,
            self.record_pickup,
            self.record_resolution,
            self.record_conversation_end,
            self.record_incident,
        ]
