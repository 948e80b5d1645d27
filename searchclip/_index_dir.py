"""The index directory itself: where its files are, creating it, its write lock, and removing
what a failed first open left behind."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from searchclip._errors import CatalogDamagedError, FileError, IndexBusyError, IndexNotFoundError

CATALOG_FILE = "catalog.sqlite"
LOCK_FILE = "write.lock"
# Thumbnails made for the web page (searchclip._thumbnails): a cache of the index's own, never
# a leftover; everything in it can be deleted and is made again when asked for.
THUMBNAILS_DIR = "thumbnails"
INDEX_ENV_VAR = "SEARCHCLIP_INDEX"
DEFAULT_INDEX_DIR = Path("indexes") / "default"


def default_index_dir() -> Path:
    """``$SEARCHCLIP_INDEX`` if set, else ``./indexes/default``."""
    return Path(os.environ.get(INDEX_ENV_VAR) or DEFAULT_INDEX_DIR)


class IndexDirectory:
    """One index directory. ``created`` is what opening it made, so that an index nothing was
    ever recorded in (the model would not load, say) can be removed again."""

    def __init__(
        self, path: str | os.PathLike | None, *, create: bool, allow_damaged: bool = False
    ) -> None:
        self.path = Path(path if path is not None else default_index_dir()).expanduser().absolute()
        self.catalog = self.path / CATALOG_FILE
        self.created: list[Path] = []
        if self.path.exists() and not self.path.is_dir():
            raise FileError(f"{self.path} is a file, not an index directory", path=self.path)
        if not allow_damaged and self._catalog_emptied():
            raise CatalogDamagedError(
                self.catalog, "the file is empty, beside the index's other files"
            )
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

    def _catalog_emptied(self) -> bool:
        """A zero-byte catalog beside vector or export files lost its content (SQLite would
        take it for a new, empty index); one alone is what a killed first run leaves."""
        try:
            if self.catalog.stat().st_size or (self.path / (CATALOG_FILE + "-wal")).exists():
                return False
        except OSError:
            return False
        return any(self.path.glob("vectors-*.faiss")) or any(self.path.glob("*-encoder*.json"))

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

    def leftovers(self) -> list[Path]:
        """What killed runs left behind: temporary vector files and half-recovered catalogs
        (only a writer writes them), and ONNX export staging folders of processes that no
        longer exist (a live one may be exporting for a query)."""
        found = [*self.path.glob(".vectors-*.faiss.*.tmp")]
        found += self.path.glob(f".{CATALOG_FILE}.recovering-*")
        found += (
            staging
            for staging in self.path.glob(".*-export-*")
            if staging.is_dir() and not _process_alive(_staging_pid(staging.name))
        )
        return sorted(found)

    def remove_leftovers(self) -> list[Path]:
        """Remove :meth:`leftovers` and return them; the caller holds the write lock."""
        removed = []
        for leftover in self.leftovers():
            with contextlib.suppress(OSError):
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
                removed.append(leftover)
        return removed

    @contextlib.contextmanager
    def write_lock(self, *, check_after_crash: bool = True) -> Iterator[None]:
        """One writer per index: a second writer fails fast instead of interleaving.

        The lock file holds the writer's process id while it writes and is emptied when it
        ends, so an id found there means the last writer was killed: with
        ``check_after_crash``, the catalog then gets SQLite's quick check before any write
        (CatalogDamagedError if it fails)."""
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
                handle.seek(0)
                crashed = bool(handle.read().strip())
                _replace_content(handle, str(os.getpid()))
                if crashed and check_after_crash and self.catalog.is_file():
                    from searchclip._catalog.integrity import raise_if_damaged

                    raise_if_damaged(self.catalog, quick=True)
                yield
                _replace_content(handle, "")
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def writer_active(index_dir: Path) -> bool:
    """Whether an index or tag run holds the index's write lock now (in any process). Read
    only: a shared lock is tried and let go, and a missing lock file means no writer."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        handle = open(index_dir / LOCK_FILE, "rb")  # noqa: SIM115 (closed just below)
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _replace_content(handle, text: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(text)  # "a+": at the end, which is now the start
    handle.flush()


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
