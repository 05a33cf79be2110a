"""The request-body size limit, enforced before the body is read and before the API key is checked.

An ASGI middleware around the whole application: a request whose Content-Length is over the limit is answered
413 at once, without reading a byte of its body, routing it or checking its key; a body without a length
(chunked) is counted as it arrives and cut off at the limit with the same 413. FastAPI reads a request's body
before it runs the endpoint's dependencies (the key check among them), so without this a client with no key
could make the gateway hold any amount of memory.
"""

from __future__ import annotations

import json

from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
"""Well above the largest valid request (an 8,000-character message and the bounded customer facts, each
character written as a JSON escape, are about 230 KB) and far below what could hurt the gateway."""


def _too_large(limit: int) -> str:
    return f"the request body is larger than the gateway's limit of {limit} bytes"


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a body without a (truthful) length passes the limit.

    An HTTPException so that FastAPI, which wraps other errors raised while it reads a body in a 400,
    passes it on to its handler as it is; the middleware answers it itself when it gets that far.
    """

    def __init__(self, limit: int) -> None:
        # The rest of the body is never read: the connection cannot carry another request.
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, _too_large(limit), headers={"Connection": "close"})


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _reject(send, limit)
            return

        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await _reject(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before the app sees it
    return None


async def _reject(send: Send, limit: int) -> None:
    body = json.dumps({"detail": _too_large(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status.HTTP_413_CONTENT_TOO_LARGE,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
