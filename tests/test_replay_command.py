"""`baton replay`: the output contract, input errors, policies and timelines."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from baton.replay import ReplayConversation, message_times, read_transcripts, rebase_customer

EXAMPLES = Path("examples/transcripts.jsonl")
DISTINCT = [
    "How do I export reports?",
    "Where is the invoice for October?",
    "Can teammates share dashboards?",
    "Why is the mobile sync slow?",
    "Which browsers do you support?",
    "Does the API have rate limits?",
    "How long is data retained?",
    "Can I rename a workspace?",
    "Is single sign-on available?",
]


def run_replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baton.cli", "replay", *args], capture_output=True, text=True, timeout=300
    )


def records(stdout: str) -> dict[str, dict]:
    return {r["conversation_id"]: r for r in map(json.loads, stdout.splitlines())}


def test_examples_output_contract() -> None:
    result = run_replay(str(EXAMPLES))
    assert result.returncode == 0, result.stderr
    out = records(result.stdout)
    lines = [json.loads(line) for line in EXAMPLES.read_text().splitlines()]
    assert list(out) == [line["conversation_id"] for line in lines]
    for record in out.values():
        assert {"conversation_id", "escalated", "urgency", "at_message", "triggers", "decisions"} <= set(record)
        for d in record["decisions"]:
            assert {"message_index", "action", "urgency", "signals"} <= set(d)
            assert set(d["signals"]) == {"sentiment", "frustration", "intents"}
    human = out["ex-human"]
    assert human["escalated"] and human["urgency"] == "immediate" and human["at_message"] == 2
    assert human["triggers"] == [{"id": "explicit_human_request", "category": "behavioral"}]
    assert [d["message_index"] for d in human["decisions"]] == [0, 2]  # customer messages only
    assert "as you asked to speak with a person" in human["handoff_message"]
    assert human["note_summary"] and human["note_source"] == "fallback"
    assert "handoff_message" not in out["ex-password"]
    assert out["ex-not-a-request"]["escalated"] is False and out["ex-not-a-request"]["at_message"] is None
    assert out["ex-repeat"]["at_message"] == 4 and "repeated_question" in {
        t["id"] for t in out["ex-repeat"]["triggers"]
    }
    assert out["ex-legal"]["urgency"] == "immediate" and out["ex-legal"]["at_message"] == 0
    for line in lines:
        assert out[line["conversation_id"]]["escalated"] == line["label"]["escalate"]
    assert "replayed 8 conversations" in result.stderr and "escalated: 5" in result.stderr
    assert "F1 1.00" in result.stderr


def test_output_file_and_stricter_policy(tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    text = Path("policies/default.yaml").read_text().replace("name: default", "name: strict")
    strict.write_text(
        text.replace("when: {kind: unresolved_turns, threshold: 8}", "when: {kind: unresolved_turns, threshold: 3}")
    )
    transcript = tmp_path / "t.jsonl"
    conv = {
        "conversation_id": "long",
        "customer": {"id": "c1", "tier": "mid_market", "mrr": 900},
        "messages": [{"role": "customer", "text": t} for t in DISTINCT[:4]],
    }
    transcript.write_text(json.dumps(conv) + "\n")

    out_file = tmp_path / "out.jsonl"
    default = run_replay(str(transcript), "--output", str(out_file))
    assert default.returncode == 0 and default.stdout == ""
    assert records(out_file.read_text())["long"]["escalated"] is False
    tightened = records(run_replay(str(transcript), "--policy", str(strict)).stdout)["long"]
    assert tightened["escalated"] and tightened["at_message"] == 2
    assert tightened["triggers"] == [{"id": "unresolved_conversation", "category": "behavioral"}]


def test_bad_input_names_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = json.dumps(
        {"conversation_id": "a", "customer": {"id": "c"}, "messages": [{"role": "customer", "text": "hi"}]}
    )
    bad.write_text(
        good
        + "\n"
        + json.dumps({"conversation_id": "b", "customer": {"id": "c"}, "messages": [{"role": "robot", "text": "hi"}]})
        + "\n{not json\n"
    )
    result = run_replay(str(bad))
    assert result.returncode == 2 and result.stdout == ""
    assert f"{bad}:2: messages.0.role:" in result.stderr
    assert f"{bad}:3:" in result.stderr
    missing = run_replay(str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_rejected_message_is_reported_not_dropped(tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    conv = {
        "conversation_id": "r",
        "customer": {"id": "c"},
        "messages": [{"role": "customer", "text": "hi"}, {"role": "customer", "text": "x" * 5000}],
    }
    transcript.write_text(json.dumps(conv) + "\n")
    result = run_replay(str(transcript))
    [record] = records(result.stdout).values()
    assert record["decisions"][1]["action"] == "rejected"
    assert "text: 5000 characters" in record["decisions"][1]["error"]
    assert "rejected messages: 1" in result.stderr


def test_message_spacing() -> None:
    start = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    timed = ReplayConversation.model_validate(
        {
            "conversation_id": "t",
            "customer": {"id": "c"},
            "started_at": start.isoformat(),
            "messages": [
                {"role": "customer", "text": "a", "at": start.isoformat()},
                {"role": "bot", "text": "b", "at": (start + timedelta(seconds=4)).isoformat()},
                {"role": "customer", "text": "c", "at": (start + timedelta(minutes=3)).isoformat()},
            ],
        }
    )
    assert message_times(timed) == [timedelta(0), timedelta(seconds=4), timedelta(minutes=3)]
    untimed = ReplayConversation.model_validate(
        {
            "conversation_id": "u",
            "customer": {"id": "c"},
            "messages": [
                {"role": "customer", "text": "a"},
                {"role": "bot", "text": "b"},
                {"role": "customer", "text": "x" * 50},
            ],
        }
    )
    offsets = message_times(untimed)
    assert offsets[0] == timedelta(0) and timedelta(0) < offsets[1] < timedelta(seconds=10)
    assert offsets[2] - offsets[1] >= timedelta(seconds=20)  # a person reads and types


def test_customer_dates_are_rebased_onto_the_replay_clock() -> None:
    conv = ReplayConversation.model_validate(
        {
            "conversation_id": "t",
            "started_at": "2026-01-10T09:00:00Z",
            "customer": {"id": "c", "account_created_at": "2026-01-01", "renewal_date": "2026-02-15"},
            "messages": [{"role": "customer", "text": "a"}],
        }
    )
    facts = rebase_customer(conv, datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    shift = (date(2026, 11, 20) - date(2026, 1, 10)).days
    assert facts.account_created_at == date(2026, 1, 1) + timedelta(days=shift)
    assert facts.renewal_date == date(2026, 2, 15) + timedelta(days=shift)


def test_renewal_window_at_conversation_time_lowers_thresholds(tmp_path: Path) -> None:
    """Renewal 20 days after the recorded conversation: inside the window then, so it escalates sooner."""
    base = {
        "customer": {"id": "c", "tier": "mid_market", "mrr": 900},
        "started_at": "2025-03-01T10:00:00Z",
        "messages": [{"role": "customer", "text": t} for t in DISTINCT[:8]],
    }
    near = {**base, "conversation_id": "near", "customer": {**base["customer"], "renewal_date": "2025-03-21"}}
    far = {**base, "conversation_id": "far", "customer": {**base["customer"], "renewal_date": "2025-09-01"}}
    transcript = tmp_path / "t.jsonl"
    transcript.write_text(json.dumps(near) + "\n" + json.dumps(far) + "\n")
    out = records(run_replay(str(transcript)).stdout)
    assert out["near"]["at_message"] == 5  # threshold 8 x 0.8 = 6 messages
    assert out["far"]["at_message"] == 7


def test_read_transcripts_rejects_duplicate_ids() -> None:
    line = json.dumps(
        {"conversation_id": "a", "customer": {"id": "c"}, "messages": [{"role": "customer", "text": "hi"}]}
    )
    try:
        read_transcripts([line, line], "f")
    except ValueError as err:
        assert "f:2: conversation_id: duplicate 'a'" in str(err)
    else:
        raise AssertionError("duplicate ids were accepted")
