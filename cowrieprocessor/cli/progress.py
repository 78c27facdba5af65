"""Progress of a run on stderr: a bar redrawn in place on a terminal, log lines elsewhere.

On a terminal the bar is redrawn with a carriage return at most ``redraw_s``
apart (ten times a second by default). Elsewhere (a pipe, a file, a journal) one
plain line is written at the end of a batch when at least ``log_interval_s``
passed since the previous line, so a log gets a line per batch or per interval,
whichever is rarer. The last state is always written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

__all__ = ["Progress", "ProgressState", "format_duration"]

_BAR_WIDTH = 24


def format_duration(seconds: float | None) -> str:
    """``'1:02:03'``, ``'4:05'`` or ``'--:--'`` when unknown.

    >>> format_duration(3723), format_duration(245.2), format_duration(None)
    ('1:02:03', '4:05', '--:--')
    """
    if seconds is None or not 0 <= seconds < float("inf"):
        return "--:--"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class ProgressState:
    """Where the enrichment stands: IPs done of total, speed and the last batch."""

    done: int
    total: int
    elapsed_s: float
    batch_cache_hits: int = 0
    batch_size: int = 0

    @property
    def rate(self) -> float:
        """IPs per second since the enrichment started."""
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds still needed at the current rate; ``None`` before the first batch."""
        if self.done >= self.total:
            return 0.0
        return (self.total - self.done) / self.rate if self.rate > 0 else None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


class Progress:
    """Writes the progress of the reading and enrichment phases to ``stream``."""

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool,
        enabled: bool = True,
        redraw_s: float = 0.1,
        log_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._tty = tty
        self._enabled = enabled
        self._redraw_s = redraw_s
        self._log_interval_s = log_interval_s
        self._clock = clock
        self._last_write = float("-inf")
        self._drawn = 0
        self._state: ProgressState | None = None
        self._logged: ProgressState | None = None

    def reading(self, events: int, sessions: int, bad_lines: int, *, final: bool = False) -> None:
        """Report the reading phase: redrawn on a terminal, one line at its end elsewhere."""
        if not self._enabled:
            return
        line = f"read {events:,} events, {sessions:,} sessions, {bad_lines:,} bad lines"
        if not self._tty:
            if final:
                self._stream.write(f"cowrieprocessor: {line}\n")
                self._stream.flush()
            return
        if final or self._due(self._redraw_s):
            self._draw(f"reading: {line.removeprefix('read ')}")
        if final:
            self._end_line()

    def enriching(self, state: ProgressState) -> None:
        """Report the enrichment phase after a batch."""
        if not self._enabled:
            return
        self._state = state
        if self._tty:
            if self._due(self._redraw_s):
                self._draw(_bar_line(state))
        elif self._due(self._log_interval_s):
            self._log(state)

    def finish_enriching(self) -> None:
        """Write the last state of the enrichment if it was not written yet."""
        state = self._state
        if not self._enabled or state is None:
            return
        if self._tty:
            self._draw(_bar_line(state))
            self._end_line()
        elif state is not self._logged:
            self._log(state)

    def _log(self, state: ProgressState) -> None:
        self._stream.write(_log_line(state) + "\n")
        self._stream.flush()
        self._logged = state

    def clear(self) -> None:
        """End a half-drawn bar line so that a message starts on its own line."""
        if self._drawn:
            self._end_line()

    def _due(self, interval: float) -> bool:
        now = self._clock()
        if now - self._last_write < interval:
            return False
        self._last_write = now
        return True

    def _draw(self, line: str) -> None:
        padding = " " * max(0, self._drawn - len(line))
        self._stream.write("\r" + line + padding)
        self._stream.flush()
        self._drawn = len(line)

    def _end_line(self) -> None:
        self._stream.write("\n")
        self._stream.flush()
        self._drawn = 0
        self._last_write = float("-inf")


def _bar_line(state: ProgressState) -> str:
    filled = int(state.fraction * _BAR_WIDTH)
    bar = "#" * filled + "." * (_BAR_WIDTH - filled)
    cache = f"  batch cache hits {state.batch_cache_hits}/{state.batch_size}"
    return (
        f"enriching [{bar}] {state.done:,}/{state.total:,} IPs  {state.rate:,.1f} IP/s  "
        f"ETA {format_duration(state.eta_s)}{cache if state.batch_size else ''}"
    )


def _log_line(state: ProgressState) -> str:
    return (
        f"cowrieprocessor: enriched {state.done:,}/{state.total:,} IPs "
        f"({state.fraction:.0%}), {state.rate:,.1f} IP/s, ETA {format_duration(state.eta_s)}, "
        f"batch cache hits {state.batch_cache_hits}/{state.batch_size}"
    )
