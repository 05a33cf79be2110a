"""Baton: durable AI-to-human escalation for customer support, on Temporal."""

__version__ = "0.1.0"
