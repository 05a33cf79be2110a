"""Policy files: validation errors name file, line and field; the CLI checks and shows them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from baton.policies import PolicyError, load_policy, load_policy_text
from baton.policies.matrix import render_matrix

DEFAULT = Path("policies/default.yaml")


def default_text() -> str:
    return DEFAULT.read_text()


def errors_for(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, "p.yaml")
    return caught.value.problems


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_every_bundled_policy_is_valid() -> None:
    for path in Path("policies").glob("*.yaml"):
        assert load_policy(str(path)).triggers


def test_bad_threshold_names_line_and_field() -> None:
    text = default_text().replace(
        "when: {kind: repeated_question, threshold: 3", "when: {kind: repeated_question, threshold: 1"
    )
    [problem] = errors_for(text)
    assert problem.startswith(f"p.yaml:{line_of(text, 'threshold: 1')}: triggers[1].when.threshold:")
    assert "greater than or equal to 2" in problem


def test_unknown_urgency_and_unknown_key() -> None:
    text = default_text().replace(
        "urgency: immediate\n    high_priority: true\n    description: The customer asks for a person",
        "urgency: soon\n    high_priority: true\n    description: The customer asks for a person",
    )
    text = text.replace("  renewal_factor: 0.8", "  renewal_factr: 0.8")
    problems = errors_for(text)
    assert any(p.startswith(f"p.yaml:{line_of(text, 'urgency: soon')}: triggers[0].urgency:") for p in problems), (
        problems
    )
    assert any(
        p.startswith(f"p.yaml:{line_of(text, 'renewal_factr')}: lifecycle.renewal_factr: Extra inputs")
        for p in problems
    )


def test_unknown_intent_and_condition_kind() -> None:
    text = default_text().replace("intent: human_request}", "intent: human}")
    [problem] = errors_for(text)
    assert f"p.yaml:{line_of(text, 'intent: human}')}: triggers[0].when.intent:" in problem
    text = default_text().replace("kind: bot_repeating", "kind: bot_repeats")
    [problem] = errors_for(text)
    assert problem.startswith(f"p.yaml:{line_of(text, 'bot_repeats')}: triggers[2].when:")


def test_missing_field_points_at_parent_and_duplicates_are_named() -> None:
    text = default_text().replace("  escalate_queued: >-", "  escalate_waiting: >-")
    problems = errors_for(text)
    assert any(
        p.startswith(f"p.yaml:{line_of(text, 'templates:')}: templates.escalate_queued: Field required")
        for p in problems
    )
    dup = default_text().replace("- id: bot_loop", "- id: repeated_question")
    assert any("duplicate id 'repeated_question'" in p for p in errors_for(dup))


def test_default_segment_must_exist() -> None:
    text = default_text().replace("default_segment: mid_market", "default_segment: midmarket")
    assert any("default_segment" in p for p in errors_for(text))


def test_invalid_yaml_and_missing_file() -> None:
    [problem] = errors_for("version: 1\nname: [unclosed\n")
    assert problem.startswith("p.yaml:3: invalid YAML") or problem.startswith("p.yaml:2: invalid YAML")
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy("no/such/policy.yaml")


def test_policy_check_cli(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", "policy", "check", str(DEFAULT)], capture_output=True, text=True
    )
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(default_text().replace("threshold: 8", "threshold: -8"))
    result = subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", "policy", "check", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"{bad}:{line_of(bad.read_text(), 'threshold: -8')}: triggers[3].when.threshold" in result.stderr


def test_policy_show_renders_matrix() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", "policy", "show", str(DEFAULT)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header = next(line for line in out.splitlines() if line.startswith("trigger"))
    for column in ("category", "condition", "urgency", "enterprise", "mid_market", "smb", "self_serve"):
        assert column in header
    policy = load_policy(str(DEFAULT))
    for trigger in policy.triggers:
        assert trigger.id in out
    row = next(line for line in out.splitlines() if line.startswith("unresolved_conversation"))
    assert row.split()[-4:] == ["6", "8", "11", "-"]
    assert "renewal within 60 days: x0.8" in out
    assert "| trigger |" in render_matrix(policy, fmt="markdown")


def test_policy_show_renders_hours_surge_cooling_and_handoff() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", "policy", "show", str(DEFAULT)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.splitlines()
    # Business hours: zone, holidays and each weekday per team (default, then the priority queue).
    assert "- default (all other queues): Europe/London; holidays: 2026-12-25, 2026-12-28, 2027-01-01" in lines
    assert "- priority: Europe/London; holidays: none" in lines
    assert next(line for line in lines if line.startswith("day  ")).split() == ["day", "default", "priority"]
    assert next(line for line in lines if line.startswith("mon  ")).split() == ["mon", "08:00-18:00", "00:00-24:00"]
    assert next(line for line in lines if line.startswith("sat  ")).split() == ["sat", "closed", "09:00-17:00"]
    assert "sun  closed" in out
    # Surge and cooling.
    assert "- starts at 25 conversations waiting or 40 escalations per hour" in lines
    assert "- incident terms: outage, down, not loading, not working, status, everyone, anyone else" in lines
    assert "- wait estimates x1.5" in lines
    assert "- for 48 h: thresholds x0.6" in lines
    assert "- 2 escalations within 48 h page a team lead" in lines

    # Handoff ladder (minutes) and routing.
    def cells(prefix: str) -> list[str]:
        return re.split(r"\s{2,}", next(line for line in lines if line.startswith(prefix + "  ")))

    assert cells("immediate") == ["immediate", "1 min", "3 min", "5 min", "7 min", "60 min"]
    assert cells("queued") == ["queued", "5 min", "30 min", "45 min", "60 min", "480 min"]
    for by, match, queue in (
        ("trigger", "legal_threat", "legal"),
        ("trigger", "data_deletion_request", "privacy"),
        ("trigger", "billing_dispute", "billing"),
        ("segment", "enterprise", "priority"),
    ):
        assert any(line.split() == [by, match, queue] for line in lines), (by, match, queue)

    markdown = render_matrix(load_policy(str(DEFAULT)), fmt="markdown")
    for row in (
        "| sat | closed | 09:00-17:00 |",
        "| mon | 08:00-18:00 | 00:00-24:00 |",
        "| immediate | 1 min | 3 min | 5 min | 7 min | 60 min |",
        "| queued | 5 min | 30 min | 45 min | 60 min | 480 min |",
        "| trigger | legal_threat | legal |",
        "| segment | enterprise | priority |",
        "- for 48 h: thresholds x0.6",
        "- wait estimates x1.5",
    ):
        assert row in markdown, row
    assert "Europe/London" in markdown and "2026-12-25" in markdown


def test_policy_show_without_hours_says_always_on_shift() -> None:
    policy = load_policy(str(DEFAULT)).model_copy(update={"hours": None})
    assert "Business hours: none set; people are always on shift." in render_matrix(policy)


def test_idle_close_is_validated_and_shown() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", "policy", "show", str(DEFAULT)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.splitlines()
    assert "- any channel not listed: after 30 min" in lines
    assert "- email: after 3 days" in lines and "- ticket: after 3 days" in lines
    policy = load_policy(str(DEFAULT))
    assert policy.idle_close.after("chat").total_seconds() == 1800
    assert policy.idle_close.after("email").total_seconds() == 3 * 86400

    text = default_text()
    negative = errors_for(text.replace("    email: 259200          # 3 days", "    email: -60"))
    assert any(
        f"p.yaml:{line_of(text, 'email: 259200')}: idle_close.channels.email:" in p and "must be positive" in p
        for p in negative
    ), negative
    zero = errors_for(text.replace("  default: 1800", "  default: 0"))
    assert any("idle_close.default:" in p and "must be positive" in p for p in zero), zero
    # null keeps a channel's conversations open until they are closed.
    never = load_policy_text(text.replace("  default: 1800", "  default: null"), "p.yaml")
    assert never.idle_close.after("chat") is None and never.idle_close.after("email") is not None
    assert "- any channel not listed: after never (stays open until closed)" in render_matrix(never).splitlines()
