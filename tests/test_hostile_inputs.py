"""Hostile and malformed input through the real gateway (uvicorn, a worker, the test server): every client error
is a 4xx naming its field, never a 5xx a client would retry; a refused first message starts nothing; ids stay in
the client's namespace; the body limit holds before the body is read and before the key is checked."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import select
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from baton.apps.client import workflow_id
from baton.apps.gateway import create_app
from baton.apps.gateway.models import MAX_FLAGS, SHORT_TEXT_CHARS
from baton.contract.messages import ConversationSummary
from baton.settings import Settings
from tests.test_gateway import _body, _conversation, _locs, _running


@pytest.fixture
async def http(client: Client, settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with _running(settings, client) as http:
        yield http


def _url(conversation: str) -> str:
    return f"/v1/conversations/{conversation}/messages"


async def _post_raw(http: httpx.AsyncClient, path: str, raw: str) -> httpx.Response:
    """A body exactly as written: JSON a careful client library would never produce (NaN, lone surrogates)."""
    return await http.post(path, content=raw.encode("utf-8"), headers={"content-type": "application/json"})


async def _started(client: Client, conversation: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id(conversation)).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


def _raw_message(text_json: str = '"hello"', customer_json: str = "{}", message_id: str = "m1") -> str:
    return (
        f'{{"customer_id": "cust-1", "customer": {customer_json}, '
        f'"message": {{"message_id": "{message_id}", "role": "customer", "text": {text_json}}}}}'
    )


def _agent_body(message_id: str, agent_id: str = "alice") -> dict[str, Any]:
    message = {"message_id": message_id, "role": "agent", "agent_id": agent_id, "text": "Hi, I'm here."}
    return {"customer_id": "cust-1", "message": message}


# --- 1. text that cannot be stored, numbers that are not numbers ------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        (_raw_message(text_json='"x \\ud800"'), ["body", "message", "text"]),
        (_raw_message(text_json='"x \\udfff y"'), ["body", "message", "text"]),
        (_raw_message(text_json='"nul \\u0000 here"'), ["body", "message", "text"]),
        (_raw_message(customer_json='{"tier": "gold \\ud83d"}'), ["body", "customer", "tier"]),
        (_raw_message(customer_json='{"flags": ["ok", "bad \\ud800"]}'), ["body", "customer", "flags", 1]),
        (_raw_message(customer_json='{"mrr": NaN}'), ["body", "customer", "mrr"]),
        (_raw_message(customer_json='{"mrr": Infinity}'), ["body", "customer", "mrr"]),
        (_raw_message(customer_json='{"health": -Infinity}'), ["body", "customer", "health"]),
        (_raw_message(customer_json='{"mrr": 1e400}'), ["body", "customer", "mrr"]),
    ],
)
async def test_unstorable_text_and_non_finite_numbers_are_422_naming_the_field(
    http: httpx.AsyncClient, client: Client, raw: str, loc: list[str]
) -> None:
    conversation = _conversation()
    response = await _post_raw(http, _url(conversation), raw)
    assert response.status_code == 422, response.text
    assert _locs(response) == [loc]
    json.loads(response.content)  # the answer itself is valid JSON (nothing unencodable echoed back)
    assert not await _started(client, conversation)


async def test_a_lone_surrogate_in_agent_and_operator_bodies_is_422(http: httpx.AsyncClient) -> None:
    pickup = await _post_raw(http, f"/v1/conversations/{_conversation()}/pickup", '{"agent_id": "a\\ud800"}')
    assert pickup.status_code == 422 and _locs(pickup) == [["body", "agent_id"]]
    incident = await _post_raw(http, "/v1/incidents", '{"description": "outage \\udc00 in EU"}')
    assert incident.status_code == 422 and _locs(incident) == [["body", "description"]]
    close = await _post_raw(http, f"/v1/conversations/{_conversation()}/close", '{"reason": "\\ud800"}')
    assert close.status_code == 422 and _locs(close) == [["body", "reason"]]


# --- 2. values over Temporal's limits ----------------------------------------------------------------------------


async def test_megabytes_of_flags_are_422_naming_the_field(http: httpx.AsyncClient, client: Client) -> None:
    conversation = _conversation()
    flags = [f"flag-{i}-" + "x" * 990 for i in range(3000)]  # about 3 MB
    response = await http.post(_url(conversation), json=_body("hello", customer={"flags": flags}))
    assert response.status_code == 422, response.text[:500]
    assert _locs(response) == [["body", "customer", "flags"]]
    assert len(response.content) < 5000  # the 3 MB are not echoed back
    assert not await _started(client, conversation)

    one_long = await http.post(_url(conversation), json=_body("hello", customer={"flags": ["y" * 5000]}))
    assert one_long.status_code == 422 and _locs(one_long) == [["body", "customer", "flags", 0]]

    within = [f"flag-{i}" for i in range(MAX_FLAGS)]
    accepted = await http.post(_url(conversation), json=_body("hello", customer={"flags": within}))
    assert accepted.status_code == 200, accepted.text


async def test_a_tier_too_long_for_its_search_attribute_is_422(http: httpx.AsyncClient, client: Client) -> None:
    conversation = _conversation()
    response = await http.post(_url(conversation), json=_body("hello", customer={"tier": "t" * 5000}))
    assert response.status_code == 422, response.text[:500]
    assert _locs(response) == [["body", "customer", "tier"]]
    assert not await _started(client, conversation)

    tier = "e" * SHORT_TEXT_CHARS
    accepted = await http.post(_url(conversation), json=_body("hello", customer={"tier": tier}))
    assert accepted.status_code == 200, accepted.text
    described = await client.get_workflow_handle(workflow_id(conversation)).describe()
    assert described.typed_search_attributes is not None


# --- 3. an unknown policy --------------------------------------------------------------------------------------


async def test_an_unknown_policy_burns_no_conversation_id(http: httpx.AsyncClient, client: Client) -> None:
    conversation = _conversation()
    refused = await http.post(_url(conversation), json=_body("hello", "m1", policy="no-such-policy"))
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "policy"] and "no-such-policy" in error["msg"] and "/" not in error["msg"]
    assert not await _started(client, conversation)

    # The corrected retry, same conversation and message ids, starts the conversation.
    corrected = await http.post(_url(conversation), json=_body("hello", "m1"))
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["message_id"] == "m1"

    # Once it runs under its policy, a later message naming another one is the conversation's as before.
    later = await http.post(_url(conversation), json=_body("and another thing", "m2", policy="no-such-policy"))
    assert later.status_code == 200, later.text
    state = (await http.get(f"/v1/conversations/{conversation}")).json()
    assert [e["message_id"] for e in state["transcript"]] == ["m1", "m2"]


# --- 4. a refused first message --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"role": "agent", "agent_id": "alice", "text": "Hi, Alice here."}, "role"),
        ({"role": "customer", "text": "x" * 4001}, "text"),  # over the policy's 4,000, under the gateway's 8,000
    ],
)
async def test_a_refused_first_message_starts_no_conversation(
    http: httpx.AsyncClient, client: Client, message: dict[str, Any], field: str
) -> None:
    conversation = _conversation()
    body = {"customer_id": "cust-1", "message": {"message_id": "first", **message}}
    refused = await http.post(_url(conversation), json=body)
    assert refused.status_code == 422, refused.text
    assert _locs(refused) == [["body", "message", field]]
    assert not await _started(client, conversation)
    assert (await http.get(f"/v1/conversations/{conversation}")).status_code == 404

    corrected = await http.post(_url(conversation), json=_body("hello there", "first"))
    assert corrected.status_code == 200, corrected.text
    state = (await http.get(f"/v1/conversations/{conversation}")).json()
    assert [(e["message_id"], e["role"]) for e in state["transcript"]] == [("first", "customer")]


async def test_a_message_that_cannot_open_a_conversation_still_reaches_a_running_one(
    http: httpx.AsyncClient, client: Client
) -> None:
    conversation = _conversation()
    url = f"/v1/conversations/{conversation}"
    assert (await http.post(f"{url}/messages", json=_body("I want to talk to a human", "m1"))).status_code == 200
    assert (await http.post(f"{url}/pickup", json={"agent_id": "alice"})).status_code == 200
    agent = _agent_body("a1")
    reply = await http.post(f"{url}/messages", json=agent)
    assert reply.status_code == 200 and reply.json()["action"] == "human"
    # Over the policy's limit: refused by the conversation itself, which goes on.
    long = await http.post(f"{url}/messages", json=_body("x" * 4001, "m2"))
    assert long.status_code == 422 and _locs(long) == [["body", "message", "text"]]

    # Closed: an agent's message is told so, not that nothing has started.
    assert (await http.post(f"{url}/close")).status_code == 202
    await client.get_workflow_handle(workflow_id(conversation), result_type=ConversationSummary).result()
    late = await http.post(f"{url}/messages", json=_agent_body("a2"))
    assert late.status_code == 409, late.text


# --- 5. ids -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("message_id", ["agent-joined:m1", "m1:ack", "m1:incident", ":", "-m1", "a b", "é"])
async def test_a_message_id_outside_the_client_pattern_is_422(
    http: httpx.AsyncClient, client: Client, message_id: str
) -> None:
    conversation = _conversation()
    response = await http.post(_url(conversation), json=_body("hello", message_id))
    assert response.status_code == 422, response.text
    assert _locs(response) == [["body", "message", "message_id"]]
    assert not await _started(client, conversation)


@pytest.mark.parametrize("conversation", ["..", ".", "a:b", "-a", ".hidden", "a b", "x" * 201])
async def test_a_path_unsafe_conversation_id_is_422(http: httpx.AsyncClient, client: Client, conversation: str) -> None:
    # Percent-encoded, so that no client library resolves "." or ".." before the gateway sees them.
    path = "/v1/conversations/" + "".join(f"%{b:02X}" for b in conversation.encode()) + "/messages"
    response = await http.post(path, json=_body("hello"))
    assert response.status_code == 422, response.text
    assert _locs(response) == [["path", "conversation_id"]]
    assert (await http.get(path.removesuffix("/messages"))).status_code == 422
    assert not await _started(client, conversation)


@pytest.mark.parametrize(("customer_id", "ok"), [("cus_1", True), ("alice+vip@example.com", True), ("../x", False)])
async def test_customer_ids_follow_their_pattern(http: httpx.AsyncClient, customer_id: str, ok: bool) -> None:
    body = {**_body("hello"), "customer_id": customer_id}
    response = await http.post(_url(_conversation()), json=body)
    if ok:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 422 and _locs(response) == [["body", "customer_id"]]


async def test_baton_ids_are_never_client_ids(http: httpx.AsyncClient) -> None:
    """Every id Baton writes into the transcript holds ':'; no id a client may send does."""
    conversation = _conversation()
    url = f"/v1/conversations/{conversation}"
    assert (await http.post(f"{url}/messages", json=_body("I want to talk to a human", "m1"))).status_code == 200
    assert (await http.post(f"{url}/pickup", json={"agent_id": "alice"})).status_code == 200
    assert (await http.post(f"{url}/messages", json=_agent_body("a1"))).status_code == 200
    state = (await http.get(url)).json()
    ids = {(e["role"], e["message_id"]) for e in state["transcript"]}
    assert ("customer", "m1") in ids and ("agent", "a1") in ids
    assert any(role == "baton" for role, _ in ids)
    for role, message_id in ids:
        assert (":" in message_id) == (role == "baton"), (role, message_id)


# --- 8. no error-level noise for a 409 ----------------------------------------------------------------------------


async def test_a_message_to_a_closed_conversation_logs_no_unretrieved_future(
    http: httpx.AsyncClient, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    conversation = _conversation()
    assert (await http.post(_url(conversation), json=_body("hello", "m1"))).status_code == 200
    assert (await http.post(f"/v1/conversations/{conversation}/close")).status_code == 202
    await client.get_workflow_handle(workflow_id(conversation), result_type=ConversationSummary).result()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        for n in range(3):
            late = await http.post(_url(conversation), json=_body("one more thing", f"late-{n}"))
            assert late.status_code == 409, late.text
        gc.collect()
        await asyncio.sleep(0)
        gc.collect()
    noise = [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()]
    assert noise == []


# --- the body limit -----------------------------------------------------------------------------------------------


async def _raw_http(port: int, head: str, chunks: Sequence[bytes] = ()) -> tuple[int, dict[str, str], bytes]:
    """Send a request by hand (a large declared length, a chunked body) and read the status, headers and body.

    Sending stops as soon as an answer is readable: the gateway answers 413 and closes without reading the rest,
    and bytes sent into a closed connection make its kernel reset it, which could discard the answer."""
    return await asyncio.to_thread(_raw_http_blocking, port, head, list(chunks))


def _raw_http_blocking(port: int, head: str, chunks: list[bytes]) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode("latin-1"))
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except OSError:
                break
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            assert data, f"the connection closed before an answer: {received!r}"
            received += data
        raw_head, _, body = received.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        while len(body) < int(headers.get("content-length", "0")):
            data = sock.recv(65536)
            assert data, "the connection closed in the middle of the answer"
            body += data
    return int(lines[0].split()[1]), headers, body


def _head(path: str, extra: str, key: str | None = None) -> str:
    auth = f"X-API-Key: {key}\r\n" if key else ""
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}{extra}\r\n"


@pytest.fixture
async def keyed(client: Client, task_queue: str, worker: None) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    """A gateway with an API key and a 64 KiB body limit."""
    settings = Settings(task_queue=task_queue, gateway_api_key="k")
    app = create_app(client, settings, max_body_bytes=64 * 1024)
    async with _running(settings, client, app=app, headers={"X-API-Key": "k"}) as http:
        port = http.base_url.port
        assert port is not None
        yield http, port


async def test_a_declared_length_over_the_limit_is_413_before_the_body_and_the_key(
    keyed: tuple[httpx.AsyncClient, int],
) -> None:
    _, port = keyed
    head = _head(_url(_conversation()), "Content-Length: 104857600\r\n")  # 100 MB announced, no key, nothing sent
    status, headers, body = await asyncio.wait_for(_raw_http(port, head), 5)
    assert status == 413
    assert headers.get("connection") == "close"
    assert "limit" in json.loads(body)["detail"]

    with_key = _head(_url(_conversation()), "Content-Length: 65537\r\n", key="k")
    assert (await _raw_http(port, with_key))[0] == 413


async def test_a_chunked_body_is_cut_off_at_the_limit(keyed: tuple[httpx.AsyncClient, int]) -> None:
    _, port = keyed
    piece = b" " * 16384
    chunks = [f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for _ in range(64)] + [b"0\r\n\r\n"]  # 1 MiB
    for key in (None, "k"):
        head = _head(_url(_conversation()), "Transfer-Encoding: chunked\r\n", key=key)
        status, _, body = await _raw_http(port, head, chunks)
        assert status == 413, body
        assert "limit" in json.loads(body)["detail"]


async def test_a_body_within_the_limit_is_served(keyed: tuple[httpx.AsyncClient, int]) -> None:
    http, _ = keyed
    conversation = _conversation()
    padded = json.dumps(_body("hello", "m1")) + " " * 60_000  # whitespace counts, and still fits
    response = await http.post(_url(conversation), content=padded, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert (await http.post(_url(conversation), json=_body("hi", uuid.uuid4().hex))).status_code == 200
    unauthorised = await http.post(_url(conversation), json=_body("hi"), headers={"X-API-Key": "wrong"})
    assert unauthorised.status_code == 401
