"""`baton audit` on stdout: a table for people, or JSON for tools (the same figures)."""

from __future__ import annotations

import json

from baton.apps.audit.scenarios import Audit
from baton.apps.audit.shortfalls import SHORTFALL_TEXT, Shortfall

NAME_WIDTH = 44
SHORTFALL_WIDTH = 15


def render_json(audit: Audit) -> str:
    return json.dumps(audit.as_dict(), indent=2, ensure_ascii=False)


def render_table(audit: Audit) -> str:
    shapes = ", ".join(f"{n} {shape}" for shape, n in audit.shapes.items())
    share = audit.fell_short / audit.conversations if audit.conversations else 0.0
    lines = [
        f"{audit.conversations} conversations ({shapes}); {audit.fell_short} fell short ({share:.1%}); "
        f"{len(audit.scenario_types)} scenario types of at least {audit.min_count} conversations",
        f"shortfalls: many turns = at least {audit.thresholds.many_turns} customer messages, "
        f"low CSAT = {audit.thresholds.low_csat:g} or less; classifier {audit.classifier}; "
        f"conversations without an intent grouped {audit.grouping}",
        "",
        f"{'#':>2}  {'scenario type':<{NAME_WIDTH}} {'shortfall':<{SHORTFALL_WIDTH}} {'count':>5} {'share':>6} "
        f"{'turns':>5}  suggested trigger (urgency)",
    ]
    if not audit.scenario_types:
        lines[-1] = "No scenario type: " + (
            "no conversation fell short." if not audit.fell_short else "every group is smaller than the minimum."
        )
    for rank, s in enumerate(audit.scenario_types, start=1):
        name = s.group if len(s.group) <= NAME_WIDTH else s.group[: NAME_WIDTH - 1] + "…"
        new = ", new" if not s.suggestion.in_base else ""
        lines.append(
            f"{rank:>2}  {name:<{NAME_WIDTH}} {s.shortfall.value:<{SHORTFALL_WIDTH}} {s.count:>5} {s.share:>6.1%} "
            f"{s.median_turns:>5g}  "
            f"{s.suggestion.trigger_id} ({s.suggestion.urgency}{new})"
        )
        also = [
            f"{SHORTFALL_TEXT[Shortfall(kind)]} {n}"
            for kind, n in s.shortfall_counts.items()
            if kind != s.shortfall.value
        ]
        if also:
            lines.append(f"    also: {', '.join(also)}")
        lines.append(f"    why: {s.suggestion.why}")
        lines.extend(f'    "{example}"' for example in s.examples)
    if audit.smaller:
        rest = sum(s.count for s in audit.smaller)
        lines.append("")
        conversations = "1 more conversation" if rest == 1 else f"{rest} more conversations"
        groups = "1 group" if len(audit.smaller) == 1 else f"{len(audit.smaller)} groups"
        lines.append(
            f"{conversations} fell short in {groups} smaller than {audit.min_count}: "
            + ", ".join(f"{s.name} ({s.count})" for s in audit.smaller[:8])
            + (", …" if len(audit.smaller) > 8 else "")
        )
    return "\n".join(lines)
