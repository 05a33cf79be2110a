"""`baton export`: real past conversations, read from Temporal, as replay transcripts.

Last month's real traffic, through next month's policy: the output is the
JSONL that `baton replay` reads (apps/replay/transcripts.py, ReplayConversation), one
conversation per line, sorted by start time, labelled from the agents'
dispositions where there are any.

Where it comes from
    Conversation workflows started in [since, until) are listed through
    Temporal's visibility API; by default only finished ones (`--include-open`
    adds those still running). Each conversation's final state is read with
    the workflow's `state` query, which works on closed workflows while the
    namespace retains them; it is answered by the Baton worker, so a worker
    must be polling the conversations' task queue. A conversation that
    continued as new has several runs under one workflow id: it is exported
    once, from its latest run, and belongs to the window its first run started
    in. A conversation whose state cannot be read is skipped and named on
    stderr. (The history alone is no substitute: a run's input carries the
    state as it was when that run began, and its result is only a summary.)

What a line holds
    Only what the customer and the bot said (`message_id`, `role`, `text`,
    `at`, and for a customer message the `signals` the classifier recorded
    for it: intents with probabilities, topic, frustration; `baton policy
    tune` replays those and `baton report --traffic` counts them); Baton's
    own messages and the agents' replies are left out, since a replay decides
    those afresh. `customer` is the customer's facts as the conversation saw
    them (CRM merged with the chat backend's), with `id`; `started_at` is the
    first message's time; `source` names the workflow id and run id read.

The label rule
    An escalation's verdict is the newest review label recorded for it
    (`baton review label ID --necessary yes|no`, read from the store) and,
    without one, the agent's disposition given at resolution: the same
    verdict `baton report` counts.
    - `escalate: true` when any escalation's verdict says it was necessary;
      `urgency` is that (first necessary) escalation's urgency.
    - `escalate: false` when the conversation escalated and every escalation
      was judged unnecessary.
    - `escalate: false` when the conversation never escalated, is over, and
      either was closed with a reason that is not an abandonment
      (`abandoned`, `inactive`, `idle`, `timeout`, `customer_left`; see
      store/records.py) or its last customer message said the problem was
      solved (the `resolved` intent).
    - `escalate: true, missed: true, from_message: I` when a reviewer or an
      agent marked the conversation as a missed escalation (`baton review
      label CONV --missed --from-message MID`, or the gateway's `/missed`):
      it should have been handed off from the customer message MID, the
      line's message at index I (`from_message_id` keeps MID). The newest
      missed label wins, and it wins over the escalations' verdicts (the
      escalation came too late, or never). `baton replay` then counts an
      escalation after message I as a miss.
    - No label otherwise: an escalation nobody gave a disposition (and none
      judged necessary), a never-escalated conversation still open, or one
      that was abandoned or stopped without the customer saying it was
      solved. Replay still runs unlabelled lines; they count in the totals
      but not in precision and recall.

Dates are YYYY-MM-DD (midnight) or ISO datetimes; without a zone they are UTC.
Exit status: 0 done (skips are listed), 1 conversations were found but none
could be read, 2 bad arguments, Temporal unreachable or the store unreadable
(a store that was never created has no review labels: the export says so and
goes on).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from baton.apps.output import unwritable, write_failed
from baton.apps.progress import Bar, progress
from baton.apps.report.loading import ReportError
from baton.contract.messages import ConversationState, Escalation, Intent, TranscriptEntry
from baton.contract.records import ABANDONED_REASONS

WORKFLOW_TYPE = "ConversationWorkflow"
QUERY_TIMEOUT = timedelta(seconds=15)
CONNECT_TIMEOUT_SECONDS = 15.0
CONCURRENCY = 16
EXPORTED_ROLES = ("customer", "bot")
RUNNING = " AND ExecutionStatus = 'Running'"
WORKFLOW_ID_PREFIX = "conversation-"

# Review verdicts by escalation id ("<conversation_id>:<message_id>"), for the conversations named.
Reviews = Mapping[str, bool]
ReviewSource = Callable[[list[str]], Awaitable[Reviews]]
# Missed escalations: the customer message each conversation should have been handed off from, by conversation id.
Missed = Mapping[str, str]
MissedSource = Callable[[list[str]], Awaitable[Missed]]


# --- arguments -------------------------------------------------------------------------------


def parse_when(value: str) -> datetime:
    """YYYY-MM-DD (midnight) or an ISO datetime; naive values are UTC. Raises ValueError."""
    text = value.strip()
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ValueError(
            f"not a date: {value!r} (use YYYY-MM-DD or an ISO datetime such as 2026-10-01T08:00:00Z)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _iso(when: datetime) -> str:
    """UTC with microseconds and a Z: the visibility query's format, and one that sorts as text."""
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def visibility_query(since: datetime, until: datetime, *, include_open: bool = False) -> str:
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND StartTime >= '{_iso(since)}' AND StartTime < '{_iso(until)}'"
    return query if include_open else query + " AND ExecutionStatus != 'Running'"


# --- mapping one state to one transcript line -----------------------------------------------------


def escalations(state: ConversationState) -> list[Escalation]:
    return [*state.past_escalations, *([state.escalation] if state.escalation else [])]


def escalation_id(state: ConversationState, escalation: Escalation) -> str:
    """The store's id of an escalation (store/models.py), which review labels refer to."""
    return f"{state.start.conversation_id}:{escalation.message_id}"


def exported_messages(state: ConversationState) -> list[TranscriptEntry]:
    return [m for m in state.transcript if m.role in EXPORTED_ROLES]


def label_for(
    state: ConversationState, *, running: bool, reviews: Reviews | None = None, missed: Missed | None = None
) -> dict[str, Any] | None:
    """The label by the rule in this module's docstring; None leaves the conversation unlabelled."""
    from_message = (missed or {}).get(state.start.conversation_id)
    if from_message is not None:
        label: dict[str, Any] = {"escalate": True, "missed": True}
        ids = [m.message_id for m in exported_messages(state)]
        if from_message in ids:
            label["from_message"] = ids.index(from_message)
        label["from_message_id"] = from_message
        return label
    all_escalations = escalations(state)
    reviews = reviews or {}
    verdicts = [reviews.get(escalation_id(state, e), e.necessary) for e in all_escalations]
    necessary = [e for e, verdict in zip(all_escalations, verdicts, strict=True) if verdict is True]
    if necessary:
        return {"escalate": True, "urgency": necessary[0].urgency}
    if all_escalations:
        if all(verdict is False for verdict in verdicts):
            return {"escalate": False}
        return None  # escalated, never disposed
    if running:
        return None  # it may still escalate
    reason = (state.closed_reason or "").strip().lower()
    if reason and reason not in ABANDONED_REASONS:
        return {"escalate": False}
    last_customer = next((m for m in reversed(state.transcript) if m.role == "customer"), None)
    if last_customer is not None and last_customer.signals and Intent.RESOLVED in last_customer.signals.intents:
        return {"escalate": False}
    return None


def _message(entry: TranscriptEntry) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": entry.message_id,
        "role": entry.role,
        "text": entry.text,
        "at": _iso(entry.at),
    }
    if entry.role == "customer" and entry.signals is not None:
        message["signals"] = entry.signals.model_dump(mode="json", exclude_none=True)
    return message


def transcript_line(
    state: ConversationState,
    workflow_id: str,
    run_id: str,
    *,
    running: bool,
    reviews: Reviews | None = None,
    missed: Missed | None = None,
) -> dict[str, Any]:
    """One replay line; raises ValueError when the conversation has nothing to replay."""
    messages = [_message(m) for m in exported_messages(state)]
    if not messages:
        raise ValueError("no customer or bot messages")
    facts = state.context.facts if state.context is not None else state.start.customer
    line: dict[str, Any] = {
        "conversation_id": state.start.conversation_id,
        "customer": {"id": state.start.customer_id, **facts.model_dump(mode="json", exclude_none=True)},
        "channel": state.start.channel,
        "started_at": messages[0]["at"],
        "messages": messages,
    }
    label = label_for(state, running=running, reviews=reviews, missed=missed)
    if label is not None:
        line["label"] = label
    line["source"] = {"workflow_id": workflow_id, "run_id": run_id}
    return line


# --- reading from Temporal -----------------------------------------------------------------


class TemporalUnavailableError(Exception):
    """Temporal cannot be reached, or refused the listing: nothing can be exported."""


@dataclass
class Skipped:
    workflow_id: str
    reason: str


@dataclass
class ExportResult:
    lines: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    open_left_out: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> int:
        return sum(1 for line in self.lines if "label" in line)


@dataclass
class _Candidate:
    workflow_id: str
    runs: list[WorkflowExecution]

    @property
    def task_queue(self) -> str:
        return max(self.runs, key=lambda r: r.start_time).task_queue


class _OpenError(Exception):
    """Still running, and open conversations were not asked for."""


class _NotInWindowError(Exception):
    """A later run of a conversation that started before the window: it belongs to that window."""


class _QueryTimedOutError(Exception):
    """No worker answered the state query in time."""


class _SkipError(Exception):
    """The conversation cannot be exported; the message says why."""


async def _list(client: Client, query: str) -> list[WorkflowExecution]:
    try:
        return [execution async for execution in client.list_workflows(query)]
    except RPCError as err:
        raise TemporalUnavailableError(f"listing conversations failed: {err}") from err


async def _read(
    client: Client,
    candidate: _Candidate,
    include_open: bool,
    query_timeout: timedelta,
    reviews: Reviews,
    missed: Missed | None = None,
) -> dict[str, Any]:
    """Describe the latest run, then query its state for the line."""
    try:
        description = await client.get_workflow_handle(candidate.workflow_id).describe()
    except RPCError as err:
        raise _SkipError(f"describe failed: {err}") from err
    first_run = description.raw_description.workflow_execution_info.first_run_id
    if first_run and first_run not in {run.run_id for run in candidate.runs}:
        raise _NotInWindowError
    running = description.status == WorkflowExecutionStatus.RUNNING
    if running and not include_open:
        raise _OpenError
    run_id = description.run_id or ""
    handle = client.get_workflow_handle(candidate.workflow_id, run_id=run_id or None)
    try:
        state = await handle.query("state", result_type=ConversationState, rpc_timeout=query_timeout)
    except RPCError as err:
        # The client's deadline passed, or the server gave up first because nothing polls the queue.
        if err.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED) or "no poller" in err.message:
            raise _QueryTimedOutError from err
        raise _SkipError(f"state query failed: {err}") from err
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError, ValueError) as err:
        # e.g. the worker's code can no longer replay this history
        raise _SkipError(f"state query failed: {err}") from err
    try:
        return transcript_line(state, candidate.workflow_id, run_id, running=running, reviews=reviews, missed=missed)
    except ValueError as err:
        raise _SkipError(str(err)) from err


async def export_conversations(
    client: Client,
    since: datetime,
    until: datetime,
    *,
    include_open: bool = False,
    query_timeout: timedelta = QUERY_TIMEOUT,
    concurrency: int = CONCURRENCY,
    reviews: ReviewSource | None = None,
    missed: MissedSource | None = None,
    bar: Bar | None = None,
) -> ExportResult:
    """Every conversation started in [since, until) as a replay line, sorted by start time; labelled with
    the review verdicts `reviews` gives for the listed conversations (none when it is not given), and the
    missed escalations `missed` gives. `bar` is given the number of conversations listed and told of
    each one done (read, skipped or left out)."""
    by_id: dict[str, list[WorkflowExecution]] = {}
    for run in await _list(client, visibility_query(since, until, include_open=include_open)):
        by_id.setdefault(run.id, []).append(run)
    if not include_open:
        # Only to name the open conversations left out; they are described, never queried.
        running = await _list(client, visibility_query(since, until, include_open=True) + RUNNING)
        for run in running:
            by_id.setdefault(run.id, []).append(run)
    by_queue: dict[str, list[_Candidate]] = {}
    for workflow_id, runs in by_id.items():
        candidate = _Candidate(workflow_id, runs)
        by_queue.setdefault(candidate.task_queue, []).append(candidate)
    conversation_ids = [w.removeprefix(WORKFLOW_ID_PREFIX) for w in sorted(by_id)]
    if bar is not None:
        bar.set_total(len(by_id))
    verdicts = await reviews(conversation_ids) if reviews is not None and conversation_ids else {}
    late = await missed(conversation_ids) if missed is not None and conversation_ids else {}

    result = ExportResult()
    semaphore = asyncio.Semaphore(concurrency)
    timed_out = f"state query timed out after {query_timeout.total_seconds():g}s"

    async def read_one(candidate: _Candidate) -> str:
        """'answered', 'timeout', or 'not queried'."""
        async with semaphore:
            try:
                result.lines.append(await _read(client, candidate, include_open, query_timeout, verdicts, late))
            except _NotInWindowError:
                return "not queried"
            except _OpenError:
                result.open_left_out.append(candidate.workflow_id)
                return "not queried"
            except _QueryTimedOutError:
                return "timeout"
            except _SkipError as err:
                result.skipped.append(Skipped(candidate.workflow_id, str(err)))
            finally:
                if bar is not None:
                    bar.update()
        return "answered"

    async def read_queue(queue: str, candidates: list[_Candidate]) -> None:
        # One query first: when no worker answers on this queue, say so once rather than
        # waiting out the timeout for every conversation.
        pending = list(candidates)
        while pending:
            candidate = pending.pop(0)
            outcome = await read_one(candidate)
            if outcome == "timeout":
                reason = (
                    f"no worker answered the state query on task queue '{queue}' within "
                    f"{query_timeout.total_seconds():g}s (the export reads each conversation through a running "
                    "Baton worker)"
                )
                result.skipped.extend(Skipped(c.workflow_id, reason) for c in [candidate, *pending])
                if bar is not None:
                    bar.update(len(pending))
                return
            if outcome == "answered":
                break
        outcomes = await asyncio.gather(*(read_one(c) for c in pending))
        result.skipped.extend(
            Skipped(c.workflow_id, timed_out) for c, o in zip(pending, outcomes, strict=True) if o == "timeout"
        )

    await asyncio.gather(*(read_queue(queue, candidates) for queue, candidates in by_queue.items()))
    result.lines.sort(key=lambda line: (line["started_at"], line["conversation_id"]))
    result.skipped.sort(key=lambda s: s.workflow_id)
    result.open_left_out.sort()
    return result


# --- output ------------------------------------------------------------------------------------


def write_jsonl(target: Path, lines: list[dict[str, Any]]) -> None:
    """Write all lines or none: a half-written export would replay as a smaller month."""
    fd, scratch = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for line in lines:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        os.replace(scratch, target)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def summarize(result: ExportResult, target: str, since: datetime, until: datetime) -> str:
    labels = Counter(line["label"]["escalate"] for line in result.lines if "label" in line)
    lines = [
        f"exported {_count(len(result.lines), 'conversation')} started {_iso(since)} .. {_iso(until)} to {target}",
        f"labelled {result.labelled}: escalate {labels[True]}, no escalation {labels[False]}; "
        f"unlabelled {len(result.lines) - result.labelled}",
    ]
    if result.open_left_out:
        lines.append(f"left out {_count(len(result.open_left_out), 'open conversation')} (--include-open exports them)")
    if result.skipped:
        reasons = Counter(s.reason for s in result.skipped)
        lines.append(f"skipped {len(result.skipped)}: " + "; ".join(f"{r} ({n})" for r, n in reasons.most_common()))
        lines.extend(f"  skipped {s.workflow_id}: {s.reason}" for s in result.skipped)
    else:
        lines.append("skipped 0")
    return "\n".join(lines)


class StoreUnreadableError(Exception):
    """The store holding the review labels exists but cannot be read."""


def store_reviews(database_url: str, notes: list[str]) -> ReviewSource:
    """Review verdicts from the store at `database_url`. A store never created holds no labels: that is
    noted in `notes`, not an error; any other problem is (a label silently ignored is a wrong label)."""
    from sqlalchemy.exc import SQLAlchemyError

    from baton.apps.review import newest_verdicts

    async def read(conversation_ids: list[str]) -> Reviews:
        try:
            return await newest_verdicts(database_url, conversation_ids)
        except ReportError as err:
            if str(err).startswith("no store at"):
                notes.append(f"review labels not applied: {err}")
                return {}
            raise StoreUnreadableError(f"cannot read review labels: {err}") from err
        except (SQLAlchemyError, OSError) as err:
            raise StoreUnreadableError(f"cannot read review labels: {type(err).__name__}: {err}") from err

    return read


def store_missed(database_url: str, notes: list[str]) -> MissedSource:
    """Missed-escalation labels from the store at `database_url`, read as `store_reviews` reads verdicts."""
    from sqlalchemy.exc import SQLAlchemyError

    from baton.apps.review import newest_missed

    async def read(conversation_ids: list[str]) -> Missed:
        try:
            return await newest_missed(database_url, conversation_ids)
        except ReportError as err:
            if str(err).startswith("no store at"):
                return {}  # said once, by store_reviews
            raise StoreUnreadableError(f"cannot read missed-escalation labels: {err}") from err
        except (SQLAlchemyError, OSError) as err:
            raise StoreUnreadableError(f"cannot read missed-escalation labels: {type(err).__name__}: {err}") from err

    return read


async def _connect_and_export(
    since: datetime, until: datetime, include_open: bool, database_url: str | None, notes: list[str], bar: Bar
) -> ExportResult:
    from baton.settings import get_settings
    from baton.worker.connection import connect

    settings = get_settings()
    where = f"{settings.temporal_address} (namespace {settings.temporal_namespace})"
    try:
        client = await asyncio.wait_for(
            connect(settings),
            timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except TimeoutError as err:
        raise TemporalUnavailableError(
            f"cannot reach Temporal at {where}: no answer in {CONNECT_TIMEOUT_SECONDS:g}s"
        ) from err
    except (RuntimeError, RPCError, OSError) as err:
        raise TemporalUnavailableError(f"cannot reach Temporal at {where}: {err}") from err
    try:
        return await export_conversations(
            client,
            since,
            until,
            include_open=include_open,
            reviews=store_reviews(database_url or settings.database_url, notes),
            missed=store_missed(database_url or settings.database_url, notes),
            bar=bar,
        )
    except TemporalUnavailableError as err:
        raise TemporalUnavailableError(f"{err} (Temporal at {where})") from err


def run_export_command(args: argparse.Namespace) -> int:
    try:
        since = parse_when(args.since)
        until = parse_when(args.until) if args.until else datetime.now(UTC)
    except ValueError as err:
        print(f"export: {err}", file=sys.stderr)
        return 2
    if since >= until:
        print(
            f"export: --since ({_iso(since)}) must be before --until ({_iso(until)})",
            file=sys.stderr,
        )
        return 2
    target = Path(args.output)
    problem = unwritable(target)
    if problem:
        print(f"export: {problem}", file=sys.stderr)
        return 2
    notes: list[str] = []
    try:
        # Closed before anything else is printed: the summary and errors never share a line with the bar.
        with progress(None, "export", unit="conv") as bar:
            result = asyncio.run(
                _connect_and_export(since, until, args.include_open, getattr(args, "database_url", None), notes, bar)
            )
    except (TemporalUnavailableError, StoreUnreadableError) as err:
        print(f"export: {err}", file=sys.stderr)
        return 2
    try:
        write_jsonl(target, result.lines)
    except OSError as err:
        print(f"export: {write_failed(target, err)}", file=sys.stderr)
        return 2
    print(summarize(result, str(target), since, until), file=sys.stderr)
    for note in notes:
        print(f"export: {note}", file=sys.stderr)
    return 1 if result.skipped and not result.lines else 0
