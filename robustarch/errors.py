"""User-facing errors: bad input that the CLI reports as one line and exit status 2.

Anything raised as `UserError` is the user's to fix (a file, a field, a name); everything else is a bug.
"""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, reported as one line (what, where, what is allowed)."""


def one_of(values) -> str:
    """Format allowed values for an error message: `'a', 'b' or 'c'`."""
    items = [repr(v) for v in values]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
