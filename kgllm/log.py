"""Logging and progress bars.

Everything logs under the ``kgllm`` logger; ``-v`` turns on DEBUG, ``-q`` shows only warnings and
errors. Long loops use :func:`progress`, a tqdm bar on stderr. Bars are drawn only when stderr is a
terminal, so they never run into log lines written to a file or a pipe. ``KGLLM_PROGRESS=0`` turns
them off everywhere, ``KGLLM_PROGRESS=1`` draws them even when stderr is not a terminal; ``-q``
turns them off.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")
logger = logging.getLogger("kgllm")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record, not the stream it was created
    with: a CLI called in-process (tests, notebooks) may swap stderr, and a handler bound to the old,
    closed stream would print "--- Logging error ---" tracebacks."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


_QUIET = False


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    global _QUIET
    _QUIET = quiet and not verbose
    level = logging.DEBUG if verbose > 0 else logging.WARNING if _QUIET else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger("kgllm")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if not progress_enabled():
        # The libraries' own bars (transformers' "Loading weights", hub downloads) follow kgllm's rule too:
        # set before they are imported, which happens only inside the stages.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def progress_enabled() -> bool:
    """Whether to draw progress bars: ``KGLLM_PROGRESS`` (0/1) decides when set, else ``-q`` turns them
    off, else they are drawn only when stderr is a terminal."""
    env = os.environ.get("KGLLM_PROGRESS", "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return False
    if env in ("1", "true", "yes", "on"):
        return True
    if _QUIET:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress(iterable: Iterable[T] | None = None, *, desc: str = "", total: int | None = None,
             unit: str = "it", **kw) -> Iterable[T]:
    """A tqdm progress bar (or the bare iterable when progress is off)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=not progress_enabled(),
                dynamic_ncols=True, mininterval=0.5, leave=False, file=sys.stderr, **kw)


class RateProgress:
    """The progress of one long step counted in items (``update(n)``): a bar with the rate and ETA when bars
    are drawn, otherwise a log line with the rate and ETA after the first update (a first estimate) and then
    every ``every`` seconds, so that a run logged to a file (no terminal, ``-q`` aside) still says how far it
    is and how long is left."""

    def __init__(self, total: int, desc: str, unit: str = "it", every: float = 30.0):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.done = 0
        self.bar = progress(total=total, desc=desc, unit=unit)
        self._t0 = time.perf_counter()
        self._last: float | None = None

    def update(self, n: int) -> None:
        self.done += n
        self.bar.update(n)
        now = time.perf_counter()
        due = self._last is None or now - self._last >= self.every
        if self.bar.disable and due and self.done < self.total:
            rate = self.done / (now - self._t0)
            logger.info("%s: %d of %d %ss, %.0f %ss/s, about %.0f s left", self.desc, self.done, self.total,
                        self.unit, rate, self.unit, (self.total - self.done) / rate if rate else float("nan"))
            self._last = now

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> RateProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
