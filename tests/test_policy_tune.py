"""`baton policy tune`: a labelled set with planted false positives for one trigger (billing_dispute fires on
invoice questions the classifier read as disputes with a lowish probability). Tune proposes a probability
cut-off for that trigger only, with the evidence, as a diff that applies with `git apply` and passes
`baton policy check`; the policy file itself is left as it was."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from baton.apps.tune.conversations import read_scored
from baton.apps.tune.decide import decide
from baton.apps.tune.search import tune
from baton.policies import load_policy

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "policies" / "default.yaml"

# billing_dispute: 8 real disputes (p >= 0.86) and 6 planted false positives, invoice questions (p <= 0.70).
DISPUTES = [0.97, 0.95, 0.93, 0.91, 0.9, 0.88, 0.87, 0.86]
INVOICE_QUESTIONS = [0.70, 0.66, 0.64, 0.61, 0.58, 0.55]


def _signals(intent: str | None, p: float | None) -> dict[str, Any]:
    return {
        "sentiment": 0.0,
        "frustration": 0.1,
        "intents": [intent] if intent else [],
        "probabilities": {intent: p} if intent else {},
        "source": "model",
        "topic": "billing" if intent == "billing_dispute" else "other",
        "topic_probability": 0.5,
        "model_version": "test",
    }


def _line(cid: str, text: str, intent: str | None, p: float | None, escalate: bool) -> dict[str, Any]:
    return {
        "conversation_id": cid,
        "customer": {"id": f"cus-{cid}", "tier": "mid_market"},
        "channel": "chat",
        "started_at": "2026-11-03T10:00:00.000000Z",
        "messages": [
            {"message_id": "b0", "role": "bot", "text": "Hi! How can I help?", "at": "2026-11-03T10:00:00.000000Z"},
            {"message_id": "c1", "role": "customer", "text": text, "at": "2026-11-03T10:00:30.000000Z",
             "signals": _signals(intent, p)},
        ],
        "label": {"escalate": escalate},
    }  # fmt: skip


def labelled_set() -> list[dict[str, Any]]:
    lines = [
        _line(f"dispute-{i}", f"I was charged twice for order {i}, I want it refunded", "billing_dispute", p, True)
        for i, p in enumerate(DISPUTES)
    ]
    lines += [
        _line(f"invoice-{i}", f"How do I read the VAT line on invoice {i}?", "billing_dispute", p, False)
        for i, p in enumerate(INVOICE_QUESTIONS)
    ]
    lines += [_line(f"human-{i}", "Let me talk to a person please", "human_request", 0.93, True) for i in range(5)]
    lines += [_line(f"howto-{i}", f"How do I add teammate number {i}?", None, None, False) for i in range(10)]
    lines.append({**_line("unlabelled", "Where is the export button?", None, None, False), "label": {}})
    return lines


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_tune_proposes_a_tighter_cut_off_for_the_trigger_with_planted_false_positives(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    shutil.copy(DEFAULT, policies / "default.yaml")
    original = (policies / "default.yaml").read_text()
    labels = tmp_path / "november.jsonl"
    labels.write_text("".join(json.dumps(line) + "\n" for line in labelled_set()))

    # The engine over the recorded scores decides as the workflow would: every billing_dispute message escalates.
    policy = load_policy(str(DEFAULT))
    conversations = read_scored(labels.read_text().splitlines(), str(labels))
    assert decide(policy, conversations[0]).trigger_ids == ["billing_dispute"]
    assert decide(policy, conversations[8]).escalated  # a planted false positive
    assert not decide(policy, conversations[19]).escalated  # a how-to question

    proposals, _ = tune(policy, conversations)
    assert [(p.trigger, p.parameter, p.current, p.proposed) for p in proposals] == [
        ("billing_dispute", "min_probability", None, 0.71)  # the least cut-off that drops every invoice question
    ]
    (p,) = proposals
    assert (p.before.fired, p.before.necessary, p.after.fired, p.after.necessary) == (14, 8, 8, 8)
    assert (p.overall_before.tp, p.overall_before.fp, p.overall_before.fn) == (13, 6, 0)
    assert (p.overall_after.tp, p.overall_after.fp, p.overall_after.fn) == (13, 0, 0)
    assert [e.conversation_id for e in p.no_longer_fired] == ["invoice-0", "invoice-1", "invoice-2"]

    cli = run_cli("policy", "tune", "--labels", str(labels), "--policy", "policies/default.yaml",
                  "--target-precision", "0.9", "--diff", str(tmp_path / "tune.diff"), cwd=tmp_path)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    out = cli.stdout
    # The diff: one line, the billing_dispute trigger's condition, gains the cut-off.
    assert out.startswith("--- a/policies/default.yaml\n+++ b/policies/default.yaml\n")
    assert "-    when: {kind: intent, intent: billing_dispute}\n" in out
    assert "+    when: {kind: intent, intent: billing_dispute, min_probability: 0.71}\n" in out
    assert sum(1 for line in out.splitlines() if line.startswith("+") and not line.startswith("+++")) == 1
    # The evidence: counts before and after, overall TP/FP/FN, and the messages it would stop escalating.
    assert "Evidence: 29 labelled of 30 conversations" in out
    assert "billing_dispute: min_probability (none) -> 0.71 (meets the target)" in out
    assert "trigger before: fired 14: 8 needed a human, 6 did not (precision 57%)" in out
    assert "trigger after:  fired 8: 8 needed a human, 0 did not (precision 100%)" in out
    assert "overall before: TP 13 FP 6 FN 0 TN 10" in out and "overall after:  TP 13 FP 0 FN 0 TN 16" in out
    assert 'no longer fires: invoice-0 c1 (labelled no escalation): "How do I read the VAT line on invoice 0?" ' \
           "[billing_dispute p=0.70]" in out  # fmt: skip
    assert "The policy file was not changed." in out

    # Never written; the diff applies and the result passes `baton policy check`.
    assert (policies / "default.yaml").read_text() == original
    applied = subprocess.run(
        ["git", "apply", str(tmp_path / "tune.diff")], cwd=tmp_path, capture_output=True, text=True
    )
    assert applied.returncode == 0, applied.stderr
    check = run_cli("policy", "check", "policies/default.yaml", cwd=tmp_path)
    assert check.returncode == 0 and "ok (policy 'default'" in check.stdout, check.stderr
    tuned = load_policy(str(policies / "default.yaml"))
    assert tuned.trigger("billing_dispute").when.min_probability == 0.71
    assert sum(decide(tuned, c).escalated for c in conversations if c.labelled) == 13

    # Tuning the tuned policy proposes nothing more.
    again = run_cli("policy", "tune", "--labels", str(labels), "--policy", "policies/default.yaml", "--format", "json",
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    document = json.loads(again.stdout)
    assert (document["proposals"], document["diff"]) == ([], "")
    assert document["before"] == {"tp": 13, "fp": 0, "fn": 0, "tn": 16}


def test_a_threshold_trigger_is_tightened_in_a_block_style_when(tmp_path: Path) -> None:
    """A score threshold written as a block mapping: high_value_friction fires on mild frustration too."""
    policy_file = tmp_path / "policy.yaml"
    text = DEFAULT.read_text().replace(
        "    when: {kind: high_value, min_mrr: 5000, tiers: [enterprise], threshold: 0.35}\n",
        "    when:\n      kind: high_value\n      min_mrr: 5000\n      tiers: [enterprise]\n      threshold: 0.35\n",
    )
    policy_file.write_text(text)
    lines = []
    for i, frustration in enumerate([0.8, 0.75, 0.7, 0.72, 0.4, 0.38, 0.36, 0.45]):
        line = _line(f"vip-{i}", "This keeps failing on our account", None, None, frustration >= 0.7)
        line["customer"] = {"id": f"vip-{i}", "tier": "enterprise", "mrr": 20000}
        line["messages"][1]["signals"]["frustration"] = frustration
        lines.append(line)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(line) + "\n" for line in lines))
    proposed = tmp_path / "proposed.yaml"
    cli = run_cli("policy", "tune", "--labels", str(labels), "--policy", str(policy_file), "--proposed", str(proposed))
    assert cli.returncode == 0, cli.stderr
    assert "high_value_friction: threshold 0.35 -> 0.5" in cli.stdout
    assert "-      threshold: 0.35\n+      threshold: 0.5\n" in cli.stdout
    assert policy_file.read_text() == text
    assert run_cli("policy", "check", str(proposed)).returncode == 0


def test_bad_input_is_named(tmp_path: Path) -> None:
    line = _line("x", "refund me", "billing_dispute", 0.9, True)
    del line["messages"][1]["signals"]
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps(_line("ok", "hi", None, None, False)) + "\n" + json.dumps(line) + "\n")
    cli = run_cli("policy", "tune", "--labels", str(labels), "--policy", str(DEFAULT))
    assert cli.returncode == 2
    assert f"{labels}:2: messages.1: Value error, signals: a customer message needs the scores" in cli.stderr
    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text(json.dumps({**_line("ok", "hi", None, None, False), "label": {}}) + "\n")
    cli = run_cli("policy", "tune", "--labels", str(unlabelled), "--policy", str(DEFAULT))
    assert cli.returncode == 2 and "no labelled conversation" in cli.stderr
    bad_target = run_cli("policy", "tune", "--labels", str(labels), "--policy", str(DEFAULT), "--target-precision", "2")
    assert bad_target.returncode == 2 and "--target-precision" in bad_target.stderr
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(_line("ok", "hi", None, None, False)) + "\n")
    same = run_cli("policy", "tune", "--labels", str(good), "--policy", str(DEFAULT), "--proposed", str(DEFAULT))
    assert same.returncode == 2 and "never writes the policy file it reads" in same.stderr
