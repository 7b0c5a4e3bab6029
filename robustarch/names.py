"""Study names as file names: one safe, length-capped name per study, the same for every command
(search's report, `report`, exports, comparison pages), so that no name can leave its folder.
"""

from __future__ import annotations

import hashlib

from .errors import UserError

MAX_STEM = 80  # characters of the readable part; with the hash suffix a name stays far below 255 bytes


def check_study_name(name: str, what: str = "--study") -> str:
    """`name` if it can name a study: not empty, no control characters (they would break the
    one-line messages and the journal's lines)."""
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{what}: a study name must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UserError(f"{what} {name!r}: a study name must not contain control characters")
    return name


def file_stem(name: str) -> str:
    """The file name (without extension) for study `name`: ASCII letters, digits, `-`, `_` and `.`
    kept, everything else `_`, no leading dot, at most `MAX_STEM` characters. A name that had to be
    changed gets a hash of the original as suffix, so `a/b` and `a_b` never share a file.

    >>> file_stem("e2e"), file_stem("../../evil")
    ('e2e', '_._.._evil-0fbfd372')
    """
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
    safe = "_" + safe[1:] if safe.startswith(".") else safe
    if safe == name and 0 < len(name) <= MAX_STEM:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe[:MAX_STEM]}-{digest}" if safe else digest
