"""File-system primitives that make gpumarket's writes safe: durable writes, renames that never
replace, the cause of an OS error in words, whether a writer is still alive.

A low room: `market.outputs` (run, compare, backtest and report outputs) and `analysis.runner`
(Monte Carlo batches) both build on it, so a write is made durable and a name claimed one way.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import sys
from contextlib import suppress
from pathlib import Path

_AT_FDCWD = -100         # <fcntl.h>: a path relative to the working directory
RENAME_NOREPLACE = 1     # <linux/fs.h>: renameat2 fails with EEXIST when the target exists
RENAME_EXCHANGE = 2      # <linux/fs.h>: renameat2 swaps source and target atomically


def os_reason(exc: OSError) -> str:
    """The cause of an OS error in a few words (pyarrow puts the errno inside its message)."""
    code = exc.errno
    if not code:
        found = re.search(r"\[errno (\d+)\]", str(exc), re.IGNORECASE)
        code = int(found.group(1)) if found else None
    return os.strerror(code) if code else (str(exc).splitlines() or [type(exc).__name__])[0]


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (on systems without signal 0: assume it does)."""
    if os.name != "posix" or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:          # alive, another user's
        return True
    return True


def _libc_renameat2():
    """libc's renameat2 (Linux, glibc >= 2.28), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


#: libc's renameat2, or None where the system lacks it (tests set None to take the fallback).
renameat2_func = _libc_renameat2()


def renameat2(src: Path, dst: Path, flags: int) -> bool | None:
    """renameat2(src, dst, flags): True when done, False when `dst` exists (RENAME_NOREPLACE),
    None when this system or file system cannot do it."""
    if renameat2_func is None:
        return None
    if renameat2_func(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        return False
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return None
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def rename_noreplace(src: Path, dst: Path) -> bool:
    """Rename directory `src` to `dst` unless `dst` exists (False then, nothing changed).

    os.rename alone would silently replace an empty directory at `dst`. Without renameat2 the
    name is claimed with an atomic mkdir and `src` renamed onto that empty placeholder, which
    fails if anything was put into it meanwhile."""
    done = renameat2(src, dst, RENAME_NOREPLACE)
    if done is not None:
        return done
    try:
        os.mkdir(dst)
    except FileExistsError:
        return False
    try:
        os.rename(src, dst)
    except OSError as exc:
        with suppress(OSError):
            os.rmdir(dst)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    return True


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries to disk (a rename or a new file in it is then durable)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:          # some file systems cannot sync a directory; files are synced
        pass
    finally:
        os.close(fd)


def fsync_tree(directory: Path) -> None:
    """Flush every file under `directory` to disk before it is published."""
    for root, _, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(root))


def write_synced(path: Path, data: bytes) -> None:
    """Write `data` to `path` and flush it to disk; on an error nothing is left at `path`."""
    try:
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        Path(path).unlink(missing_ok=True)
        if exc.filename is None:
            exc.filename = str(path)
        raise


def write_durable(path: Path, data: bytes) -> None:
    """Replace `path` atomically and durably: a temporary sibling, fsync, rename, fsync of the
    directory."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write_synced(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)
