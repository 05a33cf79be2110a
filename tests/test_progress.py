"""Progress bars on the long commands: on a terminal they show the count, the rate and the time left on
stderr; in a pipe or under CI they write nothing at all; `BATON_PROGRESS=always|never` overrides. The
commands run for real (`baton audit`, `baton export` in a subprocess, stderr a pipe or a pseudo-terminal);
`baton model train` runs in process on a small training set, its output compared with a run without a bar.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from baton.apps import cli
from baton.apps.client import close, handle, send_message
from baton.apps.model import train as training
from baton.apps.model.examples import Example
from baton.apps.progress import OVERRIDE, enabled, progress
from baton.classifier.features import hashed_ngrams
from baton.contract.messages import ConversationStart, Intent, MessageIn, Topic
from baton.settings import Settings
from baton.worker.wiring import build_worker
from tests.test_audit import sync_loops

BATON = str(Path(sys.executable).parent / "baton")
RUN_TIMEOUT = 300  # against a hang only
VISIBILITY_WAIT_SECONDS = 30.0
NARROW_BUCKETS = 1024
# tqdm's rate ("24.86msg/s", or "1.20s/fit" when slow) and time left ("[00:01<00:00").
RATE = re.compile(r"\d+\.\d+\s?(\w+/s|s/\w+)")
TIME_LEFT = re.compile(r"\[\d\d:\d\d<\d\d:\d\d")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def quiet_environment(**extra: str) -> dict[str, str]:
    """This process's environment without CI or the override (a test may set them back)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", OVERRIDE)}
    return {**environment, **extra}


def run_in_pipe(args: list[str], environment: dict[str, str]) -> Run:
    done = subprocess.run(
        [BATON, *args], capture_output=True, text=True, timeout=RUN_TIMEOUT, env=environment, stdin=subprocess.DEVNULL
    )
    return Run(done.returncode, done.stdout, done.stderr)


def run_on_terminal(args: list[str], environment: dict[str, str]) -> Run:
    """The command with stderr on a pseudo-terminal of 100 columns (stdout to a file, as when redirected)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    chunks: list[bytes] = []
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen([BATON, *args], stdout=out, stderr=slave, stdin=subprocess.DEVNULL, env=environment)
        os.close(slave)
        deadline = time.monotonic() + RUN_TIMEOUT
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 1.0)
                if not ready:
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            else:
                process.kill()
                pytest.fail(f"baton {' '.join(args)} still running after {RUN_TIMEOUT}s")
        finally:
            os.close(master)
        code = process.wait(timeout=RUN_TIMEOUT)
        out.seek(0)
        stdout = out.read().decode()
    # The terminal turns each "\n" into "\r\n"; read it back as the program wrote it.
    return Run(code, stdout, b"".join(chunks).decode().replace("\r\n", "\n"))


def assert_no_bar(stderr: str) -> None:
    assert "\r" not in stderr
    assert not RATE.search(stderr), stderr
    assert not TIME_LEFT.search(stderr), stderr


def final_bar(stderr: str, desc: str) -> str:
    """The last state of the bar named `desc`: the last piece of its line after the carriage returns."""
    drawn = [piece for line in stderr.split("\n") for piece in line.split("\r") if piece.startswith(f"{desc}:")]
    assert drawn, f"no {desc} bar in {stderr!r}"
    return drawn[-1]


def line_after_bar(stderr: str, text: str) -> None:
    """`text` begins a line of its own: nothing of the bar before it on that line."""
    assert re.search(rf"(^|\n){re.escape(text)}", stderr), stderr


# --- when a bar shows -----------------------------------------------------------------------------------


class Stream(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


@pytest.mark.parametrize(
    ("terminal", "environment", "shown"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"CI": "true"}, False),
        (True, {"CI": "1"}, False),
        (True, {"CI": ""}, True),  # set but empty: not CI
        (False, {OVERRIDE: "always"}, True),
        (False, {OVERRIDE: " Always "}, True),
        (True, {"CI": "true", OVERRIDE: "always"}, True),
        (True, {OVERRIDE: "never"}, False),
        (True, {OVERRIDE: "auto"}, True),  # anything else: the rule
        (False, {OVERRIDE: "auto"}, False),
        (True, {OVERRIDE: "auto", "CI": "true"}, False),
    ],
)
def test_the_rule(terminal: bool, environment: dict[str, str], shown: bool) -> None:
    assert enabled(Stream(terminal), environment) is shown


def test_a_real_terminal_and_a_closed_stream() -> None:
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w") as terminal:
            assert enabled(terminal, {}) is True
            assert enabled(terminal, {"CI": "true"}) is False
        assert enabled(terminal, {}) is False  # closed
    finally:
        os.close(master)


def test_a_hidden_bar_writes_nothing_and_its_lines_go_out_plainly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OVERRIDE, "never")
    with progress(None, "work", unit="item") as bar:
        bar.set_total(3)
        bar.update()
        bar.update(2)
        assert not bar.shown and bar.count == 3
    assert capsys.readouterr().err == ""
    with progress(2, "work", unit="item") as bar:
        bar.write("a line")
    assert capsys.readouterr().err == "a line\n"


def test_a_shown_bar_counts_to_its_total(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OVERRIDE, "always")
    with progress(None, "work", unit="item") as bar:
        bar.set_total(3)
        bar.update(3)
        bar.write("a line")
    err = capsys.readouterr().err
    assert final_bar(err, "work").startswith("work: 100%")
    assert "3/3 [" in final_bar(err, "work") and RATE.search(final_bar(err, "work"))
    assert "\ra line\n" in err  # the bar cleared first, the line whole
    assert err.endswith("\n")  # closed: whatever comes next starts a line


# --- baton audit ------------------------------------------------------------------------------------------


def past_conversations(path: Path) -> Path:
    """The audit tests' six sync loops (one scenario type, 42 customer messages), written to `path`."""
    lines = sync_loops()
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_audit_in_a_pipe_writes_no_bar(tmp_path: Path) -> None:
    source, draft = past_conversations(tmp_path / "past.jsonl"), tmp_path / "draft.yaml"
    done = run_in_pipe(["audit", str(source), "--min-count", "2", "--policy-out", str(draft)], quiet_environment())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("6 conversations (6 baton); 6 fell short")
    assert done.stderr == f"draft policy written to {draft}\n"
    assert_no_bar(done.stderr)


def test_audit_on_a_terminal_shows_rate_and_time_left(tmp_path: Path) -> None:
    source, draft = past_conversations(tmp_path / "past.jsonl"), tmp_path / "draft.yaml"
    args = ["audit", str(source), "--min-count", "2", "--policy-out", str(draft)]
    done = run_on_terminal(args, quiet_environment())
    assert done.returncode == 0, done.stderr
    bar = final_bar(done.stderr, "audit")
    assert bar.startswith("audit: 100%") and "42/42 [" in bar  # every customer message scored
    rate = RATE.search(bar)
    assert rate and rate.group(1) in ("msg/s", "s/msg"), bar  # "s/msg" when slower than one a second
    assert TIME_LEFT.search(bar), bar
    line_after_bar(done.stderr, f"draft policy written to {draft}")
    # The output itself is the same as in a pipe.
    assert done.stdout == run_in_pipe(args, quiet_environment()).stdout


@pytest.mark.parametrize(
    ("terminal", "environment", "shown"),
    [(True, {"CI": "true"}, False), (True, {OVERRIDE: "never"}, False), (False, {OVERRIDE: "always"}, True)],
)
def test_audit_follows_ci_and_the_override(
    tmp_path: Path, terminal: bool, environment: dict[str, str], shown: bool
) -> None:
    source = past_conversations(tmp_path / "past.jsonl")
    run = run_on_terminal if terminal else run_in_pipe
    done = run(["audit", str(source), "--min-count", "2"], quiet_environment(BATON_CLASSIFIER="rules", **environment))
    assert done.returncode == 0, done.stderr
    if shown:
        assert RATE.search(final_bar(done.stderr, "audit")) and TIME_LEFT.search(done.stderr)
    else:
        assert done.stderr == ""


# --- baton export -----------------------------------------------------------------------------------------


async def wait_for_visibility(client: Client, workflow_ids: set[str]) -> None:
    """Visibility is eventually consistent: wait (bounded) until every conversation shows as closed."""
    query = " OR ".join(f"WorkflowId = '{w}'" for w in sorted(workflow_ids))
    deadline = time.monotonic() + VISIBILITY_WAIT_SECONDS
    while True:
        runs = [r async for r in client.list_workflows(query)]
        closed = {r.id for r in runs if r.status == WorkflowExecutionStatus.COMPLETED}
        if closed >= workflow_ids:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"visibility did not catch up in {VISIBILITY_WAIT_SECONDS:g}s: {sorted(closed)}")
        await asyncio.sleep(0.2)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def test_export_shows_a_bar_on_a_terminal_only(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    client = dev_env.client
    settings = Settings(task_queue=f"progress-{uuid.uuid4().hex[:8]}")
    prefix = f"prog{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings):
        since = datetime.now(UTC)
        await asyncio.sleep(0.05)
        ids = []
        for n in range(3):
            start = ConversationStart(conversation_id=f"{prefix}-{n}", customer_id=f"{prefix}-cus-{n}")
            message = MessageIn(message_id="m1", role="customer", text="How do I add a teammate?")
            await send_message(client, settings.task_queue, start, message)
            await close(client, start.conversation_id, reason="closed")
            await asyncio.wait_for(handle(client, start.conversation_id).result(), timeout=60)
            ids.append(f"conversation-{start.conversation_id}")
        await asyncio.sleep(0.05)
        until = datetime.now(UTC)
        await wait_for_visibility(client, set(ids))

        environment = quiet_environment(BATON_TEMPORAL_ADDRESS=client.service_client.config.target_host)
        piped, terminal = tmp_path / "piped.jsonl", tmp_path / "terminal.jsonl"
        window = ["--since", iso(since), "--until", iso(until)]
        # In threads: this loop's worker answers the export's state queries meanwhile.
        in_pipe = await asyncio.to_thread(run_in_pipe, ["export", *window, str(piped)], environment)
        on_terminal = await asyncio.to_thread(run_on_terminal, ["export", *window, str(terminal)], environment)

    assert in_pipe.returncode == 0, in_pipe.stderr
    assert in_pipe.stderr.startswith("exported 3 conversations")
    assert_no_bar(in_pipe.stderr)

    assert on_terminal.returncode == 0, on_terminal.stderr
    bar = final_bar(on_terminal.stderr, "export")
    assert bar.startswith("export: 100%") and "3/3 [" in bar, bar
    assert RATE.search(bar) and TIME_LEFT.search(bar), bar
    line_after_bar(on_terminal.stderr, "exported 3 conversations")
    assert piped.read_text() == terminal.read_text()
    assert len(piped.read_text().splitlines()) == 3


# --- baton model train ------------------------------------------------------------------------------------


def small_training_set(root: Path | None = None) -> list[Example]:
    """Every intent with enough positives, every topic, some frustration ratings: a model in seconds."""
    topics = list(Topic)
    rows = []
    for k, intent in enumerate(Intent):
        for n in range(training.MIN_POSITIVES + 2):
            topic = topics[(k + n) % len(topics)].value
            rows.append(
                Example(
                    f"{intent.value} message {n} about {topic}", "banking77", intent.value, (intent.value,), topic, None
                )
            )
    for n in range(40):
        topic = topics[n % len(topics)].value
        rows.append(Example(f"an ordinary question {n} on {topic}", "banking77", "none", (), topic, None))
    for n in range(30):
        rows.append(Example(f"this is {'very ' * (n % 5)}annoying {n}", "written", "rated", (), None, (n % 5) / 4))
    for n in range(50):  # comments at each frustration level, for the level heads and the gate
        rows.append(Example(f"a comment {'so ' * (n % 5)}angry {n}", "goemotions", "anger", (), None, (n % 5) / 4))
    return rows


def narrow_ngrams(text: str) -> tuple[np.ndarray, np.ndarray]:
    indices, values = hashed_ngrams(text)
    return indices % NARROW_BUCKETS, values


def test_model_train_counts_every_fit_and_trains_the_same_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real training code on a small set, hashed into fewer buckets so that each fit takes milliseconds
    rather than seconds: once as the library call without a bar, once as the command with one."""
    monkeypatch.setattr(training, "training_rows", small_training_set)
    monkeypatch.setattr(training, "BUCKETS", NARROW_BUCKETS)
    monkeypatch.setattr(training, "hashed_ngrams", narrow_ngrams)
    plain_log = io.StringIO()
    plain = training.train(tmp_path / "plain", log=plain_log, embedding="none")

    monkeypatch.setenv(OVERRIDE, "always")
    args = cli.build_parser().parse_args(["model", "train", "--out", str(tmp_path / "shown"), "--embedding", "none"])
    assert args.func(args) == 0
    err = capsys.readouterr().err

    fits = training.model_fits()
    bar = final_bar(err, "model train")
    assert bar.startswith("model train: 100%") and f"{fits}/{fits} [" in bar, bar
    assert RATE.search(bar) and TIME_LEFT.search(bar), bar
    # The training's own lines, each whole, above the bar.
    for line in plain_log.getvalue().splitlines():
        assert f"\r{line.replace(str(tmp_path / 'plain'), str(tmp_path / 'shown'))}\n" in err, line
    # The bar changes nothing that is trained.
    shown = json.loads((tmp_path / "shown" / "model.json").read_text())
    assert shown["version"] == plain["version"] and shown["sha256"] == plain["sha256"]
