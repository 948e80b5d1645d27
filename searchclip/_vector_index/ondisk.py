"""Approximate search for collections too large for memory: an IVF whose lists live on disk.

The base, built once from the catalog by :mod:`ondisk_build` (shard by shard, merged on disk),
is three files that never change once written, named ``<base>.ivf`` (centroids and codebooks,
read into memory), ``<base>.ivfdata`` (the lists' compressed codes and ids, memory-mapped:
FAISS's ``OnDiskInvertedLists``) and ``<base>.rerank`` (every vector at fp16 and its id,
memory-mapped). A query scans the best lists' codes, then re-scores the best
``RERANK_FACTOR * k`` of them (``PQ_RERANK_FACTOR * k`` for PQ codes) with their fp16
vectors: the codes only have to find the neighbours, not rank them (SQ8 or PQ codes alone
rank CLIP's close neighbours poorly: docs/scale.md).

Index runs change the collection without touching the base: added or replaced vectors go to
a small exact index beside it (the delta) and removed or replaced ids to a list of ids the base
no longer answers for (the tombstones). Both are saved in the generation's own small file
(``vectors-<gen>.faiss``), which names its base; so a reader's mapped files never change under
it. Once the changes outgrow ``DELTA_SHARE`` of the base (or ``DELTA_MAX`` vectors) the index
reports itself ``outgrown`` and the engine builds a new base from the catalog.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from searchclip._id_subset import IdSubset
from searchclip._vector_index.exact import FlatIndex
from searchclip._vector_index.faiss_setup import import_faiss
from searchclip._vector_index.files import FileHeader, VectorIndexFileError
from searchclip._vector_index.index import VectorIndex
from searchclip._vector_index.ivf import SCAN_SHARE, IVFIndex

# Candidates re-scored per result wanted (docs/scale.md, the 10M builds): SQ8 codes rank the
# true neighbours among their first few; PQ codes scatter them far wider.
RERANK_FACTOR = 8
PQ_RERANK_FACTOR = 300
RERANK_MIN = 64
DELTA_SHARE = 0.1  # changes beyond this share of the base: build a new base
DELTA_MAX = 200_000  # vectors searched exactly beside the base, at most

# The generation file's header count: the vectors of its base.
_HEADER = FileHeader(b"searchclip-ondisk\n", 1, "on-disk IVF")
_RERANK_HEADER = FileHeader(b"searchclip-rerank\n", 1, "re-ranking vectors")
_RERANK_OFFSET = len(b"searchclip-rerank\n") + struct.calcsize("<IIQ")
_BASE_NAME = re.compile(r"ondisk-[0-9a-z-]+")  # what ondisk_build names a base
_NAME_LENGTH = struct.Struct("<I")
_COUNT = struct.Struct("<Q")


def is_ondisk_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts like a file written by :meth:`OnDiskIVFIndex.save`."""
    return _HEADER.matches(path)


def base_files(directory: Path, base: str) -> list[Path]:
    """The files of the base named ``base`` in ``directory``."""
    return [directory / f"{base}{suffix}" for suffix in (".ivf", ".ivfdata", ".rerank")]


def write_rerank_header(file: BinaryIO, dim: int, count: int) -> None:
    _RERANK_HEADER.write(file, dim, count)


class OnDiskIVFIndex(VectorIndex):
    """A memory-mapped IVF base (codes + fp16 vectors for re-ranking) with in-memory changes."""

    takes_subsets = True

    def __init__(self, dim: int, *, scan_share: float = SCAN_SHARE) -> None:
        super().__init__(dim)
        self.scan_share = scan_share
        self.base = ""  # the base's name, its files beside the generation file
        self.directory: Path | None = None  # where the base's files are
        self._lists = IVFIndex(dim, scan_share=scan_share)  # over the mapped lists
        self._rerank_ids = np.empty(0, np.int64)  # the base's ids, sorted
        self._rerank_rows: np.ndarray = np.empty((0, dim), np.float16)  # mapped, in id order
        self._delta = FlatIndex(dim)
        self._sorted_delta_ids: np.ndarray | None = None
        self._tombstones = np.empty(0, np.int64)  # base ids no longer answered for, sorted
        self._live: IdSubset | None = None  # the base's ids less the tombstones, made on demand
        self._product_codes = False  # PQ (else SQ8): how many candidates to re-score

    @classmethod
    def open_base(cls, directory: Path, base: str, dim: int) -> OnDiskIVFIndex:
        """The base ``base`` in ``directory`` with no changes; VectorIndexFileError on any
        defect (a missing, short or mismatched file)."""
        if not _BASE_NAME.fullmatch(base):
            raise VectorIndexFileError(f"{base!r} is not the name of an on-disk index")
        ivf_path, lists_path, rerank_path = base_files(directory, base)
        index = cls(dim)
        index.base, index.directory = base, directory
        index._lists._index = _mapped_lists(ivf_path, lists_path, dim)
        index._lists._trained_on = int(index._lists._index.ntotal)
        index._product_codes = isinstance(index._lists._index, import_faiss().IndexIVFPQ)
        index._rerank_ids, index._rerank_rows = mapped_rerank(rerank_path, dim)
        if len(index._rerank_ids) != index._lists.ntotal:
            raise VectorIndexFileError(f"{rerank_path} does not match {ivf_path}")
        return index

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> OnDiskIVFIndex:
        """Read a generation file written by :meth:`save`, and map its base."""
        name = os.fspath(path)
        try:
            with open(path, "rb") as f:
                count = _HEADER.read(f, dim, name)
                index = cls.open_base(Path(name).parent, _read_name(f, name), dim)
                if index._lists.ntotal != count:
                    raise VectorIndexFileError(f"{name} does not match its base {index.base}")
                index._tombstones = _read_array(f, np.int64, name)
                index._delta = _delta_index(_read_array(f, np.uint8, name), dim, name)
                if f.read(1):
                    raise VectorIndexFileError(f"{name} has trailing data")
        except OSError as err:
            raise VectorIndexFileError(f"cannot read {name}: {err.strerror}") from None
        return index

    @property
    def ntotal(self) -> int:
        return len(self._rerank_ids) - len(self._tombstones) + self._delta.ntotal

    @property
    def nlist(self) -> int:
        return self._lists.nlist

    @property
    def changes(self) -> int:
        """Vectors held beside the base, and base vectors it no longer answers for."""
        return self._delta.ntotal + len(self._tombstones)

    @property
    def outgrown(self) -> bool:
        base = len(self._rerank_ids)
        return self._delta.ntotal > DELTA_MAX or self.changes > DELTA_SHARE * base

    def ids(self) -> np.ndarray:
        return np.concatenate([self._live_base().ids, self._delta.ids()])

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._delta.add(ids, vectors)  # add() removed them first: none is live in the base
        self._sorted_delta_ids = None

    def _remove(self, ids: np.ndarray) -> int:
        removed = self._delta.remove(ids)
        self._sorted_delta_ids = None
        held = self._live_base().contains(ids)
        if held.any():
            self._tombstones = np.union1d(self._tombstones, ids[held])
            self._live = None
        return removed + int(held.sum())

    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | IdSubset | None, *, far: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        parts = []
        base_allowed = self._base_allowed(allowed)
        held = len(self._live_base()) if base_allowed is None else len(base_allowed)
        factor = PQ_RERANK_FACTOR if self._product_codes else RERANK_FACTOR
        fetch = min(held, max(factor * k, RERANK_MIN))
        if fetch:
            _, found = self._lists.search(queries, fetch, base_allowed, far=far)
            parts.append((self._exact_scores(queries, found), found))
        delta_ids = self._delta_ids()
        if allowed is not None:  # the filter's ids among the changes: a few, not millions
            delta_ids = delta_ids[_as_subset(allowed).contains(delta_ids)]
        if len(delta_ids):
            delta_allowed = None if allowed is None else delta_ids
            scores, found = self._delta.search(queries, k, delta_allowed)
            parts.append((np.where(found >= 0, scores, -np.inf), found))
        count = len(queries)  # padding: the filter may hold fewer than k (removed ids)
        parts.append((np.full((count, k), -np.inf, np.float32), np.full((count, k), -1)))
        scores = np.concatenate([p[0] for p in parts], axis=1)
        found = np.concatenate([p[1] for p in parts], axis=1)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(scores, best, axis=1)
        found = np.take_along_axis(found, best, axis=1)
        found[~np.isfinite(scores)] = -1
        return np.where(found >= 0, scores, 0).astype(np.float32), found

    def _delta_ids(self) -> np.ndarray:
        if self._sorted_delta_ids is None:
            self._sorted_delta_ids = np.sort(self._delta.ids())
        return self._sorted_delta_ids

    def _exact_scores(self, queries: np.ndarray, found: np.ndarray) -> np.ndarray:
        """Each candidate's score from its fp16 vector (-inf where there is none: id -1)."""
        rows = np.searchsorted(self._rerank_ids, np.maximum(found, 0))
        rows = np.minimum(rows, len(self._rerank_ids) - 1)
        vectors = self._rerank_rows[np.sort(rows, axis=None)]  # one pass over the mapping
        order = np.argsort(rows, axis=None, kind="stable")
        gathered = np.empty_like(vectors)
        gathered[order] = vectors
        scores = np.einsum(
            "qd,qcd->qc", queries, gathered.reshape(*found.shape, self.dim).astype(np.float32)
        )
        return np.where(found >= 0, scores, -np.inf)

    def _base_allowed(self, allowed: np.ndarray | IdSubset | None) -> IdSubset | None:
        """What the base may answer: ``allowed`` less the tombstones (None: every id)."""
        if not len(self._tombstones):
            return None if allowed is None else _as_subset(allowed)
        if allowed is None:
            return self._live_base()
        ids = allowed.ids if isinstance(allowed, IdSubset) else allowed
        return IdSubset(ids, ~np.isin(ids, self._tombstones, assume_unique=True))

    def _live_base(self) -> IdSubset:
        if self._live is None:
            keep = None
            if len(self._tombstones):
                keep = ~np.isin(self._rerank_ids, self._tombstones, assume_unique=True)
            self._live = IdSubset(self._rerank_ids, keep)
        return self._live

    def can_save_in(self, directory: Path) -> bool:
        return directory == self.directory

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the generation file, which must lie beside the base's files."""
        if not self.can_save_in(Path(path).parent):
            raise ValueError(f"{os.fspath(path)} must lie in {self.directory}, with its base")
        super().save(path)

    def _write(self, file: BinaryIO) -> None:
        _HEADER.write(file, self.dim, len(self._rerank_ids))
        name = self.base.encode("ascii")
        file.write(_NAME_LENGTH.pack(len(name)) + name)
        for array in (self._tombstones, self._delta.to_bytes()):
            file.write(_COUNT.pack(len(array)))
            file.write(array.tobytes())


def read_base(path: Path) -> str:
    """The name of the base the generation file ``path`` builds on."""
    try:
        with open(path, "rb") as f:
            f.seek(len(_HEADER.magic) + struct.calcsize("<IIQ"))
            return _read_name(f, os.fspath(path))
    except OSError as err:
        raise VectorIndexFileError(f"cannot read {path}: {err.strerror}") from None


def _read_name(file: BinaryIO, name: str) -> str:
    (length,) = _NAME_LENGTH.unpack(_read_exact(file, _NAME_LENGTH.size, name))
    return _read_exact(file, min(length, 256), name).decode("ascii", "replace")


def _as_subset(allowed: np.ndarray | IdSubset) -> IdSubset:
    return allowed if isinstance(allowed, IdSubset) else IdSubset(allowed)


def _mapped_lists(ivf_path: Path, lists_path: Path, dim: int) -> Any:
    """The IVF of ``ivf_path`` with its lists mapped from ``lists_path``: the list file's name
    is set here, not taken from the index file, so the index directory may move."""
    faiss = import_faiss()
    try:
        index = faiss.read_index(os.fspath(ivf_path), faiss.IO_FLAG_SKIP_IVF_DATA)
    except RuntimeError as err:
        raise VectorIndexFileError(f"{ivf_path} holds a damaged index: {err}") from None
    if not isinstance(index, faiss.IndexIVF) or index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise VectorIndexFileError(f"{ivf_path} does not hold an inner-product IVF index")
    if index.d != dim:
        raise VectorIndexFileError(f"{ivf_path} holds {index.d}-d vectors, not {dim}")
    lists = faiss.downcast_InvertedLists(index.invlists)
    if not isinstance(lists, faiss.OnDiskInvertedLists):
        raise VectorIndexFileError(f"{ivf_path} does not keep its lists on disk")
    try:
        size = os.path.getsize(lists_path)
    except OSError as err:
        raise VectorIndexFileError(f"cannot read {lists_path}: {err.strerror}") from None
    if size < lists.totsize or not lists.totsize:  # a short file would fault on a search
        raise VectorIndexFileError(f"{lists_path} is truncated")
    lists.filename = os.fspath(lists_path)
    lists.read_only = True
    try:
        lists.do_mmap()
    except RuntimeError as err:
        raise VectorIndexFileError(f"cannot map {lists_path}: {err}") from None
    return index


def mapped_rerank(path: Path, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``.rerank`` file's ids (sorted) and fp16 rows, both memory-mapped."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            count = _RERANK_HEADER.read(f, dim, name)
        size = os.path.getsize(path)
    except OSError as err:
        raise VectorIndexFileError(f"cannot read {name}: {err.strerror}") from None
    if size != _RERANK_OFFSET + count * (2 * dim + 8):
        raise VectorIndexFileError(f"{name} is truncated or has trailing bytes")
    if not count:
        raise VectorIndexFileError(f"{name} holds no vectors")
    rows = np.memmap(path, np.float16, "r", _RERANK_OFFSET, (count, dim))
    ids = np.memmap(path, np.int64, "r", _RERANK_OFFSET + count * 2 * dim, (count,))
    return ids, rows


def _read_exact(file: BinaryIO, size: int, name: str) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise VectorIndexFileError(f"{name} is truncated")
    return data


def _read_array(file: BinaryIO, dtype: type, name: str) -> np.ndarray:
    (count,) = _COUNT.unpack(_read_exact(file, _COUNT.size, name))
    if count > 1 << 40:
        raise VectorIndexFileError(f"{name} is damaged")
    return np.frombuffer(_read_exact(file, count * np.dtype(dtype).itemsize, name), dtype).copy()


def _delta_index(serialized: np.ndarray, dim: int, name: str) -> FlatIndex:
    try:
        return FlatIndex.from_bytes(serialized, dim)
    except VectorIndexFileError as err:
        raise VectorIndexFileError(f"{name} holds damaged changes: {err}") from None
