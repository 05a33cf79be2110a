"""What a message must satisfy to open a conversation, checked in the gateway before anything is started.

A conversation starts with update-with-start: Temporal starts the workflow, then offers it the message. When
the workflow then refuses, the start has already happened. With a policy that cannot be loaded the workflow
fails, and its id is burned: a corrected retry is refused as closed. With a refused first message (an agent's
message, a text over the policy's limit) an empty conversation is left running.

So the gateway asks first what the workflow would ask of a first message, against the same policy files (the
package's `policies/` or the configured path, as the worker reads them). A message that fails is never used to
start a conversation: it is sent as a plain update instead, which the workflow of an existing conversation
answers under its own policy (a later message may well be an agent's), and which finds nothing when the
conversation does not exist; then the client is told what is wrong with it (422), and nothing was started.
"""

from __future__ import annotations

from pathlib import Path

from baton.contract.messages import MessageIn, message_problems
from baton.logging import get_logger
from baton.policies import Policy, PolicyError, load_policy, policy_path

log = get_logger("baton.gateway")

POLICY_FIELD = "policy"


class Openings:
    """The opening checks, with each policy file parsed once per version (as the worker's PolicyStore does)."""

    def __init__(self, default_policy: str) -> None:
        self._default = default_policy
        self._parsed: dict[str, tuple[int, Policy | None]] = {}
        self._warned_default = False

    def problems(self, policy: str | None, message: MessageIn) -> list[str]:
        """Why `message` cannot open a conversation under `policy` (None: the default), as "field: problem"
        strings: `policy` for the request's policy, a MessageIn field otherwise. Empty when it can."""
        loaded = self._policy(policy)
        if policy is not None and loaded is None:
            return [f"{POLICY_FIELD}: policy {policy!r} cannot be loaded"]
        # Without the default policy here (a gateway deployed without the worker's policy file) the text is held
        # to the contract's limit only, and the workflow has the last word on it.
        problems = message_problems(message, loaded.limits.max_message_chars) if loaded else message_problems(message)
        if message.role == "agent":
            problems.append("role: no agent has picked up this conversation (it has not started)")
        return problems

    def _policy(self, name: str | None) -> Policy | None:
        path = policy_path(name or self._default)
        try:
            version = path.stat().st_mtime_ns
        except OSError:
            self._warn_default(name, path)
            return None
        known = self._parsed.get(str(path))
        if known is not None and known[0] == version:
            return known[1]
        try:
            parsed: Policy | None = load_policy(str(path))
        except PolicyError:
            parsed = None
        self._parsed[str(path)] = (version, parsed)
        if parsed is None:
            self._warn_default(name, path)
        return parsed

    def _warn_default(self, name: str | None, path: Path) -> None:
        if name is None and not self._warned_default:
            self._warned_default = True
            log.warning(
                "default_policy_unreadable", path=str(path), reason="first messages are checked by the worker only"
            )
