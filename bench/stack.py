"""The whole stack as separate processes on loopback, for benchmarks that kill parts of it.

A Temporal dev server on a persistent SQLite file (so a restart keeps every workflow), a worker and a
gateway each in its own process, each logging to a file in the run's folder. `kill_worker()` is
`kill -9`; `restart_temporal()` is `kill -9` of the server and a start on the same file.

`python -m bench.stack worker --sticky-seconds N` is the worker these benchmarks start: the one
`baton worker` runs, with the sticky queue timeout given on the command line so a run can compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO

import httpx

from baton.apps.binaries import temporal_cli
from baton.worker.connection import search_attribute_flags

POLICY_SOURCE = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def always_open_policy(folder: Path) -> Path:
    """The default policy without business hours, so a run at night still queues for a human."""
    text = POLICY_SOURCE.read_text()
    start, end = text.index("# When people are on shift"), text.index("# A flood of escalations")
    path = folder / "always_open.yaml"
    path.write_text(text[:start] + text[end:])
    return path


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Stack:
    folder: Path
    sticky_seconds: float = 2.0
    temporal_port: int = field(default_factory=free_port)
    gateway_port: int = field(default_factory=free_port)
    task_queue: str = "soak"
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def worker_log(self) -> Path:
        return self.folder / "worker.log"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "BATON_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "BATON_TASK_QUEUE": self.task_queue,
            "BATON_DATABASE_URL": f"sqlite+aiosqlite:///{self.folder / 'baton.db'}",
            "BATON_POLICY": str(always_open_policy(self.folder)),
            "BATON_GATEWAY_HOST": "127.0.0.1",
            "BATON_GATEWAY_PORT": str(self.gateway_port),
            "BATON_LOG_FORMAT": "json",
        }

    def _spawn(self, name: str, command: list[str]) -> None:
        log = (self.folder / f"{name}.log").open("ab")
        self._logs.append(log)
        self._procs[name] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env()
        )

    # --- Temporal ------------------------------------------------------------------------------

    def start_temporal(self) -> None:
        self._spawn(
            "temporal",
            [
                temporal_cli(), "server", "start-dev",
                "--db-filename", str(self.folder / "temporal.db"),
                "--ip", "127.0.0.1", "--port", str(self.temporal_port),
                "--headless", "--log-level", "warn",
                *search_attribute_flags(),
            ],
        )  # fmt: skip
        _wait_port(self.temporal_port, 60)

    def restart_temporal(self) -> float:
        """kill -9 of the server, then a start on the same database; returns the seconds it was down."""
        began = time.monotonic()
        self._kill("temporal")
        self.start_temporal()
        return time.monotonic() - began

    # --- worker and gateway ----------------------------------------------------------------------

    def start_worker(self, name: str = "worker") -> None:
        command = [sys.executable, "-m", "bench.stack", "worker", "--sticky-seconds", str(self.sticky_seconds)]
        self._spawn(name, command)

    def kill_worker(self, name: str = "worker") -> None:
        self._kill(name)

    def start_gateway(self) -> None:
        self._spawn("gateway", [sys.executable, "-m", "baton.apps.cli", "gateway"])

    async def wait_gateway(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.gateway_url, timeout=2) as http:
            while time.monotonic() < deadline:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.3)
        raise RuntimeError(f"gateway not healthy in {timeout}s; see {self.folder / 'gateway.log'}")

    def _kill(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for name in [n for n in self._procs if n != "temporal"]:
            proc = self._procs.pop(name, None)
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._kill("temporal")
        for log in self._logs:
            log.close()


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _run_worker(sticky_seconds: float) -> None:
    from baton.logging import configure_logging
    from baton.settings import get_settings
    from baton.store.database import migrate_async
    from baton.worker.connection import connect
    from baton.worker.wiring import build_worker

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    await migrate_async(settings.database_url)
    client = await connect(settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = build_worker(client, settings, sticky_queue_timeout=timedelta(seconds=sticky_seconds))
    async with worker:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run Baton's worker with a given sticky queue timeout")
    worker.add_argument("--sticky-seconds", type=float, default=2.0)
    args = parser.parse_args()
    asyncio.run(_run_worker(args.sticky_seconds))


if __name__ == "__main__":
    main()
