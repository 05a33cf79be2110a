"""How the report writes one figure as text: percentages, durations, CSAT and plain numbers."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def pct(value: float | None, places: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{places}f}%"


def num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def csat(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def value_text(name: str, value: float | None) -> str:
    """A figure as text, by the kind its name says: a rate, a time, a CSAT or a count."""
    if name.endswith("_rate") or name.endswith("accuracy"):
        return pct(value)
    if name.startswith("seconds_"):
        return duration(value)
    if name.endswith("_csat"):
        return csat(value)
    return num(value)
