"""The FastAPI application: /v1 behind API keys with scopes (auth.py; open when the gateway has no key),
/healthz open, every request under the body-size limit (checked first)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import APIKeyHeader
from temporalio.client import Client

from baton.apps.gateway import agents, chatwoot, conversations, docs, health, keys, metrics, operations, ops
from baton.apps.gateway.auth import AGENT_TOKEN_HEADER, Guard
from baton.apps.gateway.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimit
from baton.apps.gateway.errors import validation_failed
from baton.apps.gateway.models import error_responses
from baton.classifier.scorer import Scorer, scorer_for
from baton.logging import get_logger
from baton.settings import Settings

log = get_logger("baton.gateway")

# Long enough for a slow scoring model behind local-activity retries; a timed-out
# request is safe to retry with the same message_id, which the workflow dedupes.
DECISION_TIMEOUT_SECONDS = 30.0
API_KEY_HEADER = "X-API-Key"

# Module level: FastAPI resolves the (string) annotations of endpoints against module globals.
api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Required when the gateway has a key")
agent_token_header = APIKeyHeader(
    name=AGENT_TOKEN_HEADER,
    scheme_name="AgentToken",
    auto_error=False,
    description="An agent token: agent actions for that agent only",
)


def create_app(
    client: Client,
    settings: Settings,
    *,
    decision_timeout: float = DECISION_TIMEOUT_SECONDS,
    scorer: Scorer | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    try:
        app_version = version("baton")
    except PackageNotFoundError:
        app_version = "0"
    app = FastAPI(
        title="Baton gateway",
        version=app_version,
        description="Send customer messages, get escalation decisions; read and close conversations.",
        docs_url=None,  # served by docs.py from a local package, not from a CDN
        redoc_url=None,
        openapi_url=None,  # served by docs.py, behind the key outside dev
    )
    guard = Guard(settings)
    # Outside dev, the schema and its page need a key (any scope); an open gateway shows them to anyone.
    docs.serve_docs_offline(app, guard=None if settings.dev else guard)
    # Outermost but for Starlette's own error middleware: a body over the limit is refused before routing,
    # the key check and any reading.
    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, validation_failed)  # type: ignore[arg-type]
    if settings.gateway_cors_origins:
        # Off unless configured: only these origins may call from a browser, with the key headers.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.gateway_cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=[API_KEY_HEADER, AGENT_TOKEN_HEADER, "Content-Type"],
        )
    if guard.open:
        log.warning("gateway_open", reason="BATON_GATEWAY_API_KEY is not set; /v1 needs no key")

    # The header parameters only document the credentials in the schema; the guard reads the request.
    async def authenticate(
        request: Request,
        _key: Annotated[str | None, Security(api_key_header)],
        _token: Annotated[str | None, Security(agent_token_header)],
    ) -> None:
        await guard.authenticate(request)

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authenticate)], responses=error_responses(401, 403, 429))
    # Customer messages are scored here, before they are sent: the scores travel with the message into the
    # conversation's history, and the workflow needs no round trip of its own for them.
    scorer = scorer or scorer_for(settings)
    v1.include_router(conversations.router(client, settings, decision_timeout, scorer))
    v1.include_router(agents.router(client, decision_timeout, settings))
    v1.include_router(operations.router(client, settings, decision_timeout))
    v1.include_router(keys.router(settings))
    app.include_router(v1)
    if settings.chatwoot_account_id:
        # Outside /v1: Chatwoot cannot send the API key; it signs its events (docs/chatwoot.md).
        app.include_router(chatwoot.router(client, settings, decision_timeout, scorer))
        chatwoot.reserve_namespace(app)
    app.include_router(health.router(client, settings))
    # Outside /v1: a browser cannot send the key as a header; /ops takes it as a header or a signed cookie.
    app.include_router(ops.router(client, settings, guard))
    metrics.instrument(app, client, settings)
    return app
