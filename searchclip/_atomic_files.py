"""Writing a file so that it holds either its old content or the new, whole: a temp file in the
same folder, written, fsynced, renamed over the target (the vector file, thumbnails, sidecars)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable
from typing import BinaryIO


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], None],
    *,
    sync_folder: bool = True,
    keep_mode: bool = False,
) -> None:
    """``write`` streams into a temp file beside ``path`` (so a large file is never held whole
    in memory), which then replaces ``path``. The temp file is made with ``os.open`` (mode
    0o666 minus the umask, like any file the user's tools create, unlike mkstemp's 0o600);
    ``keep_mode`` gives it the mode of the file it replaces. ``sync_folder`` also makes the
    rename durable (where a lost rename matters more than a few milliseconds)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if keep_mode and os.path.exists(path):
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_folder:
        _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable; some platforms (Windows) cannot open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
