"""`baton replay`: the output contract, input errors, policies and timelines."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from baton.apps.replay import ReplayConversation, message_times, read_transcripts, rebase_customer
from tests.samples import DISTINCT_QUESTIONS

EXAMPLES = Path("examples/transcripts.jsonl")


def run_replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", "replay", *args], capture_output=True, text=True, timeout=300
    )


def records(stdout: str) -> dict[str, dict]:
    return {r["conversation_id"]: r for r in map(json.loads, stdout.splitlines())}


def test_examples_output_contract() -> None:
    result = run_replay(str(EXAMPLES), "--handoff")  # the handoff message and note need the workflow
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
    assert human["messages_to_escalation"] == 2  # the second customer message
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
        "messages": [{"role": "customer", "text": t} for t in DISTINCT_QUESTIONS[:4]],
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
        "messages": [{"role": "customer", "text": t} for t in DISTINCT_QUESTIONS[:8]],
    }
    near = {**base, "conversation_id": "near", "customer": {**base["customer"], "renewal_date": "2025-03-21"}}
    far = {**base, "conversation_id": "far", "customer": {**base["customer"], "renewal_date": "2025-09-01"}}
    transcript = tmp_path / "t.jsonl"
    transcript.write_text(json.dumps(near) + "\n" + json.dumps(far) + "\n")
    # Only the threshold scaling is measured here: a billing question near renewal escalates by a trigger
    # of its own (billing_near_renewal, tests/test_understanding.py), so this policy leaves it out.
    policy = yaml.safe_load(Path(DEFAULT_POLICY).read_text())
    policy["triggers"] = [t for t in policy["triggers"] if t["id"] != "billing_near_renewal"]
    without = tmp_path / "policy.yaml"
    without.write_text(yaml.safe_dump(policy, sort_keys=False))
    out = records(run_replay(str(transcript), "--policy", str(without)).stdout)
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


LABELLED = Path("examples/labelled.jsonl")
DEFAULT_POLICY = "policies/default.yaml"
LENIENT_POLICY = "examples/policies/lenient.yaml"


def nearest_rank_p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def test_labelled_summary_json_matches_the_records(tmp_path: Path) -> None:
    """The summary's figures, recomputed here from the printed records and the transcripts."""
    summary = tmp_path / "summary.json"
    result = run_replay(str(LABELLED), "--summary-json", str(summary))
    assert result.returncode == 0, result.stderr
    out = records(result.stdout)
    lines = {c["conversation_id"]: c for c in map(json.loads, LABELLED.read_text().splitlines())}
    assert list(out) == list(lines) and len(out) >= 20
    for r in out.values():
        assert {"conversation_id", "escalated", "urgency", "at_message", "triggers", "decisions", "label"} <= set(r)
        # A recorded bot reply after the point where Baton now escalates is refused (a person owns the
        # conversation from there); nothing else in the examples may be.
        bot_after_escalation = "InvalidMessage: role: the bot may not reply while a human owns the conversation"
        assert not any(
            d["action"] == "rejected" and not d["error"].startswith(bot_after_escalation) for d in r["decisions"]
        )
    figures = json.loads(summary.read_text())

    expected = {r["label"]["escalate"] for r in out.values()}
    assert expected == {True, False}
    tp = [c for c, r in out.items() if r["escalated"] and r["label"]["escalate"]]
    fp = [c for c, r in out.items() if r["escalated"] and not r["label"]["escalate"]]
    fn = [c for c, r in out.items() if not r["escalated"] and r["label"]["escalate"]]
    tn = [c for c, r in out.items() if not r["escalated"] and not r["label"]["escalate"]]
    assert figures["confusion"] == {"tp": len(tp), "fp": len(fp), "fn": len(fn), "tn": len(tn)}
    precision, recall = len(tp) / (len(tp) + len(fp)), len(tp) / (len(tp) + len(fn))
    assert figures["precision"] == pytest.approx(precision)
    assert figures["recall"] == pytest.approx(recall)
    assert figures["f1"] == pytest.approx(2 * precision * recall / (precision + recall))

    fired: dict[str, list[bool]] = {}
    for r in out.values():
        for t in {t["id"] for t in r["triggers"]}:
            fired.setdefault(t, []).append(r["label"]["escalate"])
    for trigger, needed in fired.items():
        assert figures["triggers"][trigger]["fired"] == len(needed)
        assert figures["triggers"][trigger]["precision"] == pytest.approx(sum(needed) / len(needed))
    for trigger in {t for c in lines.values() for t in c["label"].get("triggers", [])}:
        wanted = [r for r in out.values() if trigger in r["label"].get("triggers", [])]
        caught = [r for r in wanted if trigger in {t["id"] for t in r["triggers"]}]
        assert figures["triggers"][trigger]["recall"] == pytest.approx(len(caught) / len(wanted))

    judged = [c for c in tp if "urgency" in out[c]["label"]]
    right = [c for c in judged if out[c]["urgency"] == out[c]["label"]["urgency"]]
    assert figures["urgency"] == {"correct": len(right), "total": len(judged), "accuracy": len(right) / len(judged)}

    # Messages: the escalating message's position among the transcript's customer messages.
    messages = [sum(1 for m in lines[c]["messages"][: out[c]["at_message"] + 1] if m["role"] == "customer") for c in tp]
    seconds = [out[c]["seconds_to_escalation"] for c in tp]
    timing = figures["time_to_escalation"]
    assert timing["count"] == len(tp)
    assert timing["messages"] == {"median": statistics.median(messages), "p90": nearest_rank_p90(messages)}
    assert timing["seconds"]["median"] == pytest.approx(statistics.median(seconds))
    assert timing["seconds"]["p90"] == pytest.approx(nearest_rank_p90(seconds))

    assert f"F1 {figures['f1']:.2f}" in result.stderr
    assert f"urgency accuracy: {len(right)}/{len(judged)} true positives" in result.stderr
    assert f"time to escalation ({len(tp)} true positives): median" in result.stderr
    assert "precision  expected  caught  recall" in result.stderr  # the per-trigger table


def changed_lines(stdout: str) -> dict[str, dict]:
    out = records(stdout)
    for entry in out.values():
        assert {"conversation_id", "before", "after", "change"} <= set(entry) and entry["change"]
    return out


def outcome(record: dict) -> tuple:
    return record["escalated"], record["urgency"], record["at_message"], sorted(t["id"] for t in record["triggers"])


def test_compare_default_with_lenient_fails_and_lists_the_changes(tmp_path: Path) -> None:
    summary = tmp_path / "compare.json"
    result = run_replay(
        str(LABELLED), "--compare", DEFAULT_POLICY, LENIENT_POLICY, "--summary-json", str(summary), "--max-f1-drop", "0"
    )
    assert result.returncode == 1, result.stderr
    changed = changed_lines(result.stdout)
    # The changed conversations are exactly those whose outcome differs between two separate runs.
    default = records(run_replay(str(LABELLED), "--policy", DEFAULT_POLICY).stdout)
    lenient = records(run_replay(str(LABELLED), "--policy", LENIENT_POLICY).stdout)
    assert set(changed) == {c for c in default if outcome(default[c]) != outcome(lenient[c])}
    # Lenient has no profanity trigger: a customer escalated only for swearing is no longer escalated.
    assert changed["lab-profanity-bug"]["change"] == ["stopped_escalating"]
    assert changed["lab-profanity-bug"]["before"]["triggers"] == ["profanity"]
    assert changed["lab-profanity-bug"]["outcome"] == "regressed"
    assert changed["lab-profanity-happy"]["outcome"] == "improved"

    figures = json.loads(summary.read_text())
    assert figures["passed"] is False and figures["changed"] == len(changed)
    assert figures["a"]["recall"] > figures["b"]["recall"]
    assert figures["f1_drop"] == pytest.approx(figures["a"]["f1"] - figures["b"]["f1"]) and figures["f1_drop"] > 0
    assert figures["delta"]["f1"] == pytest.approx(-figures["f1_drop"])
    assert "A: policies/default.yaml (policy 'default')" in result.stderr
    assert f"F1 dropped by {figures['f1_drop']:.3f}" in result.stderr and "FAIL" in result.stderr
    assert "lab-profanity-bug: stopped_escalating [regressed]" in result.stderr


def test_compare_a_policy_with_itself_passes_with_no_changes() -> None:
    result = run_replay(str(LABELLED), "--compare", DEFAULT_POLICY, DEFAULT_POLICY)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "changed: 0 conversations" in result.stderr and "F1 unchanged" in result.stderr


def test_compare_with_a_generous_f1_allowance_passes() -> None:
    result = run_replay(str(LABELLED), "--compare", DEFAULT_POLICY, LENIENT_POLICY, "--max-f1-drop", "1.0")
    assert result.returncode == 0, result.stderr
    assert "lab-profanity-bug" in changed_lines(result.stdout)
    assert "(allowed drop 1): ok" in result.stderr


def test_compare_argument_errors() -> None:
    both = run_replay(str(LABELLED), "--policy", DEFAULT_POLICY, "--compare", DEFAULT_POLICY, LENIENT_POLICY)
    assert both.returncode == 2 and both.stdout == ""
    assert "argument --compare: not allowed with argument --policy" in both.stderr
    alone = run_replay(str(LABELLED), "--max-f1-drop", "0.1")
    assert alone.returncode == 2 and "--max-f1-drop applies only with --compare" in alone.stderr
    negative = run_replay(str(LABELLED), "--compare", DEFAULT_POLICY, LENIENT_POLICY, "--max-f1-drop", "-1")
    assert negative.returncode == 2 and "must be between 0 and 1" in negative.stderr
    missing = run_replay(str(LABELLED), "--compare", DEFAULT_POLICY, "nope.yaml")
    assert missing.returncode == 2 and "nope.yaml: cannot read" in missing.stderr
