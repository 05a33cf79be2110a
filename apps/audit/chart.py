"""`baton audit --chart FILE.png`: the scenario types as one horizontal bar chart, slide-ready.

One bar per scenario type (most conversations on top), coloured by its primary shortfall, labelled with
its share of all conversations and the suggested trigger. Drawn with matplotlib's Agg backend: no display
needed. matplotlib is an optional extra (`baton[report]`); this module is imported only for `--chart`.
"""

from __future__ import annotations

from pathlib import Path

try:
    import matplotlib
except ImportError as err:  # an optional extra: the runtime image leaves it out
    raise ImportError("the chart needs matplotlib: pip install 'baton[report]'") from err

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import Patch

from baton.apps.audit.scenarios import Audit
from baton.apps.audit.shortfalls import SHORTFALL_TEXT, Shortfall

COLOURS = {
    Shortfall.MISSED_ESCALATION: "#6e2c00",
    Shortfall.HAND_ESCALATION: "#c0392b",
    Shortfall.ABANDONED: "#8e44ad",
    Shortfall.MANY_TURNS: "#1f5fa8",
    Shortfall.LOW_CSAT: "#d68910",
}
MAX_BARS = 20
LABEL_CHARS = 48


def draw_chart(audit: Audit, path: Path) -> None:
    shown = audit.scenario_types[:MAX_BARS]
    height = 1.6 + 0.42 * max(len(shown), 1)
    fig, ax = plt.subplots(figsize=(11, height), dpi=120)
    try:
        names = [s.group if len(s.group) <= LABEL_CHARS else s.group[: LABEL_CHARS - 1] + "…" for s in shown]
        counts = [s.count for s in shown]
        positions = list(range(len(shown)))[::-1]
        bars = ax.barh(positions, counts, color=[COLOURS[s.shortfall] for s in shown], height=0.7)
        ax.set_yticks(positions, names, fontsize=8)
        for bar, s in zip(bars, shown, strict=True):
            ax.annotate(
                f"{s.share:.1%} · {s.suggestion.trigger_id} ({s.suggestion.urgency})",
                (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7.5,
                color="#333333",
            )
        ax.set_xlabel("conversations")
        ax.set_xlim(0, max(counts, default=1) * 1.6)
        ax.set_title(
            f"Where the bot fell short: {audit.fell_short} of {audit.conversations} conversations, "
            f"{len(audit.scenario_types)} scenario types",
            fontsize=10,
        )
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(
            handles=[Patch(color=COLOURS[k], label=SHORTFALL_TEXT[k]) for k in Shortfall],
            loc="lower right",
            fontsize=7.5,
            frameon=False,
        )
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
