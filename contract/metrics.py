"""The Prometheus series Baton exports: names, kinds, labels and histogram buckets, in one table.

The worker records its series through the Temporal SDK's metric meter (exported by the SDK's own
Prometheus endpoint, next to the SDK's `temporal_*` series); the gateway through prometheus_client at
`/metrics`. The dashboard and alert rules in deploy/ may reference only what is listed here
(tests/test_deploy_files.py checks it), and tests/test_metrics.py reads each series off a live endpoint.
Labels hold ids from the policy and small enums, never message text or customer ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "histogram", "gauge"]


@dataclass(frozen=True)
class Series:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def instrument(self) -> str:
        """The name to create the instrument under: both exporters add _total to a counter themselves."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    def exported_names(self) -> tuple[str, ...]:
        """The names Prometheus sees: counters end in _total; histograms add _bucket, _sum and _count."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


# --- the worker (the SDK's meter; workflow series are not recorded on replay) ------------------------

DECISIONS = Series(
    "baton_decisions_total", "counter", "Decisions answered to customer messages", ("action", "urgency")
)
DECISION_TRIGGERS = Series(
    "baton_decision_triggers_total",
    "counter",
    "Triggers that fired in decisions on customer messages, one per trigger",
    ("action", "trigger", "category"),
)
ESCALATIONS = Series("baton_escalations_total", "counter", "Escalations opened", ("urgency", "segment", "queue"))
TIME_TO_PICKUP = Series(
    "baton_time_to_pickup_seconds",
    "histogram",
    "From escalation to an agent's pickup",
    ("urgency", "segment"),
    (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400),
)
LADDER_STEPS = Series(
    "baton_ladder_steps_total", "counter", "Dead-zone ladder steps run while a customer waits", ("step", "urgency")
)
PAGES = Series("baton_pages_total", "counter", "On-call pages sent (or resolved)", ("action", "outcome"))
LLM_CALLS = Series("baton_llm_calls_total", "counter", "Calls to the LLM endpoint", ("purpose", "outcome"))
LLM_LATENCY = Series(
    "baton_llm_latency_seconds",
    "histogram",
    "Time of one LLM call",
    ("purpose",),
    (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
LLM_TOKENS = Series("baton_llm_tokens_total", "counter", "Tokens the LLM calls spent", ("purpose",))
LLM_FALLBACKS = Series(
    "baton_llm_fallbacks_total",
    "counter",
    "Answers given without the LLM (deterministic note, classifier's scores)",
    ("purpose", "reason"),
)
STORE_WRITE_FAILURES = Series(
    "baton_store_write_failures_total", "counter", "Store writes that failed (each attempt)", ("record", "error")
)

WORKER_SERIES: tuple[Series, ...] = (
    DECISIONS,
    DECISION_TRIGGERS,
    ESCALATIONS,
    TIME_TO_PICKUP,
    LADDER_STEPS,
    PAGES,
    LLM_CALLS,
    LLM_LATENCY,
    LLM_TOKENS,
    LLM_FALLBACKS,
    STORE_WRITE_FAILURES,
)

# The Temporal SDK's own series that deploy/ relies on (the worker's endpoint, prefix temporal_, with
# counters' _total suffix and durations in seconds as worker/telemetry.py configures them).
SDK_SERIES: tuple[Series, ...] = (
    Series("temporal_num_pollers", "gauge", "Pollers the worker runs, by poller type", ("poller_type", "task_queue")),
    Series(
        "temporal_worker_task_slots_available",
        "gauge",
        "Free task slots, by worker type",
        ("worker_type", "task_queue"),
    ),
    Series(
        "temporal_workflow_task_schedule_to_start_latency",
        "histogram",
        "How long workflow tasks wait for a worker",
        ("task_queue",),
    ),
    Series("temporal_activity_execution_failed_total", "counter", "Activity attempts that failed", ("activity_type",)),
)

# --- the gateway (prometheus_client) ---------------------------------------------------------------

HTTP_REQUESTS = Series(
    "baton_gateway_requests_total", "counter", "HTTP requests answered", ("method", "route", "status")
)
HTTP_LATENCY = Series(
    "baton_gateway_request_duration_seconds",
    "histogram",
    "Time to answer an HTTP request",
    ("method", "route"),
    (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Read from the operations and queue workflows at each scrape, so every gateway reports the same value.
QUEUE_DEPTH = Series("baton_queue_depth", "gauge", "Conversations waiting for a human, by team queue", ("queue",))
QUEUE_OLDEST_WAIT = Series(
    "baton_queue_oldest_wait_seconds", "gauge", "How long the longest-waiting conversation has waited", ("queue",)
)
SURGE_ACTIVE = Series("baton_surge_active", "gauge", "1 while support is in a surge (by reason), else 0", ("reason",))
WAITING = Series("baton_waiting_conversations", "gauge", "Conversations waiting across queues (operations view)")
ESCALATIONS_LAST_HOUR = Series("baton_escalations_last_hour", "gauge", "Escalations in the last hour (operations view)")
SCRAPE_OK = Series(
    "baton_operations_scrape_ok", "gauge", "1 when the queue and surge figures were read from Temporal at this scrape"
)

GATEWAY_SERIES: tuple[Series, ...] = (
    HTTP_REQUESTS,
    HTTP_LATENCY,
    QUEUE_DEPTH,
    QUEUE_OLDEST_WAIT,
    SURGE_ACTIVE,
    WAITING,
    ESCALATIONS_LAST_HOUR,
    SCRAPE_OK,
)

ALL: tuple[Series, ...] = (*WORKER_SERIES, *SDK_SERIES, *GATEWAY_SERIES)


def exported_names() -> set[str]:
    """Every series name a scrape of Baton's endpoints can show."""
    return {name for series in ALL for name in series.exported_names()}
