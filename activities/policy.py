"""The policies conversations run under, parsed once per file version."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from baton.contract.errors import ErrorType
from baton.policies import Policy, PolicyError, load_policy, policy_path


class PolicyStore:
    def __init__(self, default_policy: str) -> None:
        self._default = default_policy
        self._cache: dict[tuple[str, int], Policy] = {}

    def get(self, name: str | None) -> Policy:
        """The named policy (the default when None); a broken file is a non-retryable failure."""
        path = policy_path(name or self._default)
        try:
            # Parsed once per file version: conversations start far more often than policies change.
            key = (str(path), path.stat().st_mtime_ns)
            if key not in self._cache:
                self._cache = {key: load_policy(str(path))}
            return self._cache[key]
        except OSError as err:
            raise ApplicationError(
                f"{path}: cannot read policy: {err.strerror or err}", type=ErrorType.POLICY_ERROR, non_retryable=True
            ) from err
        except PolicyError as err:
            # A broken policy file will not fix itself by retrying.
            raise ApplicationError(str(err), type=ErrorType.POLICY_ERROR, non_retryable=True) from err
