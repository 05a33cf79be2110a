"""`baton worker` as a process, against the real dev server: /readyz answers 200 only once Temporal
lists the worker among the task queue's pollers, its Prometheus endpoint serves the SDK's series, and
SIGTERM drains it cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from baton.settings import Settings
from baton.worker.health import parse_address, readiness
from baton.worker.wiring import build_worker

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_health_address_is_host_and_port() -> None:
    assert parse_address("0.0.0.0:8081") == ("0.0.0.0", 8081)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ValueError, match="worker_health_address"):
        parse_address("8081")


async def test_not_ready_until_running(dev_env: WorkflowEnvironment) -> None:
    worker: Worker = build_worker(dev_env.client, Settings(task_queue=f"test-{uuid.uuid4().hex[:8]}"))
    before = await readiness(worker)
    assert not before.ready and "not running" in before.detail
    async with worker:
        deadline = time.monotonic() + 20
        while not (result := await readiness(worker)).ready and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert result.ready, result.detail
        assert "polling" in result.detail


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_worker_process_serves_readiness_and_metrics(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    health_port, metrics_port = free_port(), free_port()
    task_queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "BATON_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "BATON_TASK_QUEUE": task_queue,
        "BATON_WORKER_HEALTH_ADDRESS": f"127.0.0.1:{health_port}",
        "BATON_WORKER_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
        "BATON_WORKER_SHUTDOWN_SECONDS": "2",
        "BATON_LOG_FORMAT": "json",
    }
    env.pop("BATON_OTLP_ENDPOINT", None)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "baton.worker.main"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        ready = None
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=10) as http:
            while time.monotonic() < deadline:
                assert proc.poll() is None, f"the worker exited with {proc.returncode}\n{log.read_text()[-3000:]}"
                try:
                    ready = http.get(f"http://127.0.0.1:{health_port}/readyz")
                    if ready.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.3)
            assert ready is not None and ready.status_code == 200, log.read_text()[-3000:]
            assert ready.json()["status"] == "ok" and task_queue in ready.json()["detail"]
            assert http.get(f"http://127.0.0.1:{health_port}/healthz").json() == {"status": "ok"}
            assert http.get(f"http://127.0.0.1:{health_port}/nothing").status_code == 404
            scraped = http.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert f'task_queue="{task_queue}"' in scraped
        assert "temporal_num_pollers" in scraped

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
        assert '"worker_stopped"' in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
