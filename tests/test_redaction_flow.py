"""Redaction where the policy says, end to end: customer messages with personal data sent through the real
gateway on loopback to a real worker on the Temporal test server; a local OpenAI-compatible server (the
documented chat-completions wire shape) records what the LLM would be sent, a local helpdesk receives the
ticket."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from baton.activities.judge import SCHEMA_NAME as JUDGE_SCHEMA
from baton.settings import Settings
from baton.worker.wiring import build_worker
from tests.loopback import serving
from tests.receiver import WebhookReceiver, eventually
from tests.test_gateway import _running
from tests.test_handoff_note import GOOD_NOTE
from tests.test_llm_judge import GOOD_JUDGEMENT

RAW = ("jo.doe@example.com", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", "+44 20 7946 0958", "123-45-6789")
PLACEHOLDERS = ("[email]", "[card]", "[iban]", "[phone]", "[ssn]")
ORDER = "1234 5678 9012 3456"  # 16 digits that fail Luhn: an order number, kept
BAD_IBAN = "GB82 WEST 1234 5698 7654 33"  # one digit off: kept
TEXT = (
    f"I want to speak to a person now. I'm {RAW[0]}, card {RAW[1]}, IBAN {RAW[2]}, call {RAW[3]}, "
    f"SSN {RAW[4]}. Order {ORDER}; the old account was {BAD_IBAN}."
)
SECRET = "redaction-webhook-secret"


class RecordingLlm:
    """POST /v1/chat/completions: records each request and answers in the documented response shape."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append(body)
            name = body["response_format"]["json_schema"]["name"]
            content = GOOD_NOTE if name == "handoff_note" else GOOD_JUDGEMENT
            return JSONResponse(
                {
                    "id": "chatcmpl-redaction",
                    "object": "chat.completion",
                    "created": 1741000000,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": json.dumps(content)},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
                }
            )

        return app

    def prompts(self, schema: str) -> list[str]:
        return [
            json.dumps(body["messages"], ensure_ascii=False)
            for body in self.requests
            if body["response_format"]["json_schema"]["name"] == schema
        ]


@pytest.fixture
async def llm() -> AsyncIterator[tuple[RecordingLlm, str]]:
    fake = RecordingLlm()
    async with serving(fake.app()) as url:
        yield fake, f"{url}/v1"


def _policy(tmp_path: Path, **redaction: bool) -> str:
    """The test policy (always open) with the judge asking about every message, and the redaction given."""
    policy = yaml.safe_load(Path(os.environ["BATON_POLICY"]).read_text())
    policy["judge"] = {"enabled": True, "uncertain_low": 0.0001, "uncertain_high": 0.9999, "max_tokens": 150}
    policy["redaction"] = {**policy.get("redaction", {}), **redaction}
    path = tmp_path / f"redaction-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return str(path)


def _assert_redacted(text: str) -> None:
    for raw in RAW:
        assert raw not in text, raw
    for placeholder in PLACEHOLDERS:
        assert placeholder in text, placeholder
    assert ORDER in text and BAD_IBAN in text  # near-misses stay


async def _escalate(http: httpx.AsyncClient, channel: str = "chat") -> str:
    conversation = f"redact-{uuid.uuid4().hex[:10]}"
    body = {
        "customer_id": "cust-1",
        "channel": channel,
        "message": {"message_id": "m1", "role": "customer", "text": TEXT},
    }
    response = await http.post(f"/v1/conversations/{conversation}/messages", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["action"] == "escalate"
    return conversation


async def test_the_llm_gets_no_personal_data_by_default_and_all_of_it_when_the_policy_says(
    llm: tuple[RecordingLlm, str], env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    fake, base_url = llm
    settings = Settings(task_queue=task_queue, llm_base_url=base_url, llm_api_key="k", policy=_policy(tmp_path))
    async with build_worker(env.client, settings), _running(settings, client) as http:
        conversation = await _escalate(http)
        await eventually(lambda: bool(fake.prompts("handoff_note")), timeout=20, what="the handoff note's prompt")
        [judged] = fake.prompts(JUDGE_SCHEMA)
        state = (await http.get(f"/v1/conversations/{conversation}")).json()
    _assert_redacted(fake.prompts("handoff_note")[0])
    _assert_redacted(judged)
    # The conversation itself keeps what the customer wrote: the agent who picks up reads it as sent.
    assert state["transcript"][0]["text"] == TEXT

    fake.requests.clear()
    raw_settings = settings.model_copy(update={"policy": _policy(tmp_path, llm=False)})
    async with build_worker(env.client, raw_settings), _running(raw_settings, client) as http:
        await _escalate(http)
        await eventually(lambda: bool(fake.prompts("handoff_note")), timeout=20, what="the handoff note's prompt")
    prompts = fake.prompts("handoff_note") + fake.prompts(JUDGE_SCHEMA)
    assert len(prompts) >= 2 and all(RAW[1] in prompt and RAW[0] in prompt for prompt in prompts)


async def test_helpdesk_tickets_are_redacted_when_the_policy_says(
    env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        settings = Settings(
            task_queue=task_queue,
            webhook_secret=SECRET,
            helpdesk_webhook_url=f"{receiver.url}/helpdesk",
            policy=_policy(tmp_path, helpdesk=True),
        )
        async with build_worker(env.client, settings), _running(settings, client) as http:
            redacted = await _escalate(http, channel="email")
            await eventually(lambda: bool(receiver.at("helpdesk")), timeout=20, what="the helpdesk ticket")
        ticket = json.dumps(receiver.at("helpdesk")[0].body, ensure_ascii=False)
        assert redacted in ticket
        _assert_redacted(ticket)

        default = settings.model_copy(update={"policy": _policy(tmp_path)})  # helpdesk: false, the default
        async with build_worker(env.client, default), _running(default, client) as http:
            kept = await _escalate(http, channel="email")
            await eventually(lambda: len(receiver.at("helpdesk")) == 2, timeout=20, what="the second ticket")
        ticket = json.dumps(receiver.at("helpdesk")[1].body, ensure_ascii=False)
        assert kept in ticket and all(raw in ticket for raw in RAW)
