"""One way to reach Temporal, for the worker and every app: address, namespace, data converter and codec.

Loads no workflow or activity code, so a client (the gateway, the CLI) pays only for the SDK.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime

from baton.contract import search_attributes as sa
from baton.settings import Settings
from baton.worker.codec import codec_from_settings

# Client, worker and Replayer must agree on it: histories hold pydantic models as JSON. Without a payload key
# this is the whole converter; data_converter() adds the encryption codec when one is configured.
DATA_CONVERTER: DataConverter = pydantic_data_converter


def data_converter(settings: Settings) -> DataConverter:
    """The converter for these settings: DATA_CONVERTER, plus encryption when a payload key is configured.

    With encryption on, failure messages and stack traces travel as encoded attributes too, since an error's
    text can quote what the customer wrote. Decoding passes plain payloads through, so histories recorded
    before encryption still replay. Raises CodecKeyError when the keys are misconfigured."""
    codec = codec_from_settings(settings)
    if codec is None:
        return DATA_CONVERTER
    return dataclasses.replace(
        DATA_CONVERTER,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


_INDEXED_TYPES = {
    "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KEYWORD_LIST": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    "DATETIME": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}
_CLI_TYPES = {"KEYWORD": "Keyword", "KEYWORD_LIST": "KeywordList", "DATETIME": "Datetime"}


async def connect(
    settings: Settings, *, runtime: Runtime | None = None, interceptors: Sequence[Interceptor] = ()
) -> Client:
    """The client; `runtime` to export metrics (worker/telemetry.py), `interceptors` to trace."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        runtime=runtime,
        interceptors=interceptors,
    )


def search_attribute_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    return [f"--search-attribute={key.name}={_CLI_TYPES[key.indexed_value_type.name]}" for key in sa.ALL]


async def register_search_attributes(client: Client, namespace: str = "default") -> None:
    """Register Baton's search attributes on a server that lacks them (the test server)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={key.name: _INDEXED_TYPES[key.indexed_value_type.name] for key in sa.ALL},
        )
    )
