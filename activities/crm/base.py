"""What every CRM adapter shares: the adapter protocol, its errors, and how an HTTP answer maps onto them."""

from __future__ import annotations

from typing import Protocol

import httpx

from baton.contract.messages import CustomerFacts


class CrmError(Exception):
    """The CRM did not answer usefully.

    `retryable`: an outage, a rate limit or a timeout, worth another try.
    Otherwise a configuration problem (bad credentials, missing scope, bad request)
    that another try will not fix.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class CrmConfigError(ValueError):
    """The settings name a CRM but lack what it needs; raised at worker start, not per conversation."""


def require(value: object, setting: str, crm: str) -> None:
    if value is None or (hasattr(value, "get_secret_value") and not value.get_secret_value()):
        raise CrmConfigError(f"BATON_{setting.upper()} is required when BATON_CRM={crm}")


def check_response(vendor: str, response: httpx.Response) -> None:
    """Raise CrmError for any status but 2xx (callers handle 404 themselves first)."""
    status = response.status_code
    if response.is_success:
        return
    what = f"{vendor}: HTTP {status} from {response.request.method} {response.request.url.path}"
    if status in (401, 403):
        raise CrmError(f"{what}: check the credentials and their scopes", retryable=False)
    raise CrmError(what, retryable=status == 429 or status >= 500)


def transport_error(vendor: str, err: httpx.TransportError) -> CrmError:
    """Timeouts and connection failures are outages: retryable."""
    kind = "timed out" if isinstance(err, httpx.TimeoutException) else "unreachable"
    return CrmError(f"{vendor}: {kind} ({type(err).__name__})", retryable=True)


class CrmAdapter(Protocol):
    name: str

    async def fetch(self, customer_id: str) -> CustomerFacts | None:
        """The customer's facts, or None when the CRM does not know them."""
        ...
