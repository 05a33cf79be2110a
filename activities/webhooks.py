"""Signing and verifying Baton's outgoing webhooks.

Every webhook Baton sends (a message for the customer, a helpdesk ticket, a
page) is a JSON POST carrying these headers:

- ``X-Baton-Event``: what the body is (``customer_message``, ``helpdesk_ticket``, ``page``).
- ``Idempotency-Key``: the same on every retry of one delivery; dedupe on it.
- ``X-Baton-Timestamp``: Unix seconds when this attempt was sent.
- ``X-Baton-Signature``: ``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`` when a
  secret is configured; several comma-separated ``v1=`` values while keys rotate.

The helpers here are pure (no clock, no I/O) so chat-backend developers can
import them to check what Baton sends. See docs/webhooks.md.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

TIMESTAMP_HEADER = "X-Baton-Timestamp"
SIGNATURE_HEADER = "X-Baton-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Baton-Event"

EVENT_CUSTOMER_MESSAGE = "customer_message"
EVENT_HELPDESK_TICKET = "helpdesk_ticket"
EVENT_PAGE = "page"
EVENTS: tuple[str, ...] = (EVENT_CUSTOMER_MESSAGE, EVENT_HELPDESK_TICKET, EVENT_PAGE)

SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300

Secret = bytes | str


def _key(secret: Secret) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _digest(secret: Secret, timestamp: int, body: bytes) -> str:
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: Secret, timestamp: int, body: bytes) -> str:
    """The signature header value for one body: ``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``."""
    return f"{SIGNATURE_SCHEME}={_digest(secret, timestamp, body)}"


def sign_all(secrets: Iterable[Secret], timestamp: int, body: bytes) -> str:
    """One ``v1=`` signature per secret, comma-separated: how a sender signs while keys rotate."""
    return ",".join(sign(secret, timestamp, body) for secret in secrets)


def signatures(signature_header: str) -> list[str]:
    """The hex digests of every ``v1=`` entry in a signature header; entries of other schemes are ignored."""
    found = []
    for part in signature_header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme.strip() == SIGNATURE_SCHEME and value.strip():
            found.append(value.strip())
    return found


def verify(
    secret: Secret | Iterable[Secret],
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether a webhook was signed by a holder of ``secret`` within ``tolerance_seconds`` of ``now``.

    ``secret`` may be one key or several (a receiver that accepts the old and
    the new key during a rotation); the header may carry several ``v1=``
    signatures (a sender that signs with both). Any match of any key is enough.
    ``body`` must be the raw request bytes, before any JSON parsing.
    """
    if not timestamp_header or not signature_header:
        return False
    try:
        timestamp = int(timestamp_header.strip())
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    keys = [secret] if isinstance(secret, bytes | str) else list(secret)
    given = signatures(signature_header)
    matched = False
    for key in keys:
        expected = _digest(key, timestamp, body)
        for candidate in given:
            # compare_digest on ASCII str is constant-time; no early exit, so timing does not tell which one matched.
            matched |= hmac.compare_digest(expected, candidate.lower()) if candidate.isascii() else False
    return matched


def headers(
    event: str, idempotency_key: str, timestamp: int, body: bytes, secret: Secret | None = None
) -> dict[str, str]:
    """The Baton headers for one attempt; the signature only when a secret is given."""
    result = {
        "Content-Type": "application/json",
        EVENT_HEADER: event,
        IDEMPOTENCY_HEADER: idempotency_key,
        TIMESTAMP_HEADER: str(timestamp),
    }
    if secret:
        result[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    return result
