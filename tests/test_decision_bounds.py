"""No decision waits past its bounds: a slow worker gets the client a 503 with Retry-After (the retry with the
same message_id is answered with the decision, applied once), and a surge state that cannot be read in time
leaves the escalation on the last known state instead of holding it."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from baton.activities.operations import STATUS_READ_BOUND_SECONDS, SurgeReader
from baton.apps import client as baton
from baton.apps.gateway import create_app
from baton.contract.ids import operations_workflow_id
from baton.contract.messages import (
    ConversationStart,
    CustomerFacts,
    MessageIn,
    OperationsState,
)
from baton.settings import Settings
from baton.worker.wiring import build_worker
from baton.workflows.operations import OperationsWorkflow
from tests.test_gateway import _body, _conversation, _running


class GatedCrm:
    """A CRM that answers only once the test opens the gate: the worker is slow for as long as it is shut."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls = 0

    async def fetch(self, customer_id: str) -> CustomerFacts | None:
        self.calls += 1
        await self.gate.wait()
        return CustomerFacts(tier="pro")


async def test_a_decision_not_ready_in_time_is_a_503_and_the_retry_gets_it_once(
    client: Client, settings: Settings
) -> None:
    crm = GatedCrm()
    conversation = _conversation()
    app = create_app(client, settings, decision_timeout=0.5)
    body = _body("I want to talk to a person, now", "m1")
    async with build_worker(client, settings, crm=crm), _running(settings, client, app=app) as http:
        url = f"/v1/conversations/{conversation}/messages"
        first = await http.post(url, json=body)
        assert first.status_code == 503, first.text
        assert int(first.headers["Retry-After"]) > 0
        assert "retry with the same message_id" in first.json()["detail"]
        crm.gate.set()  # the worker catches up; the first request is applied meanwhile
        retried = await _retry_until_decided(http, url, body)
        again = await http.post(url, json=body)
        state = (await http.get(f"/v1/conversations/{conversation}")).json()
    assert retried.status_code == again.status_code == 200, retried.text
    assert retried.json() == again.json()
    assert retried.json()["action"] == "escalate"
    # Applied once: one customer entry and one acknowledgement for m1, one escalation.
    ids = [entry["message_id"] for entry in state["transcript"]]
    assert ids.count("m1") == 1, ids
    assert sum(1 for i in ids if i.startswith("m1")) == 2, ids  # m1 and its acknowledgement
    assert state["escalation"]["message_id"] == "m1"


async def _retry_until_decided(http: httpx.AsyncClient, url: str, body: dict[str, object]) -> httpx.Response:
    """A client following the documented rule: on 503, wait Retry-After and send the same message again."""
    for _ in range(10):
        response = await http.post(url, json=body)
        if response.status_code != 503:
            return response
        await asyncio.sleep(float(response.headers["Retry-After"]))
    raise AssertionError("no decision after 10 retries")


async def _park_operations_workflow(client: Client, task_queue: str) -> None:
    """The operations workflow of `task_queue`, running where no worker polls: every query to it hangs, as one
    stuck behind a busy worker's queue does."""
    await client.start_workflow(
        OperationsWorkflow.run,
        OperationsState(),
        id=operations_workflow_id(task_queue),
        task_queue=f"{task_queue}-nobody",
    )


async def test_an_escalation_does_not_wait_on_an_unanswered_surge_read(
    env: WorkflowEnvironment, settings: Settings, task_queue: str
) -> None:
    client = env.client
    await _park_operations_workflow(client, task_queue)
    try:
        async with build_worker(client, settings):
            start = ConversationStart(conversation_id=f"c-{uuid.uuid4().hex[:8]}", customer_id="cus-1")
            begun = time.monotonic()
            decision = await baton.send_message(
                client, task_queue, start, MessageIn(message_id="m1", role="customer", text="I want a human agent")
            )
            took = time.monotonic() - begun
            history = await client.get_workflow_handle(baton.workflow_id(start.conversation_id)).fetch_history()
    finally:
        await client.get_workflow_handle(operations_workflow_id(task_queue)).terminate("test cleanup")
    assert decision.action == "escalate" and not decision.surge
    # Before the bound, five attempts of 5 s each could hold this decision for 25 s.
    assert took < 5, took
    markers = [e for e in history.events if e.HasField("marker_recorded_event_attributes")]
    surge = [m for m in markers if b"operations_status" in m.marker_recorded_event_attributes.SerializeToString()]
    assert len(surge) == 1  # one attempt, recorded, answered with the fallback
    assert b'"stale":true' in surge[0].marker_recorded_event_attributes.SerializeToString()


async def test_the_surge_reader_reads_once_at_a_time_and_answers_within_its_bound(
    env: WorkflowEnvironment, task_queue: str
) -> None:
    client = env.client
    reader = SurgeReader(client, task_queue)
    # No operations workflow yet: "no surge", read and cached.
    first = await reader.status()
    assert not first.surge and not first.stale and first.read_at is not None
    await _park_operations_workflow(client, task_queue)
    try:
        await asyncio.sleep(1.1)  # past the cache: the next reads must go to the (hanging) workflow
        begun = time.monotonic()
        answers = await asyncio.gather(*(reader.status() for _ in range(20)))
        took = time.monotonic() - begun
        refresh = reader._refresh
        assert refresh is not None and not refresh.done()  # one read in flight for all twenty
    finally:
        await client.get_workflow_handle(operations_workflow_id(task_queue)).terminate("test cleanup")
    assert took < STATUS_READ_BOUND_SECONDS + 1.0, took
    assert all(a.stale and not a.surge and a.read_at == first.read_at for a in answers)
