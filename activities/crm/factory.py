"""Pick the CRM adapter named by the settings (BATON_CRM)."""

from __future__ import annotations

from baton.activities.crm.base import CrmAdapter, CrmConfigError
from baton.activities.crm.embedded import EmbeddedCrm
from baton.settings import Settings


def build_crm(settings: Settings) -> CrmAdapter:
    match settings.crm:
        case "embedded":
            return EmbeddedCrm(settings.crm_file)
        case "hubspot":
            from baton.activities.crm.hubspot import HubSpotCrm

            return HubSpotCrm(settings)
        case "stripe":
            from baton.activities.crm.stripe import StripeCrm

            return StripeCrm(settings)
    raise CrmConfigError(f"BATON_CRM={settings.crm} is not a known CRM; use embedded, hubspot or stripe")
