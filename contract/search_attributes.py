"""Search attributes operators filter conversations by. Never text or PII."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio.common import SearchAttributeKey

if TYPE_CHECKING:
    from temporalio.client import Client

PHASE = SearchAttributeKey.for_keyword("BatonPhase")
URGENCY = SearchAttributeKey.for_keyword("BatonUrgency")
TIER = SearchAttributeKey.for_keyword("BatonTier")
SEGMENT = SearchAttributeKey.for_keyword("BatonSegment")
TRIGGERS = SearchAttributeKey.for_keyword_list("BatonTriggers")
AGENT = SearchAttributeKey.for_keyword("BatonAgent")
QUEUE = SearchAttributeKey.for_keyword("BatonQueue")

ALL = (PHASE, URGENCY, TIER, SEGMENT, TRIGGERS, AGENT, QUEUE)


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "KEYWORD_LIST": "KeywordList"}
    return [f"--search-attribute={key.name}={kinds[key.indexed_value_type.name]}" for key in ALL]


async def register(client: Client, namespace: str = "default") -> None:
    """Register Baton's search attributes on a server that lacks them (the test server)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    kinds = {
        "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "KEYWORD_LIST": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    }
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={key.name: kinds[key.indexed_value_type.name] for key in ALL},
        )
    )
