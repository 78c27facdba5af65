"""SIGINT and SIGTERM become an :class:`Interrupted` exception raised where the run is.

The exception is not an ``Exception`` (like ``KeyboardInterrupt``), so no
``except Exception`` inside a source or the enricher can swallow it; the command
catches it, rolls back the batch in flight and exits with 128 + the signal
number. After the first signal, a second one gets the default behaviour, so an
operator can still force the process down if cleaning up hangs.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["Interrupted", "stop_on_signals"]

_HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The process received SIGINT or SIGTERM."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.name}")

    @property
    def exit_code(self) -> int:
        """The conventional shell exit code: 128 + the signal number (130, 143)."""
        return 128 + self.signum


def _default(signum: int) -> Any:
    return signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Raise :class:`Interrupted` on SIGINT/SIGTERM inside the block.

    Outside the main thread (where Python cannot install handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        for handled in _HANDLED:
            signal.signal(handled, _default(handled))
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in _HANDLED}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
