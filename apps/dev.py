"""`baton dev`: the embedded stack in one process tree.

Starts `temporal server start-dev` (SQLite under `.state/`), waits until it
accepts connections, then runs the conversation worker and the HTTP gateway as
tasks in one event loop. Ctrl-C (or SIGTERM) stops the gateway, drains the
worker and stops the server, in that order. The server never outlives this
process: it is stopped on every exit path, and on Linux the kernel sends it
SIGTERM should this process die without cleaning up.

Payloads are encrypted (docs/security.md): without BATON_CODEC_KEYS or BATON_CODEC_KEY_FILE, a key is
generated into the state folder (`codec-keys`) on first start and kept, with a codec server token
(`codec-token`); the codec server runs beside the gateway and the Web UI is pointed at it, so the UI shows
conversations decrypted and the database holds none of their text.

Besides the usual BATON_ settings (BATON_GATEWAY_PORT, BATON_POLICY, BATON_CODEC_SERVER_PORT, ...):

    BATON_DEV_STATE_DIR      server database and log (default .state)
    BATON_DEV_TEMPORAL_PORT  Temporal gRPC port (default 7233)
    BATON_DEV_UI_PORT        Temporal Web UI port (default 8233)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from pydantic import SecretStr

from baton.apps.binaries import temporal_cli
from baton.logging import configure_logging, get_logger
from baton.settings import Settings, get_settings
from baton.worker.connection import register_search_attributes, search_attribute_flags

if TYPE_CHECKING:
    from temporalio.client import Client

log = get_logger("baton.dev")

STARTUP_TIMEOUT_SECONDS = 30.0
SERVER_STOP_TIMEOUT_SECONDS = 10.0
# Longer than the gateway's own decision timeout, so in-flight requests finish.
GATEWAY_STOP_TIMEOUT_SECONDS = 40.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


class DevError(Exception):
    """A problem the user has to fix; the message says what and how."""


@dataclass(frozen=True)
class DevConfig:
    state_dir: Path = Path(".state")
    temporal_port: int = 7233
    ui_port: int = 8233
    host: str = "127.0.0.1"
    startup_timeout: float = STARTUP_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DevConfig:
        def port(name: str, default: int) -> int:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise DevError(f"{name}={raw!r} is not a TCP port")
            return int(raw)

        return cls(
            state_dir=Path(environ.get("BATON_DEV_STATE_DIR") or ".state"),
            temporal_port=port("BATON_DEV_TEMPORAL_PORT", 7233),
            ui_port=port("BATON_DEV_UI_PORT", 8233),
        )

    @property
    def temporal_address(self) -> str:
        return f"{self.host}:{self.temporal_port}"

    @property
    def db_file(self) -> Path:
        return self.state_dir / "temporal.db"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "temporal.log"

    @property
    def codec_key_file(self) -> Path:
        return self.state_dir / "codec-keys"

    @property
    def codec_token_file(self) -> Path:
        return self.state_dir / "codec-token"


# -- ports --------------------------------------------------------------------


def _bind_error(host: str, port: int) -> str | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Like the servers themselves: a port in TIME_WAIT is free, a listening one is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            return err.strerror or str(err)
    return None


def check_ports(config: DevConfig, settings: Settings) -> None:
    wanted = [
        ("Temporal gRPC", config.host, config.temporal_port, "BATON_DEV_TEMPORAL_PORT"),
        ("Temporal Web UI", config.host, config.ui_port, "BATON_DEV_UI_PORT"),
        ("gateway", settings.gateway_host, settings.gateway_port, "BATON_GATEWAY_PORT"),
        ("codec server", settings.codec_server_host, settings.codec_server_port, "BATON_CODEC_SERVER_PORT"),
    ]
    problems: list[str] = []
    seen: dict[int, str] = {}
    for name, host, port, variable in wanted:
        if port in seen:
            problems.append(f"the {name} and the {seen[port]} are both set to port {port}; change {variable}")
            continue
        seen[port] = name
        error = _bind_error(host, port)
        if error:
            problems.append(f"port {port} ({name}) on {host} is not available: {error}; free it or set {variable}")
    if problems:
        raise DevError(
            "cannot start the dev stack:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nIs another `baton dev` or `temporal server start-dev` running?"
            + " (`lsof -i :PORT` shows who holds a port.)"
        )


# -- payload encryption ----------------------------------------------------------


def _secret_file(path: Path, make: Callable[[], str]) -> str:
    """The file's content; written (owner-only) first when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(make() + "\n")
    return path.read_text().strip()


def prepare_codec(settings: Settings, config: DevConfig, environ: Mapping[str, str] = os.environ) -> Settings:
    """Settings with payload encryption on: the configured keys, else a dev key kept in the state folder; a
    codec server token likewise; the Web UI's origins allowed. Raises DevError when the keys are unusable."""
    from baton.worker.codec import CodecKeyError, generate_key, keys_from_settings, write_key_file

    update: dict[str, object] = {}
    if settings.codec_keys is None and settings.codec_key_file is None:
        if not config.codec_key_file.exists():
            write_key_file(config.codec_key_file, [generate_key("dev-1")])
            log.info("codec_key_generated", file=str(config.codec_key_file))
        update["codec_key_file"] = config.codec_key_file
    if settings.codec_server_tokens is None:
        token = _secret_file(config.codec_token_file, lambda: secrets.token_urlsafe(24))
        update["codec_server_tokens"] = SecretStr(token)
    if not environ.get("BATON_CODEC_SERVER_ORIGINS"):
        update["codec_server_origins"] = f"http://localhost:{config.ui_port},http://{config.host}:{config.ui_port}"
    prepared = settings.model_copy(update=update)
    try:
        keys_from_settings(prepared)
    except CodecKeyError as err:
        raise DevError(f"payload encryption: {err}") from err
    return prepared


def codec_endpoint(settings: Settings) -> str:
    """The URL the Web UI calls `/decode` under. The dev UI has no sign-in, so it has no token to send in a
    header; the token is the path's first segment instead (apps/codec_server.py)."""
    from baton.apps.codec_server import tokens_from_settings

    tokens, _ = tokens_from_settings(settings)
    host = settings.codec_server_host if settings.codec_server_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{settings.codec_server_port}/{tokens[0]}"


# -- the Temporal dev server -----------------------------------------------------


def server_command(config: DevConfig, ui_codec_endpoint: str | None = None) -> list[str]:
    codec = ["--ui-codec-endpoint", ui_codec_endpoint] if ui_codec_endpoint else []
    return [
        temporal_cli(),
        "server",
        "start-dev",
        "--db-filename",
        str(config.db_file),
        "--ip",
        config.host,
        "--port",
        str(config.temporal_port),
        "--ui-port",
        str(config.ui_port),
        "--log-level",
        "warn",
        *codec,
        # Registers the attributes in a new database; an existing database keeps
        # what it has, so ensure_search_attributes() adds any that are missing.
        *search_attribute_flags(),
    ]


def _parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook that makes the kernel SIGTERM the server when we die."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


def start_server(config: DevConfig, ui_codec_endpoint: str | None = None) -> subprocess.Popen[bytes]:
    try:
        command = server_command(config, ui_codec_endpoint)
    except FileNotFoundError as err:
        raise DevError(str(err)) from err
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with open(config.log_file, "wb") as server_log:
        # Its own session: a Ctrl-C in the terminal reaches only us, and we stop
        # the server after the worker has drained.
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_parent_death_signal(),
        )
    log.info("temporal_starting", pid=proc.pid, address=config.temporal_address, db=str(config.db_file))
    return proc


def _signal_server(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, sig)  # the server leads its own process group
        else:
            proc.send_signal(sig)


def stop_server(proc: subprocess.Popen[bytes], timeout: float = SERVER_STOP_TIMEOUT_SECONDS) -> None:
    if proc.poll() is not None:
        return
    log.info("temporal_stopping", pid=proc.pid)
    try:
        _signal_server(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("temporal_killed", pid=proc.pid, after_seconds=timeout)
            _signal_server(proc, signal.SIGKILL)
            proc.wait()
    except KeyboardInterrupt:  # impatient second Ctrl-C
        _signal_server(proc, signal.SIGKILL)
        proc.wait()
    log.info("temporal_stopped", pid=proc.pid, code=proc.returncode)


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no server log at {path})"
    last = text.splitlines()[-lines:]
    if not last:
        return f"(the server log {path} is empty)"
    return f"Last lines of {path}:\n" + "\n".join(f"  {line}" for line in last)


async def wait_for_server(
    settings: Settings, config: DevConfig, proc: subprocess.Popen[bytes], stop: asyncio.Event
) -> Client | None:
    """Connect once the server accepts connections; None if asked to stop first."""
    from baton.worker.connection import connect

    loop = asyncio.get_running_loop()
    deadline = loop.time() + config.startup_timeout
    last_error: BaseException | None = None
    while not stop.is_set():
        if proc.poll() is not None:
            raise DevError(
                f"the Temporal dev server exited with code {proc.returncode} while starting.\n"
                + log_tail(config.log_file)
            )
        try:
            return await asyncio.wait_for(connect(settings), timeout=5)
        except Exception as err:  # refused, not ready yet, timed out
            last_error = err
        if loop.time() > deadline:
            raise DevError(
                f"the Temporal dev server did not accept connections on {config.temporal_address} "
                f"within {config.startup_timeout:g}s (last error: {last_error}).\n{log_tail(config.log_file)}"
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.2)
    return None


async def ensure_search_attributes(client: Client, namespace: str, config: DevConfig) -> None:
    from temporalio.service import RPCError

    try:
        await register_search_attributes(client, namespace)
    except RPCError as err:
        raise DevError(
            f"cannot register Baton's search attributes: {err.message}\n"
            f"If an attribute exists with another type, start from a clean state with `make clean` "
            f"(deletes {config.state_dir})."
        ) from err


async def _wait_exit(proc: subprocess.Popen[bytes]) -> int:
    while proc.poll() is None:
        await asyncio.sleep(0.25)
    return proc.returncode


# -- the stack -------------------------------------------------------------------


class _DeferredStop(asyncio.Event):
    """The worker's stop event.

    The worker installs its own signal handlers, which call `set()`. Here that
    only asks the supervisor to shut down; the supervisor `release()`s the
    worker once the gateway has stopped, so requests in flight keep a worker.
    """

    def __init__(self, request: Callable[[], None]) -> None:
        super().__init__()
        self._request = request

    def set(self) -> None:
        self._request()

    def release(self) -> None:
        super().set()


def banner(settings: Settings, config: DevConfig) -> str:
    host = settings.gateway_host if settings.gateway_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    gateway = f"http://{host}:{settings.gateway_port}"
    key_header = '    -H "X-API-Key: $BATON_GATEWAY_API_KEY" \\\n' if settings.gateway_api_key else ""
    body = (
        '{"customer_id":"cus_enterprise","channel":"chat",'
        '"message":{"message_id":"m1","role":"customer","text":"I want to talk to a human"}}'
    )
    return (
        "\n"
        "Baton dev stack is running. Press Ctrl-C to stop.\n"
        "\n"
        f"  Temporal Web UI   http://localhost:{config.ui_port}\n"
        f"  Gateway           {gateway}   (API docs: {gateway}/docs)\n"
        f"  Temporal gRPC     {config.temporal_address}   "
        f"(namespace {settings.temporal_namespace}, task queue {settings.task_queue})\n"
        f"  Codec server      http://{settings.codec_server_host}:{settings.codec_server_port}   "
        f"(payloads encrypted; keys: {settings.codec_key_file or 'BATON_CODEC_KEYS'})\n"
        f"  State             {config.db_file}   (server log: {config.log_file}; `make clean` starts over)\n"
        "\n"
        "Send a customer message:\n"
        "\n"
        f"  curl -s -X POST {gateway}/v1/conversations/demo-1/messages \\\n"
        "    -H 'Content-Type: application/json' \\\n"
        f"{key_header}"
        f"    -d '{body}'\n"
        "\n"
        "Other clients (baton incident, scripts) need the same key: "
        f"export BATON_CODEC_KEY_FILE={settings.codec_key_file or '...'}\n"
    )


async def _finish(task: asyncio.Task[None], name: str, timeout: float) -> bool:
    """Wait for a task to end; cancel it after `timeout`. True if it ended cleanly."""
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout)
    except TimeoutError:
        log.warning(f"{name}_stop_timeout", after_seconds=timeout)
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        return False
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception(f"{name}_failed")
        return False
    return True


async def run_stack(settings: Settings, config: DevConfig, proc: subprocess.Popen[bytes]) -> int:
    from baton.apps.codec_server import serve_codec
    from baton.apps.gateway import serve
    from baton.worker.main import run_worker

    loop = asyncio.get_running_loop()
    shutdown = asyncio.Event()

    def request_shutdown() -> None:
        if not shutdown.is_set():
            log.info("dev_stopping")
            shutdown.set()

    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, request_shutdown)

    client = await wait_for_server(settings, config, proc, shutdown)
    if client is None:
        return 0
    log.info("temporal_ready", address=config.temporal_address, ui=f"http://localhost:{config.ui_port}")
    await ensure_search_attributes(client, settings.temporal_namespace, config)

    ready = asyncio.Event()
    gateway_stop = asyncio.Event()
    codec_ready, codec_stop = asyncio.Event(), asyncio.Event()
    worker_stop = _DeferredStop(request_shutdown)
    worker = asyncio.create_task(run_worker(settings, worker_stop), name="worker")
    codec = asyncio.create_task(serve_codec(settings, codec_ready, codec_stop), name="codec-server")
    gateway = asyncio.create_task(serve(settings, client, ready, gateway_stop), name="gateway")
    server_exit = asyncio.create_task(_wait_exit(proc), name="temporal-server")
    stopping = asyncio.create_task(shutdown.wait(), name="shutdown")
    announced = asyncio.create_task(ready.wait(), name="gateway-ready")
    watched = {worker, gateway, codec, server_exit, stopping}

    done, _ = await asyncio.wait(watched | {announced}, return_when=asyncio.FIRST_COMPLETED)
    if not done & watched:
        print(banner(settings, config), flush=True)
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    announced.cancel()

    code = 0
    if server_exit in done and not shutdown.is_set():
        log.error("temporal_exited", code=proc.returncode)
        print(f"baton dev: the Temporal dev server stopped unexpectedly.\n{log_tail(config.log_file)}", file=sys.stderr)
        code = 1
    if worker in done and (worker.cancelled() or worker.exception() is not None):
        log.error("worker_failed", exc_info=None if worker.cancelled() else worker.exception())
        code = 1
    if gateway in done and (gateway.cancelled() or gateway.exception() is not None):
        log.error("gateway_failed", exc_info=None if gateway.cancelled() else gateway.exception())
        code = 1
    if codec in done:
        log.error("codec_server_failed", exc_info=None if codec.cancelled() else codec.exception())
        code = 1

    # Orderly shutdown: no new requests, then drain the worker; main() stops the server.
    gateway_stop.set()
    if not gateway.done() and not await _finish(gateway, "gateway", GATEWAY_STOP_TIMEOUT_SECONDS):
        code = 1
    codec_stop.set()
    if not codec.done() and not await _finish(codec, "codec_server", SERVER_STOP_TIMEOUT_SECONDS):
        code = 1
    worker_stop.release()
    if not worker.done() and not await _finish(worker, "worker", settings.worker_shutdown_seconds + 10):
        code = 1
    for task in (server_exit, stopping):
        task.cancel()
    return code


# -- entry point -----------------------------------------------------------------


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    settings = get_settings()
    # Readable console logs in dev, unless the user asked for a format.
    configure_logging(settings.log_format if os.environ.get("BATON_LOG_FORMAT") else "console", settings.log_level)
    try:
        config = DevConfig.from_env()
        settings = settings.model_copy(update={"temporal_address": config.temporal_address})
        check_ports(config, settings)
        settings = prepare_codec(settings, config)
    except DevError as err:
        print(f"baton dev: {err}", file=sys.stderr)
        return 1

    # Until the event loop takes over (and after it is gone), every stop signal
    # unwinds like Ctrl-C, so the `finally` below always stops the server. SIGINT
    # counts even where a parent shell started us with it ignored.
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc = start_server(config, codec_endpoint(settings))
        return asyncio.run(run_stack(settings, config, proc))
    except DevError as err:
        print(f"baton dev: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except SystemExit as exc:  # uvicorn exits this way when it cannot start
        log.error("gateway_exited", code=exc.code)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _interrupt)
        if proc is not None:
            stop_server(proc)
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


if __name__ == "__main__":
    sys.exit(main())
