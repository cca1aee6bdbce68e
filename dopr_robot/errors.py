"""Errors a user can cause: printed by the CLI as one sentence with exit code 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (a bad file, a wrong key, a bad flag)."""


class DataError(UserError, ValueError):
    """A demonstration file that cannot be used as asked; the message names the file and why."""
