"""The deployment files hang together, and `baton dev` starts and stops cleanly."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from baton.apps.cli import build_parser
from baton.contract import search_attributes
from baton.contract.messages import Decision
from baton.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
BATON_SERVICES = {"baton-worker": "worker", "baton-gateway": "gateway"}

# `temporal operator search-attribute create --type` values, by SDK indexed value type.
CLI_TYPES = {
    "TEXT": "Text",
    "KEYWORD": "Keyword",
    "INT": "Int",
    "FLOAT": "Double",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
    "KEYWORD_LIST": "KeywordList",
}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    return compose["services"]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str | None]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps)
    return {name: (spec or {}).get("condition") for name, spec in deps.items()}


def _command_text(service: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("entrypoint", "command"):
        value = service.get(key) or []
        parts.extend([value] if isinstance(value, str) else value)
    return "\n".join(parts)


def _container_port(mapping: str | dict[str, Any]) -> int:
    if isinstance(mapping, dict):
        return int(mapping["target"])
    return int(str(mapping).rsplit(":", 1)[-1].split("/")[0])


def test_depends_on_names_existing_services(services: dict[str, dict[str, Any]]) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully", None}
    for name, service in services.items():
        for dep, condition in _depends_on(service).items():
            assert dep in services, f"{name} depends on unknown service {dep!r}"
            assert condition in conditions, f"{name} -> {dep}: unknown condition {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], (
                    f"{name} waits for {dep} to be healthy, but it has no healthcheck"
                )


def test_baton_services_build_from_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for name, subcommand in BATON_SERVICES.items():
        build = services[name]["build"]
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = context / ("Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile"))
        assert dockerfile.is_file(), f"{name} builds from {dockerfile}, which does not exist"
        command = services[name]["command"]
        assert (shlex.split(command) if isinstance(command, str) else command) == ["baton", subcommand]
        assert build_parser().parse_args([subcommand]).command == subcommand


def test_dockerfile_runs_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    for path in re.findall(r"^COPY\s+(?!--from)(\S+)", text, re.MULTILINE):
        assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"


def test_docker_context_keeps_the_packages() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # The folders the installed packages come from (pyproject maps each layer's folder under `baton`).
    packages = {folder.split("/")[0] for folder in project["tool"]["setuptools"]["package-dir"].values()}
    ignored = {line.strip().strip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    needed = {"pyproject.toml", project["project"].get("readme", "README.md"), *packages}
    assert not needed & ignored, f".dockerignore drops what the wheel needs: {sorted(needed & ignored)}"


def test_search_attributes_match_the_code(services: dict[str, dict[str, Any]]) -> None:
    registered: dict[str, str] = {}
    for service in services.values():
        text = _command_text(service)
        if "search-attribute create" not in text:
            continue
        assert service.get("image", "").startswith("temporalio/admin-tools"), "register with the admin-tools image"
        for name, kind in re.findall(r"--name\s+(\w+)\s+--type\s+(\w+)", text):
            assert name not in registered, f"{name} is registered twice"
            registered[name] = kind
    expected = {key.name: CLI_TYPES[key.indexed_value_type.name] for key in search_attributes.ALL}
    assert registered == expected


def test_baton_environment_uses_real_settings(services: dict[str, dict[str, Any]]) -> None:
    fields = {name.lower() for name in Settings.model_fields}
    unknown = sorted(
        f"{service}: {key}"
        for service, spec in services.items()
        for key in _environment(spec)
        if key.upper().startswith("BATON_") and key[len("BATON_") :].lower() not in fields
    )
    assert not unknown, f"BATON_ variables that are not fields of baton.settings.Settings: {unknown}"


def test_baton_services_reach_temporal(services: dict[str, dict[str, Any]]) -> None:
    for name in BATON_SERVICES:
        address = _environment(services[name])["BATON_TEMPORAL_ADDRESS"]
        assert address.split(":")[0] in services, f"{name} points at {address}, which is not a service"
        deps = _depends_on(services[name])
        assert address.split(":")[0] in deps
        setup = [dep for dep, cond in deps.items() if cond == "service_completed_successfully"]
        assert any("search-attribute create" in _command_text(services[dep]) for dep in setup), (
            f"{name} must start after the search attributes are registered"
        )
    assert _environment(services["temporal-ui"])["TEMPORAL_ADDRESS"].split(":")[0] in services


def test_baton_database_is_created(services: dict[str, dict[str, Any]]) -> None:
    from sqlalchemy.engine import make_url

    created = set()
    for service in services.values():
        created |= set(re.findall(r"--db\s+(\w+)\s+create\b", _command_text(service)))
    for name in BATON_SERVICES:
        url = make_url(_environment(services[name])["BATON_DATABASE_URL"])
        assert url.drivername == "postgresql+asyncpg"
        assert url.host in services, f"{name}: database host {url.host} is not a service"
        assert url.database in created, f"{name}: nothing creates the database {url.database!r}"
        assert url.host in _depends_on(services[name])


def test_gateway_port_is_published(services: dict[str, dict[str, Any]]) -> None:
    gateway = services["baton-gateway"]
    env = _environment(gateway)
    assert env.get("BATON_GATEWAY_HOST") == "0.0.0.0", "inside a container the gateway must listen on all interfaces"
    port = int(env.get("BATON_GATEWAY_PORT") or Settings.model_fields["gateway_port"].default)
    assert port in {_container_port(mapping) for mapping in gateway.get("ports", [])}
    assert {_container_port(mapping) for mapping in services["temporal-ui"].get("ports", [])} == {8080}


def test_makefile_targets() -> None:
    text = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.MULTILINE))
    assert {"dev", "test", "lint", "bench", "clean"} <= targets
    phony = set(re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE).group(1).split())  # type: ignore[union-attr]
    assert {"dev", "test", "lint", "bench", "clean"} <= phony
    for line in text.splitlines():
        assert not re.match(r"^ +\S", line) or line.lstrip().startswith("#"), f"recipe lines need tabs: {line!r}"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_runs_pytest_and_fails_with_it() -> None:
    dry = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert re.search(r"(^|/)pytest\b", dry, re.MULTILINE), dry
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "the test target has no recipe"
    for line in recipe.group(1).splitlines():
        # A leading '-', '|| true' or a pipe would hide a pytest failure (or exit 5, nothing collected).
        assert not line.lstrip("\t@").startswith("-") and "||" not in line and "|" not in line, line


def test_ci_script_runs_lint_and_tests() -> None:
    script = ROOT / ".ci" / "run"
    text = script.read_text()
    assert os.access(script, os.X_OK), ".ci/run must be executable"
    assert text.startswith("#!") and "bash" in text.splitlines()[0]
    assert "set -euo pipefail" in text
    assert re.search(r"^make lint$", text, re.MULTILINE)
    assert re.search(r"^make test$", text, re.MULTILINE)


# -- `baton dev` end to end --------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _descendants(pid: int) -> set[int]:
    """Every live process below pid, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_dev_stack_answers_and_stops_cleanly(tmp_path: Path) -> None:
    temporal_port, ui_port, gateway_port = _free_ports(3)
    env = {
        **os.environ,
        "BATON_DEV_STATE_DIR": str(tmp_path / "state"),
        "BATON_DEV_TEMPORAL_PORT": str(temporal_port),
        "BATON_DEV_UI_PORT": str(ui_port),
        "BATON_GATEWAY_PORT": str(gateway_port),
        "BATON_GATEWAY_HOST": "127.0.0.1",
    }
    env.pop("BATON_GATEWAY_API_KEY", None)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "baton.apps.dev"], cwd=ROOT, env=env, stdout=stdout, stderr=stderr
        )

    def output() -> str:
        return f"--- stdout\n{out.read_text()}\n--- stderr\n{err.read_text()[-4000:]}"

    gateway = f"http://127.0.0.1:{gateway_port}"
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 20
        with httpx.Client(timeout=10) as http:
            while True:
                assert proc.poll() is None, f"baton dev exited early with {proc.returncode}\n{output()}"
                assert time.monotonic() < deadline, f"the gateway did not come up\n{output()}"
                try:
                    if http.get(f"{gateway}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            children = _descendants(proc.pid)
            assert children, "the Temporal dev server should run as a child of baton dev"

            response = http.post(
                f"{gateway}/v1/conversations/deploy-test/messages",
                json={
                    "customer_id": "cus_enterprise",
                    "channel": "chat",
                    "message": {"message_id": "m1", "role": "customer", "text": "I want to talk to a human"},
                },
            )
            assert response.status_code == 200, f"{response.status_code} {response.text}\n{output()}"
            decision = Decision.model_validate(response.json())
            assert decision.message_id == "m1"
            assert http.get(f"http://127.0.0.1:{ui_port}/").status_code == 200, "the Temporal Web UI should answer"

        banner = out.read_text()
        assert f"http://localhost:{ui_port}" in banner and f"{gateway}/docs" in banner and "curl" in banner

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, output()
        assert (tmp_path / "state" / "temporal.db").exists()
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if _alive(pid)], f"left running: {children}\n{output()}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
