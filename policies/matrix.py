"""Render a policy as the trigger matrix a support team reads."""

from __future__ import annotations

from datetime import timedelta

from baton.policies.engine import effective_threshold
from baton.policies.hours import day_ranges
from baton.policies.schema import WEEKDAYS, Policy, TeamHours, Trigger


def describe_condition(trigger: Trigger) -> str:
    c = trigger.when
    match c.kind:
        case "intent":
            at_least = f" (p >= {c.min_probability:g})" if c.min_probability is not None else ""
            return f"intent: {c.intent.value}{at_least}"
        case "topic":
            parts = [f"topic: {' or '.join(t.value for t in c.topics)}"]
            if c.min_probability is not None:
                parts.append(f"p >= {c.min_probability:g}")
            if c.renewal_within_days is not None:
                parts.append(f"renewal within {c.renewal_within_days} days")
            if c.account_younger_than_days is not None:
                parts.append(f"account younger than {c.account_younger_than_days} days")
            return ", ".join(parts)
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
        *([""] if markdown else []),
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
    out += ["", *_handoff_section(policy, markdown)]
    out += ["", *_hours_section(policy, markdown)]
    out += ["", *_surge_and_cooling_section(policy)]
    return "\n".join(out)


def _minutes(duration: timedelta) -> str:
    return f"{duration.total_seconds() / 60:g} min"


def _hours(duration: timedelta) -> str:
    return f"{duration.total_seconds() / 3600:g} h"


def _handoff_section(policy: Policy, markdown: bool) -> list[str]:
    handoff = policy.handoff
    ladder_header = ["urgency", "update every", "SLA", "widen after", "page after", "async reply"]
    ladder_rows = [
        [
            urgency,
            _minutes(step.update_every),
            _minutes(step.sla),
            _minutes(step.widen_after),
            _minutes(step.page_after),
            _minutes(handoff.reply_time[urgency]) if urgency in handoff.reply_time else "-",
        ]
        for urgency, step in (("immediate", handoff.ladder.immediate), ("queued", handoff.ladder.queued))
    ]
    routing = handoff.routing
    route_rows = [["trigger", t, q] for t, q in routing.trigger_queues.items()]
    route_rows += [["segment", s, q] for s, q in routing.segment_queues.items()]
    route_rows += [["default", "anything else", routing.default_queue], ["widened", "any team", routing.general_queue]]
    return [
        "Handoff ladder (from the moment a conversation is queued; async reply is the promise on "
        f"{', '.join(handoff.async_channels) or 'asynchronous channels'}):",
        *([""] if markdown else []),
        _table(ladder_header, ladder_rows, markdown),
        "",
        "Routing (the most urgent trigger's queue, else the segment's, else the default):",
        *([""] if markdown else []),
        _table(["by", "match", "queue"], route_rows, markdown),
    ]


def _day_text(team: TeamHours, day: str) -> str:
    ranges = day_ranges(team, day)
    if not ranges:
        return "closed"
    return ", ".join(
        f"{opens:%H:%M}-{'24:00' if closes is None else format(closes, '%H:%M')}" for opens, closes in ranges
    )


def _hours_section(policy: Policy, markdown: bool) -> list[str]:
    if policy.hours is None:
        return ["Business hours: none set; people are always on shift."]
    teams = [("default", policy.hours.default), *policy.hours.teams.items()]
    lines = ["Business hours (outside them an escalation becomes a ticket with a callback time):"]
    for name, team in teams:
        label = f"{name} (all other queues)" if name == "default" else name
        holidays = ", ".join(d.isoformat() for d in sorted(team.holidays)) or "none"
        lines.append(f"- {label}: {team.timezone}; holidays: {holidays}")
    header = ["day"] + [name for name, _ in teams]
    rows = [[day] + [_day_text(team, day) for _, team in teams] for day in WEEKDAYS]
    return [*lines, "", _table(header, rows, markdown)]


def _surge_and_cooling_section(policy: Policy) -> list[str]:
    surge, cooling = policy.surge, policy.cooling
    return [
        "Surge (general incident questions stay with the bot; account-specific ones and requests for a person "
        "still reach one):",
        f"- starts at {surge.queue_depth} conversations waiting or {surge.escalations_per_hour} escalations per hour",
        f"- incident terms: {', '.join(surge.incident_terms) or 'none'}",
        f"- wait estimates x{surge.wait_factor:g}",
        "",
        "Cooling (after an escalation is resolved):",
        f"- for {_hours(cooling.period)}: thresholds x{cooling.threshold_factor:g}",
        f"- {cooling.page_lead_after} escalations within {_hours(cooling.period)} page a team lead",
        "",
        *_idle_close_section(policy),
        "",
        *_judge_section(policy),
        "",
        _redaction_line(policy),
    ]


def _redaction_line(policy: Policy) -> str:
    redaction = policy.redaction
    places = {"the LLM": redaction.llm, "helpdesk tickets": redaction.helpdesk, "on-call pages": redaction.webhooks}
    on = [name for name, wanted in places.items() if wanted]
    off = [name for name, wanted in places.items() if not wanted]
    return (
        "Redaction (emails, phones, cards, IBANs, SSNs become placeholders): "
        f"in {', '.join(on) or 'nothing'}; as sent to {', '.join(off) or 'nobody'}"
    )


def _idle_close_section(policy: Policy) -> list[str]:
    idle = policy.idle_close

    def after(duration: timedelta | None) -> str:
        if duration is None:
            return "never (stays open until closed)"
        if duration >= timedelta(days=2):
            return f"{duration.total_seconds() / 86400:g} days"
        return _hours(duration) if duration >= timedelta(hours=2) else _minutes(duration)

    lines = [
        "Idle close (reason 'idle'; from the last message with the bot, or from the resolution; never while a "
        "person is awaited or has the conversation):",
        f"- any channel not listed: after {after(idle.default)}",
    ]
    return lines + [f"- {channel}: after {after(duration)}" for channel, duration in idle.channels.items()]


def _judge_section(policy: Policy) -> list[str]:
    judge = policy.judge
    if not judge.enabled:
        return ["LLM judge: off (the classifier decides alone)"]
    return [
        "LLM judge (when BATON_LLM_BASE_URL is set):",
        f"- asked when an intent's probability is within {judge.uncertain_low:g}-{judge.uncertain_high:g}",
        f"- {judge.max_tokens} tokens a call, {judge.token_budget} a conversation; "
        f"answer within {judge.timeout.total_seconds():g} s or the classifier's answer stands",
    ]
