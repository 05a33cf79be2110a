"""The report as output: JSON (the document), CSV (one row per month and scope) or a readable table.

Each takes a ``Report`` or its JSON-ready document (``Report.as_json()``, what ``report()`` returns).
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from baton.apps.report.build import Block, Report, as_report
from baton.apps.report.figures import FIGURES, Figures
from baton.apps.report.flags import MOVEMENT_FIGURES, relative_change
from baton.apps.report.formatting import csat, duration, num, pct, value_text

FORMATS = ("table", "json", "csv")
CSV_COLUMNS = ("month", "scope", "by", "group", *FIGURES)

OVERALL_ROWS = (
    ("conversations", "conversations"),
    ("escalated_conversations", "escalated conversations"),
    ("escalations", "escalations"),
    ("escalation_rate", "escalation rate"),
    ("escalation_accuracy", "escalation accuracy"),
    ("judged", "  judged (by review)"),
    ("messages_to_escalation_median", "messages to escalation, median"),
    ("messages_to_escalation_p90", "messages to escalation, p90"),
    ("seconds_to_escalation_median", "time to escalation, median"),
    ("seconds_to_escalation_p90", "time to escalation, p90"),
    ("seconds_to_pickup_median", "time to pickup, median"),
    ("post_escalation_csat", "post-escalation CSAT"),
    ("overall_csat", "overall CSAT"),
    ("abandoned", "abandoned conversations"),
    ("abandonment_rate", "abandonment rate"),
)
GROUP_HEADERS = (
    "conv",
    "esc",
    "rate ({previous})",
    "accuracy (nec/judged)",
    "msgs med/p90",
    "time med/p90",
    "pickup med",
    "CSAT esc",
    "CSAT all",
    "abandoned",
)


def to_json(result: Report | Mapping[str, Any]) -> str:
    document = result.as_json() if isinstance(result, Report) else result
    return json.dumps(document, indent=2, ensure_ascii=False)


def to_csv(result: Report | Mapping[str, Any]) -> str:
    """One row per month and scope: overall, each group, the high-value segments."""
    report = as_report(result)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    high_value = "+".join(report.high_value_segments)
    for month, this_month in ((report.month, True), (report.previous_month, False)):
        rows: list[tuple[str, str, Block]] = [("overall", "all", report.overall)]
        rows += [("group", g.name, g) for g in report.groups]
        rows.append(("high_value", high_value, report.high_value))
        for scope, group, block in rows:
            values = (block.current if this_month else block.previous).as_dict()
            writer.writerow(
                {"month": str(month), "scope": scope, "by": report.by, "group": group}
                | {name: "" if values[name] is None else values[name] for name in FIGURES}
            )
    return out.getvalue()


def _accuracy_text(figures: Figures) -> str:
    if not figures.judged:
        return "n/a (0 judged)"
    return f"{pct(figures.escalation_accuracy)} ({figures.judged_necessary}/{figures.judged})"


def _csat_text(value: float | None, n: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} (n={n})"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Iterable[int] = ()) -> list[str]:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]
    right = set(right)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            (str(c).rjust(w) if i in right else str(c).ljust(w))
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _overall_lines(report: Report) -> list[str]:
    now, before = report.overall.current, report.overall.previous
    flagged = {m.figure for m in report.movements if m.flagged}
    rows = []
    for name, label in OVERALL_ROWS:
        if name == "judged":
            now_text = f"{now.judged} ({now.judged_by_review})"
            before_text = f"{before.judged} ({before.judged_by_review})"
        elif name.endswith("_csat"):
            now_text = _csat_text(now.value(name), now.value(f"{name}_n"))
            before_text = _csat_text(before.value(name), before.value(f"{name}_n"))
        else:
            now_text, before_text = value_text(name, now.value(name)), value_text(name, before.value(name))
        change = ""
        if name in MOVEMENT_FIGURES:
            rel = relative_change(before.value(name), now.value(name))
            change = "" if rel is None else f"{100 * rel:+.0f}%"
            if name in flagged:
                change += " !"
        rows.append([label, now_text, before_text, change])
    return _table(["Overall", report.month.short, report.previous_month.short, "change"], rows, right=(1, 2, 3))


def _group_lines(report: Report) -> list[str]:
    by = report.by
    lines = [
        "",
        f"By {by}" + (" (per escalation; rate = share of all conversations)" if by in ("trigger", "urgency") else ""),
    ]
    rows = []
    for g in report.groups:
        f, p = g.current, g.previous
        rows.append(
            [
                g.name,
                str(f.conversations),
                str(f.escalations),
                f"{pct(f.escalation_rate)} ({pct(p.escalation_rate)})",
                _accuracy_text(f),
                f"{num(f.messages_to_escalation_median)}/{num(f.messages_to_escalation_p90)}",
                f"{duration(f.seconds_to_escalation_median)}/{duration(f.seconds_to_escalation_p90)}",
                duration(f.seconds_to_pickup_median),
                csat(f.post_escalation_csat),
                csat(f.overall_csat),
                "n/a" if f.abandoned is None else f"{f.abandoned} ({pct(f.abandonment_rate)})",
            ]
        )
    headers = [by, *(h.format(previous=report.previous_month.short) for h in GROUP_HEADERS)]
    return lines + _table(headers, rows, right=(1, 2))


def _high_value_lines(report: Report) -> list[str]:
    hv, overall = report.high_value.current, report.overall.current
    lines = ["", f"High-value segments ({', '.join(report.high_value_segments)}) against all conversations"]
    rows = [
        ["conversations", str(hv.conversations), str(overall.conversations)],
        ["escalation rate", pct(hv.escalation_rate), pct(overall.escalation_rate)],
        ["escalation accuracy", _accuracy_text(hv), _accuracy_text(overall)],
        ["time to pickup, median", duration(hv.seconds_to_pickup_median), duration(overall.seconds_to_pickup_median)],
        ["post-escalation CSAT", csat(hv.post_escalation_csat), csat(overall.post_escalation_csat)],
        ["overall CSAT", csat(hv.overall_csat), csat(overall.overall_csat)],
        ["abandonment rate", pct(hv.abandonment_rate), pct(overall.abandonment_rate)],
    ]
    return lines + _table(["", "high-value", "all"], rows, right=(1, 2))


def _flag_lines(report: Report) -> list[str]:
    lines = ["", f"Month over month (flagged when a figure moves more than {100 * report.movement_threshold:.0f}%)"]
    for flag in report.flags:
        lines += textwrap.wrap(flag.message, width=116, initial_indent="  ! ", subsequent_indent="    ")
    if not report.flags:
        lines.append("  nothing flagged")
    return lines


def _trigger_lines(report: Report) -> list[str]:
    lines = ["", "Accuracy by trigger (an escalation counts under every trigger that fired)"]
    rows = [
        [
            t.trigger,
            str(t.escalations),
            str(t.judged),
            str(t.judged_necessary),
            pct(t.precision),
            str(t.late_necessary),
            t.recommendation or "",
        ]
        for t in report.triggers
    ]
    lines += _table(
        ["trigger", "esc", "judged", "necessary", "precision", "late", "recommendation"], rows, right=(1, 2, 3, 4, 5)
    )
    for evidence in (t.evidence for t in report.triggers if t.evidence):
        lines += textwrap.wrap(evidence, width=116, initial_indent="  ", subsequent_indent="    ")
    return lines


def _label_lines(report: Report) -> list[str]:
    lines = ["", "False and missed escalations (judged unnecessary; should have been handed off)"]
    if not report.labels:
        return [*lines, "  none labelled"]
    previous = report.previous_month.short
    rows = [
        [
            counts.scope,
            counts.group,
            f"{counts.false_escalations} ({counts.previous_false_escalations})",
            f"{counts.missed_escalations} ({counts.previous_missed_escalations})",
        ]
        for counts in report.labels
    ]
    return lines + _table(["by", "group", f"false ({previous})", f"missed ({previous})"], rows, right=(2, 3))


def _drift_lines(report: Report) -> list[str]:
    if not report.drift:
        return []
    lines = ["", "Mix of topics and intents against the month before (customer messages)"]
    for d in report.drift:
        marker = "  ! " if d.flagged else "    "
        lines += textwrap.wrap(d.message, width=116, initial_indent=marker, subsequent_indent="      ")
    return lines


def to_table(result: Report | Mapping[str, Any]) -> str:
    report = as_report(result)
    lines = [f"Escalation report: {report.month.title} (compared with {report.previous_month.title})", ""]
    lines += _overall_lines(report)
    lines += _group_lines(report)
    lines += _high_value_lines(report)
    lines += _flag_lines(report)
    lines += _drift_lines(report)
    lines += _trigger_lines(report)
    lines += _label_lines(report)
    lines += ["", "Notes"]
    for note in report.notes:
        lines += textwrap.wrap(note, width=116, initial_indent="  - ", subsequent_indent="    ")
    return "\n".join(lines)


def render_report(result: Report | Mapping[str, Any], fmt: str) -> str:
    """The report in one of FORMATS."""
    if fmt == "json":
        return to_json(result)
    if fmt == "csv":
        return to_csv(result)
    return to_table(result)
