"""How a POST to a receiver outside Baton fails, in Temporal's retry model: one mapping for webhooks and pagers.

- the URL cannot be used (an unsupported scheme, an invalid URL): non-retryable ``<Kind>Misconfigured``;
- no answer (a timeout, a connection failure): retryable ``<Kind>Unreachable``;
- a transient answer (408, 425, 429, 5xx): retryable ``<Kind>Unavailable``, with the receiver's ``Retry-After``
  (or the caller's own delay) as ``next_retry_delay``;
- any other answer but 2xx: non-retryable ``<Kind>Rejected``.

Each caller words its messages; what the errors are (their type, details and retryability) is decided here.
Receiver URLs often carry a credential in their path or query, so errors and logs name only their origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from temporalio.exceptions import ApplicationError

RETRYABLE_STATUSES = frozenset({408, 425, 429})
MAX_RETRY_AFTER_SECONDS = 300
REASON_CHARS = 200

# What sending can raise before any answer comes (httpx.InvalidURL is not a TransportError).
SEND_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError, httpx.InvalidURL)
_UNUSABLE_URL: tuple[type[Exception], ...] = (httpx.UnsupportedProtocol, httpx.InvalidURL)


@dataclass(frozen=True)
class Receiver:
    """Whom a POST goes to, as its errors name it."""

    kind: str  # the error types' prefix: "Webhook", "Pager"
    name: str  # how messages name it: "customer_message webhook", "slack"
    ids: Mapping[str, Any]  # what every error's details start with: {"event": ...}, {"pager": ...}
    # Whether an unreachable receiver's details carry a reason too (a pager's outcome always names one).
    reason_when_unreachable: bool = False


def transient(status: int) -> bool:
    """An answer worth another try: 408, 425, 429 or any 5xx."""
    return status in RETRYABLE_STATUSES or status >= 500


def send_error(receiver: Receiver, url: str, exc: Exception) -> ApplicationError:
    """The error for a POST that got no answer (``exc`` is one of ``SEND_ERRORS``)."""
    error = type(exc).__name__
    if isinstance(exc, _UNUSABLE_URL):
        return ApplicationError(
            f"{receiver.name} URL is not usable ({error})",
            dict(receiver.ids),
            type=f"{receiver.kind}Misconfigured",
            non_retryable=True,
        )
    details = dict(receiver.ids)
    if receiver.reason_when_unreachable:
        details["reason"] = f"unreachable ({error})"
    return ApplicationError(
        f"{receiver.name} at {origin(url)} unreachable: {error}", details, type=f"{receiver.kind}Unreachable"
    )


def unavailable(
    receiver: Receiver, message: str, status: int, reason: str, delay: timedelta | None = None
) -> ApplicationError:
    return ApplicationError(
        message,
        {**receiver.ids, "status": status, "reason": reason},
        type=f"{receiver.kind}Unavailable",
        next_retry_delay=delay,
    )


def rejected(receiver: Receiver, message: str, status: int, reason: str, **extra: Any) -> ApplicationError:
    return ApplicationError(
        message,
        {**receiver.ids, "status": status, "reason": reason, **extra},
        type=f"{receiver.kind}Rejected",
        non_retryable=True,
    )


# --- reading an answer ----------------------------------------------------------------------------


def retry_after(response: httpx.Response) -> timedelta | None:
    """The receiver's Retry-After in seconds (capped), when it sent one as a number."""
    value = response.headers.get("Retry-After", "").strip()
    if not value.isdigit():
        return None
    return timedelta(seconds=min(int(value), MAX_RETRY_AFTER_SECONDS))


def text(response: httpx.Response) -> str:
    """The body on one line, clipped to ``REASON_CHARS``."""
    return " ".join(response.text.split())[:REASON_CHARS]


def short_reason(response: httpx.Response) -> str:
    """The reason phrase and the start of the body: ``Bad Request: unknown conversation``."""
    body = text(response)
    phrase = response.reason_phrase or ""
    return f"{phrase}: {body}" if body else phrase


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body when it is a JSON object, else an empty dict."""
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def origin(url: str) -> str:
    """scheme://host[:port] only: webhook paths and queries often embed tokens, so they stay out of logs and errors."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"
