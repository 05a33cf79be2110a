"""The import contracts hold, fail on a violation, and the gateway loads only what it needs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from baton.contract.activities import INTERFACES
from tests import import_contracts

ROOT = Path(__file__).resolve().parent.parent


def _copy_tree(tmp_path: Path) -> Path:
    copy = tmp_path / "tree"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", ".state", "__pycache__", "*.egg-info"))
    return copy


def test_the_tree_keeps_its_import_contracts() -> None:
    assert import_contracts.check(ROOT) == []


def test_a_workflow_importing_an_activity_module_breaks_the_layers(tmp_path: Path) -> None:
    copy = _copy_tree(tmp_path)
    queue = copy / "workflows" / "queue.py"
    queue.write_text(queue.read_text() + "\nfrom baton.activities.delivery import DeliveryActivities\n")
    problems = import_contracts.check(copy)
    assert any("layers: baton.workflows.queue (workflows) imports baton.activities.delivery" in p for p in problems)
    result = subprocess.run([sys.executable, "-m", "tests.import_contracts", str(copy)], cwd=ROOT, capture_output=True)
    assert result.returncode == 1


def test_pure_layers_import_no_io_and_the_gateway_no_workflow(tmp_path: Path) -> None:
    copy = _copy_tree(tmp_path)
    engine = copy / "policies" / "engine.py"
    engine.write_text(engine.read_text() + "\n\ndef _later() -> None:\n    import httpx  # noqa: F401\n")
    client = copy / "apps" / "client.py"
    client.write_text(client.read_text() + "\nfrom baton.workflows.conversation import ConversationWorkflow\n")
    problems = import_contracts.check(copy)
    assert any("pure: baton.policies.engine imports the I/O library httpx" in p for p in problems)
    assert any("gateway: importing baton.apps.gateway loads baton.workflows.conversation" in p for p in problems)


def test_a_circle_of_imports_is_found(tmp_path: Path) -> None:
    copy = _copy_tree(tmp_path)
    text = copy / "domain" / "text.py"
    text.write_text(
        text.read_text() + "\n\ndef _later() -> None:\n    from baton.domain import scoring  # noqa: F401\n"
    )
    assert any(p.startswith("cycle: baton.domain.scoring <-> baton.domain.text") for p in import_contracts.check(copy))


def test_importing_the_gateway_loads_no_workflow_activity_or_sqlalchemy() -> None:
    code = (
        "import sys, baton.apps.gateway\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('baton.workflows', 'baton.activities', "
        "'baton.store', 'sqlalchemy', 'openai')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_worker_registers_every_activity_the_workflows_may_call() -> None:
    from temporalio import activity

    from baton.settings import Settings
    from baton.worker.wiring import build_activities

    class _Client:  # build_activities only stores the client for later calls
        pass

    registered = {
        activity._Definition.must_from_callable(fn).name
        for fn in build_activities(_Client(), Settings(), "q")  # type: ignore[arg-type]
    }
    declared = {
        name
        for interface in INTERFACES
        for name, member in vars(interface).items()
        if hasattr(member, "__temporal_activity_definition")
    }
    assert declared and declared <= registered, declared - registered
