"""The draft trigger matrix: the audit's suggestions written as a policy file `baton policy check` accepts.

Everything but the triggers comes from the base policy (`--policy`, the bundled default otherwise):
segments, templates, the handoff ladder, hours. The triggers are the suggested ones first, each under a
comment with its evidence (which scenario types asked for it, how many conversations, why), then the base
policy's other triggers, kept as they are so that the draft never drops a safety net (severe distress, for
one) just because the audited month had no such conversation. A trigger suggested by several scenario
types is written once: the most urgent urgency, the lowest count or frustration threshold. The text is
validated with the policy loader before it is returned; it is a draft to review and replay
(`baton replay --compare`), never a live policy by itself.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from baton.apps.audit.scenarios import Audit, ScenarioType
from baton.apps.audit.suggestions import Suggestion
from baton.policies.loader import load_policy_text, policy_path

DRAFT_NAME = "audit-draft"
# Conditions whose parameters the audit measures; for the others (intent, topic) a base trigger's own
# condition, maybe tuned by hand, is kept.
MEASURED_KINDS = ("unresolved_turns", "frustration_trend", "repeated_question", "bot_repeating")
LOWEST_WINS = ("threshold",)


@dataclass
class _Drafted:
    suggestion: Suggestion
    when: dict[str, Any]
    urgency: str
    evidence: list[ScenarioType] = field(default_factory=list)


def _merge(scenario_types: Sequence[ScenarioType]) -> dict[str, _Drafted]:
    drafted: dict[str, _Drafted] = {}
    for scenario in scenario_types:
        s = scenario.suggestion
        entry = drafted.get(s.trigger_id)
        if entry is None:
            drafted[s.trigger_id] = _Drafted(s, dict(s.when), s.urgency, [scenario])
            continue
        entry.evidence.append(scenario)
        if s.urgency == "immediate":
            entry.urgency = "immediate"
        if s.when.get("kind") == entry.when.get("kind"):
            for key in LOWEST_WINS:
                if key in s.when and key in entry.when:
                    entry.when[key] = min(entry.when[key], s.when[key])
    return drafted


def _trigger_entry(drafted: _Drafted, base: dict[str, Any] | None) -> dict[str, Any]:
    s = drafted.suggestion
    if base is not None:
        entry = dict(base)
        base_kind = (base.get("when") or {}).get("kind")
        if base_kind != drafted.when.get("kind") or base_kind in MEASURED_KINDS:
            entry["when"] = drafted.when
        entry["urgency"] = drafted.urgency
        return entry
    entry = {"id": s.trigger_id, "category": s.category, "urgency": drafted.urgency, "description": s.description}
    if s.high_priority:
        entry["high_priority"] = True
    if s.customer_reason:
        entry["customer_reason"] = s.customer_reason
    entry["when"] = drafted.when
    return entry


def _dump(value: Any, flow_leaves: bool = True) -> str:
    """Block style, with collections of plain values in flow style (`when: {kind: intent, ...}`), as the
    bundled policies are written."""
    style = None if flow_leaves else False
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=style, allow_unicode=True, width=110)


def _comment(text: str, indent: str = "  ") -> str:
    lines = textwrap.wrap(text, width=104 - len(indent)) or [""]
    return "".join(f"{indent}# {line}\n" for line in lines)


def _evidence(drafted: _Drafted) -> str:
    out = []
    for scenario in drafted.evidence:
        out.append(
            f"{scenario.name}: {scenario.count} conversations ({scenario.share:.1%}), "
            f"median {scenario.median_turns:g} turns; {scenario.suggestion.why}"
        )
    return "".join(_comment(line) for line in out)


def _indented_item(entry: dict[str, Any]) -> str:
    body = _dump([entry])
    return "".join(f"  {line}\n" for line in body.splitlines())


def draft_policy(audit: Audit, source: str, base_name: str = "default") -> str:
    """The draft policy's YAML text, validated; raises PolicyError if it would not load (a bug)."""
    base_file = policy_path(base_name)
    raw = yaml.safe_load(base_file.read_text(encoding="utf-8"))
    base_triggers: dict[str, dict[str, Any]] = {t["id"]: t for t in raw.get("triggers", [])}
    drafted = _merge(audit.scenario_types)

    header = (
        f"A draft trigger matrix from `baton audit {source}`: {audit.conversations} conversations, "
        f"{audit.fell_short} fell short, {len(audit.scenario_types)} scenario types (at least {audit.min_count} "
        f"conversations each). Everything but the triggers is the base policy {base_file.name}. Review it, "
        "then check it (`baton policy check`) and replay it against the current policy "
        "(`baton replay --compare`) before using it.\n"
    )
    rest = {k: v for k, v in raw.items() if k not in ("version", "name", "description", "triggers")}
    top = {
        "version": 1,
        "name": DRAFT_NAME,
        "description": f"Drafted by baton audit from {Path(source).name} on the base policy {raw.get('name')}.",
    }
    parts = ["".join(_comment(line, "") for line in [header.strip()]), _dump(top, flow_leaves=False), "\ntriggers:\n"]
    if drafted:
        parts.append("  # Suggested by the audit, most conversations first.\n")
    for trigger_id, entry in drafted.items():
        parts.append("\n" + _evidence(entry))
        parts.append(_indented_item(_trigger_entry(entry, base_triggers.get(trigger_id))))
    kept = [t for tid, t in base_triggers.items() if tid not in drafted]
    if kept:
        parts.append("\n  # From the base policy: no scenario type in the audit called for these; kept as they are.\n")
        for trigger in kept:
            parts.append(_indented_item(trigger))
    parts.append("\n" + _dump(rest))
    text = "".join(parts)
    load_policy_text(text, f"<draft from {source}>")
    return text
