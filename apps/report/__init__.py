"""`baton report`: the month's escalation figures from the store, overall and per group, against the month before.

Definitions (docs/reporting.md explains them with examples):

- A conversation belongs to the month of its start (``conversations.started_at``; the close time when its
  start was never recorded). Its escalations belong to the same month, so that every rate's numerator is
  part of its denominator.
- Escalation rate: escalated conversations / conversations. A conversation is escalated when it has an
  escalation record or closed with outcome ``escalated``.
- Verdict of an escalation: the newest review label when there is one, else the agent's disposition at
  resolution. Escalation accuracy: verdicts "necessary" / escalations with a verdict (``judged``).
- Time to escalation (customer messages, seconds from the first message) and time to pickup are medians
  and nearest-rank p90s over the escalations that have them (apps/evaluation.py's conventions).
- Post-escalation CSAT: the mean of ``escalations.csat`` over escalations with a rating. Overall CSAT: one
  rating per conversation, its own ``conversation_csat`` when recorded, else the rating of its last rated
  escalation; the mean over conversations with a rating.
- Abandonment rate: conversations closed with outcome ``abandoned`` / conversations.
- Grouping by trigger or urgency is per escalation: an escalation counts under every trigger that fired,
  and a group's rate is its escalated conversations over all the month's conversations.
- False and missed escalations (``labels``): verdict "not necessary", and conversations marked as missed
  escalations (`baton review label --missed`, the gateway's ``/missed``), per segment and per trigger.
- Drift (``drift``, with ``--traffic``): the topic and intent mix of customer messages against the month before,
  flagged at a Jensen-Shannon distance of 0.15.

Ratios are rounded to 4 places, CSAT to 2 and times to 1 in the output; figures with nothing to measure are
None (null in JSON, empty in CSV).

The package, one concern a module: ``months`` (calendar months), ``loading`` (what is read from the store),
``figures`` (the typed ``Figures`` of a set), ``flags`` (month over month, per-trigger recommendations),
``labels`` (false and missed escalations), ``drift`` (the topic and intent mix),
``build`` (the typed ``Report`` and its JSON document), ``render`` (JSON, CSV, table), ``chart`` (the PNG)
and ``command`` (`baton report`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baton.apps.report.build import (
    DEFAULT_HIGH_VALUE_SEGMENTS,
    Block,
    Group,
    Report,
    ReportOptions,
    as_report,
    build_report,
    load_report,
    report,
)
from baton.apps.report.command import month_argument, parse_segments, run_report_command
from baton.apps.report.figures import (
    FIGURES,
    GROUPINGS,
    NO_TRIGGER,
    UNKNOWN,
    Figures,
    compute_figures,
    conversation_csat,
    group_figures,
    high_value_figures,
    month_figures,
)
from baton.apps.report.flags import (
    LABELS,
    MIN_JUDGED,
    MOVEMENT_FIGURES,
    MOVEMENT_THRESHOLD,
    TIGHTEN_BELOW,
    Flag,
    Movement,
    TriggerAccuracy,
    flagged_movements,
    movements,
    relative_change,
    trigger_accuracy,
)
from baton.apps.report.formatting import duration
from baton.apps.report.loading import (
    ConversationFacts,
    EscalationFacts,
    MonthData,
    ReportError,
    check_sqlite_exists,
    check_store,
    load_months,
    store_session,
)
from baton.apps.report.months import Month
from baton.apps.report.render import CSV_COLUMNS, FORMATS, render_report, to_csv, to_json, to_table

if TYPE_CHECKING:
    from baton.apps.report.chart import render_chart

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_HIGH_VALUE_SEGMENTS",
    "FIGURES",
    "FORMATS",
    "GROUPINGS",
    "LABELS",
    "MIN_JUDGED",
    "MOVEMENT_FIGURES",
    "MOVEMENT_THRESHOLD",
    "NO_TRIGGER",
    "TIGHTEN_BELOW",
    "UNKNOWN",
    "Block",
    "ConversationFacts",
    "EscalationFacts",
    "Figures",
    "Flag",
    "Group",
    "Month",
    "MonthData",
    "Movement",
    "Report",
    "ReportError",
    "ReportOptions",
    "TriggerAccuracy",
    "as_report",
    "build_report",
    "check_sqlite_exists",
    "check_store",
    "compute_figures",
    "conversation_csat",
    "duration",
    "flagged_movements",
    "group_figures",
    "high_value_figures",
    "load_months",
    "load_report",
    "month_argument",
    "month_figures",
    "movements",
    "parse_segments",
    "relative_change",
    "render_chart",
    "render_report",
    "report",
    "run_report_command",
    "store_session",
    "to_csv",
    "to_json",
    "to_table",
    "trigger_accuracy",
]


def __getattr__(name: str) -> Any:
    # The chart loads matplotlib: only when it is asked for, so that building the CLI's parser stays fast.
    if name == "render_chart":
        from baton.apps.report.chart import render_chart

        return render_chart
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
