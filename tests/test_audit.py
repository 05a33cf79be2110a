"""`baton audit`: the planted failure modes of a generated month of helpdesk conversations come back as
scenario types, each with its count and the trigger that would have caught it, and the draft policy passes
`baton policy check`.

The set (tests/past_conversations.py, seeded): 624 conversations, 290 that went well, 10 that went wrong
once for no pattern, and nine planted modes (three of the 48 billing loops end abandoned instead, as real
modes are not clean). What each mode must come back as:

| planted mode | scenario type's shortfall | grouped by | suggested trigger | urgency |
|---|---|---|---|---|
| billing disputes the bot looped on | many_turns | intent billing_dispute | billing_dispute | queued |
| password resets taken over | hand_escalation | cluster (account_access) | topic_account_access (new) | queued |
| late parcels rated 1-2 | low_csat | cluster (shipping_orders) | topic_shipping_orders (new) | queued |
| cancellations abandoned | abandoned | intent cancellation | cancellation_request (new) | queued |
| legal threats an agent took over | hand_escalation | intent legal_threat | legal_threat | immediate |
| deletion requests an agent took over | hand_escalation | intent data_deletion | data_deletion_request | queued |
| furious outage complaints rated 1 | low_csat | cluster (technical) | frustration_trend | immediate |
| requests for a person ignored, abandoned | abandoned | intent human_request | explicit_human_request | immediate |
| a failing export asked about again and again | many_turns | cluster (technical) | repeated_question | queued |

"Comes back" means: one listed scenario type holds at least 90% of the mode's conversations, and at least
90% of that scenario type's conversations are of the mode; no two modes share a scenario type; the noise
forms none, and neither do the three abandoned billing loops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from baton.apps import cli
from baton.apps.audit import clustering
from baton.apps.audit.draft import draft_policy
from baton.apps.audit.loading import AuditInputError, read_conversations
from baton.apps.audit.render import render_table
from baton.apps.audit.scenarios import find_scenarios
from baton.apps.audit.shortfalls import Shortfall, Thresholds, shortfalls
from baton.classifier.rules import RuleScorer
from baton.policies import load_policy
from baton.policies.loader import load_policy_text
from tests import past_conversations

EXPECTED = {
    "billing_loop": ("many_turns", "intent", "billing_dispute", "queued"),
    "password_hand": ("hand_escalation", "cluster", "topic_account_access", "queued"),
    "shipping_low_csat": ("low_csat", "cluster", "topic_shipping_orders", "queued"),
    "cancellation_abandoned": ("abandoned", "intent", "cancellation_request", "queued"),
    "legal_threat": ("hand_escalation", "intent", "legal_threat", "immediate"),
    "deletion_hand": ("hand_escalation", "intent", "data_deletion_request", "queued"),
    "outage_low_csat": ("low_csat", "cluster", "frustration_trend", "immediate"),
    "human_ignored": ("abandoned", "intent", "explicit_human_request", "immediate"),
    "export_bug_loop": ("many_turns", "cluster", "repeated_question", "queued"),
}
RECOVERED = 0.9


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "baton.apps.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The generated set audited once through the CLI: the JSON, the planted modes and the files written."""
    folder = tmp_path_factory.mktemp("audit")
    source = folder / "past.jsonl"
    modes = past_conversations.write(source)
    chart, draft = folder / "scenarios.png", folder / "draft.yaml"
    done = run_cli("audit", str(source), "--format", "json", "--chart", str(chart), "--policy-out", str(draft))
    assert done.returncode == 0, done.stderr
    return {"result": json.loads(done.stdout), "modes": modes, "chart": chart, "draft": draft, "stderr": done.stderr}


def _scenario_of(result: dict[str, Any], ids: set[str]) -> dict[str, Any]:
    return max(result["scenario_types"], key=lambda s: len(ids & set(s["conversation_ids"])))


def test_the_generated_set_is_a_realistic_month(audited: dict[str, Any]) -> None:
    modes = Counter(audited["modes"].values())
    assert len(audited["modes"]) >= 500
    assert modes["healthy"] > sum(modes[m] for m in EXPECTED) * 0.8  # most conversations go well
    result = audited["result"]
    assert result["conversations"] == len(audited["modes"])
    assert result["shapes"] == {"helpdesk": len(audited["modes"])}
    assert result["fell_short"] == sum(past_conversations.PLANTED_COUNTS.values()) + past_conversations.NOISE


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_each_planted_mode_comes_back_as_a_scenario_type(audited: dict[str, Any], mode: str) -> None:
    result, modes = audited["result"], audited["modes"]
    planted = {cid for cid, m in modes.items() if m == mode}
    assert len(planted) == past_conversations.PLANTED_COUNTS[mode]
    scenario = _scenario_of(result, planted)
    members = set(scenario["conversation_ids"])
    assert len(planted & members) >= RECOVERED * len(planted), (mode, scenario["key"], scenario["count"])
    assert scenario["count"] <= len(planted) - past_conversations.DRIFTED.get(mode, 0)
    assert len(planted & members) >= RECOVERED * scenario["count"], (mode, scenario["key"], scenario["count"])
    assert scenario["count"] == len(members)
    assert scenario["share"] == pytest.approx(scenario["count"] / result["conversations"], abs=1e-4)

    shortfall, grouping, trigger, urgency = EXPECTED[mode]
    assert (scenario["shortfall"], scenario["grouping"]) == (shortfall, grouping)
    assert (scenario["suggestion"]["trigger"], scenario["suggestion"]["urgency"]) == (trigger, urgency)
    assert 1 <= len(scenario["examples"]) <= 3
    assert all(len(example) <= 100 for example in scenario["examples"])
    planted_turns = sorted(
        sum(1 for m in line["messages"] if m["role"] == "customer")
        for line in (p.line for p in past_conversations.generate())
        if line["conversation_id"] in planted
    )
    # The bot's part: customer messages before an agent answered (all of them in these modes).
    assert scenario["median_turns"] == pytest.approx(_median(planted_turns), abs=1)


def _median(values: list[int]) -> float:
    middle = len(values) // 2
    return float(values[middle]) if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def test_modes_are_told_apart_and_noise_is_no_scenario_type(audited: dict[str, Any]) -> None:
    result, modes = audited["result"], audited["modes"]
    keys = [_scenario_of(result, {c for c, m in modes.items() if m == mode})["key"] for mode in EXPECTED]
    assert len(set(keys)) == len(EXPECTED)
    assert len(result["scenario_types"]) >= 8
    for scenario in result["scenario_types"]:
        found = Counter(modes[c] for c in scenario["conversation_ids"])
        assert found["noise"] + found["healthy"] <= 0.1 * scenario["count"], scenario["key"]
    # The noisy conversations, and the billing loops that ended abandoned, are listed apart, in groups too
    # small to be a pattern.
    drifted = sum(past_conversations.DRIFTED.values())
    assert sum(s["count"] for s in result["smaller"]) == past_conversations.NOISE + drifted
    assert {"key": "billing_dispute/abandoned", "count": drifted, "shortfall": "abandoned"}.items() <= next(
        s for s in result["smaller"] if s["key"] == "billing_dispute/abandoned"
    ).items()
    assert all(s["count"] < result["min_count"] for s in result["smaller"])


def test_the_draft_policy_passes_policy_check_and_carries_the_suggestions(audited: dict[str, Any]) -> None:
    draft: Path = audited["draft"]
    checked = run_cli("policy", "check", str(draft))
    assert checked.returncode == 0, checked.stderr
    assert "ok (policy 'audit-draft'" in checked.stdout

    policy = load_policy(str(draft))
    by_id = {t.id: t for t in policy.triggers}
    for _, _, trigger, urgency in EXPECTED.values():
        assert by_id[trigger].urgency == urgency
    assert by_id["cancellation_request"].when.kind == "intent"
    assert by_id["topic_shipping_orders"].when.topics == ["shipping_orders"]
    # The base policy's other triggers stay: a month without a crisis drops no safety net.
    assert {"severe_distress", "bot_loop", "profanity"} <= set(by_id)
    assert policy.segments == load_policy("default").segments
    text = draft.read_text()
    assert text.index("id: billing_dispute") < text.index("id: severe_distress")  # suggestions come first
    assert "many back-and-forth turns: 45 conversations (7.2%), median 10 turns" in text  # the evidence


def test_the_chart_is_a_png(audited: dict[str, Any]) -> None:
    chart: Path = audited["chart"]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"chart written to {chart}" in audited["stderr"]


def sync_loops() -> list[dict[str, Any]]:
    """Six long conversations about one problem, rated 2: one scenario type."""
    lines = []
    for n in range(6):
        messages = []
        for turn in range(7):
            messages += [
                {"role": "customer", "text": f"The sync to my phone fails again, attempt {turn}"},
                {"role": "bot", "text": "Please reinstall the app and sign in again."},
            ]
        lines.append({"conversation_id": f"c-{n}", "customer": {"id": f"u{n}"}, "messages": messages, "csat": 2})
    return lines


def _baton_export(path: Path) -> Path:
    """The six sync loops (sync_loops), one conversation Baton escalated and one a reviewer marked a missed
    escalation, in Baton's export shape."""
    lines = sync_loops()
    lines.append(
        {
            "conversation_id": "c-escalated",
            "customer": {"id": "u9", "tier": "enterprise"},
            "messages": [{"role": "customer", "text": "I want a person now", "at": "2026-10-01T08:00:00Z"}],
            "label": {"escalate": True, "urgency": "immediate"},
            "source": {"workflow_id": "conversation-c-escalated", "run_id": "r"},
        }
    )
    lines.append(
        {
            "conversation_id": "c-missed",
            "customer": {"id": "u10"},
            "messages": [{"role": "customer", "text": "The invoice total is wrong"}, {"role": "bot", "text": "Ok."}],
            "label": {"escalate": True, "missed": True, "from_message": 0, "from_message_id": "m1"},
        }
    )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_baton_export_lines_and_the_table(tmp_path: Path) -> None:
    """Baton's own export (replay JSONL) is read as well: its label says whether Baton escalated, and a
    line may carry the chat backend's survey (csat). Under the rules scorer, which has no embedding to
    cluster, conversations without an intent are grouped by topic."""
    source = _baton_export(tmp_path / "export.jsonl")
    done = subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", "audit", str(source), "--min-count", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BATON_CLASSIFIER": "rules"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "8 conversations (8 baton); 7 fell short (87.5%); 1 scenario types of at least 4 conversations"
    assert out[1].endswith(
        "classifier rules-1; conversations without an intent grouped by topic (the scorer has no embedding)"
    )
    row = next(line for line in out if line.startswith(" 1  "))
    # group, shortfall, count, share, median turns; the bot gave the same answer every time
    assert row.split() == ["1", "other", "many_turns", "6", "75.0%", "7", "bot_loop", "(queued)"]
    assert "    also: low CSAT 6" in out
    assert '    "The sync to my phone fails again, attempt 0"' in out
    # The conversation Baton escalated fell short in no way; the one a reviewer marked missed did.
    assert out[-1] == "1 more conversation fell short in 1 group smaller than 4: other, marked a missed escalation (1)"


def test_kmeans_is_seeded_and_picks_k_by_silhouette() -> None:
    rng = np.random.default_rng(3)
    centres = np.eye(16)[:3] * 5
    vectors = np.vstack([centre + rng.normal(scale=0.3, size=(20, 16)) for centre in centres])
    order = rng.permutation(len(vectors))
    vectors = vectors[order]
    first = clustering.kmeans(vectors, seed=0, min_size=10)
    again = clustering.kmeans(vectors, seed=0, min_size=10)
    assert first == again
    assert first.k == 3 and first.labels[0] == 0  # numbered by first appearance
    truth = order // 20
    for cluster in range(3):
        assert len({int(t) for t, label in zip(truth, first.labels, strict=True) if label == cluster}) == 1
    assert clustering.kmeans(vectors[:9], seed=0, min_size=5).k == 1  # too few for two clusters of five


def test_bad_lines_are_named_by_line_and_field(tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    good = {"conversation_id": "a", "messages": [{"role": "customer", "text": "hi"}]}
    source.write_text(
        json.dumps(good)
        + "\n"
        + json.dumps({**good, "conversation_id": "b", "csat": 7})
        + "\n"
        + "{not json\n"
        + json.dumps({"conversation_id": "c", "messages": [{"role": "robot", "text": "x"}]})
        + "\n"
        + json.dumps(good)
        + "\n"
    )
    done = run_cli("audit", str(source))
    assert done.returncode == 2
    problems = done.stderr.splitlines()
    assert f"{source}:2: csat: Input should be less than or equal to 5" in problems
    assert any(p.startswith(f"{source}:3: (line): not JSON") for p in problems)
    assert any(
        p.startswith(f"{source}:4: messages.0.role: Input should be 'customer', 'bot' or 'agent'") for p in problems
    )
    assert f"{source}:5: conversation_id: duplicate 'a'" in problems
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["nowhere.jsonl"], "nowhere.jsonl: cannot read: No such file or directory"),
        (["past.jsonl", "--policy-out", "no/draft.yaml"], "error: no/draft.yaml: cannot write: no such directory no"),
        (["past.jsonl", "--policy", "missing-policy"], "cannot read"),
        (["past.jsonl", "--low-csat", "7"], "argument --low-csat: CSAT is 1-5, got 7"),
        (["past.jsonl", "--many-turns", "0"], "argument --many-turns: must be at least 1, got 0"),
    ],
)
def test_unusable_files_exit_2_before_any_scoring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "past.jsonl").write_text(json.dumps({"conversation_id": "a", "messages": []}) + "\n")
    with pytest.raises(SystemExit) as exited:
        cli.main(["audit", *args])
    assert exited.value.code == 2
    assert error in capsys.readouterr().err


def test_shortfalls_in_order_of_precedence() -> None:
    [conversation] = read_conversations(
        [
            json.dumps(
                {
                    "conversation_id": "x",
                    "messages": [{"role": "customer", "text": f"q{i}"} for i in range(6)]
                    + [{"role": "agent", "text": "I'm here"}, {"role": "customer", "text": "thanks"}],
                    "csat": 1,
                    "abandoned": True,
                }
            )
        ],
        "x.jsonl",
    )
    assert conversation.agent_took_over  # an agent's message says so, the flag aside
    assert conversation.turns == 6  # the bot's part only
    assert shortfalls(conversation, Thresholds()) == [
        Shortfall.HAND_ESCALATION,
        Shortfall.MANY_TURNS,
        Shortfall.LOW_CSAT,
    ]
    assert shortfalls(conversation, Thresholds(many_turns=7, low_csat=1)) == [
        Shortfall.HAND_ESCALATION,
        Shortfall.LOW_CSAT,
    ]
    with pytest.raises(AuditInputError, match="empty file"):
        read_conversations(["", "  "], "empty.jsonl")


def test_conversations_without_customer_words_and_a_month_without_shortfalls() -> None:
    """A conversation the customer wrote nothing in is grouped on its own, never clustered; a set where
    nothing fell short says so, and its draft is the base policy's triggers."""
    lines = [
        {"conversation_id": "a", "messages": [{"role": "bot", "text": "Hello"}], "abandoned": True},
        {"conversation_id": "b", "messages": [{"role": "agent", "text": "Hello"}]},
        {"conversation_id": "c", "messages": [{"role": "customer", "text": "hi"}], "csat": 5},
    ]
    conversations = read_conversations([json.dumps(line) for line in lines], "x.jsonl")
    audit = find_scenarios(conversations, RuleScorer(), load_policy("default"), min_count=1)
    assert [(s.key, s.count) for s in audit.scenario_types] == [
        ("no-customer-message/abandoned", 1),
        ("no-customer-message/hand_escalation", 1),
    ]
    assert audit.grouping == "(none to cluster)"

    healthy = find_scenarios(conversations[2:], RuleScorer(), load_policy("default"))
    assert (healthy.fell_short, healthy.scenario_types) == (0, [])
    assert render_table(healthy).splitlines()[-1] == "No scenario type: no conversation fell short."
    draft = load_policy_text(draft_policy(healthy, "x.jsonl"))
    assert [t.id for t in draft.triggers] == [t.id for t in load_policy("default").triggers]
