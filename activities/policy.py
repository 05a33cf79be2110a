"""Loads the policy a conversation runs under (once, at its start)."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from baton.messages import PolicyRequest
from policies import Policy, PolicyError, load_policy


class PolicyActivities:
    def __init__(self, default_policy: str) -> None:
        self._default = default_policy

    @activity.defn(name="load_policy")
    async def load_policy(self, request: PolicyRequest) -> Policy:
        try:
            return load_policy(request.name or self._default)
        except PolicyError as err:
            # A broken policy file will not fix itself by retrying.
            raise ApplicationError(str(err), type="PolicyError", non_retryable=True) from err
