"""Pick the CRM adapter named by the settings (BATON_CRM)."""

from __future__ import annotations

from baton.activities.crm import CrmAdapter, EmbeddedCrm
from baton.settings import Settings


class CrmConfigError(ValueError):
    """The settings name a CRM but lack what it needs; raised at worker start, not per conversation."""


def require(value: object, setting: str, crm: str) -> None:
    if value is None or (hasattr(value, "get_secret_value") and not value.get_secret_value()):
        raise CrmConfigError(f"BATON_{setting.upper()} is required when BATON_CRM={crm}")


def build_crm(settings: Settings) -> CrmAdapter:
    match settings.crm:
        case "embedded":
            return EmbeddedCrm(settings.crm_file)
        case "hubspot":
            from baton.activities.crm_hubspot import HubSpotCrm

            return HubSpotCrm(settings)
        case "stripe":
            from baton.activities.crm_stripe import StripeCrm

            return StripeCrm(settings)
    raise CrmConfigError(f"BATON_CRM={settings.crm} is not a known CRM; use embedded, hubspot or stripe")
