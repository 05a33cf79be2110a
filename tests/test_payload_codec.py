"""Payload encryption: the codec, key rotation, a conversation whose history holds no customer text, the codec
server over real HTTP on loopback (and the Temporal CLI through it)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from baton.apps.client import ConversationClosedError, close, get_state, handle, send_message
from baton.apps.codec_server import CodecServerConfigError, app_from_settings, serve_codec
from baton.contract.messages import ConversationStart, CustomerFacts, MessageIn
from baton.settings import Settings
from baton.worker.codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecKey,
    CodecKeyError,
    EncryptionCodec,
    PayloadTamperedError,
    add_key_to_file,
    format_key,
    generate_key,
    keys_from_settings,
    parse_keys,
)
from baton.worker.connection import DATA_CONVERTER, connect, data_converter
from baton.worker.wiring import WORKFLOWS, build_worker
from scripts.headless_chromium import Browser
from tests.conftest import server_binary

KEY_A = generate_key("2026-10")
KEY_B = generate_key("2026-11")
# What a customer might write: the history must hold none of it in readable form.
SECRETS = ("jane.doe@example.com", "+44 20 7946 0958", "4111 1111 1111 1111", "GB82WEST12345698765432")
CUSTOMER_TEXT = f"My card {SECRETS[2]} was charged twice. Email {SECRETS[0]}, phone {SECRETS[1]}, IBAN {SECRETS[3]}."


def plain(text: str) -> Payload:
    return DATA_CONVERTER.payload_converter.to_payloads([text])[0]


# -- the codec -------------------------------------------------------------------------------------------------


async def test_round_trip_encrypts_under_the_current_key_id() -> None:
    codec = EncryptionCodec([KEY_A])
    original = plain(CUSTOMER_TEXT)
    [sealed] = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID_METADATA] == b"2026-10"
    assert SECRETS[0].encode() not in sealed.data and b"json/plain" not in sealed.SerializeToString()
    [opened] = await codec.decode([sealed])
    assert opened == original
    # A fresh nonce each time: the same text never gives the same bytes.
    [again] = await codec.encode([original])
    assert again.data != sealed.data


async def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    [under_a] = await EncryptionCodec([KEY_A]).encode([plain("before rotation")])
    rotated = EncryptionCodec([KEY_B, KEY_A])  # B put first: it encrypts; A kept to decrypt
    assert await rotated.decode([under_a]) == [plain("before rotation")]
    [under_b] = await rotated.encode([plain("after rotation")])
    assert under_b.metadata[KEY_ID_METADATA] == b"2026-11"
    assert await rotated.decode([under_b]) == [plain("after rotation")]
    # A process still holding only the old key cannot read what the new key wrote, and says which key it lacks.
    with pytest.raises(CodecKeyError, match=r"'2026-11'.*not configured.*2026-10"):
        await EncryptionCodec([KEY_A]).decode([under_b])


async def test_tampering_is_detected() -> None:
    codec = EncryptionCodec([KEY_A, KEY_B])
    [sealed] = await codec.encode([plain(CUSTOMER_TEXT)])
    flipped = bytearray(sealed.data)
    flipped[-5] ^= 0x01
    changed = Payload(metadata=dict(sealed.metadata), data=bytes(flipped))
    with pytest.raises(PayloadTamperedError, match="2026-10"):
        await codec.decode([changed])
    # The key id is authenticated too: relabelling a payload with another configured key's id fails.
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID_METADATA: b"2026-11"}, data=sealed.data)
    with pytest.raises(PayloadTamperedError):
        await codec.decode([relabelled])
    truncated = Payload(metadata=dict(sealed.metadata), data=sealed.data[:8])
    with pytest.raises(PayloadTamperedError, match="too short"):
        await codec.decode([truncated])


async def test_unknown_key_id_is_an_error_naming_it() -> None:
    [sealed] = await EncryptionCodec([generate_key("retired")]).encode([plain("x")])
    with pytest.raises(CodecKeyError, match="'retired'"):
        await EncryptionCodec([KEY_A]).decode([sealed])


async def test_unencrypted_payloads_pass_through_decode() -> None:
    original = plain("recorded before encryption was turned on")
    assert await EncryptionCodec([KEY_A]).decode([original]) == [original]


def test_keys_from_settings_name_the_setting_and_entry(tmp_path: Path) -> None:
    assert keys_from_settings(Settings()) == []
    assert data_converter(Settings()) is DATA_CONVERTER  # no key: payloads stay as they were
    keys = keys_from_settings(Settings(codec_keys=f"{format_key(KEY_B)}, {format_key(KEY_A)}"))
    assert keys == [KEY_B, KEY_A]
    assert "secret" not in repr(keys) and base64.b64encode(KEY_A.secret).decode() not in repr(keys)
    with pytest.raises(CodecKeyError, match=r"BATON_CODEC_KEYS, entry 2.*expected id:base64key"):
        parse_keys(f"{format_key(KEY_A)},nocolon")
    with pytest.raises(CodecKeyError, match=r"entry 1 \(key 'short'\).*32 bytes, got 5"):
        parse_keys("short:" + base64.b64encode(b"12345").decode())
    with pytest.raises(CodecKeyError, match="not valid base64"):
        parse_keys("k:not base64!")
    with pytest.raises(CodecKeyError, match="key id 'bad id'"):
        parse_keys("bad id:" + base64.b64encode(bytes(32)).decode())
    with pytest.raises(CodecKeyError, match="appears twice"):
        parse_keys(f"{format_key(KEY_A)},{format_key(KEY_A)}")
    with pytest.raises(CodecKeyError, match="not both"):
        keys_from_settings(Settings(codec_keys=format_key(KEY_A), codec_key_file=tmp_path / "keys"))
    with pytest.raises(CodecKeyError, match="BATON_CODEC_REQUIRED"):
        keys_from_settings(Settings(codec_required=True))
    with pytest.raises(CodecKeyError, match="BATON_CODEC_KEY_FILE: cannot read"):
        keys_from_settings(Settings(codec_key_file=tmp_path / "missing"))


def test_a_key_file_rotates_with_new_key(tmp_path: Path) -> None:
    path = tmp_path / "codec-keys"
    first = add_key_to_file(path, "2026-10")
    second = add_key_to_file(path, "2026-11")
    assert path.stat().st_mode & 0o777 == 0o600
    keys = keys_from_settings(Settings(codec_key_file=path))
    assert [k.key_id for k in keys] == ["2026-11", "2026-10"] and keys == [second, first]
    with pytest.raises(CodecKeyError, match="already holds key id '2026-11'"):
        add_key_to_file(path, "2026-11")


# -- a conversation on the test server -------------------------------------------------------------------------


def _payloads(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    """Every Payload inside a protobuf message, with the field path it sits at."""
    if isinstance(message, Payload):
        yield path, message
        return
    for field, value in message.ListFields():
        where = f"{path}.{field.name}"
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(item, Message):
                    yield from _payloads(item, f"{where}[{key}]")
        elif field.is_repeated:
            for index, item in enumerate(value):
                yield from _payloads(item, f"{where}[{index}]")
        else:
            yield from _payloads(value, where)


def _base64_fields(node: object) -> Iterator[bytes]:
    """Every `data` field of `temporal workflow show -o json`, decoded from base64."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "data" and isinstance(value, str):
                try:
                    yield base64.b64decode(value, validate=True)
                except ValueError:
                    yield value.encode()
            else:
                yield from _base64_fields(value)
    elif isinstance(node, list):
        for item in node:
            yield from _base64_fields(item)


def _readable(blob: bytes) -> list[str]:
    return [s for s in SECRETS if s.encode() in blob or json.dumps(s)[1:-1].encode() in blob]


@asynccontextmanager
async def codec_server(settings: Settings) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    async with codec_server_on(settings, sock) as endpoint:
        yield endpoint


@asynccontextmanager
async def codec_server_on(settings: Settings, sock: socket.socket) -> AsyncIterator[str]:
    """`baton codec-server` in this event loop, on a socket bound by the caller."""
    ready, stop = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve_codec(settings, ready, stop, sock=sock))
    await asyncio.wait([server, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        raise RuntimeError(f"the codec server did not start: {server.exception()}")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        await asyncio.wait_for(server, 10)
        sock.close()


TOKEN = "codec-test-token-" + uuid.uuid4().hex
UI_ORIGIN = "http://127.0.0.1:8233"


def codec_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "codec_keys": f"{format_key(KEY_B)},{format_key(KEY_A)}",
        "codec_server_tokens": TOKEN,
        "codec_server_origins": UI_ORIGIN,
        "gateway_api_key": "gateway-key-" + uuid.uuid4().hex,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


async def test_history_holds_no_customer_text_and_replays_with_the_codec(env: WorkflowEnvironment) -> None:
    settings = codec_settings(
        temporal_address=env.client.service_client.config.target_host, task_queue=f"test-{uuid.uuid4().hex[:10]}"
    )
    client = await connect(settings)  # the one client factory, with the codec from the settings
    start = ConversationStart(
        conversation_id=f"enc-{uuid.uuid4().hex[:10]}", customer_id="cus_midmarket", customer=CustomerFacts()
    )
    async with build_worker(client, settings):
        await send_message(
            client, settings.task_queue, start, MessageIn(message_id="m1", role="customer", text=CUSTOMER_TEXT)
        )
        decision = await send_message(
            client,
            settings.task_queue,
            start,
            MessageIn(message_id="m2", role="customer", text=f"I want to talk to a human now, {SECRETS[0]}"),
        )
        assert decision.action != "continue"
        state = await get_state(client, start.conversation_id)
        assert state.escalation is not None  # the handoff path ran: note, queue, records all went through the codec
        assert state.transcript[0].text == CUSTOMER_TEXT  # with the key, everything reads as before
        # Failures travel encrypted too (encoded attributes), and read as before: type and message.
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await send_message(
                client, settings.task_queue, start, MessageIn(message_id="b1", role="bot", text=f"Hi {SECRETS[1]}")
            )
        assert isinstance(caught.value.cause, ApplicationError) and caught.value.cause.type == "InvalidMessage"
        assert "role: the bot may not reply" in str(caught.value.cause)
        await close(client, start.conversation_id, reason="test finished")
        await handle(client, start.conversation_id).result()
        with pytest.raises(ConversationClosedError):
            await send_message(
                client, settings.task_queue, start, MessageIn(message_id="m3", role="customer", text="hi")
            )

    # Without the codec: what the server stores, and what anyone with access to Temporal reads.
    raw_client = Client(env.client.service_client, namespace=env.client.namespace)
    history = await raw_client.get_workflow_handle(handle(client, start.conversation_id).id).fetch_history()
    stored = History(events=history.events)
    payloads = list(_payloads(stored))
    encrypted = [where for where, p in payloads if p.metadata.get("encoding") == ENCODING]
    assert len(encrypted) > 10
    assert {p.metadata[KEY_ID_METADATA] for _, p in payloads if p.metadata.get("encoding") == ENCODING} == {b"2026-11"}
    # The only plain payloads are search attributes, which carry no text by design (contract/search_attributes.py),
    # and what the SDK itself writes in markers: patch ids, and a local activity's bookkeeping (type, attempt,
    # times; its result is encrypted).
    unencrypted = [where for where, p in payloads if p.metadata.get("encoding") != ENCODING]
    sdk_own = (".search_attributes.", "marker_recorded_event_attributes.details[patch-data]", "details[data]")
    assert all(any(part in where for part in sdk_own) for where in unencrypted), unencrypted
    for where, payload in payloads:
        assert _readable(payload.data) == [], where
    assert _readable(stored.SerializeToString()) == []  # failure messages, summaries, everything else

    # The saved JSON form (what tests/histories holds) replays with the codec, and not without it.
    saved = WorkflowHistory.from_json(history.workflow_id, history.to_json())
    assert _readable(json.dumps([*_base64_fields(json.loads(history.to_json()))], default=repr).encode()) == []
    await Replayer(workflows=WORKFLOWS, data_converter=data_converter(settings)).replay_workflow(saved)
    failed = await Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER).replay_workflow(
        saved, raise_on_replay_failure=False
    )
    assert failed.replay_failure is not None

    # The Temporal CLI: `workflow show -o json` holds no readable text; through the codec server it does.
    address = settings.temporal_address
    workflow_id = history.workflow_id
    show = [server_binary("temporal"), "workflow", "show", "-w", workflow_id, "--address", address, "-o", "json"]
    raw = await asyncio.to_thread(subprocess.run, show, capture_output=True, check=True, timeout=60)
    shown = json.loads(raw.stdout)
    assert _readable(b"\n".join(_base64_fields(shown))) == [] and _readable(raw.stdout) == []
    async with codec_server(settings) as endpoint:
        decoded = await asyncio.to_thread(
            subprocess.run,
            [*show, "--codec-endpoint", endpoint, "--codec-auth", f"Bearer {TOKEN}"],
            capture_output=True,
            check=True,
            timeout=60,
        )
        readable = _readable(b"\n".join(_base64_fields(json.loads(decoded.stdout))) + decoded.stdout)
        assert SECRETS[0] in readable
        refused = await asyncio.to_thread(
            subprocess.run,
            [*show, "--codec-endpoint", endpoint, "--codec-auth", "Bearer wrong"],
            capture_output=True,
            timeout=60,
        )
        assert _readable(refused.stdout) == []


async def test_saved_histories_replay_with_the_codec_on() -> None:
    """Histories recorded before encryption replay with a key configured: decode passes plain payloads through."""
    converter: DataConverter = data_converter(codec_settings())
    assert converter.payload_codec is not None
    for path in sorted(Path(__file__).with_name("histories").glob("*.json")):
        history = WorkflowHistory.from_json(f"conversation-{path.stem}", path.read_text())
        await Replayer(workflows=WORKFLOWS, data_converter=converter).replay_workflow(history)


# -- the codec server over HTTP --------------------------------------------------------------------------------


def _as_json(payloads: list[Payload]) -> dict[str, object]:
    from google.protobuf import json_format

    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


def _from_json(body: dict[str, list[dict[str, object]]]) -> list[Payload]:
    from google.protobuf import json_format

    return [json_format.ParseDict(p, Payload()) for p in body["payloads"]]


async def test_codec_server_decodes_only_for_a_token_and_the_ui_origin() -> None:
    settings = codec_settings()
    [sealed] = await EncryptionCodec([KEY_A]).encode([plain(CUSTOMER_TEXT)])
    body = _as_json([sealed, plain("never encrypted")])
    async with codec_server(settings) as endpoint, httpx.AsyncClient(base_url=endpoint, timeout=10) as http:
        missing = await http.post("/decode", json=body)
        assert missing.status_code == 401 and CUSTOMER_TEXT not in missing.text
        wrong = await http.post("/decode", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert (await http.post("/nope/decode", json=body)).status_code == 401
        # The gateway's API key is accepted in a header, never in the URL.
        gateway_key = settings.gateway_api_key or ""
        assert (await http.post("/decode", json=body, headers={"X-API-Key": gateway_key})).status_code == 200
        assert (await http.post(f"/{gateway_key}/decode", json=body)).status_code == 401

        # Integration keys from the store: an operator's decrypts, a chat backend's does not.
        operator, chat_backend = await _store_key("ops", ["operator"]), await _store_key("chat", ["messages"])
        assert (await http.post("/decode", json=body, headers={"X-API-Key": operator})).status_code == 200
        assert (
            await http.post("/decode", json=body, headers={"Authorization": f"Bearer {operator}"})
        ).status_code == 200
        assert (await http.post("/decode", json=body, headers={"X-API-Key": chat_backend})).status_code == 401

        ok = await http.post(
            "/decode", json=body, headers={"Authorization": f"Bearer {TOKEN}", "X-Namespace": "default"}
        )
        assert ok.status_code == 200
        assert _from_json(ok.json()) == [plain(CUSTOMER_TEXT), plain("never encrypted")]
        in_path = await http.post(f"/{TOKEN}/decode", json=body)  # the dev UI's form: no header to send
        assert in_path.status_code == 200 and _from_json(in_path.json())[0] == plain(CUSTOMER_TEXT)

        # /encode writes under the newest key; /decode reads it back.
        encoded = await http.post(
            "/encode", json=_as_json([plain("hello")]), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        [under_b] = _from_json(encoded.json())
        assert under_b.metadata[KEY_ID_METADATA] == b"2026-11" and b"hello" not in under_b.data
        back = await http.post("/decode", json=encoded.json(), headers={"Authorization": f"Bearer {TOKEN}"})
        assert _from_json(back.json()) == [plain("hello")]

        # CORS: the configured UI origin only.
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        }
        allowed = await http.options("/decode", headers={"Origin": UI_ORIGIN, **preflight})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
        allowed_headers = {h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")}
        assert {"x-namespace", "content-type", "authorization"} <= allowed_headers
        assert "POST" in allowed.headers["access-control-allow-methods"]
        other = await http.options("/decode", headers={"Origin": "http://evil.example", **preflight})
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
        from_ui = await http.post(
            "/decode", json=body, headers={"Origin": UI_ORIGIN, "Authorization": f"Bearer {TOKEN}"}
        )
        assert from_ui.status_code == 200 and from_ui.headers["access-control-allow-origin"] == UI_ORIGIN
        from_other = await http.post(
            "/decode", json=body, headers={"Origin": "http://evil.example", "Authorization": f"Bearer {TOKEN}"}
        )
        assert from_other.status_code == 403 and CUSTOMER_TEXT not in from_other.text

        # Bad input: named, 4xx, never a 500.
        tampered = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
        refused = await http.post("/decode", json=_as_json([tampered]), headers={"Authorization": f"Bearer {TOKEN}"})
        assert refused.status_code == 422 and "failed authentication" in refused.json()["detail"]
        garbage = await http.post("/decode", content=b"{not json", headers={"Authorization": f"Bearer {TOKEN}"})
        assert garbage.status_code == 400 and garbage.json()["detail"].startswith("payloads:")
        huge = await http.post(
            "/decode", content=b"x" * (9 * 1024 * 1024), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert huge.status_code == 413


async def _store_key(name: str, scopes: list[str]) -> str:
    """An integration key in the tests' store, as `baton keys create` makes one."""
    from datetime import UTC, datetime

    from baton.apps.gateway.credentials import new_key
    from baton.store.api_keys import add_key
    from baton.store.database import create_engine, session_factory

    engine = create_engine(Settings().database_url)
    made = new_key()
    try:
        async with session_factory(engine).begin() as session:
            await add_key(session, made.key_id, name, scopes, made.secret_hash, datetime.now(UTC))
    finally:
        await engine.dispose()
    return made.key


def test_codec_server_refuses_to_start_open_or_without_a_key() -> None:
    with pytest.raises(CodecServerConfigError, match="BATON_CODEC_SERVER_TOKENS"):
        app_from_settings(Settings(codec_keys=format_key(KEY_A)))
    with pytest.raises(CodecServerConfigError, match="no payload key"):
        app_from_settings(Settings(codec_server_tokens="t"))
    with pytest.raises(CodecServerConfigError, match="BATON_CODEC_KEYS, entry 1"):
        app_from_settings(Settings(codec_keys="broken", codec_server_tokens="t"))


def test_codec_key_is_not_printed() -> None:
    assert repr(CodecKey("k", bytes(32))) == "CodecKey('k')"


# -- the Temporal Web UI through the codec server, in headless Chromium -------------------------------------------


def _loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="/usr/bin/chromium is not installed")
async def test_the_ui_shows_a_message_decrypted_only_through_the_codec_server() -> None:
    from temporalio.api.enums.v1 import EventType

    from baton.contract import search_attributes as sa
    from scripts.headless_chromium import headless_chromium, missing

    if missing() is not None:
        pytest.skip(f"headless Chromium: {missing()}")
    codec_sock, ui_sock = _loopback_socket(), _loopback_socket()
    ui_port = ui_sock.getsockname()[1]
    ui_sock.close()  # the dev server binds it
    ui = f"http://127.0.0.1:{ui_port}"
    settings = codec_settings(codec_server_origins=ui, task_queue=f"test-ui-{uuid.uuid4().hex[:8]}")
    # The dev UI has no sign-in, so no token to send in a header: the token is in the endpoint's path.
    endpoint = f"http://127.0.0.1:{codec_sock.getsockname()[1]}/{TOKEN}"
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=server_binary("temporal"),
        search_attributes=list(sa.ALL),
        data_converter=data_converter(settings),
        ui=True,
        ui_port=ui_port,
        dev_server_extra_args=["--ui-ip", "127.0.0.1", "--ui-disable-news-fetch", "--ui-codec-endpoint", endpoint],
        dev_server_startup_timeout=timedelta(seconds=60),
    )
    marker = f"zebra-{uuid.uuid4().hex[:8]}"
    start = ConversationStart(
        conversation_id=f"ui-{uuid.uuid4().hex[:8]}", customer_id="cus_midmarket", customer=CustomerFacts()
    )
    async with environment, build_worker(environment.client, settings):
        text = f"Hello, {marker} here: my order is late"
        await send_message(
            environment.client, settings.task_queue, start, MessageIn(message_id="m1", role="customer", text=text)
        )
        conversation = handle(environment.client, start.conversation_id)
        history = await conversation.fetch_history()
        accepted = next(
            e.event_id
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        )
        run_id = (await conversation.describe()).run_id
        page = f"{ui}/namespaces/default/workflows/{conversation.id}/{run_id}/history/events/{accepted}"
        async with headless_chromium(width=1600, height=1200) as browser:
            # The codec server not yet answering: the UI has only ciphertext to show.
            unread = await _page_text(
                browser, page, lambda text: "Accepted Request" in text and KEY_ID_METADATA in text
            )
            assert marker not in unread and "Codec Server could not connect" in unread
            async with codec_server_on(settings, codec_sock):
                shown = await _page_text(browser, page, lambda text: marker in text)
    accepted_request = shown.split("Accepted Request", 1)[1].split("Update Completed", 1)[0]
    assert text in accepted_request and KEY_ID_METADATA not in accepted_request


async def _page_text(browser: Browser, page: str, ready: Callable[[str], bool], timeout: float = 90) -> str:
    """The page's visible text once `ready` holds; the page is loaded again every few seconds until then."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await browser.get(page)
        for _ in range(10):
            await asyncio.sleep(0.5)
            text = await browser.text()
            if ready(text):
                return text
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{page} did not show what was expected in {timeout:g} s; it shows:\n{text[:4000]}")


def test_cli_makes_keys_and_names_a_bad_key_setting(tmp_path: Path) -> None:
    baton = str(Path(server_binary("temporal")).with_name("baton"))
    printed = subprocess.run([baton, "codec", "new-key", "--id", "2026-12"], capture_output=True, text=True, check=True)
    [key] = parse_keys(printed.stdout)
    assert key.key_id == "2026-12"
    path = tmp_path / "keys"
    for key_id in ("old", "new"):
        subprocess.run(
            [baton, "codec", "new-key", "--id", key_id, "--file", str(path)], check=True, capture_output=True
        )
    assert [k.key_id for k in keys_from_settings(Settings(codec_key_file=path))] == ["new", "old"]
    # Any command that talks to Temporal refuses a broken key setting before connecting, naming it.
    env = {"BATON_CODEC_KEYS": "2026-12:too-short", "BATON_TEMPORAL_ADDRESS": "127.0.0.1:1", "PATH": "/usr/bin:/bin"}
    broken = subprocess.run([baton, "incident", "status"], capture_output=True, text=True, env=env, timeout=60)
    assert broken.returncode == 2, broken.stderr
    assert "BATON_CODEC_KEYS, entry 1" in broken.stderr and "Traceback" not in broken.stderr
