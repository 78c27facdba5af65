"""The errors that end a command, each with the exit code it stands for."""

from __future__ import annotations

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_USAGE",
    "CommandError",
    "UsageError",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class CommandError(Exception):
    """A command cannot finish; ``str(exc)`` is the one line shown to the user."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CommandError):
    """Bad arguments or unreadable input: exit code 2."""

    exit_code = EXIT_USAGE
