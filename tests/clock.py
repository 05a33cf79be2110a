"""Moving the time-skipping test server's clock, however slow the machine is.

`env.sleep(d)` asks the server to unlock time skipping until its clock has advanced by `d`. While
something else holds time still (an activity in flight, a worker slow to take its tasks on a loaded
machine), the server lets the call wait in real time, and the call can end in "Timeout expired" with
the clock part of the way there. `skip_time` aims at a point on the server's clock instead: after a
timeout it asks again for what is left, so a test never moves the clock twice or stops short.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

_ATTEMPTS = 10


async def skip_time(env: WorkflowEnvironment, duration: timedelta | float) -> None:
    """Advance `env`'s clock by `duration` (seconds when a number)."""
    step = duration if isinstance(duration, timedelta) else timedelta(seconds=duration)
    target = await env.get_current_time() + step
    for _ in range(_ATTEMPTS):
        left = target - await env.get_current_time()
        if left <= timedelta(0):
            return
        try:
            await env.sleep(left)
            return
        except RPCError as err:
            if "timeout" not in str(err).lower():
                raise
    raise AssertionError(f"the test server's clock did not reach {target} in {_ATTEMPTS} attempts")
