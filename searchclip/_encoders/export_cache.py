"""A per-model cache of ONNX exports, shared by every index on the machine.

Exporting a model's towers to ONNX and quantising them is a large part of what a new index
pays once, and every new index used to pay it (docs/benchmarks.md, "Indexing speed", the runs
with the export cache empty and filled). An export depends only on the model's files and on
searchclip's version, so the first index made with a model leaves a copy of its exports here
and later indexes of the same model copy them in. Copies, not hard links: an index
file damaged or overwritten in place must not damage the cache and, through it, every later
index. Index directories stay self-contained: deleting the cache never breaks an index.

Where: ``$SEARCHCLIP_CACHE``, else ``$XDG_CACHE_HOME/searchclip``, else ``~/.cache/searchclip``;
``SEARCHCLIP_CACHE=off`` turns the cache off. Everything here is best effort: a cache that
cannot be read or written only means exporting again. Torch-free; no state in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

CACHE_ENV_VAR = "SEARCHCLIP_CACHE"
_OFF = ("off", "0", "none", "")


def cache_root() -> Path | None:
    """The cache directory, or None when the user turned the cache off."""
    configured = os.environ.get(CACHE_ENV_VAR)
    if configured is not None:
        return None if configured.strip().lower() in _OFF else Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "searchclip"


def model_key(model_id: str, source: Path | None) -> str | None:
    """A name for one model's exact files: its id, and the name, size and modification time of
    each file in its directory (a re-saved model gets a new key without hashing gigabytes).
    None when there is no directory to look at."""
    from searchclip import __version__

    if source is None:
        return None
    files = []
    try:
        for entry in source.iterdir():
            if entry.is_file():  # follows links: a Hugging Face snapshot links to its blobs
                stat = entry.stat()
                files.append((entry.name, stat.st_size, stat.st_mtime_ns))
    except OSError:
        return None
    described = json.dumps([model_id, __version__, sorted(files)])
    return hashlib.sha256(described.encode("utf-8")).hexdigest()[:32]


def entry_dir(key: str | None, kind: str) -> Path | None:
    """Where the export ``kind`` (e.g. "text", "image-int8") of the model ``key`` is cached."""
    root = cache_root()
    return None if key is None or root is None else root / "exports" / key / kind


def fetch(entry: Path | None, names: Iterable[str], target: Path) -> bool:
    """Copy the files ``names`` of a cache entry into ``target``; False, with nothing
    left in ``target``, if the entry lacks any of them."""
    if entry is None:
        return False
    placed = []
    try:
        for name in names:
            _copy(entry / name, target / name)
            placed.append(target / name)
    except OSError:
        for path in placed:
            path.unlink(missing_ok=True)
        return False
    return True


def store(source: Path, names: Iterable[str], entry: Path | None) -> None:
    """Put the files ``names`` of ``source`` into the cache entry, replacing an older one.
    Written to a private directory first and renamed, so readers never see half an entry."""
    if entry is None:
        return
    # Named by process and thread: two stores of one entry never share it.
    staging = entry.with_name(f".{entry.name}-{os.getpid()}-{threading.get_ident()}")
    try:
        staging.mkdir(parents=True, exist_ok=True)
        for name in names:
            _copy(source / name, staging / name)
        if entry.exists():
            shutil.rmtree(entry)
        staging.rename(entry)
    except OSError:
        pass
    finally:
        with suppress(OSError):
            shutil.rmtree(staging)


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    shutil.copymode(source, target)
