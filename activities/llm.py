"""What every call to an OpenAI-compatible endpoint shares: the client, its time bound, strict JSON
schemas, customer text as a data block, and short failure reasons that never echo a response body."""

from __future__ import annotations

import json
from typing import Any

import openai
from pydantic import BaseModel, ConfigDict
from temporalio import activity

from baton.settings import Settings

TIMEOUT_SHARE = 0.8
"""At most this share of the activity's start-to-close timeout goes to the model call, so the activity
still has time to answer (a fallback, or the classifier's scores) before Temporal times it out."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def openai_client(settings: Settings, timeout: float) -> openai.AsyncOpenAI | None:
    """A client for the configured endpoint (None when none is); Temporal's retry policy owns retries."""
    if not settings.llm_base_url:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key is not None else ""
    return openai.AsyncOpenAI(base_url=settings.llm_base_url, api_key=key or "unused", max_retries=0, timeout=timeout)


def bounded_timeout(configured: float) -> float:
    """The configured timeout, cut to a share of the running activity's start-to-close timeout."""
    if activity.in_activity():
        start_to_close = activity.info().start_to_close_timeout
        if start_to_close:
            return min(configured, start_to_close.total_seconds() * TIMEOUT_SHARE)
    return configured


def strict_schema(node: Any, defs: dict[str, Any]) -> Any:
    """Inline $refs, drop titles and defaults, close every object and require all of its properties."""
    if isinstance(node, list):
        return [strict_schema(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = strict_schema(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        extra = {k: v for k, v in node.items() if k not in ("$ref", "title", "default")}
        return {**target, **strict_schema(extra, defs)}
    out = {k: strict_schema(v, defs) for k, v in node.items() if k not in ("$defs", "title", "default")}
    if out.get("type") == "object" and "properties" in node:
        out["properties"] = {name: strict_schema(prop, defs) for name, prop in node["properties"].items()}
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


def data_block(tag: str, value: Any) -> str:
    """JSON in a tagged block; <, > and & are escaped so that no string inside can close the block."""
    encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    encoded = encoded.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<{tag}>\n{encoded}\n</{tag}>"


def total_tokens(completion: Any, default: int = 0) -> int:
    """Tokens a call spent, from the response's usage; `default` when the server reports none."""
    total = getattr(getattr(completion, "usage", None), "total_tokens", None)
    return total if isinstance(total, int) and total >= 0 else default


def failure_reason(exc: BaseException) -> str:
    """A short reason naming the failure, never echoing the response body."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    return type(exc).__name__


def reply_json(completion: Any, failure: type[Exception]) -> Any:
    """The JSON a chat completion answered with; `failure` names what is wrong (no choice, a refusal,
    empty or non-JSON content), never echoing the body."""
    choices = getattr(completion, "choices", None)
    if not choices:
        raise failure("empty choices")
    choice = choices[0]
    message = choice.message
    if getattr(message, "refusal", None):
        raise failure("the model refused")
    content = (message.content or "").strip()
    if not content:
        raise failure(f"empty content (finish_reason {choice.finish_reason})")
    if content.startswith("```"):
        # Some servers fence JSON even in structured-output mode.
        content = content.strip("`").removeprefix("json").strip()
    try:
        return json.loads(content)
    except ValueError:
        truncated = " (truncated at max_tokens)" if choice.finish_reason == "length" else ""
        raise failure(f"reply is not JSON{truncated}") from None
