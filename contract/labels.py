"""The base of every contract model, and the labels the classifier and the policy share."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Intent(StrEnum):
    HUMAN_REQUEST = "human_request"
    LEGAL_THREAT = "legal_threat"
    SAFETY_OR_DISTRESS = "safety_or_distress"
    DATA_DELETION = "data_deletion"
    BILLING_DISPUTE = "billing_dispute"
    CANCELLATION = "cancellation"
    RESOLVED = "resolved"
    NOT_HELPING = "not_helping"
    CONTACT_REQUEST = "contact_request"  # a callback or a phone number: reaching a person outside the chat


class Topic(StrEnum):
    BILLING = "billing"
    TECHNICAL = "technical"
    ACCOUNT_ACCESS = "account_access"
    DATA_PRIVACY = "data_privacy"
    SHIPPING_ORDERS = "shipping_orders"
    OTHER = "other"


class ContractModel(BaseModel):
    # Unknown fields from a newer client are ignored rather than rejected, so
    # old workers keep replaying histories written by newer ones.
    model_config = ConfigDict(extra="ignore")
