"""The gateway's OpenAPI schema fuzzed by schemathesis over real HTTP, a worker and the Temporal test server
behind it: whatever a client sends, the answer is never a 5xx.

The budget is fixed and the generation derandomized, so a run is repeatable and bounded (under a minute
here); a 5xx it finds fails the test with the request that caused it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import Client

from baton.settings import Settings
from tests.test_gateway import _running

EXAMPLES_PER_OPERATION = 40
# The metrics endpoint is Prometheus text for scrapers, outside the API; everything else is fuzzed.
SKIPPED = {"/metrics"}
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


def _fuzz(base_url: str, spec: dict[str, Any]) -> tuple[Counter[int], list[str]]:
    """Runs in a thread while the event loop serves the gateway; returns the status counts and the 5xx seen."""
    schema = schemathesis.openapi.from_dict(spec)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED:
            continue

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        # Requests the schema admits and requests it refuses, half and half.
        @given(case=st.one_of(operation.as_strategy(generation_mode=mode) for mode in MODES))
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(base_url=base_url, timeout=60)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                request = f"{case.method} {case.formatted_path} {case.body!r:.300}"
                failures.append(f"{request} -> {response.status_code} {response.text[:300]}")

        fuzz()
    return statuses, failures


async def test_no_request_the_schema_admits_gets_a_5xx(client: Client, settings: Settings, worker: None) -> None:
    async with _running(settings, client) as http:
        spec = (await http.get("/openapi.json")).json()
        statuses, failures = await asyncio.to_thread(_fuzz, str(http.base_url), spec)
        # The fuzzed conversations are real: the gateway and worker still answer a plain request.
        health = await http.get("/healthz")
    assert health.status_code == 200
    assert not failures, "\n".join(failures)
    assert sum(statuses.values()) >= EXAMPLES_PER_OPERATION * 5, statuses  # the budget was spent
    assert statuses[200] > 0 and sum(n for code, n in statuses.items() if 400 <= code < 500) > 0, statuses


async def test_the_fuzz_sees_a_5xx_when_there_is_one(settings: Settings) -> None:
    """The check above can fail: a gateway route that answers 500 on some input is found within the budget."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/v1/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if abs(item_id) > 1000:
            raise RuntimeError("boom")
        return {"item_id": item_id}

    async with _running(settings, None, app=app) as http:
        spec = (await http.get("/openapi.json")).json()
        _, failures = await asyncio.to_thread(_fuzz, str(http.base_url), spec)
    assert failures and all("-> 500" in f for f in failures)

