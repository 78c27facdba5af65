"""The ``status`` command: show the status file a run keeps with ``--status-dir``."""

from __future__ import annotations

import json
from pathlib import Path

from cowrieprocessor.cli.errors import UsageError
from cowrieprocessor.cli.runtime import Console
from cowrieprocessor.status_emitter import StatusFileError, format_status, read_status

__all__ = ["show_status"]


def show_status(console: Console, directory: Path, *, as_json: bool) -> int:
    """Print the status in ``directory`` (or the file named), rendered or as raw JSON.

    Raises:
        UsageError: there is no readable status file there.
    """
    try:
        data = read_status(directory)
    except StatusFileError as exc:
        raise UsageError(str(exc)) from exc
    console.out(json.dumps(data, indent=2, sort_keys=True) if as_json else format_status(data))
    return 0
