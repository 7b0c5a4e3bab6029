"""User-facing errors: bad input that the CLI reports as one line and exit status 2.

Anything raised as `UserError` is the user's to fix (a file, a field, a name); everything else is a bug.
"""

from __future__ import annotations

import errno


class UserError(Exception):
    """A problem with the user's input, reported as one line (what, where, what is allowed)."""


def one_of(values) -> str:
    """Format allowed values for an error message: `'a', 'b' or 'c'`."""
    items = [repr(v) for v in values]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


class StorageFull(BaseException):
    """The disk (or a file size limit) refused a write to a study's storage or checkpoints. What was
    being written is rolled back, and the command stops: a `BaseException`, like `KeyboardInterrupt`,
    so that no trial loop catches it and goes on writing. The CLI reports it as one line, exit 2."""


# errno values that mean "no room": no space, over the file size limit (RLIMIT_FSIZE), over quota
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


def wrapped_error(exc: BaseException | None) -> BaseException | None:
    """Our `UserError` or `StorageFull` behind `exc`: one that another exception was raised while
    handling (Optuna's trial bookkeeping, writing to the same full disk), else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (UserError, StorageFull)):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
