"""A set of ids picked out of sorted ids by a mask: what a metadata filter returns.

A search asks only what it needs of a filter's result: how many it keeps, whether a few found
ids are among them, a bitmap, a sample. Making the sorted array of a million-row filter's ids
costs milliseconds that a search which never reads it would pay for nothing.
"""

from __future__ import annotations

import numpy as np


class IdSubset:
    """The ids of ``universe`` (sorted, unique, int64) where ``keep`` (a bool per id) is set;
    every id of it where ``keep`` is None. Never changed once made."""

    def __init__(self, universe: np.ndarray, keep: np.ndarray | None = None) -> None:
        self._universe = universe
        self._keep = keep
        self._count = len(universe) if keep is None else int(np.count_nonzero(keep))
        self._ids = universe if keep is None else None

    def __len__(self) -> int:
        return self._count

    @property
    def ids(self) -> np.ndarray:
        """The ids, sorted (made on first use)."""
        if self._ids is None:
            if self._dense:  # row i holds universe[0] + i: no gather needed
                rows = np.flatnonzero(self._keep)
                rows += self._universe[0]
                self._ids = rows
            else:
                self._ids = np.compress(self._keep, self._universe)  # faster than a bool index
        return self._ids

    @property
    def _dense(self) -> bool:
        universe = self._universe
        return bool(len(universe)) and int(universe[-1] - universe[0]) + 1 == len(universe)

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """A bool per id of ``ids`` (any shape; -1 for none): whether it is in the set."""
        universe = self._universe
        if not len(universe):
            return np.zeros(np.shape(ids), bool)
        at = np.minimum(np.searchsorted(universe, ids), len(universe) - 1)
        found = universe[at] == ids
        return found & self._keep[at] if self._keep is not None else found

    def member_mask(self, size: int) -> np.ndarray:
        """A bool per id from 0 on, True for the ids held: ``size`` of them (more, where the
        mask is copied whole; ``size`` must exceed the largest id held)."""
        if self._keep is not None and self._dense:
            first = int(self._universe[0])
            mask = np.zeros(max(size, first + len(self._keep)), bool)
            mask[first : first + len(self._keep)] = self._keep
        else:
            mask = np.zeros(size, bool)
            mask[self.ids] = True
        return mask

    def largest(self) -> int:
        """The largest id held (-1 when empty)."""
        if not self._count:
            return -1
        if self._keep is None:
            return int(self._universe[-1])
        return int(self._universe[len(self._keep) - 1 - int(np.argmax(self._keep[::-1]))])

    def sample(self, count: int) -> np.ndarray:
        """About ``count`` of the ids (all where there are fewer), evenly spread, sorted."""
        stride = max(1, self._count // count)
        if self._keep is None:
            return self._universe[::stride]
        return self._universe[::stride][self._keep[::stride]]
