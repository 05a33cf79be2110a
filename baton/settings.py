"""Settings from the environment (prefix BATON_), in one model."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # An empty variable means "not set" (compose passes `${VAR:-}` as ""): an empty BATON_CRM_FILE must not
    # become the current directory.
    model_config = SettingsConfigDict(env_prefix="BATON_", extra="ignore", env_ignore_empty=True)

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "baton-conversations"

    policy: str = Field(default="default", description="Policy name under policies/ or a path to a YAML file")
    crm_file: Path | None = Field(
        default=None, description="JSON file for the embedded CRM; the bundled demo data when unset"
    )
    crm: Literal["embedded", "hubspot", "stripe"] = Field(default="embedded", description="Which CRM adapter to use")
    crm_timeout_seconds: float = Field(default=5.0, gt=0, description="Per request to the CRM")
    hubspot_base_url: str = "https://api.hubapi.com"
    hubspot_token: SecretStr | None = None
    hubspot_mrr_property: str = Field(default="mrr", description="Company property holding MRR (or ARR, see below)")
    hubspot_mrr_is_arr: bool = Field(default=False, description="The property holds ARR; MRR is ARR / 12")
    hubspot_renewal_property: str = "renewal_date"
    stripe_base_url: str = "https://api.stripe.com"
    stripe_api_key: SecretStr | None = None

    database_url: str = Field(
        default="sqlite+aiosqlite:///.state/baton.db", description="SQLAlchemy async URL of the store"
    )

    slack_webhook_url: SecretStr | None = Field(default=None, description="Slack incoming webhook for on-call pages")
    pagerduty_routing_key: SecretStr | None = Field(default=None, description="PagerDuty Events API v2 routing key")
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    gateway_api_key: str | None = Field(default=None, description="When set, clients must send it as X-API-Key")
    gateway_allow_no_key: bool = Field(
        default=False,
        description="Serve /v1 without a key on a non-loopback address (only behind a proxy that authenticates)",
    )
    # Keys per integration, scopes, agent tokens, rate limits: docs/security.md.
    gateway_require_key: bool = Field(
        default=False, description="Require a key even without BATON_GATEWAY_API_KEY (integration keys only)"
    )
    gateway_key_cache_seconds: float = Field(
        default=5.0, ge=0, description="How long the gateway keeps the store's keys: a revoked key stops this soon"
    )
    gateway_signing_secret: SecretStr | None = Field(
        default=None, description="Signs agent tokens and /ops sessions (the API key does when unset)"
    )
    gateway_rate_per_second: float = Field(default=100.0, ge=0, description="Requests per second per key; 0: none")
    gateway_rate_burst: int = Field(default=200, ge=1, description="Requests a key may send at once")
    gateway_failed_auth_per_second: float = Field(
        default=0.5, gt=0, description="Wrong-key requests per second per client address before 429"
    )
    gateway_failed_auth_burst: int = Field(default=20, ge=1, description="Wrong-key requests at once per address")
    gateway_cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the gateway; none: CORS off"
    )
    dev: bool = Field(default=False, description="Development: /docs and /openapi.json need no key")

    classifier: Literal["model", "rules"] = Field(
        default="model", description="Who scores customer messages: the shipped model, or the rules alone"
    )
    encoder_process: bool = Field(
        default=True,
        description="Run the classifier's encoder stage in a child process (no GIL shared with the event loop); "
        "false: in this process's threads",
    )
    models_dir: Path = Field(
        default=Path(".state/models"),
        description="The deployment's own classifier versions and registry.json (which one new conversations use)",
    )
    llm_base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint; no LLM when unset")
    llm_api_key: SecretStr | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(default=20.0, gt=0)
    llm_judge_timeout_seconds: float = Field(default=8.0, gt=0, description="Per call to the LLM judge")

    webhook_secret: SecretStr | None = Field(default=None, description="HMAC key for outgoing webhooks")
    delivery_webhook_url: str | None = Field(default=None, description="Chat backend endpoint for customer messages")
    delivery_webhooks: dict[str, str] = Field(default_factory=dict, description="Per-channel overrides")
    helpdesk_webhook_url: str | None = None
    oncall_webhook_url: str | None = None
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)

    # Chatwoot (docs/chatwoot.md): the gateway's /chatwoot/events route is mounted when the account id is set.
    chatwoot_base_url: str | None = Field(default=None, description="Chatwoot's URL, e.g. https://chat.example.com")
    chatwoot_api_token: SecretStr | None = Field(default=None, description="An agent's access token (api_access_token)")
    chatwoot_account_id: int | None = Field(default=None, ge=1, description="The Chatwoot account Baton serves")
    chatwoot_webhook_secret: SecretStr | None = Field(
        default=None, description="Webhook and agent bot secrets, comma-separated: X-Chatwoot-Signature is checked"
    )
    chatwoot_teams: dict[str, int] = Field(default_factory=dict, description="Baton queue -> Chatwoot team id")
    chatwoot_baton_user_id: int | None = Field(
        default=None, description="The Chatwoot user whose token Baton uses: its messages are Baton's own echoes"
    )
    chatwoot_bot_url: str | None = Field(
        default=None, description="Bot endpoint Baton forwards messages to; unset: an agent bot in Chatwoot replies"
    )
    chatwoot_bot_token: SecretStr | None = Field(default=None, description="Sent to the bot endpoint as a Bearer token")
    chatwoot_unneeded_label: str = Field(
        default="escalation-not-needed", description="An agent adds it before resolving: the escalation was not needed"
    )
    chatwoot_timeout_seconds: float = Field(default=10.0, gt=0)

    log_format: Literal["console", "json"] = "json"
    log_level: str = "INFO"

    worker_shutdown_seconds: float = 10.0
    worker_metrics_address: str | None = Field(
        default=None, description="host:port where the worker serves Prometheus /metrics; none when unset"
    )
    worker_health_address: str | None = Field(
        default=None, description="host:port where the worker answers /healthz and /readyz; none when unset"
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OpenTelemetry collector (OTLP/HTTP base URL) for traces; none when unset"
    )

    # Payload encryption (docs/security.md): worker, gateway, CLI and Replayer all read the same keys.
    codec_keys: SecretStr | None = Field(
        default=None, description="Payload keys `id:base64key,...` (32-byte AES keys); the first encrypts, all decrypt"
    )
    codec_key_file: Path | None = Field(
        default=None, description="A file of `id:base64key` lines, instead of BATON_CODEC_KEYS; the first encrypts"
    )
    codec_required: bool = Field(default=False, description="Refuse to start without a payload key")
    codec_server_host: str = "127.0.0.1"
    codec_server_port: int = Field(default=8081, description="Port of `baton codec-server`")
    codec_server_tokens: SecretStr | None = Field(
        default=None, description="Bearer tokens the codec server accepts, comma-separated (besides the gateway key)"
    )
    codec_server_origins: str = Field(
        default="http://localhost:8233", description="UI origins the codec server allows (CORS), comma-separated"
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
