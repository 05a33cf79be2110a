"""`baton review`: draw a month's escalations for a false-positive review, and record the reviewers' verdicts.

The sample is stratified by trigger: triggers take turns, the rarest first, each giving its next escalation
not drawn yet (in an order shuffled with the seed), so that a trigger that fired twice in the month is
reviewed as surely as one that fired two hundred times. An escalation with several triggers can be drawn for
any of them, and is drawn once. The same store, month, size and seed always give the same sample.

A verdict goes to ``review_labels`` (one per escalation and reviewer; labelling again replaces it) and
overrides the agent's disposition in `baton report` (the newest label wins).

The other kind of label is a *missed* escalation: a conversation that should have been handed off, and from
which customer message (``baton review label CONV --missed --from-message MID``; agents mark the same at the
gateway). It goes to ``missed_labels`` (one per conversation and reviewer), counts in `baton report` next to
the false escalations, and makes `baton export` label the conversation "escalate from that message".
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import random
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from baton.apps.report.figures import NO_TRIGGER, UNKNOWN
from baton.apps.report.loading import EscalationFacts, ReportError, load_months, store_session
from baton.apps.report.months import Month

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

DEFAULT_SEED = 0


class UnknownEscalationError(ReportError):
    def __init__(self, escalation_id: str) -> None:
        super().__init__(f"no escalation with id {escalation_id!r} (ids look like <conversation_id>:<message_id>)")
        self.escalation_id = escalation_id


class UnknownConversationError(ReportError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"no conversation with id {conversation_id!r} in the store")
        self.conversation_id = conversation_id


@dataclass(frozen=True)
class Drawn:
    escalation: EscalationFacts
    stratum: str  # the trigger it was drawn for


def stratified_sample(escalations: Sequence[EscalationFacts], n: int, seed: int = DEFAULT_SEED) -> list[Drawn]:
    """Up to ``n`` escalations, round-robin across triggers (rarest first), deterministic for a seed."""
    strata: dict[str, list[EscalationFacts]] = defaultdict(list)
    for e in escalations:
        for trigger in e.triggers or (NO_TRIGGER,):
            strata[trigger].append(e)
    rng = random.Random(seed)
    for trigger in sorted(strata):
        members = sorted(strata[trigger], key=lambda e: e.id)
        rng.shuffle(members)
        strata[trigger] = members
    order = sorted(strata, key=lambda t: (len(strata[t]), t))
    position = dict.fromkeys(order, 0)
    drawn: list[Drawn] = []
    seen: set[str] = set()
    while len(drawn) < n:
        progressed = False
        for trigger in order:
            if len(drawn) >= n:
                break
            members = strata[trigger]
            while position[trigger] < len(members) and members[position[trigger]].id in seen:
                position[trigger] += 1
            if position[trigger] < len(members):
                escalation = members[position[trigger]]
                position[trigger] += 1
                seen.add(escalation.id)
                drawn.append(Drawn(escalation, trigger))
                progressed = True
        if not progressed:
            break
    return drawn


async def month_escalations(session: AsyncSession, month: Month) -> list[EscalationFacts]:
    """The escalations of the conversations that started in ``month``, with their newest review label."""
    data = (await load_months(session, [month]))[month]
    segments = {c.conversation_id: c.segment for c in data.conversations}
    for e in data.escalations:
        e.segment = e.segment or segments.get(e.conversation_id)
    return data.escalations


async def sample(
    url: str,
    month: Month,
    n: int,
    seed: int = DEFAULT_SEED,
    unreviewed: bool = False,
    engine: AsyncEngine | None = None,
) -> list[Drawn]:
    async with store_session(url, engine) as session:
        escalations = await month_escalations(session, month)
    if unreviewed:
        escalations = [e for e in escalations if e.review is None]
    return stratified_sample(escalations, n, seed)


async def label(
    url: str,
    escalation_id: str,
    necessary: bool,
    reviewer: str,
    note: str | None = None,
    now: datetime | None = None,
    engine: AsyncEngine | None = None,
) -> bool | None:
    """Record a reviewer's verdict; returns the agent's disposition. Raises UnknownEscalationError."""
    from baton.contract.records import ReviewLabelRecord
    from baton.store.models import Escalation
    from baton.store.records import record_review_label

    async with store_session(url, engine, begin=True) as session:
        escalation = await session.get(Escalation, escalation_id)
        if escalation is None:
            raise UnknownEscalationError(escalation_id)
        await record_review_label(
            session,
            ReviewLabelRecord(
                escalation_id=escalation_id,
                reviewer=reviewer,
                necessary=necessary,
                note=note,
                labelled_at=now or datetime.now(UTC),
            ),
        )
        return escalation.necessary


async def label_missed(
    url: str,
    conversation_id: str,
    message_id: str,
    reviewer: str,
    note: str | None = None,
    *,
    source: str = "review",
    now: datetime | None = None,
    engine: AsyncEngine | None = None,
    known_conversation: bool = False,
) -> None:
    """Record a missed escalation: ``conversation_id`` should have been handed off from the customer message
    ``message_id``. Raises UnknownConversationError unless the store knows the conversation, or the caller
    has checked it exists (``known_conversation``: the gateway asked the conversation's workflow)."""
    from baton.store.models import Conversation
    from baton.store.records import MissedLabelRecord, record_missed_label

    record = MissedLabelRecord(
        conversation_id=conversation_id,
        message_id=message_id,
        reviewer=reviewer,
        note=note,
        source=source,
        labelled_at=now or datetime.now(UTC),
    )
    async with store_session(url, engine, begin=True) as session:
        if not known_conversation and await session.get(Conversation, conversation_id) is None:
            raise UnknownConversationError(conversation_id)
        await record_missed_label(session, record)


async def newest_missed(url: str, conversation_ids: list[str]) -> dict[str, str]:
    """The message each of these conversations should have been handed off from, by conversation id: the
    newest missed label's (as for review labels, the newest wins). Raises ReportError."""
    from sqlalchemy import select

    from baton.store.models import MissedLabel

    missed: dict[str, str] = {}
    async with store_session(url) as session:
        for chunk in (conversation_ids[i : i + 500] for i in range(0, len(conversation_ids), 500)):
            rows = await session.execute(
                select(MissedLabel.conversation_id, MissedLabel.message_id)
                .where(MissedLabel.conversation_id.in_(chunk))
                .order_by(MissedLabel.labelled_at, MissedLabel.reviewer)
            )
            for conversation_id, message_id in rows:  # oldest first: the newest label wins
                missed[conversation_id] = message_id
    return missed


async def newest_verdicts(url: str, conversation_ids: list[str]) -> dict[str, bool]:
    """The newest review label of each escalation of these conversations, by escalation id. Raises ReportError."""
    from sqlalchemy import select

    from baton.store.models import Escalation, ReviewLabel

    verdicts: dict[str, bool] = {}
    async with store_session(url) as session:
        for chunk in (conversation_ids[i : i + 500] for i in range(0, len(conversation_ids), 500)):
            rows = await session.execute(
                select(ReviewLabel.escalation_id, ReviewLabel.necessary)
                .join(Escalation, ReviewLabel.escalation_id == Escalation.id)
                .where(Escalation.conversation_id.in_(chunk))
                .order_by(ReviewLabel.labelled_at, ReviewLabel.reviewer)
            )
            for escalation_id, necessary in rows:  # oldest first: the newest label wins, as in the report
                verdicts[escalation_id] = necessary
    return verdicts


# --- output -------------------------------------------------------------------------------------------


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def sample_record(d: Drawn) -> dict[str, Any]:
    e = d.escalation
    return {
        "id": e.id,
        "escalated_at": e.escalated_at.isoformat() if e.escalated_at else None,
        "segment": e.segment,
        "urgency": e.urgency,
        "triggers": list(e.triggers),
        "drawn_for": d.stratum,
        "agent_necessary": e.necessary,
        "csat": e.csat,
        "review_necessary": e.review,
        "reviewer": e.reviewer,
    }


def sample_table(drawn: Sequence[Drawn], month: Month, total: int | None = None) -> str:
    headers = ["id", "escalated (UTC)", "segment", "urgency", "triggers", "drawn for", "agent", "CSAT", "review"]
    rows = [
        [
            d.escalation.id,
            d.escalation.escalated_at.strftime("%Y-%m-%d %H:%M") if d.escalation.escalated_at else "-",
            d.escalation.segment or UNKNOWN,
            d.escalation.urgency or "-",
            ",".join(d.escalation.triggers) or NO_TRIGGER,
            d.stratum,
            _yes_no(d.escalation.necessary),
            "-" if d.escalation.csat is None else str(d.escalation.csat),
            _yes_no(d.escalation.review),
        ]
        for d in drawn
    ]
    widths = [max(len(x) for x in column) for column in zip(headers, *rows, strict=True)]
    lines = [f"Review sample: {len(drawn)} escalations of {month.title}, stratified by trigger"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [headers]]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("")
    lines.append("Record a verdict: baton review label <id> --necessary yes|no [--note TEXT] [--reviewer NAME]")
    return "\n".join(lines)


# --- the commands ---------------------------------------------------------------------------------------------


def default_reviewer() -> str:
    try:
        return getpass.getuser() or "reviewer"
    except Exception:  # no login name in some containers
        return "reviewer"


def yes_no(text: str) -> bool:
    value = text.strip().lower()
    if value in ("yes", "y", "true"):
        return True
    if value in ("no", "n", "false"):
        return False
    raise argparse.ArgumentTypeError(f"yes or no, not {text!r}")


def _store_error(url: str, err: Exception) -> int:
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True)
    print(f"error: cannot use the store at {shown}: {type(err).__name__}: {err}".splitlines()[0], file=sys.stderr)
    return 2


def run_sample_command(args: argparse.Namespace, database_url: str) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    if args.n < 1:
        print("error: --n must be at least 1", file=sys.stderr)
        return 2
    try:
        drawn = asyncio.run(sample(database_url, args.month, args.n, args.seed, args.unreviewed))
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as err:
        return _store_error(database_url, err)
    if args.format == "json":
        print(json.dumps([sample_record(d) for d in drawn], indent=2))
    else:
        print(sample_table(drawn, args.month))
    if len(drawn) < args.n:
        print(f"note: only {len(drawn)} escalations to draw from in {args.month}", file=sys.stderr)
    return 0


def run_label_command(args: argparse.Namespace, database_url: str) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    reviewer = args.reviewer or default_reviewer()
    if getattr(args, "missed", False):
        return _run_missed(args, database_url, reviewer)
    if args.from_message is not None:
        print(
            "error: --from-message goes with --missed (the message a missed escalation should have come at)",
            file=sys.stderr,
        )
        return 2
    try:
        agent = asyncio.run(label(database_url, args.escalation_id, args.necessary, reviewer, args.note))
    except (ValidationError, ReportError, SQLAlchemyError, OSError) as err:
        return _label_failed(database_url, err)
    print(
        f"{args.escalation_id}: necessary={_yes_no(args.necessary)} by {reviewer}"
        f" (agent's disposition: {_yes_no(agent)})"
    )
    return 0


def _label_failed(database_url: str, err: Exception) -> int:
    """Exit status 2 for a label the store refuses (each problem named), else the store's own error."""
    if isinstance(err, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        print(f"error: {problems}", file=sys.stderr)
        return 2
    if isinstance(err, ReportError):
        print(f"error: {err}", file=sys.stderr)
        return 2
    return _store_error(database_url, err)


def _run_missed(args: argparse.Namespace, database_url: str, reviewer: str) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    conversation_id = args.escalation_id
    if not args.from_message:
        print(
            "error: --from-message: the customer message it should have been handed off from is required with --missed",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(label_missed(database_url, conversation_id, args.from_message, reviewer, args.note))
    except (ValidationError, ReportError, SQLAlchemyError, OSError) as err:
        return _label_failed(database_url, err)
    print(f"{conversation_id}: missed escalation from message {args.from_message} by {reviewer}")
    return 0
