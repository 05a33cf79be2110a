"""Activities' series, recorded through the running activity's metric meter.

Outside an activity (a unit test calling the class directly) nothing is recorded; on a worker whose
runtime exports no metrics the SDK's meter is a no-op. Series and labels: contract/metrics.py.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.common import MetricMeter

from baton.contract import metrics


def _meter() -> MetricMeter | None:
    return activity.metric_meter() if activity.in_activity() else None


def llm_call(purpose: str, outcome: str, seconds: float, tokens: int = 0) -> None:
    """One call to the LLM endpoint; `outcome` is ok or failed (a fallback is counted on its own)."""
    meter = _meter()
    if meter is None:
        return
    meter.create_counter(metrics.LLM_CALLS.instrument, metrics.LLM_CALLS.help).add(
        1, {"purpose": purpose, "outcome": outcome}
    )
    meter.create_histogram_float(metrics.LLM_LATENCY.name, metrics.LLM_LATENCY.help, "s").record(
        max(seconds, 0.0), {"purpose": purpose}
    )
    if tokens > 0:
        meter.create_counter(metrics.LLM_TOKENS.instrument, metrics.LLM_TOKENS.help).add(tokens, {"purpose": purpose})


def llm_fallback(purpose: str, reason: str) -> None:
    """An answer given without the LLM; `reason` is a short fixed word (no_endpoint, failed, over_budget)."""
    meter = _meter()
    if meter is not None:
        meter.create_counter(metrics.LLM_FALLBACKS.instrument, metrics.LLM_FALLBACKS.help).add(
            1, {"purpose": purpose, "reason": reason}
        )


def page(action: str, delivered: bool) -> None:
    meter = _meter()
    if meter is not None:
        meter.create_counter(metrics.PAGES.instrument, metrics.PAGES.help).add(
            1, {"action": action, "outcome": "delivered" if delivered else "not_delivered"}
        )


def store_write_failure(record: str, error: str) -> None:
    meter = _meter()
    if meter is not None:
        meter.create_counter(metrics.STORE_WRITE_FAILURES.instrument, metrics.STORE_WRITE_FAILURES.help).add(
            1, {"record": record, "error": error}
        )
