"""New conversations' rows, written by setup in shared transactions.

Setup writes a conversation's row before the first decision (activities/setup.py), so the write is on the
customer's path. Written one transaction each, conversations that start together queue for SQLite's single
writer, whose busy handler sleeps between tries: at 50 starting at once on two cores some waited past a second.
Here every row that is waiting when a write begins goes into the same statement: one writer, one commit for a
burst, and a fraction of the CPU of rows written alone.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from baton.activities import metrics
from baton.contract.records import ConversationStartRecord
from baton.logging import get_logger
from baton.store import records
from baton.store.database import session_factory

log = get_logger(__name__)


class StartRows:
    """Writes conversations' rows; `write` returns once its row is committed, or raises what the commit raised.

    A row whose write fails fails every row of its transaction: each caller falls back to the workflow's own
    activity, which writes its row alone (every write is an idempotent upsert)."""

    def __init__(self, store: AsyncEngine | async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory(store) if isinstance(store, AsyncEngine) else store
        self._waiting: list[tuple[ConversationStartRecord, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, record: ConversationStartRecord) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((record, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name="baton-start-rows")
        # Shielded: a caller that stops waiting (its deadline) leaves the row to be written with the rest.
        await asyncio.shield(done)

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self._sessions.begin() as session:
                    await records.record_conversation_starts(session, [record for record, _ in batch])
            except Exception as err:
                metrics.store_write_failure("conversation_start", type(err).__name__)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(err)
                        done.exception()  # a caller gone past its deadline never reads it
                continue
            for record, done in batch:
                log.info("conversation_start_recorded", conversation_id=record.conversation_id, rows=len(batch))
                if not done.done():
                    done.set_result(None)
