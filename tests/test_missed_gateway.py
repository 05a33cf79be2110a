"""An agent marks a missed escalation at the gateway ("this should have come to me earlier", from which
message): real HTTP on loopback, the real workflow on the time-skipping server, a real migrated store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from baton.apps import review
from baton.apps.gateway import create_app
from baton.settings import Settings
from baton.store.database import create_engine, migrate_async, session_factory
from baton.store.models import MissedLabel
from baton.worker.wiring import build_worker
from tests.test_gateway import _running


@pytest.fixture
async def store(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'baton.db'}"
    await migrate_async(url)
    return url


@pytest.fixture
async def gateway(env: WorkflowEnvironment, store: str, task_queue: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(task_queue=task_queue, database_url=store)
    async with (
        build_worker(env.client, settings),
        _running(settings, env.client, create_app(env.client, settings)) as http,
    ):
        yield http


def _message(message_id: str, text: str) -> dict:
    return {"customer_id": "cus_enterprise", "message": {"message_id": message_id, "role": "customer", "text": text}}


async def test_an_agent_marks_where_it_should_have_come_to_them(gateway: httpx.AsyncClient, store: str) -> None:
    cid = f"late-{uuid.uuid4().hex[:8]}"
    base = f"/v1/conversations/{cid}"
    for mid, text in (
        ("m1", "How do I export my invoices?"),
        ("m2", "That is not what I asked, the export button is missing"),
        ("m3", "I want to talk to a human"),
    ):
        response = await gateway.post(f"{base}/messages", json=_message(mid, text))
        assert response.status_code == 200, response.text
    assert response.json()["action"] == "escalate"
    picked = await gateway.post(f"{base}/pickup", json={"agent_id": "alice", "agent_name": "Alice"})
    assert picked.status_code == 200, picked.text

    marked = await gateway.post(f"{base}/missed", json={"agent_id": "alice", "message_id": "m2", "note": "stuck at m2"})
    assert marked.status_code == 200, marked.text
    assert marked.json() == {"conversation_id": cid, "message_id": "m2", "agent_id": "alice"}
    engine = create_engine(store)
    try:
        async with session_factory(engine)() as session:
            (label,) = (await session.scalars(select(MissedLabel))).all()
    finally:
        await engine.dispose()
    assert (label.conversation_id, label.message_id, label.reviewer, label.source, label.note) == (
        cid, "m2", "alice", "agent", "stuck at m2"
    )  # fmt: skip
    # What `baton export` reads for the label "escalate from m2".
    assert await review.newest_missed(store, [cid]) == {cid: "m2"}

    # Not a customer message of this conversation: 422 naming message_id, nothing written.
    for wrong in ("nope", "m3:ack"):
        refused = await gateway.post(f"{base}/missed", json={"agent_id": "alice", "message_id": wrong})
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"] == ["body", "message_id"]
    state = (await gateway.get(base)).json()
    baton_said = next(m["message_id"] for m in state["transcript"] if m["role"] == "baton")
    refused = await gateway.post(f"{base}/missed", json={"agent_id": "alice", "message_id": baton_said})
    assert refused.status_code == 422 and "a message of the baton" in refused.json()["detail"][0]["msg"]
    missing = await gateway.post(f"{base}/missed", json={"agent_id": "", "message_id": "m2"})
    assert missing.status_code == 422 and ["body", "agent_id"] in [e["loc"] for e in missing.json()["detail"]]
    unknown = await gateway.post("/v1/conversations/never-started/missed", json={"agent_id": "a", "message_id": "m1"})
    assert unknown.status_code == 404
    assert await review.newest_missed(store, [cid]) == {cid: "m2"}
