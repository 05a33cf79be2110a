"""`baton report`, `baton review` and `baton db`, checked against figures worked out by hand.

The month under test is written by the real workflow: eleven conversations on a time-skipping server of
this module's own (so that its clock is ours to move), recorded by a worker into a fresh migrated store.
The month before is written directly with store.records. Every store runs on SQLite and, when
BATON_TEST_DATABASE_URL is set, on PostgreSQL too (a database of its own per fixture, as in test_store.py).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import pool, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from baton.apps import report as reporting
from baton.apps import review
from baton.apps.client import close, handle, pickup, resolve, send_message
from baton.apps.report import FIGURES, Month, ReportOptions
from baton.contract.messages import ConversationStart, CustomerFacts, Decision, MessageIn, PickupRequest, ResolveRequest
from baton.contract.records import (
    ConversationEndRecord,
    ConversationStartRecord,
    EscalationRecord,
    PickupRecord,
    ResolutionRecord,
    escalation_id,
)
from baton.settings import Settings
from baton.store import records
from baton.store.database import create_engine, migrate_async, session_factory
from baton.store.models import Conversation
from baton.worker.connection import register_search_attributes
from baton.worker.wiring import build_worker
from tests.clock import skip_time
from tests.conftest import server_binary

POSTGRES_ENV = "BATON_TEST_DATABASE_URL"
ROOT = Path(__file__).resolve().parent.parent
SECONDS = 2.0  # the test server's clock also runs in real time between calls: times are exact to this


# --- databases (the approach of test_store.py) --------------------------------------------------------------


def _backends() -> list[Any]:
    backends = [pytest.param("sqlite", id="sqlite")]
    if os.environ.get(POSTGRES_ENV):
        backends.append(pytest.param("postgresql", id="postgresql"))
    return backends


def _admin() -> AsyncEngine:
    return create_async_engine(os.environ[POSTGRES_ENV], isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)


@asynccontextmanager
async def fresh_store(backend: str, folder: Path) -> AsyncIterator[str]:
    """The URL of an empty, migrated store, dropped afterwards on PostgreSQL."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{folder / 'baton.db'}"
        await migrate_async(url)
        yield url
        return
    name = f"baton_report_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(os.environ[POSTGRES_ENV]).set(database=name).render_as_string(hide_password=False)
        await migrate_async(url)
        yield url
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(params=_backends())
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_store(request.param, tmp_path) as url:
        yield url


@asynccontextmanager
async def sessions_for(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


# --- rows written directly (the month before, and store-only scenarios) -------------------------------------


@dataclass
class Row:
    """One conversation, with at most one escalation, as the workflow would have recorded it."""

    cid: str
    segment: str
    start: datetime
    outcome: str = "bot_resolved"
    channel: str = "chat"
    messages: int = 1
    triggers: tuple[str, ...] = ()
    urgency: str = "queued"
    at_message: int = 1
    after: float = 0.0  # seconds from the first message to the escalation
    pickup: float | None = None  # seconds from the escalation to the pickup
    necessary: bool | None = None  # the agent's disposition; set = resolved
    csat: int | None = None
    conversation_csat: int | None = None

    @property
    def eid(self) -> str:
        return escalation_id(self.cid, f"m{self.at_message}")


async def write_rows(url: str, rows: Iterable[Row]) -> None:
    async with sessions_for(url) as sessions, sessions.begin() as session:
        for r in rows:
            await records.record_conversation_start(
                session,
                ConversationStartRecord(
                    conversation_id=r.cid, customer_id=f"cus-{r.cid}", channel=r.channel, started_at=r.start
                ),
            )
            escalated_at = r.start + timedelta(seconds=r.after)
            if r.outcome == "escalated":
                await records.record_escalation(
                    session,
                    EscalationRecord(
                        conversation_id=r.cid,
                        message_id=f"m{r.at_message}",
                        customer_id=f"cus-{r.cid}",
                        channel=r.channel,
                        urgency=r.urgency,
                        escalated_at=escalated_at,
                        messages_to_escalation=r.at_message,
                        triggers=list(r.triggers),
                        segment=r.segment,
                        conversation_started_at=r.start,
                    ),
                )
            if r.pickup is not None:
                await records.record_pickup(
                    session,
                    PickupRecord(
                        conversation_id=r.cid,
                        message_id=f"m{r.at_message}",
                        agent_id="alice",
                        picked_up_at=escalated_at + timedelta(seconds=r.pickup),
                        escalated_at=escalated_at,
                    ),
                )
            if r.necessary is not None:
                await records.record_resolution(
                    session,
                    ResolutionRecord(
                        conversation_id=r.cid,
                        message_id=f"m{r.at_message}",
                        agent_id="alice",
                        resolved_at=escalated_at + timedelta(seconds=(r.pickup or 0) + 600),
                        necessary=r.necessary,
                        csat=r.csat,
                    ),
                )
            await records.record_conversation_end(
                session,
                ConversationEndRecord(
                    conversation_id=r.cid,
                    closed_at=r.start + timedelta(hours=1),
                    outcome=r.outcome,
                    customer_messages=r.messages,
                    closed_reason="inactive" if r.outcome == "abandoned" else "resolved",
                    segment=r.segment,
                    conversation_csat=r.conversation_csat,
                ),
            )


def october_rows(month: Month, prefix: str) -> list[Row]:
    """The month before the one under test: 10 conversations, 4 escalated, 1 abandoned."""
    t = month.start + timedelta(days=9, hours=10)
    return [
        Row(f"{prefix}p1", "enterprise", t, "escalated", messages=2, triggers=("explicit_human_request",),
            urgency="immediate", at_message=2, after=30, pickup=60, necessary=True, csat=5),
        Row(f"{prefix}p2", "mid_market", t, "escalated", messages=2, triggers=("billing_dispute",),
            at_message=2, after=40, pickup=100, necessary=True, csat=4),
        Row(f"{prefix}p3", "smb", t, "escalated", triggers=("billing_dispute",), pickup=200, necessary=False, csat=3),
        Row(f"{prefix}p4", "self_serve", t, "escalated", channel="email", triggers=("billing_dispute",), pickup=600,
            necessary=True, csat=4),
        Row(f"{prefix}p5", "enterprise", t),
        Row(f"{prefix}p6", "mid_market", t),
        Row(f"{prefix}p7", "mid_market", t),
        Row(f"{prefix}p8", "smb", t),
        Row(f"{prefix}p9", "self_serve", t),
        Row(f"{prefix}p10", "self_serve", t, "abandoned"),
    ]  # fmt: skip


# --- the month under test, through the real workflow ------------------------------------------------------


@dataclass
class Month1:
    url: str
    month: Month
    ids: dict[str, str]  # name -> conversation id
    escalations: dict[str, str]  # name -> escalation id


CUSTOMERS = {
    "enterprise": CustomerFacts(tier="enterprise", mrr=25000),
    "mid_market": CustomerFacts(tier="mid_market", mrr=1800),
    "smb": CustomerFacts(tier="smb", mrr=99),
    "free": CustomerFacts(tier="free", mrr=0),
}


class Driver:
    def __init__(self, env: WorkflowEnvironment, task_queue: str, prefix: str) -> None:
        self.env, self.client, self.task_queue, self.prefix = env, env.client, task_queue, prefix
        self.ids: dict[str, str] = {}
        self.escalations: dict[str, str] = {}

    async def converse(
        self, name: str, tier: str, messages: list[tuple[float, str]], channel: str = "chat"
    ) -> Decision:
        """Send the customer's messages, each after waiting its seconds, until one escalates.

        Every conversation has a customer of its own (with the facts of a demo CRM account of the tier), so
        that no conversation is a returning customer's, whose thresholds would be lower."""
        start = ConversationStart(
            conversation_id=f"{self.prefix}{name}",
            customer_id=f"{self.prefix}customer-{name}",
            channel=channel,
            customer=CUSTOMERS[tier],
        )
        self.ids[name] = start.conversation_id
        decision = None
        for n, (wait, words) in enumerate(messages, start=1):
            if wait:
                await skip_time(self.env, wait)
            decision = await send_message(
                self.client, self.task_queue, start, MessageIn(message_id=f"m{n}", role="customer", text=words)
            )
            if decision.action == "escalate":
                self.escalations[name] = escalation_id(start.conversation_id, f"m{n}")
                break
        assert decision is not None
        return decision

    async def handoff(self, name: str, wait: float, necessary: bool, csat: int | None) -> None:
        await skip_time(self.env, wait)
        cid = self.ids[name]
        await pickup(self.client, cid, PickupRequest(agent_id="alice", agent_name="Alice"))
        await resolve(self.client, cid, ResolveRequest(agent_id="alice", necessary=necessary, csat=csat))

    async def finish(self, name: str, reason: str) -> None:
        await close(self.client, self.ids[name], reason)
        await handle(self.client, self.ids[name]).result()  # every record is written before the run ends


async def drive_month(env: WorkflowEnvironment, url: str) -> Month1:
    """Eleven conversations: seven escalate (six picked up and resolved), two are resolved by the bot, two
    are abandoned. Waits before each message and before each pickup set the times in the store."""
    task_queue = f"report-{uuid.uuid4().hex[:8]}"
    d = Driver(env, task_queue, f"r{uuid.uuid4().hex[:6]}-")
    # The month's figures are set by these scripted conversations: they are scored by the rules, so that
    # retraining the classifier never moves them (understanding is tested in tests/test_understanding.py).
    settings = Settings(task_queue=task_queue, database_url=url, classifier="rules")
    async with build_worker(env.client, settings):
        # E1 enterprise: asks for a person at once; picked up after 60 s; necessary, CSAT 5.
        got = await d.converse("e1", "enterprise", [(0, "I need to speak to a person now")])
        assert (got.urgency, [t.id for t in got.triggers]) == ("immediate", ["explicit_human_request"])
        await d.handoff("e1", 60, necessary=True, csat=5)
        await d.finish("e1", "resolved")
        # E2 enterprise: frustration over three messages 100 s apart; picked up after 120 s; unnecessary, CSAT 3.
        got = await d.converse(
            "e2",
            "enterprise",
            [
                (0, "How do I export reports?"),
                (100, "This is so frustrating, nothing works"),
                (100, "Still broken, terrible"),
            ],
        )
        assert (got.urgency, [t.id for t in got.triggers]) == ("queued", ["high_value_friction"])
        await d.handoff("e2", 120, necessary=False, csat=3)
        await d.finish("e2", "resolved")
        # E3 enterprise: the bot answers.
        await d.converse("e3", "enterprise", [(0, "How do I add a teammate?")])
        await d.finish("e3", "resolved")
        # M1 mid-market: asks for a person at the third message, 100 s in; pickup after 30 s; necessary, CSAT 2.
        got = await d.converse(
            "m1",
            "mid_market",
            [(0, "How do I add a teammate?"), (50, "Where are invoices?"), (50, "get me a human")],
        )
        assert [t.id for t in got.triggers] == ["explicit_human_request"]
        await d.handoff("m1", 30, necessary=True, csat=2)
        await d.finish("m1", "resolved")
        # M2 mid-market: a person and a lawyer at the second message, 30 s in (two triggers); pickup after 90 s.
        got = await d.converse(
            "m2", "mid_market", [(0, "Where are invoices?"), (30, "get me a human, I'm talking to my lawyer")]
        )
        assert (got.urgency, [t.id for t in got.triggers]) == ("immediate", ["explicit_human_request", "legal_threat"])
        await d.handoff("m2", 90, necessary=True, csat=4)
        await d.finish("m2", "resolved")
        # M3 mid-market: goes quiet.
        await d.converse("m3", "mid_market", [(0, "How do I export reports?")])
        await d.finish("m3", "inactive")
        # S1 small business: a double charge, sworn at (two triggers); pickup after 300 s; necessary, CSAT 4.
        got = await d.converse("s1", "smb", [(0, "I was charged twice and want a refund, damn it")])
        assert (got.urgency, [t.id for t in got.triggers]) == ("queued", ["billing_dispute", "profanity"])
        await d.handoff("s1", 300, necessary=True, csat=4)
        await d.finish("s1", "resolved")
        # S2 small business: the bot is not helping, second message 40 s in; pickup after 200 s; unnecessary.
        got = await d.converse(
            "s2", "smb", [(0, "Where are invoices?"), (40, "this bot is useless, not helping at all")]
        )
        assert [t.id for t in got.triggers] == ["bot_not_helping"]
        await d.handoff("s2", 200, necessary=False, csat=None)
        await d.finish("s2", "resolved")
        # S3 small business, by email: the bot answers.
        await d.converse("s3", "smb", [(0, "How do I add a teammate?")], channel="email")
        await d.finish("s3", "resolved")
        # F1 free, by email: a refund at the second message, 20 s in; the customer leaves before anyone picks up.
        got = await d.converse(
            "f1", "free", [(0, "How do I export reports?"), (20, "I want a refund for the double charge")],
            channel="email",
        )  # fmt: skip
        assert [t.id for t in got.triggers] == ["billing_dispute"] and got.segment == "self_serve"
        await d.finish("f1", "customer_left")
        # F2 free: leaves.
        await d.converse("f2", "free", [(0, "How do I export reports?")])
        await d.finish("f2", "abandoned")
    # A satisfaction survey answered later for three conversations (E1's overrides its escalation's 5).
    async with sessions_for(url) as sessions, sessions.begin() as session:
        for name, score in (("e1", 4), ("e3", 4), ("s3", 5)):
            await session.execute(
                update(Conversation).where(Conversation.conversation_id == d.ids[name]).values(conversation_csat=score)
            )
    return Month1(url, Month.containing(await env.get_current_time()), d.ids, d.escalations)


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=server_binary("temporal-test-server"), data_converter=pydantic_data_converter
    )
    await register_search_attributes(environment.client)
    async with environment:
        yield environment


@pytest.fixture(scope="module", params=_backends())
async def month1(
    request: pytest.FixtureRequest, env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Month1]:
    async with fresh_store(request.param, tmp_path_factory.mktemp("report")) as url:
        now = await env.get_current_time()
        if Month.containing(now + timedelta(hours=2)) != Month.containing(now):
            # The conversations take about half an hour of the server's clock: start them in the next month.
            await skip_time(env, (Month.containing(now).end - now).total_seconds() + 60)
        began = Month.containing(await env.get_current_time())
        data = await drive_month(env, url)
        assert data.month == began, "the test server's clock crossed a month boundary during the test"
        await write_rows(url, october_rows(data.month.previous(), "oct-"))
        yield data


# --- expected figures ---------------------------------------------------------------------------------------

# The month under test, escalation by escalation:
#   name  segment     channel  urgency    triggers                              msgs  secs  pickup  necessary  CSAT
#   E1    enterprise  chat     immediate  explicit_human_request                1     0     60      yes        5
#   E2    enterprise  chat     queued     high_value_friction                   3     200   120     no         3
#   M1    mid_market  chat     immediate  explicit_human_request                3     100   30      yes        2
#   M2    mid_market  chat     immediate  explicit_human_request, legal_threat  2     30    90      yes        4
#   S1    smb         chat     queued     billing_dispute, profanity            1     0     300     yes        4
#   S2    smb         chat     queued     bot_not_helping                       2     40    200     no         -
#   F1    self_serve  email    queued     billing_dispute                       2     20    -       -          -
# and without escalation: E3 (enterprise, bot, survey 4), M3 (mid_market, abandoned), S3 (smb, email, bot,
# survey 5), F2 (self_serve, abandoned). E1's survey gave 4.
# Overall CSAT takes one rating per conversation: its survey, else its escalation's:
#   E1 4, E2 3, E3 4, M1 2, M2 4, S1 4, S3 5.
NOVEMBER = {
    "conversations": 11,
    "escalated_conversations": 7,
    "escalations": 7,
    "escalation_rate": 0.6364,  # 7 / 11
    "judged": 6,  # all but F1 (never resolved, not labelled)
    "judged_necessary": 4,  # E1, M1, M2, S1
    "judged_by_review": 0,
    "escalation_accuracy": 0.6667,  # 4 / 6
    "messages_to_escalation_median": 2.0,  # [1, 1, 2, 2, 2, 3, 3] -> the 4th
    "messages_to_escalation_p90": 3.0,  # nearest rank ceil(0.9 * 7) = 7th
    "seconds_to_escalation_median": 30.0,  # [0, 0, 20, 30, 40, 100, 200] -> the 4th
    "seconds_to_escalation_p90": 200.0,  # the 7th
    "picked_up": 6,
    "seconds_to_pickup_median": 105.0,  # [30, 60, 90, 120, 200, 300] -> (90 + 120) / 2
    "post_escalation_csat": 3.6,  # (5 + 3 + 2 + 4 + 4) / 5
    "post_escalation_csat_n": 5,
    "overall_csat": 3.71,  # (4 + 3 + 4 + 2 + 4 + 4 + 5) / 7 = 26 / 7
    "overall_csat_n": 7,
    "abandoned": 2,  # M3, F2
    "abandonment_rate": 0.1818,  # 2 / 11
}
# The month before (october_rows):
#   P1 enterprise explicit_human_request msgs 2, 30 s, pickup 60, yes, 5;  P2 mid_market billing_dispute 2, 40 s,
#   pickup 100, yes, 4;  P3 smb billing_dispute 1, 0 s, pickup 200, no, 3;  P4 self_serve (email)
#   billing_dispute 1, 0 s, pickup 600, yes, 4;  P5..P9 bot-resolved (enterprise, mid_market x2, smb,
#   self_serve);  P10 self_serve abandoned.
OCTOBER = {
    "conversations": 10,
    "escalated_conversations": 4,
    "escalations": 4,
    "escalation_rate": 0.4,  # 4 / 10
    "judged": 4,
    "judged_necessary": 3,
    "judged_by_review": 0,
    "escalation_accuracy": 0.75,  # 3 / 4
    "messages_to_escalation_median": 1.5,  # [1, 1, 2, 2]
    "messages_to_escalation_p90": 2.0,
    "seconds_to_escalation_median": 15.0,  # [0, 0, 30, 40] -> (0 + 30) / 2
    "seconds_to_escalation_p90": 40.0,
    "picked_up": 4,
    "seconds_to_pickup_median": 150.0,  # [60, 100, 200, 600] -> (100 + 200) / 2
    "post_escalation_csat": 4.0,  # (5 + 4 + 3 + 4) / 4
    "post_escalation_csat_n": 4,
    "overall_csat": 4.0,  # the same four ratings
    "overall_csat_n": 4,
    "abandoned": 1,
    "abandonment_rate": 0.1,  # 1 / 10
}


def figs(
    conversations: int,
    escalated: int,
    rate: float | None,
    judged: int,
    necessary: int,
    accuracy: float | None,
    msgs: tuple[float | None, float | None],
    secs: tuple[float | None, float | None],
    picked_up: int,
    pickup: float | None,
    post: tuple[float | None, int],
    overall: tuple[float | None, int | None] = (None, None),
    abandoned: tuple[int | None, float | None] = (None, None),
    escalations: int | None = None,
    by_review: int = 0,
) -> dict[str, Any]:
    return {
        "conversations": conversations,
        "escalated_conversations": escalated,
        "escalations": escalated if escalations is None else escalations,
        "escalation_rate": rate,
        "judged": judged,
        "judged_necessary": necessary,
        "judged_by_review": by_review,
        "escalation_accuracy": accuracy,
        "messages_to_escalation_median": msgs[0],
        "messages_to_escalation_p90": msgs[1],
        "seconds_to_escalation_median": secs[0],
        "seconds_to_escalation_p90": secs[1],
        "picked_up": picked_up,
        "seconds_to_pickup_median": pickup,
        "post_escalation_csat": post[0],
        "post_escalation_csat_n": post[1],
        "overall_csat": overall[0],
        "overall_csat_n": overall[1],
        "abandoned": abandoned[0],
        "abandonment_rate": abandoned[1],
    }


BY_SEGMENT = {
    # E1, E2, E3: 2 of 3 escalated; 1 of 2 necessary; msgs [1, 3]; secs [0, 200]; pickups [60, 120];
    # CSAT (5 + 3) / 2; overall (4 + 3 + 4) / 3 = 3.67.
    "enterprise": figs(3, 2, 0.6667, 2, 1, 0.5, (2.0, 3.0), (100.0, 200.0), 2, 90.0, (4.0, 2), (3.67, 3), (0, 0.0)),
    # M1, M2, M3: msgs [3, 2]; secs [100, 30]; pickups [30, 90]; CSAT (2 + 4) / 2; M3 abandoned: 1 / 3.
    "mid_market": figs(3, 2, 0.6667, 2, 2, 1.0, (2.5, 3.0), (65.0, 100.0), 2, 60.0, (3.0, 2), (3.0, 2), (1, 0.3333)),
    # S1, S2, S3: msgs [1, 2]; secs [0, 40]; pickups [300, 200]; CSAT 4 (S2 unrated); overall (4 + 5) / 2.
    "smb": figs(3, 2, 0.6667, 2, 1, 0.5, (1.5, 2.0), (20.0, 40.0), 2, 250.0, (4.0, 1), (4.5, 2), (0, 0.0)),
    # F1, F2: F1 escalated, never picked up or judged; F2 abandoned: 1 / 2.
    "self_serve": figs(2, 1, 0.5, 0, 0, None, (2.0, 2.0), (20.0, 20.0), 0, None, (None, 0), (None, 0), (1, 0.5)),
}
BY_SEGMENT_OCTOBER = {
    "enterprise": figs(2, 1, 0.5, 1, 1, 1.0, (2.0, 2.0), (30.0, 30.0), 1, 60.0, (5.0, 1), (5.0, 1), (0, 0.0)),
    "mid_market": figs(3, 1, 0.3333, 1, 1, 1.0, (2.0, 2.0), (40.0, 40.0), 1, 100.0, (4.0, 1), (4.0, 1), (0, 0.0)),
    "smb": figs(2, 1, 0.5, 1, 0, 0.0, (1.0, 1.0), (0.0, 0.0), 1, 200.0, (3.0, 1), (3.0, 1), (0, 0.0)),
    "self_serve": figs(3, 1, 0.3333, 1, 1, 1.0, (1.0, 1.0), (0.0, 0.0), 1, 600.0, (4.0, 1), (4.0, 1), (1, 0.3333)),
}
# Per trigger, over all 11 conversations; an escalation counts under each of its triggers (9 > 7).
BY_TRIGGER = {
    # E1, M1, M2: msgs [1, 3, 2]; secs [0, 100, 30]; pickups [60, 30, 90]; CSAT (5 + 2 + 4) / 3 = 3.67.
    "explicit_human_request": figs(11, 3, 0.2727, 3, 3, 1.0, (2.0, 3.0), (30.0, 100.0), 3, 60.0, (3.67, 3)),
    # S1, F1: 2 / 11; only S1 judged; msgs [1, 2]; secs [0, 20]; pickup 300.
    "billing_dispute": figs(11, 2, 0.1818, 1, 1, 1.0, (1.5, 2.0), (10.0, 20.0), 1, 300.0, (4.0, 1)),
    "bot_not_helping": figs(11, 1, 0.0909, 1, 0, 0.0, (2.0, 2.0), (40.0, 40.0), 1, 200.0, (None, 0)),  # S2
    "high_value_friction": figs(11, 1, 0.0909, 1, 0, 0.0, (3.0, 3.0), (200.0, 200.0), 1, 120.0, (3.0, 1)),  # E2
    "legal_threat": figs(11, 1, 0.0909, 1, 1, 1.0, (2.0, 2.0), (30.0, 30.0), 1, 90.0, (4.0, 1)),  # M2
    "profanity": figs(11, 1, 0.0909, 1, 1, 1.0, (1.0, 1.0), (0.0, 0.0), 1, 300.0, (4.0, 1)),  # S1
}
BY_TRIGGER_OCTOBER = {
    "explicit_human_request": figs(10, 1, 0.1, 1, 1, 1.0, (2.0, 2.0), (30.0, 30.0), 1, 60.0, (5.0, 1)),  # P1
    # P2, P3, P4: msgs [2, 1, 1]; secs [40, 0, 0]; pickups [100, 200, 600]; CSAT (4 + 3 + 4) / 3 = 3.67.
    "billing_dispute": figs(10, 3, 0.3, 3, 2, 0.6667, (1.0, 2.0), (0.0, 40.0), 3, 200.0, (3.67, 3)),
}


def empty_trigger(conversations: int) -> dict[str, Any]:
    return figs(conversations, 0, 0.0, 0, 0, None, (None, None), (None, None), 0, None, (None, 0))


def assert_figures(actual: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    assert set(expected) == set(FIGURES), where
    got = {name: actual[name] for name in FIGURES}
    for name in FIGURES:
        want = expected[name]
        if name.startswith("seconds_") and want is not None:
            assert got[name] == pytest.approx(want, abs=SECONDS), f"{where}: {name}"
        else:
            assert got[name] == want, f"{where}: {name} is {got[name]!r}, expected {want!r}"


def groups_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["group"]: g for g in result["groups"]}


# --- the month through the real workflow ---------------------------------------------------------------------


async def test_report_by_segment_matches_hand_computed_figures(month1: Month1) -> None:
    result = await reporting.report(month1.url, month1.month, ReportOptions(by="segment"))
    assert result["month"] == str(month1.month) and result["previous_month"] == str(month1.month.previous())
    assert result["by"] == "segment" and result["high_value_segments"] == ["enterprise"]
    assert_figures(result["overall"], NOVEMBER, "overall")
    assert_figures(result["overall"]["previous"], OCTOBER, "overall, the month before")
    groups = groups_of(result)
    # Most escalations first, then most conversations, then by name.
    assert [g["group"] for g in result["groups"]] == ["enterprise", "mid_market", "smb", "self_serve"]
    for name, expected in BY_SEGMENT.items():
        assert_figures(groups[name], expected, name)
        assert_figures(groups[name]["previous"], BY_SEGMENT_OCTOBER[name], f"{name}, the month before")
    # High-value segments (enterprise) against the average.
    assert result["high_value"]["segments"] == ["enterprise"]
    assert_figures(result["high_value"], BY_SEGMENT["enterprise"], "high value")
    assert_figures(result["high_value"]["previous"], BY_SEGMENT_OCTOBER["enterprise"], "high value, before")

    # The CLI prints the same report as JSON.
    cli = run_cli("report", "--month", str(month1.month), "--database-url", month1.url, "--format", "json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == json.loads(reporting.to_json(result))
    # And a readable table.
    table = run_cli("report", "--month", str(month1.month), "--database-url", month1.url)
    assert table.returncode == 0, table.stderr
    assert f"Escalation report: {month1.month.title} (compared with {month1.month.previous().title})" in table.stdout
    assert "escalation rate" in table.stdout and "63.6%" in table.stdout and "40.0%" in table.stdout


async def test_report_by_trigger_counts_an_escalation_under_each_trigger(month1: Month1) -> None:
    result = await reporting.report(month1.url, month1.month, ReportOptions(by="trigger"))
    assert_figures(result["overall"], NOVEMBER, "overall")
    groups = groups_of(result)
    assert [g["group"] for g in result["groups"]] == [
        "explicit_human_request",
        "billing_dispute",
        "bot_not_helping",
        "high_value_friction",
        "legal_threat",
        "profanity",
    ]
    for name, expected in BY_TRIGGER.items():
        assert_figures(groups[name], expected, name)
        before = BY_TRIGGER_OCTOBER.get(name, empty_trigger(10))  # triggers new this month: 0 of 10
        assert_figures(groups[name]["previous"], before, f"{name}, the month before")
    assert sum(g["escalations"] for g in result["groups"]) == 9  # 7 escalations, two of them with two triggers
    assert any("counts under every trigger" in note for note in result["notes"])

    # Accuracy per trigger; the month's median is 2 messages, so "late" means 3 or more.
    assert result["triggers"] == [
        {"trigger": "explicit_human_request", "escalations": 3, "judged": 3, "judged_necessary": 3,
         "judged_unnecessary": 0, "judged_by_review": 0, "precision": 1.0, "late_necessary": 1,  # M1 at message 3
         "recommendation": None, "evidence": None},
        {"trigger": "billing_dispute", "escalations": 2, "judged": 1, "judged_necessary": 1, "judged_unnecessary": 0,
         "judged_by_review": 0, "precision": 1.0, "late_necessary": 0, "recommendation": None, "evidence": None},
        {"trigger": "bot_not_helping", "escalations": 1, "judged": 1, "judged_necessary": 0, "judged_unnecessary": 1,
         "judged_by_review": 0, "precision": 0.0, "late_necessary": 0, "recommendation": None, "evidence": None},
        {"trigger": "high_value_friction", "escalations": 1, "judged": 1, "judged_necessary": 0,
         "judged_unnecessary": 1, "judged_by_review": 0, "precision": 0.0, "late_necessary": 0,
         "recommendation": None, "evidence": None},
        {"trigger": "legal_threat", "escalations": 1, "judged": 1, "judged_necessary": 1, "judged_unnecessary": 0,
         "judged_by_review": 0, "precision": 1.0, "late_necessary": 0, "recommendation": None, "evidence": None},
        {"trigger": "profanity", "escalations": 1, "judged": 1, "judged_necessary": 1, "judged_unnecessary": 0,
         "judged_by_review": 0, "precision": 1.0, "late_necessary": 0, "recommendation": None, "evidence": None},
    ]  # fmt: skip

    cli = run_cli("report", "--month", str(month1.month), "--by", "trigger", "--format", "json",
                  "--database-url", month1.url)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == json.loads(reporting.to_json(result))


async def test_report_by_channel_and_urgency(month1: Month1) -> None:
    channels = groups_of(await reporting.report(month1.url, month1.month, ReportOptions(by="channel")))
    assert sorted(channels) == ["chat", "email"]
    # chat: the 9 conversations other than S3 and F1; 6 escalated, all judged (4 necessary);
    # msgs [1, 1, 2, 2, 3, 3]; secs [0, 0, 30, 40, 100, 200] -> (30 + 40) / 2; pickups as overall.
    # Overall CSAT: E1 4, E2 3, E3 4, M1 2, M2 4, S1 4 = 21 / 6. Abandoned: M3, F2 of 9.
    assert_figures(
        channels["chat"],
        figs(9, 6, 0.6667, 6, 4, 0.6667, (2.0, 3.0), (35.0, 200.0), 6, 105.0, (3.6, 5), (3.5, 6), (2, 0.2222)),
        "chat",
    )
    # email: S3 (bot, survey 5) and F1 (escalated, left before pickup).
    assert_figures(
        channels["email"],
        figs(2, 1, 0.5, 0, 0, None, (2.0, 2.0), (20.0, 20.0), 0, None, (None, 0), (5.0, 1), (0, 0.0)),
        "email",
    )
    # In October P4 was the only email conversation: 1 of 1 escalated.
    assert channels["email"]["previous"]["escalation_rate"] == 1.0
    assert channels["chat"]["previous"]["escalation_rate"] == 0.3333  # 3 / 9

    urgencies = groups_of(await reporting.report(month1.url, month1.month, ReportOptions(by="urgency")))
    # immediate: E1, M1, M2 (as explicit_human_request); queued: E2, S1, S2, F1.
    assert_figures(urgencies["immediate"], BY_TRIGGER["explicit_human_request"], "immediate")
    # queued: msgs [3, 1, 2, 2]; secs [200, 0, 40, 20]; pickups [120, 300, 200]; CSAT (3 + 4) / 2.
    assert_figures(
        urgencies["queued"],
        figs(11, 4, 0.3636, 3, 1, 0.3333, (2.0, 3.0), (30.0, 200.0), 3, 200.0, (3.5, 2)),
        "queued",
    )


async def test_month_over_month_flags_a_rising_rate_and_its_driver(month1: Month1) -> None:
    result = await reporting.report(month1.url, month1.month)
    moves = {m["figure"]: m for m in result["movements"]}
    assert moves["conversations"] == {
        "figure": "conversations", "previous": 10, "current": 11, "relative_change": 0.1, "flagged": False,
    }  # fmt: skip
    assert moves["escalation_rate"]["relative_change"] == 0.5909  # (7/11 - 4/10) / (4/10)
    assert moves["escalation_accuracy"]["relative_change"] == -0.1111  # (4/6 - 3/4) / (3/4)
    assert moves["post_escalation_csat"]["relative_change"] == -0.1  # (3.6 - 4.0) / 4.0
    assert moves["overall_csat"]["relative_change"] == -0.0714  # (26/7 - 4) / 4
    assert moves["abandonment_rate"]["relative_change"] == 0.8182  # (2/11 - 1/10) / (1/10)
    assert moves["messages_to_escalation_median"]["relative_change"] == 0.3333  # (2 - 1.5) / 1.5
    assert moves["seconds_to_escalation_median"]["relative_change"] == pytest.approx(1.0, abs=0.15)  # 15 s -> 30 s
    assert moves["seconds_to_pickup_median"]["relative_change"] == pytest.approx(-0.3, abs=0.02)  # 150 s -> 105 s
    # Flagged: more than 20% either way.
    assert [f["figure"] for f in result["flags"]] == [
        "escalation_rate",
        "messages_to_escalation_median",
        "seconds_to_escalation_median",
        "seconds_to_pickup_median",
        "abandonment_rate",
    ]
    rate = result["flags"][0]
    assert (rate["direction"], rate["reading"]) == ("up", "rising")
    # explicit_human_request's share of conversations rose most: 1/10 -> 3/11 (+17.3 points; the four new
    # triggers rose by 1/11 = 9.1 points each, billing_dispute fell from 3/10 to 2/11).
    assert rate["driver"] == "explicit_human_request"
    assert rate["new_triggers"] == ["bot_not_helping", "high_value_friction", "legal_threat", "profanity"]
    assert rate["message"] == (
        "escalation rate up 59% (40.0% → 63.6%); driven by trigger explicit_human_request (1 → 3 escalations, "
        "10.0% → 27.3% of conversations); new triggers this month: bot_not_helping, high_value_friction, "
        "legal_threat, profanity; conversations 10 → 11. Check for a product change (a release, an outage) or a "
        "policy change."
    )
    assert result["flags"][-1]["message"] == "abandonment rate up 82% (10.0% → 18.2%)"
    table = run_cli("report", "--month", str(month1.month), "--database-url", month1.url)
    assert "! escalation rate up 59%" in table.stdout


async def test_csv_has_a_row_per_month_and_group(month1: Month1) -> None:
    cli = run_cli("report", "--month", str(month1.month), "--format", "csv", "--database-url", month1.url)
    assert cli.returncode == 0, cli.stderr
    rows = list(csv.DictReader(io.StringIO(cli.stdout)))
    assert list(rows[0]) == ["month", "scope", "by", "group", *FIGURES]
    now, before = str(month1.month), str(month1.month.previous())
    assert [(r["month"], r["scope"], r["group"]) for r in rows] == [
        (now, "overall", "all"),
        (now, "group", "enterprise"),
        (now, "group", "mid_market"),
        (now, "group", "smb"),
        (now, "group", "self_serve"),
        (now, "high_value", "enterprise"),
        (before, "overall", "all"),
        (before, "group", "enterprise"),
        (before, "group", "mid_market"),
        (before, "group", "smb"),
        (before, "group", "self_serve"),
        (before, "high_value", "enterprise"),
    ]

    def parsed(row: dict[str, str]) -> dict[str, Any]:
        return {
            name: None if row[name] == "" else (float(row[name]) if "." in row[name] else int(row[name]))
            for name in FIGURES
        }

    assert_figures(parsed(rows[0]), NOVEMBER, "csv overall")
    assert_figures(parsed(rows[6]), OCTOBER, "csv overall, the month before")
    assert_figures(parsed(rows[4]), BY_SEGMENT["self_serve"], "csv self_serve")  # empty cells are None


async def test_chart_is_a_real_picture(month1: Month1, tmp_path: Path) -> None:
    import matplotlib.image

    out = tmp_path / "slides" / "escalations.png"
    cli = run_cli("report", "--month", str(month1.month), "--database-url", month1.url, "--chart", str(out))
    assert cli.returncode == 0, cli.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    pixels = matplotlib.image.imread(out)
    height, width = pixels.shape[:2]
    assert width >= 1600 and height >= 600
    assert pixels[..., :3].var() > 0.005  # not a single colour
    assert (pixels[..., :3].mean(axis=2) < 0.9).mean() > 0.02  # and more than a few marks on white

    # By trigger (seven groups with long names): horizontal bars, the same checks.
    by_trigger = tmp_path / "triggers.png"
    cli = run_cli("report", "--month", str(month1.month), "--by", "trigger", "--database-url", month1.url,
                  "--chart", str(by_trigger), "--format", "json")  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["by"] == "trigger"  # the chart does not disturb the output
    assert by_trigger.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and by_trigger.stat().st_size > 20_000
    pixels = matplotlib.image.imread(by_trigger)
    assert pixels.shape[0] > height  # taller, for seven groups
    assert pixels[..., :3].var() > 0.005


async def test_review_sample_is_stratified_by_trigger_and_deterministic(month1: Month1) -> None:
    esc = month1.escalations
    first = [d.escalation.id for d in await review.sample(month1.url, month1.month, 4, seed=3)]
    # Triggers take turns, rarest first (ties by name): bot_not_helping, high_value_friction, legal_threat,
    # profanity each fired once, so four draws are exactly S2, E2, M2, S1, whatever the seed.
    assert first == [esc["s2"], esc["e2"], esc["m2"], esc["s1"]]

    cli = run_cli("review", "sample", "--month", str(month1.month), "--n", "6", "--seed", "11",
                  "--format", "json", "--database-url", month1.url)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    drawn = json.loads(cli.stdout)
    # Then billing_dispute (S1 is drawn already: F1) and explicit_human_request (M2 is drawn: E1 or M1).
    assert [d["drawn_for"] for d in drawn] == [
        "bot_not_helping",
        "high_value_friction",
        "legal_threat",
        "profanity",
        "billing_dispute",
        "explicit_human_request",
    ]
    assert [d["id"] for d in drawn][:5] == [esc["s2"], esc["e2"], esc["m2"], esc["s1"], esc["f1"]]
    assert drawn[5]["id"] in (esc["e1"], esc["m1"])
    s1 = drawn[3]
    assert s1 == {
        "id": esc["s1"],
        "escalated_at": s1["escalated_at"],
        "segment": "smb",
        "urgency": "queued",
        "triggers": ["billing_dispute", "profanity"],
        "drawn_for": "profanity",
        "agent_necessary": True,
        "csat": 4,
        "review_necessary": None,
        "reviewer": None,
    }
    assert datetime.fromisoformat(s1["escalated_at"]) >= month1.month.start
    again = run_cli("review", "sample", "--month", str(month1.month), "--n", "6", "--seed", "11",
                    "--format", "json", "--database-url", month1.url)  # fmt: skip
    assert json.loads(again.stdout) == drawn
    # More than there are: all seven, with a note.
    every = await review.sample(month1.url, month1.month, 50, seed=11)
    assert sorted(d.escalation.id for d in every) == sorted(esc.values())
    table = run_cli("review", "sample", "--month", str(month1.month), "--n", "3", "--database-url", month1.url)
    assert table.returncode == 0 and esc["s2"] in table.stdout and "bot_not_helping" in table.stdout


async def test_review_labels_override_the_agent_in_the_report(month1: Month1) -> None:
    esc = month1.escalations
    try:
        # S2 (bot_not_helping): the agent said unnecessary; the reviewer disagrees.
        cli = run_cli("review", "label", esc["s2"], "--necessary", "yes", "--reviewer", "lead",
                      "--note", "customer was stuck", "--database-url", month1.url)  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert cli.stdout.strip() == f"{esc['s2']}: necessary=yes by lead (agent's disposition: no)"
        # F1 was never resolved: a review label alone makes it judged.
        cli = run_cli("review", "label", esc["f1"], "--necessary", "no", "--reviewer", "lead",
                      "--database-url", month1.url)  # fmt: skip
        assert cli.returncode == 0, cli.stderr

        result = await reporting.report(month1.url, month1.month, ReportOptions(by="trigger"))
        overall = result["overall"]
        # judged 6 + F1 = 7; necessary 4 + S2 = 5; accuracy 5 / 7.
        assert (overall["judged"], overall["judged_necessary"], overall["judged_by_review"]) == (7, 5, 2)
        assert overall["escalation_accuracy"] == 0.7143
        groups = groups_of(result)
        assert groups["bot_not_helping"]["escalation_accuracy"] == 1.0  # 1 / 1, by review
        assert groups["billing_dispute"]["escalation_accuracy"] == 0.5  # S1 yes, F1 no
        triggers = {t["trigger"]: t for t in result["triggers"]}
        assert (triggers["bot_not_helping"]["precision"], triggers["bot_not_helping"]["judged_by_review"]) == (1.0, 1)
        by_segment = groups_of(await reporting.report(month1.url, month1.month))
        assert by_segment["smb"]["escalation_accuracy"] == 1.0  # S1 yes, S2 now yes
        assert by_segment["self_serve"]["escalation_accuracy"] == 0.0  # F1 no
        assert (by_segment["self_serve"]["judged"], by_segment["self_serve"]["judged_by_review"]) == (1, 1)

        # A second reviewer, later, says no: the newest label wins (4 of 7).
        await review.label(month1.url, esc["s2"], False, "qa", now=datetime.now().astimezone() + timedelta(minutes=1))
        overall = (await reporting.report(month1.url, month1.month))["overall"]
        assert (overall["judged"], overall["judged_necessary"], overall["escalation_accuracy"]) == (7, 4, 0.5714)
        drawn = {d.escalation.id: d.escalation for d in await review.sample(month1.url, month1.month, 10)}
        assert (drawn[esc["s2"]].review, drawn[esc["s2"]].reviewer) == (False, "qa")
        unreviewed = await review.sample(month1.url, month1.month, 10, unreviewed=True)
        assert {d.escalation.id for d in unreviewed} == set(esc.values()) - {esc["s2"], esc["f1"]}

        unknown = run_cli("review", "label", "nope:m1", "--necessary", "no", "--database-url", month1.url)
        assert unknown.returncode == 2
        assert "error: no escalation with id 'nope:m1'" in unknown.stderr
        bad = run_cli("review", "label", esc["s2"], "--necessary", "maybe", "--database-url", month1.url)
        assert bad.returncode == 2 and "yes or no" in bad.stderr
    finally:
        async with sessions_for(month1.url) as sessions, sessions.begin() as session:
            await session.execute(text("DELETE FROM review_labels"))


# --- store-only scenarios -------------------------------------------------------------------------------------


MONTH = Month(2026, 6)


async def test_falling_rate_with_rising_abandonment_is_read_as_customers_giving_up(store_url: str) -> None:
    may, june = MONTH.previous().start + timedelta(days=3), MONTH.start + timedelta(days=3)
    rows = [
        # May: 10 conversations, 5 escalated, none abandoned.
        *(Row(f"may{i}", "smb", may, "escalated", triggers=("bot_loop",), necessary=True) for i in range(5)),
        *(Row(f"may-bot{i}", "smb", may) for i in range(5)),
        # June: 10 conversations, 2 escalated, 3 abandoned.
        *(Row(f"jun{i}", "smb", june, "escalated", triggers=("bot_loop",), necessary=True) for i in range(2)),
        *(Row(f"jun-left{i}", "smb", june, "abandoned") for i in range(3)),
        *(Row(f"jun-bot{i}", "smb", june) for i in range(5)),
    ]
    await write_rows(store_url, rows)
    result = await reporting.report(store_url, MONTH)
    rate = next(f for f in result["flags"] if f["figure"] == "escalation_rate")
    assert (rate["direction"], rate["reading"], rate["relative_change"]) == ("down", "falling_with_abandonment", -0.6)
    assert rate["message"] == (
        "escalation rate down 60% (50.0% → 20.0%) but abandonment rate up from zero (0.0% → 30.0%): "
        "customers may be giving up before reaching a human."
    )
    abandonment = next(f for f in result["flags"] if f["figure"] == "abandonment_rate")
    assert (abandonment["direction"], abandonment["relative_change"]) == ("up", None)  # from zero

    # Without the abandonment, a fall reads as fewer handoffs.
    async with sessions_for(store_url) as sessions, sessions.begin() as session:
        await session.execute(
            update(Conversation).where(Conversation.conversation_id.like("jun-left%")).values(outcome="bot_resolved")
        )
    result = await reporting.report(store_url, MONTH)
    rate = next(f for f in result["flags"] if f["figure"] == "escalation_rate")
    assert rate["reading"] == "falling"
    assert rate["message"].startswith("escalation rate down 60% (50.0% → 20.0%) and abandonment did not rise")


async def test_tighten_and_loosen_recommendations_follow_the_labels(store_url: str) -> None:
    t = MONTH.start + timedelta(days=10)
    rows = [
        # bot_loop: 12 resolved at message 2, the agents judged 5 necessary and 7 not.
        *(Row(f"loop{i}", "smb", t, "escalated", messages=2, triggers=("bot_loop",), at_message=2, necessary=i < 5)
          for i in range(12)),
        # frustration_trend: 6 necessary, 4 of them at message 5, 2 at message 1.
        *(Row(f"frus{i}", "mid_market", t, "escalated", messages=5, triggers=("frustration_trend",),
              at_message=5 if i < 4 else 1, necessary=True) for i in range(6)),
        # legal_threat: 2 judged unnecessary: too few to recommend anything.
        *(Row(f"law{i}", "enterprise", t, "escalated", triggers=("legal_threat",), necessary=False) for i in range(2)),
    ]  # fmt: skip
    await write_rows(store_url, rows)
    # The month's median: 20 escalations at messages [1 x 4, 2 x 12, 5 x 4] -> 2.
    triggers = {t["trigger"]: t for t in (await reporting.report(store_url, MONTH))["triggers"]}
    assert triggers["bot_loop"]["recommendation"] == "tighten"
    assert triggers["bot_loop"]["evidence"] == "tighten bot_loop: 7 of 12 judged unnecessary"
    assert triggers["bot_loop"]["precision"] == 0.4167  # 5 / 12
    assert triggers["frustration_trend"]["recommendation"] == "loosen"
    assert triggers["frustration_trend"]["late_necessary"] == 4
    assert triggers["frustration_trend"]["evidence"] == (
        "loosen frustration_trend: 4 of 6 escalations judged necessary came after more than 2 customer messages "
        "(the month's median); it could fire earlier"
    )
    assert (triggers["legal_threat"]["precision"], triggers["legal_threat"]["recommendation"]) == (0.0, None)

    # Reviewers find two of bot_loop's "unnecessary" ones necessary: 7 / 12 = 0.583, still under 0.6.
    for i in (5, 6):
        await review.label(store_url, escalation_id(f"loop{i}", "m2"), True, "lead")
    triggers = {t["trigger"]: t for t in (await reporting.report(store_url, MONTH))["triggers"]}
    assert triggers["bot_loop"]["evidence"] == "tighten bot_loop: 5 of 12 judged unnecessary"
    # A third: 8 / 12 = 0.667, no longer a candidate.
    await review.label(store_url, escalation_id("loop7", "m2"), True, "lead")
    triggers = {t["trigger"]: t for t in (await reporting.report(store_url, MONTH))["triggers"]}
    assert (triggers["bot_loop"]["precision"], triggers["bot_loop"]["recommendation"]) == (0.6667, None)
    assert triggers["bot_loop"]["judged_by_review"] == 3

    table = run_cli("report", "--month", str(MONTH), "--database-url", store_url, "--by", "trigger")
    assert table.returncode == 0, table.stderr
    assert "loosen frustration_trend: 4 of 6" in table.stdout
    # With a lower bar legal_threat gets one too.
    lowered = run_cli("report", "--month", str(MONTH), "--database-url", store_url, "--min-judged", "2",
                      "--format", "json")  # fmt: skip
    evidence = [t["evidence"] for t in json.loads(lowered.stdout)["triggers"]]
    assert "tighten legal_threat: 2 of 2 judged unnecessary" in evidence


async def test_sample_keeps_rare_triggers_whatever_the_seed(store_url: str) -> None:
    t = MONTH.start + timedelta(days=2)
    rows = [
        *(Row(f"a{i:02d}", "smb", t, "escalated", triggers=("bot_loop",)) for i in range(20)),
        Row("b1", "smb", t, "escalated", triggers=("legal_threat",)),
        Row("b2", "smb", t, "escalated", triggers=("legal_threat", "bot_loop")),
        Row("c1", "smb", t, "escalated", triggers=("severe_distress",)),
    ]
    await write_rows(store_url, rows)
    samples = []
    for seed in range(6):
        drawn = await review.sample(store_url, MONTH, 5, seed=seed)
        ids = [d.escalation.id for d in drawn]
        # Rounds: severe_distress (1 escalation), legal_threat (2), bot_loop (21, b2 among them); then again.
        assert [d.stratum for d in drawn][:3] == ["severe_distress", "legal_threat", "bot_loop"]
        assert {"c1:m1", "b1:m1", "b2:m1"} <= set(ids) and len(set(ids)) == 5
        assert ids == [d.escalation.id for d in await review.sample(store_url, MONTH, 5, seed=seed)]
        samples.append(tuple(ids))
    assert len(set(samples)) > 1  # the seed chooses among bot_loop's twenty


async def test_escalations_count_in_the_month_their_conversation_started(store_url: str) -> None:
    # Started in the last second of May, escalated in June: a May conversation and a May escalation.
    late = MONTH.start - timedelta(seconds=1)
    await write_rows(store_url, [Row("edge", "smb", late, "escalated", triggers=("bot_loop",), after=30)])
    june = await reporting.report(store_url, MONTH)
    assert (june["overall"]["conversations"], june["overall"]["escalations"]) == (0, 0)
    assert (june["overall"]["previous"]["conversations"], june["overall"]["previous"]["escalations"]) == (1, 1)
    assert june["overall"]["escalation_rate"] is None  # nothing to divide by
    assert reporting.to_table(june)  # an empty month still renders
    # Header, then for each month: overall, the one segment seen in either month, high value.
    assert reporting.to_csv(june).count("\n") == 7


# --- the commands' edges --------------------------------------------------------------------------------------


def test_db_upgrade_then_report_an_empty_month(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new' / 'baton.db'}"
    missing = run_cli("report", "--month", "2026-10", "--database-url", url)
    assert missing.returncode == 2 and "no store at" in missing.stderr and "baton db upgrade" in missing.stderr
    assert not (tmp_path / "new" / "baton.db").exists()  # the report did not create an empty file

    upgraded = run_cli("db", "upgrade", "--database-url", url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "at migration" in upgraded.stdout
    assert run_cli("db", "upgrade", "--database-url", url).returncode == 0  # again: nothing to do

    empty = run_cli("report", "--month", "2026-10", "--database-url", url, "--format", "json")
    assert empty.returncode == 0, empty.stderr
    result = json.loads(empty.stdout)
    assert result["overall"]["conversations"] == 0 and result["groups"] == [] and result["flags"] == []


def test_report_refuses_a_database_without_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    asyncio.run(_touch_sqlite(path))
    result = run_cli("report", "--month", "2026-10", "--database-url", f"sqlite+aiosqlite:///{path}")
    assert result.returncode == 2 and "run `baton db upgrade`" in result.stderr


async def _touch_sqlite(path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE unrelated (x INTEGER)"))
    await engine.dispose()


def test_bad_arguments() -> None:
    month = run_cli("report", "--month", "2026-13", "--database-url", "sqlite+aiosqlite:///x.db")
    assert month.returncode == 2 and "2026-13" in month.stderr
    assert Month.last_complete(datetime(2026, 1, 15).astimezone()) == Month(2025, 12)
    assert Month.parse("2026-03").previous() == Month(2026, 2) and str(Month(2026, 3).next()) == "2026-04"
