"""Input specs of the ingest: which Cowrie logs to read, in which order.

:func:`expand_inputs` turns command-line specs (``-``, files, directories, glob
patterns) into :class:`InputSource` objects; :mod:`cowrieprocessor.ingest.reader`
reads them line by line and re-exports these names, as does the package.
"""

from __future__ import annotations

import glob
import gzip
import re
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = [
    "DIRECTORY_PATTERN",
    "STDIN_NAME",
    "InputError",
    "InputSource",
    "LineStream",
    "expand_inputs",
]

#: Files a directory given as input contributes (searched recursively).
DIRECTORY_PATTERN = "cowrie.json*"
#: Source name of standard input (the ``-`` spec).
STDIN_NAME = "<stdin>"

_LIVE_NAMES = frozenset({"cowrie.json", "cowrie.json.gz"})
_GZIP_MAGIC = b"\x1f\x8b"
_GLOB_CHARS = re.compile(r"[*?[]")
_READ_BUFFER = 256 * 1024


class InputError(Exception):
    """An input spec names nothing that can be read; the message names the path."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class LineStream(Protocol):
    """What the reader needs of an open source: ``readline`` with a size limit."""

    def readline(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class InputSource:
    """One log to read: a file (``path``), gzip-compressed or not, or standard input."""

    name: str
    path: Path | None = None
    compressed: bool = False

    def open(self) -> AbstractContextManager[LineStream]:
        """Open the source for binary reading; standard input is never closed.

        Raises:
            OSError: the file cannot be opened.
        """
        if self.path is None:
            return _open_stdin()
        if self.compressed:
            return gzip.open(self.path, "rb")
        return self.path.open("rb", buffering=_READ_BUFFER)


def _open_stdin() -> AbstractContextManager[LineStream]:
    """Standard input, decompressed when it starts with the gzip signature (never closed)."""
    stream = sys.stdin.buffer
    peek = getattr(stream, "peek", None)
    if peek is not None and peek(len(_GZIP_MAGIC))[: len(_GZIP_MAGIC)] == _GZIP_MAGIC:
        # A GzipFile over a caller's file object leaves that object open when closed.
        return gzip.GzipFile(fileobj=stream, mode="rb")
    return nullcontext(stream)


def expand_inputs(specs: Sequence[str]) -> list[InputSource]:
    """Turn command-line input specs into the sources to read, in reading order.

    A spec is ``-`` (standard input), a file, a directory (every regular file
    named ``cowrie.json*`` below it, recursively) or a glob pattern (``**``
    allowed). Within a directory, files are sorted by name with the live
    ``cowrie.json`` last, so daily rotations are read oldest first. gzip files
    are recognised by their content, whatever their name. A file named by two
    specs is read once.

    Raises:
        InputError: a spec matches nothing, or a file cannot be opened.
    """
    sources: list[InputSource] = []
    seen: set[str] = set()
    for spec in specs:
        for source in _expand_spec(spec):
            key = STDIN_NAME if source.path is None else str(source.path.resolve())
            if key not in seen:
                seen.add(key)
                sources.append(source)
    return sources


def _expand_spec(spec: str) -> list[InputSource]:
    if spec == "-":
        return [InputSource(name=STDIN_NAME)]
    path = Path(spec)
    if path.is_dir():
        return _expand_directory(path)
    if path.exists():
        return [_file_source(path)]
    if _GLOB_CHARS.search(spec):
        # glob.glob, unlike Path.glob, accepts absolute patterns as typed by the user.
        matches = [Path(match) for match in glob.glob(spec, recursive=True)]  # noqa: PTH207
        if not matches:
            raise InputError(f"no file matches {spec}", path=spec)
        found: list[InputSource] = []
        for match in sorted(matches, key=_reading_order):
            found.extend(_expand_directory(match) if match.is_dir() else [_file_source(match)])
        return found
    raise InputError(f"no such file or directory: {spec}", path=spec)


def _expand_directory(directory: Path) -> list[InputSource]:
    files = sorted(
        (path for path in directory.rglob(DIRECTORY_PATTERN) if path.is_file()),
        key=_reading_order,
    )
    if not files:
        raise InputError(
            f"no {DIRECTORY_PATTERN} files in directory {directory}", path=str(directory)
        )
    return [_file_source(path) for path in files]


def _reading_order(path: Path) -> tuple[str, bool, str]:
    return (str(path.parent), path.name in _LIVE_NAMES, path.name)


def _file_source(path: Path) -> InputSource:
    if not path.is_file():
        raise InputError(f"not a regular file: {path}", path=str(path))
    try:
        with path.open("rb") as handle:
            head = handle.read(len(_GZIP_MAGIC))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"cannot read {path}: {reason}", path=str(path)) from exc
    return InputSource(name=str(path), path=path, compressed=head == _GZIP_MAGIC)
