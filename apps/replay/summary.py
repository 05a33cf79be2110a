"""The summary `baton replay` prints on stderr: the decisions, measured against the labels when there are any,
or the comparison of two policies."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from baton.apps import evaluation
from baton.apps.evaluation import Comparison, Metrics, TriggerFigures
from baton.apps.replay.records import ReplayRecord


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fmt_count(value: float | None) -> str:
    """Counts, messages and seconds: no trailing zeros, at most one decimal."""
    return "-" if value is None else f"{round(value, 1):g}"


def _fmt_delta(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    rounded = round(value, digits)
    if rounded == 0:
        return "0"
    return f"{rounded:+.{digits}f}" if digits == 2 else f"{rounded:+g}"


def trigger_table(triggers: Mapping[str, TriggerFigures]) -> list[str]:
    """Per-trigger precision, and recall when labels name expected triggers; one row per trigger."""
    if not triggers:
        return []
    with_recall = any(s["expected"] for s in triggers.values())
    width = max(len("trigger"), *(len(t) for t in triggers))
    header = f"  {'trigger':<{width}}  fired  necessary  precision"
    lines = [header + ("  expected  caught  recall" if with_recall else "")]
    for trigger, s in triggers.items():
        row = f"  {trigger:<{width}}  {s['fired']:>5}  {s['necessary']:>9}  {_fmt(s['precision']):>9}"
        if with_recall:
            row += f"  {s['expected']:>8}  {s['caught']:>6}  {_fmt(s['recall']):>6}"
        lines.append(row)
    return lines


def evaluation_lines(figures: Metrics) -> list[str]:
    """The labelled part of a summary: accuracy, per trigger, urgency, time to escalation."""
    if not figures["labelled"]:
        return []
    c = figures["confusion"]
    lines = [
        f"against labels ({figures['labelled']}): precision {figures['precision']:.2f}, "
        f"recall {figures['recall']:.2f}, F1 {figures['f1']:.2f} "
        f"(tp {c['tp']}, fp {c['fp']}, fn {c['fn']}, tn {c['tn']})"
    ]
    if figures.get("late"):
        lines.append(
            f"late: {figures['late']} missed-escalation labels escalated after the message they name (counted in fn)"
        )
    urgency = figures["urgency"]
    if urgency["total"]:
        lines.append(
            f"urgency accuracy: {urgency['correct']}/{urgency['total']} true positives ({urgency['accuracy']:.2f})"
        )
    timing = figures["time_to_escalation"]
    if timing["count"]:
        m, s = timing["messages"], timing["seconds"]
        lines.append(
            f"time to escalation ({timing['count']} true positives): "
            f"median {_fmt_count(m['median'])} messages / {_fmt_count(s['median'])}s, "
            f"p90 {_fmt_count(m['p90'])} messages / {_fmt_count(s['p90'])}s"
        )
    if figures["triggers"]:
        lines.append("per trigger (labelled conversations; necessary = labelled as needing a human):")
        lines.extend(trigger_table(figures["triggers"]))
    return lines


def _how(engine: str | None, conversations: int, elapsed: float) -> str:
    """Which engine replayed, and how fast: " (engine, 2,400 conversations/s)"."""
    if engine is None:
        return ""
    rate = f", {conversations / elapsed:,.0f} conversations/s" if elapsed > 0 and conversations else ""
    return f" ({engine}{rate})"


def summarize(records: list[ReplayRecord], elapsed: float, engine: str | None = None) -> str:
    total = len(records)
    escalated = [r for r in records if r.escalated]
    lines = [
        f"replayed {total} conversations in {elapsed:.1f}s{_how(engine, total, elapsed)}",
        f"escalated: {len(escalated)} ({100 * len(escalated) / total:.1f}%)" if total else "escalated: 0",
    ]
    urgencies = Counter(r.urgency for r in escalated)
    if urgencies:
        lines.append("  by urgency: " + ", ".join(f"{k} {v}" for k, v in sorted(urgencies.items())))
    triggers = Counter(t for r in records for t in r.trigger_ids)
    if triggers:
        lines.append("  triggers: " + ", ".join(f"{k} {v}" for k, v in triggers.most_common()))
    rejected = sum(r.rejected_messages for r in records)
    if rejected:
        lines.append(f"rejected messages: {rejected} (see 'error' in the records)")
    lines.extend(evaluation_lines(evaluation.metrics(records)))
    return "\n".join(lines)


def summarize_comparison(
    comparison: Comparison,
    names: tuple[str, str],
    elapsed: float,
    max_f1_drop: float,
    under: str = "2 policies",
    engine: str | None = None,
) -> str:
    before, after, delta = comparison["before"], comparison["after"], comparison["delta"]
    changed = comparison["changed"]
    how = _how(engine, 2 * before["conversations"], elapsed)
    lines = [
        f"replayed {before['conversations']} conversations under {under} in {elapsed:.1f}s{how}",
        f"A: {names[0]}",
        f"B: {names[1]}",
    ]
    kinds = Counter(code for entry in changed for code in entry["change"])
    lines.append(
        f"changed: {len(changed)} conversations"
        + (" (" + ", ".join(f"{k} {v}" for k, v in kinds.most_common()) + ")" if kinds else "")
    )
    for entry in changed:
        outcome = f" [{entry['outcome']}]" if "outcome" in entry else ""
        lines.append(f"  {entry['conversation_id']}: {', '.join(entry['change'])}{outcome}")
    rows = [
        ("escalated", "escalated", _fmt_count, 1),
        ("precision", "precision", _fmt, 2),
        ("recall", "recall", _fmt, 2),
        ("F1", "f1", _fmt, 2),
        ("urgency accuracy", "urgency_accuracy", _fmt, 2),
        ("median messages", "median_messages", _fmt_count, 1),
        ("p90 messages", "p90_messages", _fmt_count, 1),
        ("median seconds", "median_seconds", _fmt_count, 1),
        ("p90 seconds", "p90_seconds", _fmt_count, 1),
        ("tp / fp / fn / tn", None, None, 0),
    ]
    lines.append(f"  {'metric':<18} {'A':>8} {'B':>8} {'delta':>8}")
    for label, key, fmt, digits in rows:
        if key is None:
            a = "/".join(str(before["confusion"][k]) for k in ("tp", "fp", "fn", "tn"))
            b = "/".join(str(after["confusion"][k]) for k in ("tp", "fp", "fn", "tn"))
            lines.append(f"  {label:<18} {a:>8} {b:>8}")
            continue
        a_value, b_value = evaluation.figure(before, key), evaluation.figure(after, key)
        lines.append(f"  {label:<18} {fmt(a_value):>8} {fmt(b_value):>8} {_fmt_delta(delta[key], digits):>8}")
    lines.append("  (times to escalation are over each policy's own true positives)")
    trigger_ids = sorted(set(before["triggers"]) | set(after["triggers"]))
    if trigger_ids and before["labelled"]:
        width = max(len("trigger"), *(len(t) for t in trigger_ids))
        lines.append("per-trigger precision (fired):")
        lines.append(f"  {'trigger':<{width}} {'A':>11} {'B':>11} {'delta':>8}")
        for trigger in trigger_ids:
            a, b = before["triggers"].get(trigger), after["triggers"].get(trigger)
            cell_a = f"{_fmt(a['precision'])} ({a['fired']})" if a and a["fired"] else "-"
            cell_b = f"{_fmt(b['precision'])} ({b['fired']})" if b and b["fired"] else "-"
            lines.append(
                f"  {trigger:<{width}} {cell_a:>11} {cell_b:>11} {_fmt_delta(delta[f'precision[{trigger}]']):>8}"
            )
    if not before["labelled"]:
        lines.append("no labelled conversations: the F1 gate does not apply")
    else:
        drop = evaluation.f1_drop(comparison)
        verdict = "FAIL" if evaluation.exceeds_f1_drop(comparison, max_f1_drop) else "ok"
        if round(drop, 3) == 0:
            movement = "F1 unchanged"
        else:
            movement = f"F1 dropped by {drop:.3f}" if drop > 0 else f"F1 rose by {-drop:.3f}"
        lines.append(f"{movement} from A to B (allowed drop {max_f1_drop:g}): {verdict}")
    return "\n".join(lines)
