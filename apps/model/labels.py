"""Baton's label set for the message classifier.

A message has zero or more INTENTS (multi-label), exactly one TOPIC, and a FRUSTRATION score in [0, 1].
The intents are those the rule-based scorer knows (`baton.contract.messages.Intent`) plus `contact_request`.
"""

from __future__ import annotations

HUMAN_REQUEST = "human_request"  # asks to talk to a person / agent / representative in this conversation
CONTACT_REQUEST = "contact_request"  # asks for a callback, a phone number, a way to reach the company
LEGAL_THREAT = "legal_threat"  # lawyer, lawsuit, regulator, court
SAFETY_OR_DISTRESS = "safety_or_distress"  # self-harm, danger, severe distress or panic
DATA_DELETION = "data_deletion"  # delete my data / account data, GDPR erasure
BILLING_DISPUTE = "billing_dispute"  # wrong or double charge, refund demand, unrecognised charge
CANCELLATION = "cancellation"  # cancel a subscription, account, order or booking
NOT_HELPING = "not_helping"  # the bot or the service is not helping, useless, a waste of time
RESOLVED = "resolved"  # the problem is solved; thanks, that worked

INTENTS: tuple[str, ...] = (
    HUMAN_REQUEST,
    CONTACT_REQUEST,
    LEGAL_THREAT,
    SAFETY_OR_DISTRESS,
    DATA_DELETION,
    BILLING_DISPUTE,
    CANCELLATION,
    NOT_HELPING,
    RESOLVED,
)

BILLING = "billing"  # charges, payments, refunds, fees, balances, payment methods and cards, top-ups, transfers
TECHNICAL = "technical"  # something in the product, app, device or connection does not work; app set-up
ACCOUNT_ACCESS = "account_access"  # log-in, passcode/PIN, identity verification, blocked accounts, profile details
DATA_PRIVACY = "data_privacy"  # personal data, its deletion or export, GDPR
SHIPPING_ORDERS = "shipping_orders"  # orders, order status, delivery, shipping, returns and replacements
OTHER = "other"  # anything else, including small talk and out-of-scope requests

TOPICS: tuple[str, ...] = (BILLING, TECHNICAL, ACCOUNT_ACCESS, DATA_PRIVACY, SHIPPING_ORDERS, OTHER)

# When a multi-label source gives a row several topics, the first of this order wins.
TOPIC_PRIORITY: tuple[str, ...] = (DATA_PRIVACY, ACCOUNT_ACCESS, BILLING, TECHNICAL, SHIPPING_ORDERS, OTHER)

FRUSTRATION_MIN = 0.0
FRUSTRATION_MAX = 1.0
