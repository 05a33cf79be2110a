"""Render a policy as the trigger matrix a support team reads."""

from __future__ import annotations

from policies.engine import effective_threshold
from policies.schema import Policy, Trigger


def describe_condition(trigger: Trigger) -> str:
    c = trigger.when
    match c.kind:
        case "intent":
            return f"intent: {c.intent.value}"
        case "marker":
            return f"marker: {c.marker}"
        case "repeated_question":
            return f"same question asked >= N times (similarity {c.similarity:g})"
        case "bot_repeating":
            return f"bot gives the same answer >= N times (similarity {c.similarity:g})"
        case "unresolved_turns":
            return "N customer messages without resolution"
        case "frustration_trend":
            return f"recency-weighted frustration over last {c.window} messages >= N, not falling"
        case "high_value":
            who = " or ".join([f"MRR >= {c.min_mrr:g}"] + [f"tier {t}" for t in c.tiers])
            return f"{who}, frustration >= N"
        case "at_risk":
            stages = "/".join(c.lifecycle_stages)
            return f"health < {c.health_below:g} or lifecycle {stages}; frustration >= N or cancelling"
    return c.kind


def _cell(trigger: Trigger, policy: Policy, segment_id: str) -> str:
    segment = next(s for s in policy.segments if s.id == segment_id)
    if segment.high_priority_only and not trigger.high_priority:
        return "-"
    threshold = effective_threshold(trigger, segment.threshold_factor)
    return "any" if threshold is None else f"{threshold:g}"


def matrix_rows(policy: Policy) -> tuple[list[str], list[list[str]]]:
    header = ["trigger", "category", "condition", "urgency"] + [s.id for s in policy.segments]
    rows = [
        [t.id + (" *" if t.high_priority else ""), t.category, describe_condition(t), t.urgency]
        + [_cell(t, policy, s.id) for s in policy.segments]
        for t in policy.triggers
    ]
    return header, rows


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)

    def fmt(r: list[str]) -> str:
        return "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def render_matrix(policy: Policy, fmt: str = "table") -> str:
    markdown = fmt == "markdown"
    header, rows = matrix_rows(policy)
    out = [f"Policy '{policy.name}' (version {policy.version})", ""]
    if policy.description:
        out += [policy.description, ""]
    out.append(_table(header, rows, markdown))
    out += [
        "",
        "N in a condition is the threshold shown per segment; '-' means the segment reserves escalation for",
        "high-priority triggers (marked *); 'any' means the trigger has no threshold.",
        "",
        "Segments (first match wins):",
    ]
    seg_header = ["segment", "matches", "threshold factor", "high-priority only"]
    seg_rows = []
    for s in policy.segments:
        parts = [f"tier {'/'.join(s.match.tiers)}"] if s.match.tiers else []
        if s.match.min_mrr is not None:
            parts.append(f"MRR >= {s.match.min_mrr:g}")
        matches = " or ".join(parts) or "everyone else"
        if s.id == policy.default_segment:
            matches += " (and customers with no tier or MRR known)"
        seg_rows.append([s.id, matches, f"x{s.threshold_factor:g}", "yes" if s.high_priority_only else "no"])
    out.append(_table(seg_header, seg_rows, markdown))
    life = policy.lifecycle
    out += [
        "",
        "Lifecycle (multiplies the segment factor; thresholds with 'scales: false' stay fixed):",
        f"- accounts younger than {life.new_account_days} days: x{life.new_account_factor:g}",
        f"- renewal within {life.renewal_window_days} days: x{life.renewal_factor:g}",
    ]
    return "\n".join(out)
