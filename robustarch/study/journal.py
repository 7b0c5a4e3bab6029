"""A journal file that survives crashes: a record torn by a crash, power loss or full disk mid-write is
cut off (the file before is kept as a backup) under the journal's own lock, before anything is read
or appended; a damaged record in the middle is refused, naming its line. See README "If a crash tore
the journal".
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from ..errors import DISK_FULL_ERRNOS, StorageFull, UserError

log = logging.getLogger("robustarch")
CHUNK = 1 << 16
# Optuna writes every record as `json.dumps({"op_code": ..., ...})`: a journal's first bytes are these.
RECORD_START = b'{"op_code":'


def is_record(line: bytes) -> bool:
    """Whether `line` is one complete journal record (a JSON object with an `op_code`)."""
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(value, dict) and "op_code" in value


def _end_of_lines(f, end: int) -> int:
    """Offset just past the last newline before `end` (0 when there is none)."""
    pos = end
    while pos > 0:
        start = max(0, pos - CHUNK)
        f.seek(start)
        i = f.read(pos - start).rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


def find_tail(path: Path) -> tuple[int, int]:
    """`(size, cut)`: the journal's size and where its torn tail starts (`cut == size`: none). The
    tail is torn when the last line has no newline, or when the last complete line is not a record."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        end = _end_of_lines(f, size)
        if end == 0:
            return size, 0
        start = _end_of_lines(f, end - 1)
        f.seek(start)
        return size, end if is_record(f.read(end - start)) else start


def check_is_journal(path: Path) -> None:
    """Refuse a file that is not an Optuna journal (a user's text file, an SQLite database) before
    anything reads or writes it; an empty file, or one torn within its first record, is a journal."""
    with open(path, "rb") as f:
        first = f.readline(1 << 26)
    head = first[: len(RECORD_START)]
    looks_like = head.startswith(RECORD_START) or RECORD_START.startswith(head) or not head.strip(b"\0")
    if looks_like and (not first.endswith(b"\n") or is_record(first)):
        return
    if first.startswith(b"SQLite format 3"):
        raise UserError(f"storage {str(path)!r} is an SQLite database, not a journal: use --storage sqlite:///{path}")
    raise UserError(
        f"storage {str(path)!r} is not an Optuna journal (its first line is not a journal "
        "record); it was left untouched: give --storage a new or empty file"
    )


def _backup(path: Path, tag: str) -> Path:
    """A copy of the journal beside it, written under a temporary name and renamed (never partial)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}.bak-{stamp}{tag}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.bak-{stamp}{tag}-{n}")
    tmp = backup.with_name(f".{backup.name}.tmp")
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, backup)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(
            f"journal {str(path)!r} needs a repair, but its backup {backup} could not be written "
            f"({exc.strerror or exc}); nothing was changed: free some space and run again"
        ) from None
    return backup


def repair_tail(path: Path) -> str | None:
    """Cut off a torn tail, keeping a backup of the file before; returns the one-line message, or None
    when the journal was intact. Call it only while holding the journal's lock (see `locked`)."""
    size, cut = find_tail(path)
    if cut == size:
        return None
    backup = _backup(path, "")
    with open(path, "r+b") as f:
        f.truncate(cut)
        f.flush()
        os.fsync(f.fileno())
    return (
        f"journal {path}: cut off its torn last record ({size - cut} bytes, left by a crash or full "
        f"disk mid-write); every complete record is kept, the file before is at {backup}"
    )


@contextmanager
def locked(path: Path, lock=None):
    """Hold the journal's lock, the one Optuna's `JournalFileBackend` takes to append: while another
    process holds it, a record may be half written on purpose, so we wait (Optuna frees a lock left by
    a dead process after its grace period)."""
    lock = lock or JournalFileSymlinkLock(str(path))
    with _ctrl_c_deferred():
        try:
            lock.acquire()
        except OSError as exc:
            raise UserError(
                f"journal {str(path)!r}: cannot take its lock {path}.lock ({exc.strerror or exc})"
            ) from None
        try:
            yield
        finally:
            lock.release()


@contextmanager
def _ctrl_c_deferred():
    """Hold Ctrl-C (SIGINT) back until the block ends. A KeyboardInterrupt inside Optuna's lock
    release (between its rename and unlink) turns into a FileNotFoundError that fails the trial and
    swallows the Ctrl-C, and one mid-append would tear a record. The handler only notes the signal
    and it is raised again once the lock is free and the record whole. A handler, not a signal mask:
    the mask is per thread, and the signal may land in any thread (torch's among them), while
    Python runs its handlers in the main thread, the only one that can set them (elsewhere: as is)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            os.kill(os.getpid(), signal.SIGINT)  # delivered now, to the handler that was there before


def prepare_journal(path: Path) -> str | None:
    """Make the journal at `path` safe to open: refuse a foreign file, repair a torn tail (saying so in
    one warning line). Returns the repair message, or None. Missing and empty files are left to Optuna."""
    if not path.is_file() or path.stat().st_size == 0:
        return None
    check_is_journal(path)
    size, cut = find_tail(path)
    if cut == size:  # the common case needs no lock: readers never take it
        return None
    with locked(path):  # look again: the tail may have been a record being written
        message = repair_tail(path)
    if message:
        log.warning("robustarch: warning: %s", message)
    return message


def find_damaged_line(path: Path) -> tuple[int, str] | None:
    """`(line number, reason)` of the first complete line that is not a journal record, or None."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                return None  # a record being written (or a tail `prepare_journal` repairs)
            if not is_record(line):
                try:
                    json.loads(line)
                    reason = "not a journal record"
                except (ValueError, UnicodeDecodeError) as exc:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                return number, reason
    return None


def refuse_damaged(path: Path) -> None:
    """Raise the one-line error for a damaged record in the middle of the journal (if there is one),
    after keeping a backup: the user deletes or fixes that line; we never guess what it held."""
    found = find_damaged_line(path)
    if found is None:
        return
    number, reason = found
    backup = _backup(path, f"-line{number}")
    raise UserError(
        f"journal {str(path)!r}: line {number} is damaged ({reason}); the {number - 1} records "
        f"before it are intact. Nothing was changed; keep the backup {backup}, then delete or fix "
        f"line {number} and check with `robustarch doctor --storage {path}`"
    )


class CrashSafeBackend(JournalFileBackend):
    """Optuna's journal file backend with two guarantees on every append, under its lock: a torn tail
    (another process died mid-write) is cut off first, never appended to; and a write the disk cannot
    hold is rolled back, so a full disk leaves no torn record behind."""

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path, JournalFileSymlinkLock(file_path))

    def append_logs(self, logs: list[dict]) -> None:
        path = Path(self._file_path)
        data = ("\n".join(json.dumps(entry, separators=(",", ":")) for entry in logs) + "\n").encode("utf-8")
        with locked(path, self._lock):
            if not _ends_with_newline(path) and (message := repair_tail(path)):
                log.warning("robustarch: warning: %s", message)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                size = os.fstat(fd).st_size
                try:
                    view = memoryview(data)
                    while view:  # os.write may write part of it (a file size limit): go on until refused
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                except OSError as exc:
                    os.ftruncate(fd, size)  # the journal ends where it did: no torn record
                    if exc.errno in DISK_FULL_ERRNOS:
                        raise StorageFull(
                            f"cannot write to the journal {path}: {exc.strerror} (disk full or "
                            "file size limit); the change was rolled back and the stored trials "
                            "are intact: free some space, then run the same command to resume"
                        ) from None
                    raise
            finally:
                os.close(fd)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return True
        f.seek(size - 1)
        return f.read(1) == b"\n"


def open_journal(path: Path):
    """An Optuna `JournalStorage` on the journal file `path`, checked and repaired first."""
    from optuna.storages import JournalStorage

    prepare_journal(path)
    try:
        return JournalStorage(CrashSafeBackend(str(path)))
    except (ValueError, KeyError, TypeError):
        refuse_damaged(path)
        raise
