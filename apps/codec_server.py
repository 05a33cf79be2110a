"""`baton codec-server`: Temporal's remote codec endpoints, so operators with the key read encrypted histories.

The Temporal Web UI (`--ui-codec-endpoint`) and CLI (`--codec-endpoint`) POST `{"payloads": [...]}` (protobuf
JSON, bytes as base64) to `<endpoint>/decode` and `<endpoint>/encode` and get the same shape back. Every
request needs a token: `Authorization: Bearer <token>` (or `X-API-Key`) with one of BATON_CODEC_SERVER_TOKENS,
the gateway's API key, or an integration key with the `operator` or `admin` scope (`baton keys create`; a chat
backend's or helpdesk's key decrypts nothing); the UI sends the signed-in user's token this way when "pass access
token" is on, over HTTPS only. Or,
for a UI that has no sign-in (the dev server), one of BATON_CODEC_SERVER_TOKENS as the endpoint's first path
segment: `--ui-codec-endpoint http://127.0.0.1:8081/<token>`. Browsers are let in (CORS) from the configured
UI origins only; a request from any other origin is refused before its token is looked at.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload, Payloads

from baton.logging import get_logger
from baton.settings import Settings
from baton.worker.codec import CodecKeyError, EncryptionCodec, PayloadTamperedError, keys_from_settings

log = get_logger("baton.codec_server")

MAX_BODY_BYTES = 8 * 1024 * 1024  # a history page's payloads; Temporal refuses any one payload over 2 MB
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"
ALLOWED_METHODS = "POST, OPTIONS"

Convert = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]
KeyCheck = Callable[[str], Awaitable[bool]]
# Reading customer text is an operator's business: integration keys with these scopes may decrypt.
DECRYPT_SCOPES = ("operator", "admin")


class CodecServerConfigError(RuntimeError):
    """The codec server cannot start safely; the message names the setting to fix."""


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def tokens_from_settings(settings: Settings) -> tuple[list[str], list[str]]:
    """(tokens accepted in the header or the path, keys accepted in the header only)."""
    tokens = _split(settings.codec_server_tokens.get_secret_value() if settings.codec_server_tokens else None)
    header_only = [settings.gateway_api_key] if settings.gateway_api_key else []
    return tokens, header_only


class _Guard:
    """Origins and tokens; comparisons in constant time."""

    def __init__(
        self,
        origins: Sequence[str],
        tokens: Sequence[str],
        header_only: Sequence[str],
        key_check: KeyCheck | None = None,
    ) -> None:
        self.origins = [o.rstrip("/") for o in origins]
        self._tokens = [t.encode() for t in tokens]
        self._header = [*self._tokens, *(k.encode() for k in header_only)]
        self._key_check = key_check

    def origin_allowed(self, origin: str | None) -> bool:
        return origin is None or origin.rstrip("/") in self.origins

    @staticmethod
    def _matches(candidate: str, accepted: Sequence[bytes]) -> bool:
        given = candidate.encode()
        # Every entry is compared, so the time taken does not tell which one nearly matched.
        return any([hmac.compare_digest(given, expected) for expected in accepted])

    async def authorised(self, request: Request, path_token: str | None) -> bool:
        if path_token is not None:
            return self._matches(path_token, self._tokens)
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        given = credential.strip() if scheme.lower() == "bearer" else ""
        given = given or request.headers.get("x-api-key", "").strip()
        if not given:
            return False
        if self._matches(given, self._header):
            return True
        return self._key_check is not None and await self._key_check(given)


def _cors_headers(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


def _error(status: int, detail: str, origin: str | None, guard: _Guard) -> JSONResponse:
    headers = _cors_headers(origin) if origin is not None and guard.origin_allowed(origin) else {}
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _read_limited(request: Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY_BYTES."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def create_codec_app(
    codec: EncryptionCodec,
    *,
    origins: Sequence[str],
    tokens: Sequence[str],
    header_only: Sequence[str] = (),
    key_check: KeyCheck | None = None,
) -> Starlette:
    """The ASGI app: POST /encode and /decode (also under /<token>/), CORS preflight for the allowed origins."""
    guard = _Guard(origins, tokens, header_only, key_check)

    async def preflight(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is None or not guard.origin_allowed(origin):
            return Response(status_code=403)
        headers = {
            **_cors_headers(origin),
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        }
        return Response(status_code=204, headers=headers)

    def endpoint(action: str, convert: Convert) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            if request.method == "OPTIONS":
                return await preflight(request)
            origin = request.headers.get("origin")
            if not guard.origin_allowed(origin):
                return _error(403, f"origin {origin!r} is not allowed", None, guard)
            if not await guard.authorised(request, request.path_params.get("token")):
                return _error(401, "a codec token is required (Authorization: Bearer <token>)", origin, guard)
            body = await _read_limited(request)
            if body is None:
                return _error(413, f"the request body is larger than {MAX_BODY_BYTES} bytes", origin, guard)
            try:
                payloads = json_format.Parse(body or b"{}", Payloads(), ignore_unknown_fields=True)
            except json_format.ParseError as err:
                return _error(400, f"payloads: not Temporal's Payloads JSON: {err}", origin, guard)
            try:
                converted = await convert(payloads.payloads)
            except (CodecKeyError, PayloadTamperedError) as err:
                log.warning("codec_refused", action=action, error=str(err))
                return _error(422, f"payloads: {err}", origin, guard)
            namespace = request.headers.get("x-namespace")
            log.info("codec_request", action=action, payloads=len(converted), namespace=namespace)
            content: dict[str, Any] = {
                "payloads": [json_format.MessageToDict(p, preserving_proto_field_name=False) for p in converted]
            }
            return JSONResponse(content, headers=_cors_headers(origin))

        return handle

    encode, decode = endpoint("encode", codec.encode), endpoint("decode", codec.decode)
    methods = ["POST", "OPTIONS"]
    routes = [
        Route("/encode", encode, methods=methods),
        Route("/decode", decode, methods=methods),
        Route("/{token}/encode", encode, methods=methods),
        Route("/{token}/decode", decode, methods=methods),
    ]
    return Starlette(routes=routes)


def app_from_settings(settings: Settings) -> Starlette:
    """The app for the configured keys, tokens and origins; refuses to run open or without a key."""
    try:
        keys = keys_from_settings(settings)
    except CodecKeyError as err:
        raise CodecServerConfigError(str(err)) from err
    if not keys:
        raise CodecServerConfigError("no payload key: set BATON_CODEC_KEYS or BATON_CODEC_KEY_FILE")
    tokens, header_only = tokens_from_settings(settings)
    if not tokens and not header_only:
        # Integration keys alone are not enough to start: the dev UI and the CLI's first use need a token.
        raise CodecServerConfigError(
            "the codec server needs a token: set BATON_CODEC_SERVER_TOKENS (or BATON_GATEWAY_API_KEY)"
        )
    origins = _split(settings.codec_server_origins)
    return create_codec_app(
        EncryptionCodec(keys),
        origins=origins,
        tokens=tokens,
        header_only=header_only,
        key_check=integration_key_check(settings),
    )


def integration_key_check(settings: Settings) -> KeyCheck:
    """Whether a key is one of the store's integration keys (as the gateway checks them) with a decrypt scope."""
    from baton.apps.gateway.auth import KeyRing

    ring = KeyRing(settings)

    async def check(key: str) -> bool:
        caller = await ring.caller_for_key(key)
        return caller is not None and caller.allows(DECRYPT_SCOPES)

    return check


async def serve_codec(
    settings: Settings,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    *,
    sock: socket.socket | None = None,
) -> None:
    """Serve in the caller's event loop until `stop` is set (the dev stack runs it beside the gateway)."""
    app = app_from_settings(settings)
    config = uvicorn.Config(
        app,
        host=settings.codec_server_host,
        port=settings.codec_server_port,
        log_config=None,
        lifespan="off",
        access_log=False,  # the access log would show path tokens
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock] if sock else None))
    watcher: asyncio.Task[None] | None = None
    if stop is not None:

        async def stop_on_event() -> None:
            await stop.wait()
            server.should_exit = True

        watcher = asyncio.create_task(stop_on_event())
    try:
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if server.started:
            sockets = server.servers[0].sockets if server.servers else []
            address = sockets[0].getsockname() if sockets else (settings.codec_server_host, settings.codec_server_port)
            log.info(
                "codec_server_listening",
                host=address[0],
                port=address[1],
                origins=_split(settings.codec_server_origins),
            )
            if ready is not None:
                ready.set()
        await serving
    finally:
        server.should_exit = True
        if watcher is not None:
            watcher.cancel()
        if not serving.done():
            await asyncio.shield(serving)


def main() -> int:
    """`baton codec-server`."""
    import sys

    from baton.logging import configure_logging
    from baton.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        app_from_settings(settings)  # fail before binding, with the setting to fix
    except CodecServerConfigError as err:
        print(f"baton codec-server: {err}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_codec(settings))
    return 0
