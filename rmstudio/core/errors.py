"""Typed errors the core raises; the CLI and GUI turn them into messages, never tracebacks."""

from __future__ import annotations


class RmstudioError(Exception):
    """Base class for every error a user can cause and fix."""


class FormatError(RmstudioError):
    """A data file that cannot be read as preference data.

    Always names the file, and where known the line (1-based; the row for CSV/Parquet,
    the element index + 1 for a JSON array) and the field.
    """

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = message
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class ProjectError(RmstudioError):
    """A project file that cannot be opened, migrated or written."""


class LimitError(FormatError):
    """Input larger than a safety limit (file, line, field or record count)."""
