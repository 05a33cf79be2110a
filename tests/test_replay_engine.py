"""`baton replay` in engine mode: the workflow's decision functions without Temporal. Held to the real workflow on
the same corpus (identical decision records), to itself across worker processes, and the choice of engine."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import yaml

from baton.apps.replay.engine import replay_engine
from baton.apps.replay.policy import replayed_policy
from baton.apps.replay.records import ReplayRecord
from baton.apps.replay.runner import replay
from baton.apps.replay.transcripts import read_transcripts
from baton.classifier.scorer import scorer_for
from baton.policies import load_policy
from baton.settings import get_settings
from tests.replay_corpus import corpus

LABELLED = Path("examples/labelled.jsonl")
# What only the workflow writes: the customer's handoff message (the live queue's wait) and the LLM note.
WORKFLOW_ONLY = {"handoff_message", "note_summary", "note_source"}


def _decisions(record: ReplayRecord) -> dict[str, object]:
    return {k: v for k, v in record.model_dump().items() if k not in WORKFLOW_ONLY}


def test_the_engine_decides_as_the_workflow_on_the_same_corpus() -> None:
    # The planted helpdesk conversations (every failure mode, agents taking over, bots replying while a person
    # owns it), one-message conversations from every tier and lifecycle, and the labelled examples.
    lines = corpus(limit=90, one_liners=40) + LABELLED.read_text(encoding="utf-8").splitlines()
    conversations = read_transcripts(lines, "corpus")
    scorer = scorer_for(get_settings())
    by_engine = replay_engine(conversations, replayed_policy(None), scorer, workers=2)
    by_workflow = asyncio.run(replay(conversations, None, io.StringIO()))
    assert [r.conversation_id for r in by_engine] == [c.conversation_id for c in conversations]
    different = [
        (e.conversation_id, _decisions(e), _decisions(w))
        for e, w in zip(by_engine, by_workflow, strict=True)
        if _decisions(e) != _decisions(w)
    ]
    assert not different, different[:3]
    # The corpus exercises what it is meant to: escalations of both urgencies, later messages with the humans,
    # and refused messages (a bot or an agent writing while nobody picked up).
    actions = {d.action for r in by_engine for d in r.decisions}
    assert {"continue", "escalate", "human", "rejected"} <= actions
    assert {r.urgency for r in by_engine if r.escalated} == {"immediate", "queued"}
    assert any(not r.escalated for r in by_engine)


def test_worker_processes_give_the_records_of_one_process_in_input_order() -> None:
    conversations = read_transcripts(corpus(limit=120, one_liners=400), "corpus")
    policy, scorer = replayed_policy(None), scorer_for(get_settings())
    alone = replay_engine(conversations, policy, scorer, workers=1)
    streamed: list[ReplayRecord] = []
    parallel = replay_engine(conversations, policy, scorer, workers=3, on_records=streamed.extend)
    assert [r.model_dump() for r in parallel] == [r.model_dump() for r in alone]
    assert [r.conversation_id for r in streamed] == [c.conversation_id for c in conversations]


def _replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", "replay", *args], capture_output=True, text=True, timeout=300
    )


def test_the_command_picks_the_engine_unless_the_output_needs_the_workflow(tmp_path: Path) -> None:
    by_engine = _replay(str(LABELLED))
    assert by_engine.returncode == 0, by_engine.stderr
    assert "(engine, " in by_engine.stderr and "conversations/s)" in by_engine.stderr
    records = [json.loads(line) for line in by_engine.stdout.splitlines()]
    assert len(records) == 24 and not any(WORKFLOW_ONLY & set(r) for r in records)

    with_handoff = _replay(str(LABELLED), "--handoff")
    assert with_handoff.returncode == 0, with_handoff.stderr
    assert "(workflow, " in with_handoff.stderr
    handed = [json.loads(line) for line in with_handoff.stdout.splitlines()]
    escalated = [r for r in handed if r["escalated"]]
    assert escalated and all(r["handoff_message"] and r["note_source"] for r in escalated)
    # Same decisions either way.
    assert [{k: v for k, v in r.items() if k not in WORKFLOW_ONLY} for r in handed] == records

    # A policy that asks the LLM judge replays on the workflow, which asks it.
    policy = load_policy("default").model_dump(mode="json")
    policy["judge"] = {**policy.get("judge", {}), "enabled": True}
    judged = tmp_path / "judged.yaml"
    judged.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    chosen = _replay(str(LABELLED), "--policy", str(judged))
    assert chosen.returncode == 0, chosen.stderr
    assert "(workflow, " in chosen.stderr
    forced = _replay(str(LABELLED), "--policy", str(judged), "--engine", "engine")
    assert forced.returncode == 0 and "does not consult" in forced.stderr and "(engine, " in forced.stderr


def test_options_that_cannot_work_together_are_refused_by_name() -> None:
    handoff = _replay(str(LABELLED), "--engine", "engine", "--handoff")
    assert handoff.returncode == 2 and "--handoff needs the workflow" in handoff.stderr and not handoff.stdout
    workers = _replay(str(LABELLED), "--engine", "workflow", "--workers", "2")
    assert workers.returncode == 2 and "--workers applies to the engine" in workers.stderr
    zero = _replay(str(LABELLED), "--workers", "0")
    assert zero.returncode == 2 and "--workers" in zero.stderr


def test_replay_shows_a_bar_on_a_terminal_only() -> None:
    from tests.test_progress import (
        RATE,
        TIME_LEFT,
        assert_no_bar,
        final_bar,
        quiet_environment,
        run_in_pipe,
        run_on_terminal,
    )

    args = ["replay", str(LABELLED)]
    piped = run_in_pipe(args, quiet_environment())
    assert piped.returncode == 0, piped.stderr
    assert_no_bar(piped.stderr)
    shown = run_on_terminal(args, quiet_environment())
    assert shown.returncode == 0, shown.stderr
    bar = final_bar(shown.stderr, "replay (engine)")
    assert bar.startswith("replay (engine): 100%") and "24/24 [" in bar
    assert RATE.search(bar) and TIME_LEFT.search(bar), bar
    assert "\nreplayed 24 conversations" in shown.stderr  # the summary starts a line of its own, after the bar
    assert shown.stdout == piped.stdout
