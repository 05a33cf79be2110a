"""Both kinds of label (false and missed escalations) through the store, `baton review label` and `baton report`,
and the report's drift of the topic and intent mix, on planted months.

Stores run on SQLite and, when BATON_TEST_DATABASE_URL is set, on PostgreSQL too (the fixtures of test_report.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from baton.apps import report as reporting
from baton.apps import review
from baton.apps.report import Month
from baton.apps.report.drift import js_distance
from tests.test_report import Row, _backends, fresh_store, run_cli, write_rows

MONTH = Month(2026, 8)


@pytest.fixture(params=_backends())
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_store(request.param, tmp_path) as url:
        yield url


def _counts(result: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    return {
        (c["scope"], c["group"]): (
            c["false_escalations"],
            c["missed_escalations"],
            c["previous_false_escalations"],
            c["previous_missed_escalations"],
        )
        for c in result["labels"]
    }


async def test_missed_escalations_count_next_to_false_ones_per_segment_and_trigger(store_url: str) -> None:
    t, before = MONTH.start + timedelta(days=4), MONTH.previous().start + timedelta(days=4)
    rows = [
        # bot_loop fired 4 times in smb; the agents judged 3 unnecessary (false escalations).
        *(Row(f"loop{i}", "smb", t, "escalated", messages=3, triggers=("bot_loop",), at_message=3,
              necessary=i == 0) for i in range(4)),
        # frustration_trend escalated late in enterprise: necessary, but 2 of them should have come earlier.
        *(Row(f"late{i}", "enterprise", t, "escalated", messages=6, triggers=("frustration_trend",), at_message=6,
              necessary=True) for i in range(2)),
        # Never handed off: the bot kept these; reviewers say 2 of them needed a human (no trigger fired).
        *(Row(f"kept{i}", "enterprise" if i else "smb", t, messages=4) for i in range(3)),
        # The month before: one false bot_loop in smb, and one missed in smb.
        Row("old-loop", "smb", before, "escalated", triggers=("bot_loop",), necessary=False),
        Row("old-kept", "smb", before, messages=5),
    ]  # fmt: skip
    await write_rows(store_url, rows)

    # A reviewer marks missed escalations from the CLI; the agent who got late0 marked it too (the gateway's way).
    for conversation, message in (("late0", "m2"), ("kept0", "m1"), ("kept1", "m3"), ("old-kept", "m2")):
        cli = run_cli("review", "label", conversation, "--missed", "--from-message", message, "--reviewer", "lead",
                      "--note", "asked for a person", "--database-url", store_url)  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert cli.stdout.strip() == f"{conversation}: missed escalation from message {message} by lead"
    await review.label_missed(store_url, "late1", "m4", "alice", source="agent")
    # Labelling again replaces the reviewer's label (one per conversation and reviewer), the newest wins.
    await review.label_missed(store_url, "kept1", "m2", "lead")

    result = await reporting.report(store_url, MONTH)
    counts = _counts(result)
    assert counts[("segment", "smb")] == (3, 1, 1, 1)
    assert counts[("segment", "enterprise")] == (0, 3, 0, 0)
    assert counts[("trigger", "bot_loop")] == (3, 0, 1, 0)
    assert counts[("trigger", "frustration_trend")] == (0, 2, 0, 0)  # reached a human through it, too late
    assert counts[("trigger", "(none)")] == (0, 2, 0, 1)  # the bot never handed these off
    assert [c["scope"] for c in result["labels"]] == ["segment"] * 2 + ["trigger"] * 3

    table = run_cli("report", "--month", str(MONTH), "--database-url", store_url)
    assert table.returncode == 0, table.stderr
    assert "False and missed escalations" in table.stdout
    label_table = table.stdout.split("False and missed escalations")[1]
    assert [line.split() for line in label_table.splitlines() if line.startswith("segment ")] == [
        ["segment", "smb", "3", "(1)", "1", "(1)"],
        ["segment", "enterprise", "0", "(0)", "3", "(0)"],
    ]
    # The JSON document reads back into the same report.
    document = json.loads(run_cli("report", "--month", str(MONTH), "--database-url", store_url, "--format",
                                  "json").stdout)  # fmt: skip
    assert reporting.as_report(document).as_json() == document

    # What a reviewer gets wrong is named, and nothing is written.
    unknown = run_cli("review", "label", "nope", "--missed", "--from-message", "m1", "--database-url", store_url)
    assert unknown.returncode == 2 and "no conversation with id 'nope'" in unknown.stderr
    no_message = run_cli("review", "label", "kept2", "--missed", "--database-url", store_url)
    assert no_message.returncode == 2 and "--from-message" in no_message.stderr
    both = run_cli("review", "label", "kept2", "--missed", "--necessary", "no", "--database-url", store_url)
    assert both.returncode == 2 and "not allowed with" in both.stderr
    stray = run_cli("review", "label", "loop1:m3", "--necessary", "no", "--from-message", "m1",
                    "--database-url", store_url)  # fmt: skip
    assert stray.returncode == 2 and "--from-message goes with --missed" in stray.stderr
    assert _counts(await reporting.report(store_url, MONTH)) == counts


# --- drift -------------------------------------------------------------------------------------------------


def _traffic(month: Month, topics: dict[str, int], intents: dict[str, int], prefix: str) -> list[dict[str, Any]]:
    """Export lines of ``month``: one customer message per conversation, topics and intents as planted."""
    lines = []
    topic_list = [t for t, n in topics.items() for _ in range(n)]
    intent_list = [i for i, n in intents.items() for _ in range(n)]
    for n, topic in enumerate(topic_list):
        at = (month.start + timedelta(hours=n)).isoformat().replace("+00:00", "Z")
        intent = intent_list[n] if n < len(intent_list) else None
        signals = {"sentiment": 0.0, "frustration": 0.1, "intents": [intent] if intent else [], "topic": topic}
        lines.append({
            "conversation_id": f"{prefix}{n}",
            "customer": {"id": f"c{n}"},
            "messages": [
                {"message_id": "m0", "role": "customer", "text": "hello", "at": at, "signals": signals},
                {"message_id": "m1", "role": "bot", "text": "hi", "at": at},
            ],
        })  # fmt: skip
    return lines


async def test_drift_flags_a_new_failure_mode_in_the_topic_and_intent_mix(store_url: str, tmp_path: Path) -> None:
    july, august, september = MONTH.previous(), MONTH, MONTH.next()
    steady = {"billing": 40, "technical": 30, "account_access": 20, "other": 10}
    # August: a release breaks logins. Account access goes from 20% to 50% of messages, and with it
    # human requests; September settles back to July's mix give or take a few messages.
    broken = {"billing": 20, "technical": 20, "account_access": 50, "other": 10}
    calm_intents = {"billing_dispute": 10, "human_request": 10}
    loud_intents = {"billing_dispute": 8, "human_request": 40}
    lines = (
        _traffic(july, steady, calm_intents, "jul")
        + _traffic(august, broken, loud_intents, "aug")
        + _traffic(september, {"billing": 38, "technical": 31, "account_access": 21, "other": 10},
                   {"billing_dispute": 9, "human_request": 11}, "sep")
    )  # fmt: skip
    export = tmp_path / "traffic.jsonl"
    export.write_text("".join(json.dumps(line) + "\n" for line in lines))

    result = await reporting.report(store_url, august, traffic=lines)
    drift = {d["mix"]: d for d in result["drift"]}
    expected = round(js_distance(broken, steady), 4)
    assert expected > 0.15 and drift["topic"]["distance"] == expected
    assert drift["topic"]["flagged"] and drift["intent"]["flagged"]
    assert (drift["topic"]["current_messages"], drift["topic"]["previous_messages"]) == (100, 100)
    top = drift["topic"]["shifts"][0]
    assert (top["category"], top["previous_share"], top["current_share"]) == ("account_access", 0.2, 0.5)
    assert drift["intent"]["shifts"][0]["category"] == "human_request"
    # Next to the escalation-rate readings: a flag per shifted mix, naming what moved.
    flags = {f["figure"]: f for f in result["flags"]}
    assert flags["topic_mix"]["driver"] == "account_access"
    assert flags["topic_mix"]["message"].startswith("topic mix shifted (Jensen-Shannon distance ")
    assert "account_access 20% → 50%" in flags["topic_mix"]["message"]

    # A few messages' difference on a steady mix is quiet: September against an August like July.
    steady_august = _traffic(august, steady, calm_intents, "steady")
    settled = await reporting.report(store_url, september, traffic=steady_august + lines[200:])
    assert not any(d["flagged"] for d in settled["drift"])
    assert not [f for f in settled["flags"] if f["figure"].endswith("_mix")]

    # The CLI reads the export file and prints the readings beside the flags.
    cli = run_cli("report", "--month", str(august), "--database-url", store_url, "--traffic", str(export))
    assert cli.returncode == 0, cli.stderr
    assert "Mix of topics and intents against the month before" in cli.stdout
    assert "! topic mix shifted" in cli.stdout and "! intent mix shifted" in cli.stdout
    # Too few messages to compare is said, not flagged.
    few = await reporting.report(store_url, august, traffic=lines[:10] + lines[100:110])
    assert [d["distance"] for d in few["drift"]] == [None, None]
    assert "not compared: fewer than 30" in few["drift"][0]["message"]
    # A file that is not an export is refused, naming the line.
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(lines[0]) + '\n{"conversation_id": "x"}\n')
    refused = run_cli("report", "--month", str(august), "--database-url", store_url, "--traffic", str(bad))
    assert refused.returncode == 2 and f"{bad}:2: messages" in refused.stderr
