"""Escalation policies: the schema, the policy files and the decision engine."""

from baton.policies.engine import evaluate
from baton.policies.loader import PolicyError, load_policy, load_policy_text, policy_path
from baton.policies.schema import Policy

__all__ = ["Policy", "PolicyError", "evaluate", "load_policy", "load_policy_text", "policy_path"]
