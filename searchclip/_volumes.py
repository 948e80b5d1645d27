"""Telling an unmounted drive from deleted files: a folder that is missing or empty.

An index run keeps the files of such folders, marked offline (``searchclip._catalog.offline``),
instead of removing them; a file whose folder is there and holds other entries was deleted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from searchclip._results import OfflineFolder


class VolumeCheck:
    """Whether a folder is missing or empty, as a folder on an unmounted drive is (its mount
    point left empty, or gone with the drive); one look per folder."""

    def __init__(self) -> None:
        self._seen: dict[str, bool] = {}

    def missing(self, folder: str) -> bool:
        if folder not in self._seen:
            self._seen[folder] = _missing_or_empty(folder)
        return self._seen[folder]


def _missing_or_empty(folder: str) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except OSError:  # gone, not a folder, or unreadable: nothing of it can be seen
        return True


def offline_roots(folders: Iterable[str], root: str = "/") -> tuple[str, ...]:
    """The outermost missing or empty folders, not above ``root``, that hold ``folders``."""
    return tuple(sorted({outermost_missing(folder, root) for folder in set(folders)}))


def outermost_missing(folder: str, root: str = "/") -> str:
    """``folder``, or its outermost ancestor not above ``root`` that is missing or empty
    with everything between (the mount point of a drive that is not there)."""
    top = folder
    while top != root and is_under(top, root):
        parent = os.path.dirname(top)
        if parent == top or not _missing_or_empty(parent):
            break
        top = parent
    return top


def is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def offline_summary(folders: Iterable[tuple[str, int, float]]) -> tuple[OfflineFolder, ...]:
    """The catalog's (folder, offline images, since) rows gathered by their missing folder."""
    images: dict[str, int] = {}
    since: dict[str, float] = {}
    for folder, count, first in folders:
        top = outermost_missing(folder)
        images[top] = images.get(top, 0) + count
        since[top] = min(since.get(top, first), first)
    return tuple(OfflineFolder(top, images[top], since[top]) for top in sorted(images))
