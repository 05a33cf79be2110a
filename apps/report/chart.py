"""`baton report --chart FILE.png`: one slide-ready picture of the month, drawn from the report.

Three panels share the groups of the report (``--by``), with "All" first: the escalation rate, the
escalation accuracy (with how many escalations were judged) and the post-escalation CSAT against the
month's overall CSAT, each as this month's bar beside last month's. Drawn with matplotlib's Agg backend:
no display needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    import matplotlib
except ImportError as err:  # an optional extra: the runtime image leaves it out
    raise ImportError("the chart needs matplotlib: pip install 'baton[report]'") from err

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from baton.apps.report.build import Block, Report, as_report

MAX_GROUPS = 8  # the groups with the most escalations; more would not read on a slide
THIS_MONTH = "#1f5fa8"
LAST_MONTH = "#b9c7d8"
OVERALL = "#c0392b"
TEXT = "#333333"
MUTED = "#666666"
PERCENT_TICKS = (0, 25, 50, 75, 100)


def _label(name: str) -> str:
    return name.replace("_", " ")


def _annotate(ax: Axes, bars: Any, values: Sequence[float | None], labels: Sequence[str], horizontal: bool) -> None:
    for bar, value, text in zip(bars, values, labels, strict=True):
        if horizontal:
            anchor, offset, ha, va = (bar.get_width(), bar.get_y() + bar.get_height() / 2), (3, 0), "left", "center"
        else:
            anchor, offset, ha, va = (bar.get_x() + bar.get_width() / 2, bar.get_height()), (0, 2), "center", "bottom"
        ax.annotate(
            text,
            anchor,
            xytext=offset,
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=7.5,
            color=TEXT if value is not None else MUTED,
        )


def _bars(
    ax: Axes,
    ticks: Sequence[str],
    now: Sequence[float | None],
    before: Sequence[float | None],
    title: str,
    fmt: str,
    limit: float,
    horizontal: bool = False,
    now_suffixes: Sequence[str] | None = None,
    value_ticks: Sequence[float] | None = None,
) -> None:
    """This month's bar beside last month's for each group; vertical, or horizontal for many or long names."""
    width, gap = 0.36, 0.03
    positions = range(len(ticks))
    now_suffixes = now_suffixes or [""] * len(ticks)
    for offset, values, colour, suffixes in (
        (-(width + gap) / 2, before, LAST_MONTH, [""] * len(ticks)),
        ((width + gap) / 2, now, THIS_MONTH, now_suffixes),
    ):
        where = [p + offset for p in positions]
        heights = [v or 0.0 for v in values]
        bars = (
            ax.barh(where, heights, width, color=colour) if horizontal else ax.bar(where, heights, width, color=colour)
        )
        labels = [("n/a" if v is None else fmt.format(v)) + suffix for v, suffix in zip(values, suffixes, strict=True)]
        _annotate(ax, bars, values, labels, horizontal)
    ax.set_title(title, fontsize=11, color=TEXT, loc="left", pad=10)
    value_axis, group_axis = ("x", "y") if horizontal else ("y", "x")
    if horizontal:
        ax.set_yticks(list(positions), ticks, fontsize=9)
        ax.set_xlim(0, limit)
        ax.invert_yaxis()  # "All" on top
    else:
        ax.set_xticks(list(positions), ticks, fontsize=9)
        ax.set_ylim(0, limit)
    if value_ticks is not None:
        (ax.set_xticks if horizontal else ax.set_yticks)(list(value_ticks))
    ax.tick_params(axis=value_axis, labelsize=8, colors=MUTED)
    ax.tick_params(axis=group_axis, colors=TEXT, length=0)
    for side in ("top", "right", "bottom" if horizontal else "left"):
        ax.spines[side].set_visible(False)
    ax.grid(axis=value_axis, color="#e8e8e8", linewidth=0.8)
    ax.set_axisbelow(True)


def render_chart(result: Report | Mapping[str, Any], path: str | Path) -> Path:
    """Write the chart of a report (a Report, or its JSON-ready document) as a PNG; returns the path."""
    report = as_report(result)
    month, previous = report.month, report.previous_month
    overall = report.overall
    groups = sorted(report.groups, key=lambda g: -g.current.escalations)[:MAX_GROUPS]
    blocks: list[Block] = [overall, *groups]
    names = ["All", *(_label(g.name) for g in groups)]
    horizontal = len(names) > 5 or max(len(n) for n in names) > 12

    def series(name: str, scale: float = 1.0) -> tuple[list[float | None], list[float | None]]:
        now = [_scaled(b.current.value(name), scale) for b in blocks]
        before = [_scaled(b.previous.value(name), scale) for b in blocks]
        return now, before

    height = max(5.4, 2.4 + 0.5 * len(names)) if horizontal else 5.4
    fig, axes = plt.subplots(1, 3, figsize=(13.33, height), dpi=150, sharey=horizontal)
    rate_now, rate_before = series("escalation_rate", 100)
    top = max([v for v in rate_now + rate_before if v is not None] or [0.0])
    rate_title = "Escalation rate (% of conversations)"
    _bars(axes[0], names, rate_now, rate_before, rate_title, "{:.0f}", max(10.0, top * 1.18), horizontal)
    acc_now, acc_before = series("escalation_accuracy", 100)
    acc_title = "Escalation accuracy (% judged necessary)"
    if horizontal:  # the number judged goes beside this month's bar
        judged = [f" ({b.current.judged} judged)" for b in blocks]
        _bars(axes[1], names, acc_now, acc_before, acc_title, "{:.0f}", 135, horizontal, judged, PERCENT_TICKS)
    else:  # or under the group's name
        ticks = [f"{n}\n{b.current.judged} judged" for n, b in zip(names, blocks, strict=True)]
        _bars(axes[1], ticks, acc_now, acc_before, acc_title, "{:.0f}", 112, value_ticks=PERCENT_TICKS)
    csat_now, csat_before = series("post_escalation_csat")
    _bars(axes[2], names, csat_now, csat_before, "Post-escalation CSAT (1 to 5)", "{:.1f}", 5.6, horizontal)
    handles = [Patch(color=LAST_MONTH, label=previous.short), Patch(color=THIS_MONTH, label=month.short)]
    overall_csat = overall.current.overall_csat
    if overall_csat is not None:
        line = axes[2].axvline if horizontal else axes[2].axhline
        line(overall_csat, color=OVERALL, linewidth=1.2, linestyle="--")
        label = f"overall CSAT, {month.short}: {overall_csat:.2f}"
        handles.append(Line2D([], [], color=OVERALL, linestyle="--", label=label))
    fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(0.995, 0.99), frameon=False, fontsize=9)

    by = report.by
    title = f"Escalations by {by}: {month.title} vs {previous.title}"
    fig.suptitle(title, fontsize=15, color=TEXT, x=0.01, y=0.975, ha="left")
    now, before = overall.current, overall.previous
    summary = (
        f"{now.conversations} conversations, {now.escalated_conversations} escalated"
        f" ({_pct(now.escalation_rate)}, was {_pct(before.escalation_rate)});"
        f" accuracy {_pct(now.escalation_accuracy)} of {now.judged} judged;"
        f" abandonment {_pct(now.abandonment_rate)} (was {_pct(before.abandonment_rate)})"
    )
    top_margin = 1 - 0.62 / height  # title, summary and legend take the same inches whatever the height
    fig.text(0.01, top_margin + 0.1 / height, summary, fontsize=10, color=MUTED, ha="left")
    footer = [f.message.split(";")[0].split(":")[0].rstrip(".") for f in report.flags][:3]
    lines = []
    if footer:
        lines.append(("Flagged: " + "; ".join(footer), OVERALL))
    if by == "trigger":
        lines.append(("An escalation counts under every trigger that fired.", MUTED))
    for i, (text, colour) in enumerate(reversed(lines)):
        fig.text(0.01, (0.08 + 0.2 * i) / height, text, fontsize=9, color=colour, ha="left")
    fig.tight_layout(rect=(0, (0.12 + 0.2 * len(lines)) / height, 1, top_margin - 0.05 / height))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", facecolor="white")
    plt.close(fig)
    return out


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"
