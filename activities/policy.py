"""Loads the policy a conversation runs under (once, at its start)."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from baton.messages import PolicyRequest
from policies import Policy, PolicyError, load_policy, policy_path


class PolicyActivities:
    def __init__(self, default_policy: str) -> None:
        self._default = default_policy
        self._cache: dict[tuple[str, int], Policy] = {}

    @activity.defn(name="load_policy")
    async def load_policy(self, request: PolicyRequest) -> Policy:
        path = policy_path(request.name or self._default)
        try:
            # Parsed once per file version: conversations start far more often than policies change.
            key = (str(path), path.stat().st_mtime_ns)
            if key not in self._cache:
                self._cache = {key: load_policy(str(path))}
            return self._cache[key]
        except OSError as err:
            raise ApplicationError(f"{path}: cannot read policy: {err.strerror or err}", type="PolicyError", non_retryable=True) from err
        except PolicyError as err:
            # A broken policy file will not fix itself by retrying.
            raise ApplicationError(str(err), type="PolicyError", non_retryable=True) from err
