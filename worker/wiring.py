"""Build workers the same way everywhere: dev, tests, replay (clients come from baton.worker.connection)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from baton.activities.chatwoot import ChatwootActivities
from baton.activities.crm import CrmAdapter, build_crm
from baton.activities.delivery import DeliveryActivities
from baton.activities.handoff import HandoffActivities
from baton.activities.judge import JudgeActivities
from baton.activities.operations import OperationsActivities
from baton.activities.policy import PolicyStore
from baton.activities.records import RecordActivities
from baton.activities.routing import RoutingActivities
from baton.activities.scoring import ScoringActivities
from baton.activities.setup import SetupActivities
from baton.activities.start_rows import StartRows
from baton.classifier.scorer import Scorer, scorer_for
from baton.settings import Settings
from baton.store.database import create_engine
from baton.workflows.chatwoot import ChatwootCsatWorkflow, ChatwootReplyWorkflow
from baton.workflows.conversation import ConversationWorkflow
from baton.workflows.customer import CustomerWorkflow
from baton.workflows.operations import OperationsWorkflow
from baton.workflows.queue import QueueWorkflow

WORKFLOWS = [
    ConversationWorkflow,
    QueueWorkflow,
    CustomerWorkflow,
    OperationsWorkflow,
    ChatwootReplyWorkflow,
    ChatwootCsatWorkflow,
]


@lru_cache(maxsize=8)
def _store_engine(url: str) -> AsyncEngine:
    # One engine (connection pool) per database per process, shared by every worker built here.
    return create_engine(url)


def build_activities(
    client: Client,
    settings: Settings,
    task_queue: str,
    crm: CrmAdapter | None = None,
    classifier: Scorer | None = None,
) -> list[Callable[..., Any]]:
    operations = OperationsActivities(client, task_queue)
    setup = SetupActivities(
        crm or build_crm(settings),
        PolicyStore(settings.policy),
        operations.customer_status,
        record_start=StartRows(_store_engine(settings.database_url)).write,
    )
    routing = RoutingActivities(client, task_queue)
    delivery = DeliveryActivities(settings)
    handoff = HandoffActivities(settings)
    judge = JudgeActivities(settings)
    scoring = ScoringActivities(classifier or scorer_for(settings))
    records = RecordActivities(_store_engine(settings.database_url))
    chatwoot = ChatwootActivities(client, settings, _store_engine(settings.database_url))
    return [
        *records.all,
        setup.prepare_conversation,
        routing.enqueue_conversation,
        routing.dequeue_conversation,
        routing.raise_queue_priority,
        routing.queue_status,
        operations.note_resolved_escalation,
        operations.report_to_operations,
        operations.operations_status,
        delivery.deliver_to_customer,
        delivery.post_helpdesk_ticket,
        delivery.page_on_call,
        handoff.write_handoff_note,
        judge.judge_message,
        scoring.score_message,
        chatwoot.post_to_chatwoot,
        chatwoot.ask_bot,
        chatwoot.record_bot_reply,
        chatwoot.chatwoot_handoff_facts,
        chatwoot.assign_chatwoot_team,
        chatwoot.label_chatwoot_conversation,
        chatwoot.set_chatwoot_status,
        chatwoot.record_chatwoot_csat,
    ]


# After a worker dies (kill -9), the server keeps sending each of its conversations' next task to the
# dead worker's sticky queue until this passes, then to the shared queue where a live worker replays it.
# The SDK's default is 10 s, which a decision after a crash spent in full (bench/sticky_failover.py).
STICKY_QUEUE_TIMEOUT = timedelta(seconds=2)


def build_worker(
    client: Client,
    settings: Settings,
    *,
    crm: CrmAdapter | None = None,
    task_queue: str | None = None,
    classifier: Scorer | None = None,
    max_cached_workflows: int | None = None,
    sticky_queue_timeout: timedelta = STICKY_QUEUE_TIMEOUT,
) -> Worker:
    queue = task_queue or settings.task_queue
    # The sticky cache's size (the SDK's default when None); 0 sends every task to the shared queue.
    cache = {} if max_cached_workflows is None else {"max_cached_workflows": max_cached_workflows}
    return Worker(
        client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=build_activities(client, settings, queue, crm, classifier),
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_seconds),
        sticky_queue_schedule_to_start_timeout=sticky_queue_timeout,
        **cache,
    )
