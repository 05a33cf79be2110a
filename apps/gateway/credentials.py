"""Gateway credentials: API keys per integration and the agent tokens an integration signs.

An API key is `baton_<key id>_<secret>`: the key id (12 hex characters) finds the stored key, the secret is
32 random bytes (URL-safe base64). The store keeps only the SHA-256 of the whole key: a key has 256 bits of
entropy, so a fast hash is as safe as a slow one and costs the gateway nothing per request; keys are compared
in constant time.

An agent token says "integration NAME vouches that this request comes from agent AGENT, until EXPIRES":
`v1.<name>.<agent>.<expires>.<signature>`, name and agent in URL-safe base64 without padding, expires in Unix
seconds, the signature an HMAC-SHA256 under the gateway's signing secret (BATON_GATEWAY_SIGNING_SECRET) of
everything before it. A helpdesk that holds the secret signs its own; `baton keys agent-token` signs one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal, get_args

Scope = Literal["messages", "agent", "operator", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
SCOPE_HELP = {
    "messages": "chat backends: send customer and bot messages, get their decisions, close conversations",
    "agent": "helpdesks and agents: pick up, send agent messages, resolve, hand back, read a conversation",
    "operator": "incidents, the operations status, /ops, reading conversations",
    "admin": "API keys",
}

KEY_PREFIX = "baton"
_KEY = re.compile(r"^baton_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
TOKEN_VERSION = "v1"
MAX_TOKEN_SECONDS = 24 * 3600


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key: str
    secret_hash: str


def new_key() -> NewKey:
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id, key, key_hash(key))


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The key id of a well-formed key; None for anything else (the bootstrap key, a typo, garbage)."""
    match = _KEY.match(key)
    return match.group(1) if match else None


def hash_matches(key: str, secret_hash: str) -> bool:
    return hmac.compare_digest(key_hash(key), secret_hash)


def parse_scopes(values: list[str]) -> list[Scope]:
    """Scopes from a command line or a request: each must be one of SCOPES (ValueError naming it)."""
    scopes: list[Scope] = []
    for value in values:
        for part in value.split(","):
            name = part.strip()
            if name not in SCOPES:
                raise ValueError(f"scope: {name!r} is not one of {', '.join(SCOPES)}")
            if name not in scopes:
                scopes.append(name)  # type: ignore[arg-type]
    if not scopes:
        raise ValueError(f"scope: give at least one of {', '.join(SCOPES)}")
    return scopes


# --- agent tokens ------------------------------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")


def _sign(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


def agent_token(secret: bytes, integration: str, agent_id: str, expires: int) -> str:
    payload = f"{TOKEN_VERSION}.{_b64(integration)}.{_b64(agent_id)}.{expires}"
    return f"{payload}.{_sign(secret, payload)}"


@dataclass(frozen=True)
class AgentToken:
    integration: str
    agent_id: str
    expires: int


class BadToken(ValueError):
    """An agent token that is malformed, signed with another secret, expired or too long-lived."""


def read_agent_token(secret: bytes, token: str, now: float) -> AgentToken:
    parts = token.split(".")
    if len(parts) != 5 or parts[0] != TOKEN_VERSION or not parts[3].isdigit():
        raise BadToken("malformed")
    payload = ".".join(parts[:4])
    if not hmac.compare_digest(_sign(secret, payload), parts[4]):
        raise BadToken("bad signature")
    expires = int(parts[3])
    if expires <= now:
        raise BadToken("expired")
    if expires > now + MAX_TOKEN_SECONDS:
        raise BadToken(f"valid for more than {MAX_TOKEN_SECONDS} seconds")
    try:
        return AgentToken(_unb64(parts[1]), _unb64(parts[2]), expires)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadToken("malformed") from err
