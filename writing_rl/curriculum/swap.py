"""Putting a new version of the index in place without ever discarding a file nobody examined.

The new text goes to a temporary file (fsync) that is then *exchanged* with the live file
(`renameat2(RENAME_EXCHANGE)`, Linux): at that instant the displaced file moves to the temporary name,
whatever it is, so the caller can tell whether it is the version it wrote last (or one it examined)
and examine it otherwise. Where the exchange is not supported, a plain rename is used and a save that
lands in the microseconds between the caller's last check and the rename is lost.

Each version we write is kept open read-only, with its access time set to a sentinel: if the access
time changed, someone read that version (an editor loading it), which is what tells a deliberate
edit from a stale editor buffer (see `edits.py`). Our own reads use O_NOATIME.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from writing_rl.curriculum.index_file import fsync_folder

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


@dataclass(frozen=True)
class FileId:
    """Which version a path holds: a save, by rename or in place, changes one of these."""

    inode: int
    mtime_ns: int
    size: int


def file_id(path: Path) -> FileId | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return FileId(st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass
class Written:
    """A version we put in place, held open so that we can tell later whether anyone read it."""

    id: FileId
    version: int
    fd: int
    sentinel_atime_ns: int

    def was_read(self) -> bool:
        return os.fstat(self.fd).st_atime_ns != self.sentinel_atime_ns

    def close(self) -> None:
        os.close(self.fd)


def read_quietly(path: Path) -> str:
    """The file's text, read without changing its access time where the system allows it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOATIME", 0))
    except PermissionError:  # O_NOATIME needs the file's owner
        fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as handle:
        return handle.read().decode("utf-8")


class _NoExchange(OSError):
    pass


def _exchange(a: Path, b: Path) -> None:
    if _renameat2 is None:
        raise _NoExchange()
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return
    code = ctypes.get_errno()
    if code == errno.ENOENT:
        raise FileNotFoundError(code, os.strerror(code), str(b))
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        raise _NoExchange()
    raise OSError(code, os.strerror(code), str(b))


def _put_in_place(tmp: Path, path: Path) -> Path | None:
    """Returns where the displaced file now lives (`tmp`), or None when nothing was displaced or known."""
    try:
        _exchange(tmp, path)
        return tmp
    except FileNotFoundError:  # no live file (deleted): link ours in without replacing anything
        try:
            os.link(tmp, path)
        except FileExistsError:  # one appeared meanwhile: exchange with it after all
            return _put_in_place(tmp, path)
        except OSError:
            os.replace(tmp, path)
            return None
        os.unlink(tmp)
        return None
    except _NoExchange:
        os.replace(tmp, path)
        return None


def write_version(path: Path, chunks: Iterable[str], version: int) -> tuple[Written, Path | None]:
    """Write `chunks` as the new content of `path` (fsynced, atomic). Returns the new version, held open,
    and the path of the displaced file when there was one: the caller examines it, then removes it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for chunk in chunks:  # chunk by chunk: the event loop's thread gets the GIL back in between
            handle.write(chunk)
        handle.flush()
        mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
        os.utime(handle.fileno(), ns=(mtime_ns - 1, mtime_ns))  # the sentinel: "nobody read this yet"
        os.fsync(handle.fileno())
    fd = os.open(tmp, os.O_RDONLY)
    st = os.fstat(fd)
    written = Written(FileId(st.st_ino, st.st_mtime_ns, st.st_size), version, fd, mtime_ns - 1)
    try:
        displaced = _put_in_place(tmp, path)
    except BaseException:
        written.close()
        raise
    fsync_folder(path.parent)
    return written, displaced
