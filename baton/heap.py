"""Garbage collection for Baton's long-running processes: the worker and the gateway.

Once loaded, a worker holds about 200,000 objects for its whole life (the classifier's tables and tokenizer,
the sentiment lexicon, policies, the SDK's modules). With Python's default settings every full collection
walks them all, a pause of a quarter of a second on a small machine, in the middle of decisions; and the
youngest generation, collected every 700 new objects, is collected several times for each message. Settled,
the loaded heap is left out of every collection and the youngest generation is collected every 10,000 objects:
at 50 conversations on two cores, garbage collection's share of a message went from 0.35-0.6 ms to under
0.1 ms (bench/README.md). Memory is unchanged: what is frozen was never going to be freed.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_OBJECTS = 10_000


def settle() -> None:
    """Call once the process has loaded what it keeps (after building the worker, or the gateway's app)."""
    gc.collect()  # what start-up left behind goes now, not into the frozen heap
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_GENERATION_OBJECTS), middle, old)
