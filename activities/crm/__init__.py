"""Customer context from a CRM, behind an adapter interface.

- ``base``: the ``CrmAdapter`` protocol, ``CrmError`` and ``CrmConfigError``, and the HTTP answer mapping
  the vendor adapters share;
- ``embedded``: ``EmbeddedCrm``, customers from a JSON file (the bundled ``crm_demo.json`` by default);
- ``hubspot`` and ``stripe``: the vendor adapters, loaded only when the settings name them;
- ``factory``: ``build_crm``, the adapter the settings (BATON_CRM) name;
- ``context``: ``customer_context``, the bounded, retried lookup a conversation starts with.
"""

from __future__ import annotations

from baton.activities.crm.base import CrmAdapter, CrmConfigError, CrmError
from baton.activities.crm.context import (
    CRM_ATTEMPTS,
    CRM_BACKOFF_SECONDS,
    CRM_DEADLINE_SECONDS,
    customer_context,
    merge_facts,
)
from baton.activities.crm.embedded import DEMO_CRM_FILE, EmbeddedCrm
from baton.activities.crm.factory import build_crm

__all__ = [
    "CRM_ATTEMPTS",
    "CRM_BACKOFF_SECONDS",
    "CRM_DEADLINE_SECONDS",
    "DEMO_CRM_FILE",
    "CrmAdapter",
    "CrmConfigError",
    "CrmError",
    "EmbeddedCrm",
    "build_crm",
    "customer_context",
    "merge_facts",
]
