"""Progress bars for the commands that run long (`baton replay`, `export`, `audit`, `model train`).

One helper for every command, so they all behave alike::

    with progress(total=len(items), desc="audit", unit="msg") as bar:
        for item in items:
            work(item)
            bar.update()          # or bar.update(n) for n done at once
        bar.write("a line")       # printed above the bar, never through it
    print(summary, file=sys.stderr)   # after the block: the bar is closed first

`total` may be None when it is not known yet; `bar.set_total(n)` gives it later (the bar then shows the
time left). The bar is tqdm's, on stderr, with the count, the rate and the time left.

When it shows: only when stderr is a terminal and the `CI` environment variable is unset or empty, so
pipes, redirections and CI logs get no carriage returns and no rates. `BATON_PROGRESS=always` shows it
anyway, `BATON_PROGRESS=never` never; any other value is the rule above. A bar that does not show writes
nothing at all (`write` still prints its line, plainly).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

OVERRIDE = "BATON_PROGRESS"
ALWAYS, NEVER = "always", "never"
# The size when the stream's is not known (a pipe under BATON_PROGRESS=always) or reported as 0 (a
# terminal whose size was never set, where tqdm would draw nothing at all).
FALLBACK_SIZE = os.terminal_size((80, 24))


def enabled(stream: TextIO | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a bar shows on `stream` (default stderr) under `environ` (default the process's)."""
    environ = os.environ if environ is None else environ
    override = environ.get(OVERRIDE, "").strip().lower()
    if override == ALWAYS:
        return True
    if override == NEVER:
        return False
    if environ.get("CI", ""):
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Bar:
    """What a command holds while it works: `update`, `set_total`, `write`."""

    def __init__(self, bar: tqdm, stream: TextIO) -> None:
        self._bar = bar
        self._stream = stream
        self._count = 0  # tqdm stops counting when it does not show

    @property
    def shown(self) -> bool:
        return not self._bar.disable

    @property
    def count(self) -> int:
        """Units done so far."""
        return self._count

    def update(self, n: int = 1) -> None:
        self._count += n
        self._bar.update(n)

    def set_total(self, total: int | None) -> None:
        """The total, once known (e.g. after a listing): the bar starts showing the time left."""
        self._bar.total = total
        self._bar.refresh()

    def write(self, text: str) -> None:
        """One line of text on the bar's stream, above the bar (plainly when the bar does not show)."""
        if self.shown:
            self._bar.write(text, file=self._stream)
        else:
            print(text, file=self._stream, flush=True)


def _known_size(stream: TextIO) -> bool:
    """Whether the stream is a terminal that knows its size (the bar then follows it when resized)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return size.columns > 0 and size.lines > 0


@contextmanager
def progress(total: int | None, desc: str, unit: str) -> Iterator[Bar]:
    """A bar over `total` units (None: not known yet) named `desc`, closed when the block ends."""
    stream = sys.stderr
    shown = enabled(stream)
    fixed = shown and not _known_size(stream)
    bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=stream,
        disable=not shown,
        dynamic_ncols=shown and not fixed,
        ncols=FALLBACK_SIZE.columns if fixed else None,
        nrows=FALLBACK_SIZE.lines if fixed else None,
    )
    try:
        yield Bar(bar, stream)
    finally:
        bar.close()
