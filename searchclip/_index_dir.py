"""The index directory itself: where its files are, creating it, its write lock, and removing
what a failed first open left behind."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from searchclip._errors import FileError, IndexBusyError, IndexNotFoundError

CATALOG_FILE = "catalog.sqlite"
LOCK_FILE = "write.lock"
INDEX_ENV_VAR = "SEARCHCLIP_INDEX"
DEFAULT_INDEX_DIR = Path("indexes") / "default"


def default_index_dir() -> Path:
    """``$SEARCHCLIP_INDEX`` if set, else ``./indexes/default``."""
    return Path(os.environ.get(INDEX_ENV_VAR) or DEFAULT_INDEX_DIR)


class IndexDirectory:
    """One index directory. ``created`` is what opening it made, so that an index nothing was
    ever recorded in (the model would not load, say) can be removed again."""

    def __init__(self, path: str | os.PathLike | None, *, create: bool) -> None:
        self.path = Path(path if path is not None else default_index_dir()).expanduser().absolute()
        self.catalog = self.path / CATALOG_FILE
        self.created: list[Path] = []
        if self.path.exists() and not self.path.is_dir():
            raise FileError(f"{self.path} is a file, not an index directory", path=self.path)
        if not self.catalog.is_file():
            if not create:
                raise IndexNotFoundError(f"no index at {self.path}", index_dir=self.path)
            missing = [d for d in (self.path, *self.path.parents) if not d.exists()]
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise FileError(
                    f"cannot create the index directory {self.path}: {_cause(exc)}",
                    path=self.path,
                ) from None
            self.created = [self.catalog, *missing]

    def remove_created(self) -> None:
        """Remove the catalog and lock file this open created, then the directories it made,
        each only while empty."""
        if not self.created:
            return
        catalog, *directories = self.created
        names = [catalog.name + suffix for suffix in ("", "-wal", "-shm", "-journal")]
        for name in [*names, LOCK_FILE]:
            with contextlib.suppress(OSError):
                (self.path / name).unlink(missing_ok=True)
        for directory in directories:  # deepest first
            try:
                directory.rmdir()
            except OSError:  # not empty (someone else's files), or not ours to remove
                break
        self.created = []

    def remove_leftovers(self) -> list[Path]:
        """Remove what a killed run left behind, and return it: temporary vector files (only a
        writer writes them, and the caller holds the write lock) and ONNX export staging folders
        of processes that no longer exist (a live one may be exporting for a query)."""
        removed = []
        for leftover in self.path.glob(".vectors-*.faiss.*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed.append(leftover)
        for staging in self.path.glob(".*-export-*"):
            if staging.is_dir() and not _process_alive(_staging_pid(staging.name)):
                shutil.rmtree(staging, ignore_errors=True)
                removed.append(staging)
        return removed

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """One writer per index: a second writer fails fast instead of interleaving."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; SQLite still serialises the writes
            yield
            return
        lock = self.path / LOCK_FILE
        try:
            handle = open(lock, "a+")  # noqa: SIM115 (closed by the with below)
        except OSError as exc:
            raise FileError(
                f"cannot open the index's lock file {lock}: {_cause(exc)}", path=lock
            ) from None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexBusyError(
                    f"another searchclip process is indexing into {self.path}",
                    index_dir=self.path,
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _cause(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc)


def _staging_pid(name: str) -> int | None:
    """The process id in an export staging folder's name (``.text-export-<pid>[-<thread>]``)."""
    found = re.match(r"\.\w+-export-(\d+)", name)
    return int(found.group(1)) if found else None


def _process_alive(pid: int | None) -> bool:
    if pid is None:
        return True  # not ours to judge: leave it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but another user's
        return True
    return True
