"""One exception family for every error a user can cause.

The CLI turns any `GpumarketError` into one line on stderr and exit code 2; anything
else is a bug and keeps its traceback.
"""


class GpumarketError(Exception):
    """Base class for user-facing errors (bad input, unknown names, unusable files)."""


class InputError(GpumarketError):
    """A number or option given by the user is outside what the quantity allows."""


class UnknownNameError(GpumarketError):
    """A chip, reference run, scenario or other named thing does not exist."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known)}")


class DataFileError(GpumarketError):
    """A package data file or user-supplied data file is malformed; the message names file and entry."""


class ScenarioError(GpumarketError):
    """A scenario file or override is invalid; the message names file, field path and expectation."""
