"""What the support leads' page (/ops) shows, read from Temporal and the store at each request.

Three sources, each read on its own so that one failing leaves the others on the page:
- the queue workflows' `entries` query: who waits, in serving order, since when (the authority on waiting);
- Temporal visibility, by Baton's search attributes: each escalated conversation's triggers, tier and
  segment, and the conversations an agent has (`BatonPhase="with_agent"`);
- the operations workflow's `status` query: the surge and the declared incident.
The month's report figures come from the store, as `baton report` computes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError, RPCStatusCode

from baton.apps import client as baton_client
from baton.contract import ids
from baton.contract import search_attributes as sa
from baton.contract.messages import OperationsStatus, Phase, QueueEntry
from baton.logging import get_logger
from baton.policies.schema import Policy
from baton.settings import Settings

if TYPE_CHECKING:
    from baton.apps.report.build import Report

log = get_logger("baton.gateway")

T = TypeVar("T")

READ_TIMEOUT_SECONDS = 5.0
VISIBILITY_LIMIT = 500  # live conversations listed; a page with more would not be read anyway


@dataclass(frozen=True)
class Listed:
    """One live conversation as Temporal visibility lists it (search attributes: ids and labels, no text)."""

    conversation_id: str
    phase: str | None
    urgency: str | None
    triggers: tuple[str, ...]
    queue: str | None
    agent: str | None
    tier: str | None
    segment: str | None
    started_at: datetime | None
    waiting_since: datetime | None = None


@dataclass(frozen=True)
class Waiting:
    """A conversation waiting in a queue for a person."""

    conversation_id: str
    position: int
    urgency: str
    waiting_since: datetime
    wait_seconds: float
    sla_seconds: float | None
    raised: int
    callback: bool
    listed: Listed | None  # None until visibility has caught up with the escalation

    @property
    def breached(self) -> bool:
        return self.sla_seconds is not None and self.wait_seconds > self.sla_seconds


@dataclass(frozen=True)
class QueueView:
    name: str
    waiting: list[Waiting]

    @property
    def breached(self) -> int:
        return sum(1 for w in self.waiting if w.breached)

    @property
    def longest_wait_seconds(self) -> float:
        return max((w.wait_seconds for w in self.waiting), default=0.0)


@dataclass
class Board:
    now: datetime
    queues: list[QueueView] = field(default_factory=list)
    with_agent: list[Listed] = field(default_factory=list)
    # Escalated but in no live queue: after hours (a callback is promised at the opening) or on an email or
    # ticket channel (answered by reply); they join a queue later, or never.
    not_queued: list[Listed] = field(default_factory=list)
    operations: OperationsStatus | None = None
    problems: list[str] = field(default_factory=list)  # what could not be read, said on the page


def queue_names(policy: Policy) -> list[str]:
    """Every queue the policy can route to, in name order."""
    routing = policy.handoff.routing
    names = {routing.default_queue, routing.general_queue, *routing.trigger_queues.values()}
    return sorted(names | set(routing.segment_queues.values()))


def visibility_query(task_queue: str) -> str:
    """Live conversations of this deployment that wait for or have a person (its task queue scopes it)."""
    quoted = task_queue.replace("\\", "\\\\").replace('"', '\\"')
    phases = ", ".join(f'"{p.value}"' for p in (Phase.ESCALATED, Phase.WITH_AGENT))
    return (
        f'WorkflowType = "{ids.CONVERSATION_WORKFLOW}" AND TaskQueue = "{quoted}" '
        f'AND ExecutionStatus = "Running" AND {sa.PHASE.name} IN ({phases})'
    )


def listed(execution: WorkflowExecution) -> Listed:
    attributes = execution.typed_search_attributes
    prefix = ids.conversation_workflow_id("")
    conversation_id = execution.id.removeprefix(prefix)
    return Listed(
        conversation_id=conversation_id,
        phase=attributes.get(sa.PHASE),
        urgency=attributes.get(sa.URGENCY),
        triggers=tuple(attributes.get(sa.TRIGGERS) or ()),
        queue=attributes.get(sa.QUEUE),
        agent=attributes.get(sa.AGENT),
        tier=attributes.get(sa.TIER),
        segment=attributes.get(sa.SEGMENT),
        started_at=execution.start_time,
        waiting_since=attributes.get(sa.WAITING_SINCE),
    )


async def list_live(client: Client, task_queue: str) -> list[Listed]:
    query = visibility_query(task_queue)
    return [listed(execution) async for execution in client.list_workflows(query, limit=VISIBILITY_LIMIT)]


async def queue_entries(client: Client, queue: str, task_queue: str) -> list[QueueEntry]:
    handle = client.get_workflow_handle(ids.queue_workflow_id(queue, task_queue))
    try:
        return await handle.query("entries", result_type=list[QueueEntry])
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return []  # no one has waited in this queue yet
        raise


def sla_seconds(policy: Policy, urgency: str) -> float | None:
    step = getattr(policy.handoff.ladder, urgency, None)
    return step.sla.total_seconds() if step is not None else None


def waiting_rows(
    entries: Sequence[QueueEntry], by_id: dict[str, Listed], policy: Policy, now: datetime
) -> list[Waiting]:
    return [
        Waiting(
            conversation_id=entry.conversation_id,
            position=position,
            urgency=entry.urgency,
            waiting_since=entry.enqueued_at,
            wait_seconds=max(0.0, (now - entry.enqueued_at).total_seconds()),
            sla_seconds=sla_seconds(policy, entry.urgency),
            raised=entry.boost,
            callback=entry.callback,
            listed=by_id.get(entry.conversation_id),
        )
        for position, entry in enumerate(entries, start=1)
    ]


async def bounded(awaitable: Awaitable[T]) -> T:
    async with asyncio.timeout(READ_TIMEOUT_SECONDS):
        return await awaitable


def _problem(what: str, err: BaseException) -> str:
    log.warning("ops_read_failed", what=what, error=type(err).__name__)
    return f"{what} did not answer ({type(err).__name__}); shown without it."


async def read_board(client: Client, settings: Settings, policy: Policy) -> Board:
    """The live part of the page: queues, conversations with an agent, the surge."""
    board = Board(now=datetime.now(UTC))
    names = queue_names(policy)

    operations, live, *entries = await asyncio.gather(
        bounded(baton_client.operations_status(client, settings.task_queue)),
        bounded(list_live(client, settings.task_queue)),
        *(bounded(queue_entries(client, name, settings.task_queue)) for name in names),
        return_exceptions=True,
    )
    if isinstance(operations, BaseException):
        board.problems.append(_problem("The operations workflow (surge and incident)", operations))
    else:
        board.operations = operations
    by_id: dict[str, Listed] = {}
    if isinstance(live, BaseException):
        board.problems.append(_problem("Temporal visibility (triggers, conversations with an agent)", live))
    else:
        by_id = {row.conversation_id: row for row in live}
        board.with_agent = sorted(
            (row for row in live if row.phase == Phase.WITH_AGENT.value),
            key=lambda row: (row.agent or "", row.conversation_id),
        )
    for name, result in zip(names, entries, strict=True):
        if isinstance(result, BaseException):
            board.problems.append(_problem(f"Queue {name}", result))
            continue
        board.queues.append(QueueView(name, waiting_rows(result, by_id, policy, board.now)))
    if len(board.queues) == len(names):  # only when every queue answered: else "not queued" would be a guess
        queued = {row.conversation_id for queue in board.queues for row in queue.waiting}
        board.not_queued = sorted(
            (row for row in by_id.values() if row.phase == Phase.ESCALATED.value and row.conversation_id not in queued),
            key=lambda row: (row.waiting_since or row.started_at or board.now, row.conversation_id),
        )
    return board


@dataclass(frozen=True)
class MonthReport:
    report: Report | None
    problem: str | None = None


async def read_month_report(settings: Settings, now: datetime) -> MonthReport:
    """This month's report against last month's, as `baton report --month` computes it."""
    # Imported here: the report reads the store, and importing the gateway loads no SQLAlchemy.
    from baton.apps.report.build import load_report
    from baton.apps.report.months import Month

    try:
        async with asyncio.timeout(READ_TIMEOUT_SECONDS * 2):
            return MonthReport(await load_report(settings.database_url, Month.containing(now)))
    except Exception as err:  # the live part of the page must show even when the store does not answer
        return MonthReport(None, _problem("The store (this month's report)", err))
