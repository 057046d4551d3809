"""The exception hierarchy of optirebal.

Every failure a user can cause or meet is one of these, and every message names what to look at:
the field and row of bad input, the file and key of a bad policy file, the constraints that
conflict in an infeasible program, every solver attempt when none succeeded.
"""

from __future__ import annotations

from collections.abc import Sequence


class OptirebalError(Exception):
    """Base class of every error optirebal raises on purpose."""


class InputError(OptirebalError, ValueError):
    """Bad input data: the message names the field (column) and the row (index label).

    Parameters
    ----------
    message
        What is wrong and what to do.
    field
        The column or argument at fault, when there is one.
    row
        The index label of the offending row, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None, row: object = None) -> None:
        where = []
        if field is not None:
            where.append(f"field {field!r}")
        if row is not None:
            where.append(f"row {row!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)
        self.field = field
        self.row = row
        self.detail = message
        """The message without the field and row."""


class PolicyFileError(OptirebalError, ValueError):
    """A policy or model file that cannot be read: names the file and the key."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        where = []
        if file is not None:
            where.append(str(file))
        if key is not None:
            where.append(f"key {key!r}")
        prefix = f"{': '.join(where)}: " if where else ""
        super().__init__(prefix + message)
        self.file = file
        self.key = key
        self.detail = message
        """The message without the file and key."""


class InfeasibleError(OptirebalError):
    """No trades satisfy the policy: names the constraints that conflict.

    Parameters
    ----------
    message
        A summary with advice (which constraint to relax or make soft).
    conflicts
        Names of the constraint groups found in conflict, for example ``"band upper 'equity'"``.
    """

    def __init__(self, message: str, *, conflicts: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.conflicts = tuple(conflicts)


class SolverError(OptirebalError):
    """No solver in the chain returned an accurate answer: lists every attempt and its status."""

    def __init__(self, message: str, *, attempts: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.attempts = tuple(attempts)


class DecodeError(OptirebalError):
    """The solution could not be turned into trades that pass verification."""
