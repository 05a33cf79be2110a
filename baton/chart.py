"""`baton report --chart FILE.png`: one slide-ready picture of the month, drawn from the report's JSON.

Three panels share the groups of the report (``--by``), with "All" first: the escalation rate, the
escalation accuracy and the post-escalation CSAT, each as this month's bar beside last month's. Drawn with
matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from baton.report import Month

MAX_GROUPS = 8  # the groups with the most escalations; more would not read on a slide
THIS_MONTH = "#1f5fa8"
LAST_MONTH = "#b9c7d8"
TEXT = "#333333"


def _label(name: str) -> str:
    return name.replace("_", " ")


def _bars(
    ax: Axes,
    names: Sequence[str],
    now: Sequence[float | None],
    before: Sequence[float | None],
    title: str,
    fmt: str,
    limit: float,
    months: tuple[str, str],
) -> None:
    width = 0.38
    xs = range(len(names))
    for offset, values, colour, label in (
        (-width / 2, before, LAST_MONTH, months[1]),
        (width / 2, now, THIS_MONTH, months[0]),
    ):
        heights = [v or 0.0 for v in values]
        bars = ax.bar([x + offset for x in xs], heights, width, color=colour, label=label)
        for bar, value in zip(bars, values, strict=True):
            text = "n/a" if value is None else fmt.format(value)
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7.5,
                color=TEXT,
            )
    ax.set_title(title, fontsize=11, color=TEXT, loc="left")
    ax.set_xticks(
        list(xs),
        [_label(n) for n in names],
        rotation=30 if len(names) > 4 else 0,
        ha="right" if len(names) > 4 else "center",
        fontsize=9,
    )
    ax.set_ylim(0, limit)
    ax.tick_params(axis="y", labelsize=8, colors=TEXT)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)


def render_chart(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write the chart of ``report`` (the dict from baton.report.build_report) as a PNG; returns the path."""
    month, previous = Month.parse(report["month"]), Month.parse(report["previous_month"])
    overall = report["overall"]
    groups = sorted(report["groups"], key=lambda g: -g["escalations"])[:MAX_GROUPS]
    blocks: list[Mapping[str, Any]] = [overall, *groups]
    names = ["All", *(g["group"] for g in groups)]

    def series(name: str, scale: float = 1.0) -> tuple[list[float | None], list[float | None]]:
        now = [None if b[name] is None else b[name] * scale for b in blocks]
        before = [None if b["previous"][name] is None else b["previous"][name] * scale for b in blocks]
        return now, before

    months = (month.short, previous.short)
    fig, axes = plt.subplots(1, 3, figsize=(13.33, 5.2), dpi=150)
    rate_now, rate_before = series("escalation_rate", 100)
    top = max([v for v in rate_now + rate_before if v is not None] or [0.0])
    _bars(
        axes[0],
        names,
        rate_now,
        rate_before,
        "Escalation rate (% of conversations)",
        "{:.0f}%",
        max(10.0, top * 1.2),
        months,
    )
    acc_now, acc_before = series("escalation_accuracy", 100)
    _bars(axes[1], names, acc_now, acc_before, "Escalation accuracy (% judged necessary)", "{:.0f}%", 115, months)
    csat_now, csat_before = series("post_escalation_csat")
    _bars(axes[2], names, csat_now, csat_before, "Post-escalation CSAT (1 to 5)", "{:.1f}", 5.75, months)
    if overall["overall_csat"] is not None:
        axes[2].axhline(overall["overall_csat"], color="#c0392b", linewidth=1, linestyle="--")
        axes[2].annotate(
            f"overall CSAT {overall['overall_csat']:.2f}",
            (len(names) - 0.5, overall["overall_csat"]),
            xytext=(0, 3),
            textcoords="offset points",
            ha="right",
            fontsize=8,
            color="#c0392b",
        )
    axes[0].legend(frameon=False, fontsize=9, loc="upper right")

    by = report["by"]
    fig.suptitle(f"Escalations by {by}: {month.title} vs {previous.title}", fontsize=15, color=TEXT, x=0.01, ha="left")
    summary = (
        f"{overall['conversations']} conversations, {overall['escalated_conversations']} escalated"
        f" ({_pct(overall['escalation_rate'])}, was {_pct(overall['previous']['escalation_rate'])});"
        f" accuracy {_pct(overall['escalation_accuracy'])} of {overall['judged']} judged;"
        f" abandonment {_pct(overall['abandonment_rate'])}"
    )
    if by == "trigger":
        summary += "; an escalation counts under every trigger that fired"
    fig.text(0.01, 0.905, summary, fontsize=10, color="#555555", ha="left")
    flagged = [f["message"].split(";")[0].split(":")[0] for f in report["flags"]][:2]
    if flagged:
        fig.text(0.01, 0.015, "Flagged: " + "; ".join(flagged), fontsize=9, color="#c0392b", ha="left")
    fig.tight_layout(rect=(0, 0.04, 1, 0.89))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", facecolor="white")
    plt.close(fig)
    return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"
