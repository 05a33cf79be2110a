"""`baton export`: real conversations on the dev server (it has visibility) back out as replay transcripts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from baton.apps.client import close, get_state, handle, pickup, resolve, send_message
from baton.apps.export import export_conversations, label_for, parse_when, transcript_line, visibility_query
from baton.apps.replay import ReplayConversation
from baton.contract.messages import (
    ConversationStart,
    ConversationState,
    CustomerFacts,
    Escalation,
    MessageIn,
    PickupRequest,
    ResolveRequest,
    Signals,
    TranscriptEntry,
)
from baton.settings import Settings
from baton.worker.wiring import build_worker
from tests.samples import PRODUCT_QUESTIONS

VISIBILITY_WAIT_SECONDS = 30.0
TOPICS = PRODUCT_QUESTIONS[:8]


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class World:
    client: Client
    address: str
    prefix: str
    policy: str
    since: datetime  # before the first batch
    middle: datetime  # between the first batch and the late conversation
    until: datetime  # after the late conversation
    orphan_until: datetime  # after the conversation whose worker is gone
    ids: dict[str, str] = field(default_factory=dict)  # name -> conversation id
    originals: dict[str, dict] = field(default_factory=dict)  # conversation id -> {escalated, at_message}
    runs: dict[str, int] = field(default_factory=dict)  # conversation id -> runs

    def mine(self, lines: list[dict]) -> list[dict]:
        return [line for line in lines if line["conversation_id"].startswith(self.prefix)]


class Driver:
    def __init__(self, client: Client, task_queue: str, prefix: str) -> None:
        self.client, self.task_queue, self.prefix = client, task_queue, prefix
        self.count = 0

    def start(self, name: str, **facts: object) -> ConversationStart:
        return ConversationStart(
            conversation_id=f"{self.prefix}-{name}",
            customer_id=f"{self.prefix}-cus-{name}",  # one customer each: no cooling period carries over
            customer=CustomerFacts.model_validate(facts),
        )

    async def settle(self, conversation_id: str) -> None:
        """Wait (bounded) until the conversation has no activity in flight.

        A message whose handler waits on an activity can be cut off when the run continues as new
        while it is in flight (the run awaits its note and records after checking that every
        handler has finished); the dev server here suggests continue-as-new every 40 events, so
        such messages are sent once the conversation is idle.
        """
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                description = await handle(self.client, conversation_id).describe()
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return  # not started yet
                raise
            if not description.raw_description.pending_activities:
                return
            await asyncio.sleep(0.02)

    async def say(self, start: ConversationStart, role: str, text: str, agent_id: str | None = None) -> str:
        await self.settle(start.conversation_id)
        self.count += 1
        message = MessageIn(message_id=f"m{self.count}", role=role, text=text, agent_id=agent_id)
        decision = await send_message(self.client, self.task_queue, start, message)
        return decision.action

    async def pickup(self, start: ConversationStart, agent_id: str, name: str | None = None) -> None:
        await self.settle(start.conversation_id)
        await pickup(self.client, start.conversation_id, PickupRequest(agent_id=agent_id, agent_name=name))

    async def resolve(self, start: ConversationStart, agent_id: str, necessary: bool) -> None:
        await self.settle(start.conversation_id)
        await resolve(self.client, start.conversation_id, ResolveRequest(agent_id=agent_id, necessary=necessary))

    async def finish(self, start: ConversationStart, reason: str) -> None:
        await close(self.client, start.conversation_id, reason=reason)
        await asyncio.wait_for(handle(self.client, start.conversation_id).result(), timeout=60)


def original_decision(state: ConversationState) -> dict:
    """What happened live, in the exported message numbering (customer and bot messages only)."""
    kept = [m.message_id for m in state.transcript if m.role in ("customer", "bot")]
    escalations = [*state.past_escalations, *([state.escalation] if state.escalation else [])]
    if not escalations:
        return {"escalated": False, "at_message": None}
    return {"escalated": True, "at_message": kept.index(escalations[0].message_id)}


async def wait_for_visibility(client: Client, prefix: str, finished: set[str], running: set[str]) -> None:
    """Visibility is eventually consistent: wait (bounded) until every conversation shows its final status."""
    query = f"WorkflowType = 'ConversationWorkflow' AND WorkflowId STARTS_WITH 'conversation-{prefix}'"
    deadline = time.monotonic() + VISIBILITY_WAIT_SECONDS
    while True:
        runs = [r async for r in client.list_workflows(query)]
        done = {
            r.id
            for r in runs
            if r.status not in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW)
        }
        live = {r.id for r in runs if r.status == WorkflowExecutionStatus.RUNNING}
        if {f"conversation-{c}" for c in finished} <= done and {f"conversation-{c}" for c in running} <= live:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"visibility did not catch up in {VISIBILITY_WAIT_SECONDS:g}s: {sorted(done)} {sorted(live)}")
        await asyncio.sleep(0.2)


async def _pause() -> datetime:
    """A boundary strictly between two batches' start times."""
    await asyncio.sleep(0.05)
    boundary = datetime.now(UTC)
    await asyncio.sleep(0.05)
    return boundary


@pytest.fixture(scope="module")
async def world(dev_env: WorkflowEnvironment) -> AsyncIterator[World]:
    client = dev_env.client
    prefix = f"exp{uuid.uuid4().hex[:8]}"
    settings = Settings(task_queue=f"export-{uuid.uuid4().hex[:8]}")
    drive = Driver(client, settings.task_queue, prefix)
    async with build_worker(client, settings):
        since = await _pause()

        # Escalated, and the agent says it was needed; long enough to continue as new.
        necessary = drive.start("necessary", tier="enterprise", mrr=25000, renewal_date="2027-09-30")
        for i, topic in enumerate(TOPICS):
            assert await drive.say(necessary, "customer", f"Thanks, that worked. {topic}") == "continue"
            await drive.say(necessary, "bot", f"Answer {i}: {'abcdefghij'[i] * 3} is covered in chapter {i}.")
        assert await drive.say(necessary, "customer", "I want to talk to a human please") == "escalate"
        await drive.pickup(necessary, "agent-1", "Ada")
        await drive.say(necessary, "agent", "Hi, I have your account open.", agent_id="agent-1")
        assert await drive.say(necessary, "customer", "Great, the export fails on big reports") == "human"
        await drive.resolve(necessary, "agent-1", necessary=True)
        await drive.finish(necessary, "resolved")

        # Escalated, and the agent says the bot could have handled it.
        unnecessary = drive.start("unnecessary", tier="mid_market", mrr=1800)
        await drive.say(unnecessary, "customer", "Where can I change my billing email?")
        await drive.say(unnecessary, "bot", "Open Settings > Billing and edit the email there.")
        assert await drive.say(unnecessary, "customer", "Please let me talk to a real person") == "escalate"
        await drive.pickup(unnecessary, "agent-2")
        await drive.say(unnecessary, "agent", "It is under Settings > Billing.", agent_id="agent-2")
        await drive.resolve(unnecessary, "agent-2", necessary=False)
        await drive.finish(unnecessary, "resolved")

        # Escalated, but the customer left before anyone picked it up: nobody judged it.
        undisposed = drive.start("undisposed", tier="smb", mrr=99)
        await drive.say(undisposed, "customer", "My invoice looks wrong")
        await drive.say(undisposed, "bot", "I can help with invoices. Which invoice number?")
        assert await drive.say(undisposed, "customer", "Can I speak to someone on your team?") == "escalate"
        await drive.finish(undisposed, "customer_left")

        # The bot solved it; the chat went idle afterwards.
        thanks = drive.start("thanks", tier="smb", mrr=49)
        await drive.say(thanks, "customer", "How do I reset my password?")
        await drive.say(thanks, "bot", "Go to Settings > Security and choose Reset password.")
        assert await drive.say(thanks, "customer", "Thanks, that worked!") == "continue"
        await drive.finish(thanks, "idle")

        # The customer went away with a question open.
        abandoned = drive.start("abandoned", tier="free", mrr=0)
        await drive.say(abandoned, "customer", "How do I add a teammate?")
        await drive.say(abandoned, "bot", "Open Team > Invite and enter their email address.")
        await drive.finish(abandoned, "customer_left")

        # Still going.
        still_open = drive.start("open", tier="mid_market", mrr=900)
        await drive.say(still_open, "customer", "Is there a mobile app?")
        await drive.say(still_open, "bot", "Yes, for iOS and Android.")

        middle = await _pause()
        # Later, and closed normally by the chat backend.
        late = drive.start("late", tier="business", mrr=700)
        await drive.say(late, "customer", "How do I export reports?")
        await drive.say(late, "bot", "Open Reports and choose Export.")
        await drive.finish(late, "closed")
        until = await _pause()

        # A conversation whose worker has gone: its state can no longer be queried.
        other = Settings(task_queue=f"export-gone-{uuid.uuid4().hex[:8]}")
        orphan = ConversationStart(conversation_id=f"{prefix}-orphan", customer_id=f"{prefix}-cus-orphan")
        async with build_worker(client, other):
            await send_message(client, other.task_queue, orphan, MessageIn(message_id="o1", role="customer", text="hi"))
            await close(client, orphan.conversation_id, reason="closed")
            await asyncio.wait_for(handle(client, orphan.conversation_id).result(), timeout=60)
        orphan_until = await _pause()

        starts = [necessary, unnecessary, undisposed, thanks, abandoned, still_open, late]
        names = ["necessary", "unnecessary", "undisposed", "thanks", "abandoned", "open", "late"]
        w = World(
            client=client,
            address=client.service_client.config.target_host,
            prefix=prefix,
            policy=settings.policy,
            since=since,
            middle=middle,
            until=until,
            orphan_until=orphan_until,
        )
        for name, start in zip(names, starts, strict=True):
            w.ids[name] = start.conversation_id
            state = await get_state(client, start.conversation_id)
            w.originals[start.conversation_id] = original_decision(state)
            w.runs[start.conversation_id] = state.runs
        finished = {c for n, c in w.ids.items() if n != "open"} | {orphan.conversation_id}
        await wait_for_visibility(client, prefix, finished, {w.ids["open"]})
        yield w
        await close(client, still_open.conversation_id, reason="test over")


def by_name(world: World, lines: list[dict]) -> dict[str, dict]:
    names = {cid: name for name, cid in world.ids.items()}
    return {names[line["conversation_id"]]: line for line in world.mine(lines)}


async def run_cli(world: World, *args: str, address: str | None = None) -> subprocess.CompletedProcess[str]:
    """The `baton` command in a subprocess; in a thread, so that this loop's worker keeps answering queries."""
    env = {**os.environ, "BATON_TEMPORAL_ADDRESS": address or world.address}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "baton.apps.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


# --- against the dev server -------------------------------------------------------------------------


async def test_export_labels_transcripts_and_leaves_out_open_ones(world: World) -> None:
    result = await export_conversations(world.client, world.since, world.until)
    lines = by_name(world, result.lines)
    assert set(lines) == {"necessary", "unnecessary", "undisposed", "thanks", "abandoned", "late"}
    assert f"conversation-{world.ids['open']}" in result.open_left_out
    assert not [s for s in result.skipped if s.workflow_id.startswith(f"conversation-{world.prefix}")]
    for line in lines.values():
        ReplayConversation.model_validate_json(json.dumps(line))
        assert {m["role"] for m in line["messages"]} <= {"customer", "bot"}
        assert line["started_at"] == line["messages"][0]["at"]
    # The label rule.
    assert lines["necessary"]["label"] == {"escalate": True, "urgency": "immediate"}
    assert lines["unnecessary"]["label"] == {"escalate": False}
    assert lines["thanks"]["label"] == {"escalate": False}  # idle close, but the customer said it worked
    assert lines["late"]["label"] == {"escalate": False}  # closed normally
    assert "label" not in lines["undisposed"] and "label" not in lines["abandoned"]
    # Customer facts and messages, without Baton's or the agent's words.
    necessary = lines["necessary"]
    assert necessary["customer"]["id"] == f"{world.prefix}-cus-necessary"
    assert necessary["customer"]["tier"] == "enterprise" and necessary["customer"]["mrr"] == 25000
    texts = [m["text"] for m in necessary["messages"]]
    assert len(texts) == 2 * len(TOPICS) + 2
    assert texts[-2:] == ["I want to talk to a human please", "Great, the export fails on big reports"]
    assert not any("Hi, I have your account open" in t or "support team" in t for t in texts)
    # One line per conversation even when it continued as new, read from its latest run.
    assert world.runs[world.ids["necessary"]] > 1
    latest = await handle(world.client, world.ids["necessary"]).describe()
    assert necessary["source"] == {"workflow_id": f"conversation-{world.ids['necessary']}", "run_id": latest.run_id}
    # Sorted by start time.
    starts = [line["started_at"] for line in world.mine(result.lines)]
    assert starts == sorted(starts)


async def test_include_open_and_the_date_window(world: World) -> None:
    with_open = by_name(
        world, (await export_conversations(world.client, world.since, world.until, include_open=True)).lines
    )
    assert "open" in with_open and "label" not in with_open["open"]
    assert len(with_open["open"]["messages"]) == 2

    first = await export_conversations(world.client, world.since, world.middle)
    assert set(by_name(world, first.lines)) == {"necessary", "unnecessary", "undisposed", "thanks", "abandoned"}
    second = await export_conversations(world.client, world.middle, world.until)
    assert set(by_name(world, second.lines)) == {"late"}
    before = await export_conversations(world.client, world.since - timedelta(hours=1), world.since)
    assert by_name(world, before.lines) == {}


async def test_a_conversation_without_a_worker_is_skipped_and_named(world: World) -> None:
    result = await export_conversations(
        world.client, world.until, world.orphan_until, query_timeout=timedelta(seconds=2)
    )
    assert world.mine(result.lines) == []
    [skipped] = [s for s in result.skipped if s.workflow_id.startswith(f"conversation-{world.prefix}")]
    assert skipped.workflow_id == f"conversation-{world.prefix}-orphan"
    assert "no worker answered the state query" in skipped.reason


async def test_cli_export_then_replay_reproduces_the_decisions(world: World, tmp_path: Path) -> None:
    out = tmp_path / "month.jsonl"
    result = await run_cli(world, "export", "--since", iso(world.since), "--until", iso(world.until), str(out))
    assert result.returncode == 0, result.stderr
    assert "exported 6 conversations" in result.stderr
    assert "left out 1 open conversation " in result.stderr
    assert "skipped 0" in result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    expected = (await export_conversations(world.client, world.since, world.until)).lines
    assert world.mine(lines) == world.mine(expected)

    with_open = tmp_path / "with-open.jsonl"
    result = await run_cli(
        world, "export", "--since", iso(world.since), "--until", iso(world.until), str(with_open), "--include-open"
    )
    assert result.returncode == 0, result.stderr
    ids = {json.loads(line)["conversation_id"] for line in with_open.read_text().splitlines()}
    assert world.ids["open"] in ids

    # Round trip: the export replays through the same policy to the same escalation decisions.
    ours = tmp_path / "ours.jsonl"
    ours.write_text("".join(json.dumps(line) + "\n" for line in world.mine(lines)))
    replay = await run_cli(world, "replay", str(ours), "--policy", world.policy)
    assert replay.returncode == 0, replay.stderr
    records = {r["conversation_id"]: r for r in map(json.loads, replay.stdout.splitlines())}
    assert set(records) == {line["conversation_id"] for line in world.mine(lines)}
    for cid, record in records.items():
        assert {"escalated": record["escalated"], "at_message": record["at_message"]} == world.originals[cid], cid
    assert "against labels (4)" in replay.stderr


async def test_cli_export_honours_review_labels(world: World, tmp_path: Path) -> None:
    """A reviewer's verdict (`baton review label`, in the store) overrides the agent's disposition in the export,
    as in the report: through the real CLI, the worker's own records and the store."""
    client, prefix = world.client, f"rev{uuid.uuid4().hex[:8]}"
    settings = Settings(task_queue=f"export-review-{uuid.uuid4().hex[:8]}")
    drive = Driver(client, settings.task_queue, prefix)
    async with build_worker(client, settings):
        since = await _pause()
        escalated: dict[str, str] = {}  # name -> escalation id
        for name, necessary in (("overruled", True), ("confirmed", False), ("unjudged", None)):
            start = drive.start(name, tier="mid_market", mrr=1500)
            await drive.say(start, "customer", "Where do I change my billing email?")
            await drive.say(start, "bot", "Open Settings > Billing and edit the email there.")
            assert await drive.say(start, "customer", "I want to talk to a human please") == "escalate"
            state = await get_state(client, start.conversation_id)
            assert state.escalation is not None
            escalated[name] = f"{start.conversation_id}:{state.escalation.message_id}"
            if necessary is not None:
                await drive.pickup(start, "agent-9")
                await drive.resolve(start, "agent-9", necessary=necessary)
            await drive.finish(start, "resolved" if necessary is not None else "customer_left")
        until = await _pause()
        await wait_for_visibility(client, prefix, {f"{prefix}-{n}" for n in escalated}, set())

        verdicts = {"overruled": "no", "confirmed": "yes", "unjudged": "no"}
        for name, verdict in verdicts.items():
            labelled = await run_cli(world, "review", "label", escalated[name], "--necessary", verdict)
            assert labelled.returncode == 0, labelled.stderr
        # A later verdict by another reviewer wins over an earlier one.
        await run_cli(world, "review", "label", escalated["unjudged"], "--necessary", "yes", "--reviewer", "kim")

        out = tmp_path / "reviewed.jsonl"
        result = await run_cli(world, "export", "--since", iso(since), "--until", iso(until), str(out))
        assert result.returncode == 0, result.stderr
        lines = {
            line["conversation_id"].removeprefix(f"{prefix}-"): line
            for line in map(json.loads, out.read_text().splitlines())
            if line["conversation_id"].startswith(prefix)
        }
        assert lines["overruled"]["label"] == {"escalate": False}  # the agent said yes, the review no
        assert lines["confirmed"]["label"] == {"escalate": True, "urgency": "immediate"}
        assert lines["unjudged"]["label"] == {"escalate": True, "urgency": "immediate"}  # kim's newer label

        # A store that was never created has no labels: the export says so and uses the dispositions.
        missing = f"sqlite+aiosqlite:///{tmp_path / 'never-created.db'}"
        result = await run_cli(
            world, "export", "--since", iso(since), "--until", iso(until), str(out), "--database-url", missing
        )
        assert result.returncode == 0, result.stderr
        assert "review labels not applied: no store at" in result.stderr
        unreviewed = {json.loads(line)["conversation_id"]: json.loads(line) for line in out.read_text().splitlines()}
        assert unreviewed[f"{prefix}-overruled"]["label"] == {"escalate": True, "urgency": "immediate"}


async def test_cli_refuses_bad_dates_and_an_unreachable_server(world: World, tmp_path: Path) -> None:
    out = str(tmp_path / "x.jsonl")
    bad = await run_cli(world, "export", "--since", "last month", out)
    assert bad.returncode == 2 and "not a date: 'last month'" in bad.stderr
    backwards = await run_cli(world, "export", "--since", "2026-10-02", "--until", "2026-10-01", out)
    assert backwards.returncode == 2 and "must be before --until" in backwards.stderr
    unreachable = await run_cli(world, "export", "--since", "2026-10-01", out, address="127.0.0.1:1")
    assert unreachable.returncode == 2 and "cannot reach Temporal at 127.0.0.1:1" in unreachable.stderr
    assert not Path(out).exists()


# --- the pieces, without a server ---------------------------------------------------------------------

NOW = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def conversation(
    *texts: tuple[str, str], closed: str | None = "closed", resolved_last: bool = False
) -> ConversationState:
    state = ConversationState(start=ConversationStart(conversation_id="c1", customer_id="cus-1"), closed_reason=closed)
    for i, (role, text) in enumerate(texts):
        entry = TranscriptEntry(message_id=f"m{i}", role=role, text=text, at=NOW + timedelta(seconds=10 * i))
        if role == "customer":
            entry.signals = Signals(sentiment=0, frustration=0, intents=["resolved"] if resolved_last else [])
        state.transcript.append(entry)
    return state


def escalation(necessary: bool | None, urgency: str = "queued") -> Escalation:
    return Escalation(at=NOW, message_id="m0", urgency=urgency, necessary=necessary)


@pytest.mark.parametrize(
    ("dispositions", "expected"),
    [
        ([True], {"escalate": True, "urgency": "queued"}),
        ([False, True], {"escalate": True, "urgency": "immediate"}),  # the necessary one's urgency
        ([False], {"escalate": False}),
        ([False, False], {"escalate": False}),
        ([None], None),
        ([False, None], None),
    ],
)
def test_label_from_dispositions(dispositions: list[bool | None], expected: dict | None) -> None:
    state = conversation(("customer", "help"))
    all_escalations = [escalation(d, "queued" if i == 0 else "immediate") for i, d in enumerate(dispositions)]
    state.past_escalations, state.escalation = all_escalations[:-1], all_escalations[-1]
    assert label_for(state, running=False) == expected
    assert label_for(state, running=True) == expected  # a disposition is a disposition


def test_a_review_label_overrides_the_disposition() -> None:
    state = conversation(("customer", "help"))
    state.escalation = escalation(True, "immediate")
    assert label_for(state, running=False) == {"escalate": True, "urgency": "immediate"}
    assert label_for(state, running=False, reviews={"c1:m0": False}) == {"escalate": False}
    assert label_for(state, running=False, reviews={"other:m0": False}) == {"escalate": True, "urgency": "immediate"}
    state.escalation = escalation(None)
    assert label_for(state, running=True, reviews={"c1:m0": True}) == {"escalate": True, "urgency": "queued"}


def test_label_without_escalation() -> None:
    question = ("customer", "How do I add a teammate?")
    assert label_for(conversation(question, closed="closed"), running=False) == {"escalate": False}
    assert label_for(conversation(question, closed="Resolved"), running=False) == {"escalate": False}
    assert label_for(conversation(question, closed="idle"), running=False) is None
    assert label_for(conversation(question, closed=None), running=False) is None  # terminated, say
    thanks = conversation(("customer", "Thanks, that worked!"), closed="idle", resolved_last=True)
    assert label_for(thanks, running=False) == {"escalate": False}
    assert label_for(conversation(question, closed=None), running=True) is None
    assert label_for(thanks, running=True) is None  # still open: it may yet escalate


def test_transcript_line_keeps_customer_and_bot_only() -> None:
    state = conversation(
        ("customer", "I want a human"), ("baton", "I'm bringing in..."), ("agent", "Hi"), ("customer", "ok")
    )
    state.start.customer = CustomerFacts(tier="smb")
    line = transcript_line(state, "conversation-c1", "run-1", running=False)
    assert [m["text"] for m in line["messages"]] == ["I want a human", "ok"]
    assert line["customer"] == {"id": "cus-1", "tier": "smb", "flags": []}
    assert line["started_at"] == "2026-10-05T09:00:00.000000Z"
    assert line["source"] == {"workflow_id": "conversation-c1", "run_id": "run-1"}
    ReplayConversation.model_validate(line)
    with pytest.raises(ValueError, match="no customer or bot messages"):
        transcript_line(conversation(("baton", "hello")), "conversation-c1", "run-1", running=False)


def test_dates_and_query() -> None:
    assert parse_when("2026-10-01") == datetime(2026, 10, 1, tzinfo=UTC)
    assert parse_when("2026-10-01T08:30:00") == datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
    assert parse_when("2026-10-01T08:30:00Z") == datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
    assert parse_when("2026-10-01T10:30:00+02:00") == datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
    for bad in ("yesterday", "2026-13-01", ""):
        with pytest.raises(ValueError, match="not a date"):
            parse_when(bad)
    since, until = parse_when("2026-10-01"), parse_when("2026-11-01")
    assert visibility_query(since, until) == (
        "WorkflowType = 'ConversationWorkflow' AND StartTime >= '2026-10-01T00:00:00.000000Z' "
        "AND StartTime < '2026-11-01T00:00:00.000000Z' AND ExecutionStatus != 'Running'"
    )
    assert "ExecutionStatus" not in visibility_query(since, until, include_open=True)
