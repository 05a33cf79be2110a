"""The soak's client and checker (bench/soak.py), small: one conversation driven through the real gateway
and checked against its state, and the checker catching each kind of fault in a state made to have it.
`make soak` runs the same code with 100 conversations through kill -9 of the worker and of Temporal."""

from __future__ import annotations

import copy
from typing import Any

from temporalio.client import Client

from baton.settings import Settings
from bench.soak import Progress, Told, _conversation, check
from tests.test_gateway import _conversation as new_id
from tests.test_gateway import _running


async def test_a_driven_conversation_checks_clean(client: Client, settings: Settings, worker: None) -> None:
    told = Told(new_id(), "agent-1")
    async with _running(settings, client) as http:
        await _conversation(http, told, Progress(conversations=1))
        state = (await http.get(f"/v1/conversations/{told.conversation_id}")).json()
    assert set(told.decisions) == {"m1", "m2"} and told.decisions["m2"]["action"] == "escalate"
    assert told.picked_up and told.resolved and told.agent_messages == ["a1"]
    assert check(told, state).ok, check(told, state)


def _made() -> dict[str, Any]:
    """A resolved conversation's state, as the gateway returns it."""
    return {
        "phase": "resolved",
        "transcript": [
            {"message_id": "m1", "role": "customer"},
            {"message_id": "m2", "role": "customer"},
            {"message_id": "m2:ack", "role": "baton"},
            {"message_id": "a1", "role": "agent"},
        ],
        "escalation": {
            "picked_up_at": "2026-01-01T00:00:00Z",
            "resolved_at": "2026-01-01T00:05:00Z",
            "note": {"summary": "s"},
        },
    }


def _told() -> Told:
    told = Told("c1", "agent-1", picked_up=True, resolved=True)
    told.decisions = {"m1": {"action": "continue"}, "m2": {"action": "escalate"}}
    told.agent_messages = ["a1"]
    return told


def test_the_checker_passes_a_clean_state_and_names_each_fault() -> None:
    told, clean = _told(), _made()
    assert check(told, clean).ok

    lost = copy.deepcopy(clean)
    del lost["transcript"][1]
    assert check(told, lost).lost == ["c1/m2"]

    doubled = copy.deepcopy(clean)
    doubled["transcript"].append({"message_id": "a1", "role": "agent"})
    doubled["transcript"] += [{"message_id": "m2:ack", "role": "baton"}]
    assert sorted(check(told, doubled).duplicated) == ["c1/a1 x2", "c1/m2:ack x2"]

    stalled = copy.deepcopy(clean)
    stalled["escalation"]["resolved_at"] = None
    stalled["phase"] = "with_agent"
    [incomplete] = check(told, stalled).incomplete
    assert "resolved" in incomplete and "with_agent" in incomplete

    unacknowledged = _told()
    del unacknowledged.decisions["m2"]  # the client never heard back: not counted as lost
    assert check(unacknowledged, lost).ok
