"""Approximate search for large collections: a FAISS inverted-file index (IVF) over fp16 vectors.

k-means splits the vectors into ``nlist`` lists (~4 per square root of the collection); a query
scans the lists whose centroids score best against it. Chosen over an HNSW graph because text
queries lie away from every image vector (CLIP's modality gap) and a graph walk from such a
query misses far more than a scan of the best lists does, on real and synthetic embeddings
alike; IVF also builds several times faster (recall, latency and build times:
docs/benchmarks.md, section "Approximate search at 1M vectors").

Removal is exact (``remove_ids``): no tombstones. The centroids are trained on the vectors of
the first ``add``; once the collection has grown ``RETRAIN_GROWTH`` times past them it reports
itself ``outgrown`` and the engine rebuilds it from the catalog. The file is a small header,
then the index in FAISS's own format (ids included).
"""

from __future__ import annotations

import math
import os
from typing import Any, BinaryIO

import numpy as np

from searchclip._id_subset import IdSubset
from searchclip._vector_index.faiss_setup import import_faiss
from searchclip._vector_index.files import FileHeader, VectorIndexFileError
from searchclip._vector_index.index import VectorIndex

# The scan shares were chosen from the recall / lists-scanned sweep in docs/benchmarks.md
# (section "Approximate search at 1M vectors"): the least that clears the recall target.
LISTS_PER_SQRT = 4  # nlist = 4 sqrt(n): 4,000 lists of ~250 vectors at 1M
TRAIN_PER_LIST = 40  # k-means sample (FAISS asks for at least 39 points a centroid)
SCAN_SHARE = 1 / 32  # of the lists, for an image query
FAR_WIDENING = 4  # text queries, far from every image vector, scan 4x as many lists (1/8)
MIN_PROBE = 8
# A filter keeping a share s of the vectors meets as many allowed vectors as (1/s) ** 0.35 times
# as many lists would hold, were they spread evenly (see IVFIndex._filtered_probe): the least
# exponent of a sweep (0.5, 0.35, 0.25, 0.15) whose recall stayed at an unfiltered search's
# for filters from 1 % to 50 %, even and crowded (docs/benchmarks.md, section "Photo metadata
# filters at a million images").
FILTER_WIDENING = 0.35
# From this share on, a filter is applied to the results of an unfiltered search (more of
# them) rather than to the scan (docs/benchmarks.md, section "Photo metadata filters at a
# million images").
POST_FILTER_SHARE = 0.25
RETRAIN_GROWTH = 4  # rebuild once the collection is 4x what the centroids were trained on

# The header's count: vectors the centroids were trained on.
_HEADER = FileHeader(b"searchclip-ivf\n", 1, "IVF")
_SEED = 1234  # the k-means sample and initialisation: the same vectors give the same index


def is_ivf_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts like a file written by :meth:`IVFIndex.save`."""
    return _HEADER.matches(path)


class IVFIndex(VectorIndex):
    """Approximate inner-product search (``IndexIVFScalarQuantizer``, fp16) with catalog ids.

    ``scan_share`` is the share of lists an image query scans (text queries, ``far=True``,
    ``FAR_WIDENING`` times as many): it trades speed for recall.
    """

    takes_subsets = True

    def __init__(self, dim: int, *, scan_share: float = SCAN_SHARE) -> None:
        super().__init__(dim)
        self.scan_share = scan_share
        self._index: Any = None  # made and trained by the first add
        self._trained_on = 0
        self._ids: np.ndarray | None = None  # all ids, gathered on demand
        self._lists: np.ndarray | None = None  # id -> its list's number, built on demand
        self._centroids: np.ndarray | None = None  # (nlist, dim), copied on demand

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> IVFIndex:
        """Read an index written by :meth:`save`; any defect raises VectorIndexFileError."""
        faiss = import_faiss()
        name = os.fspath(path)
        try:
            with open(path, "rb") as f:
                trained_on = _HEADER.read(f, dim, name)
                index = faiss.read_index(faiss.PyCallbackIOReader(f.read)) if trained_on else None
                trailing = f.read(1)
        except OSError as err:
            raise VectorIndexFileError(f"cannot read {name}: {err.strerror}") from None
        except RuntimeError as err:  # FAISS's reader: truncated or corrupt data
            raise VectorIndexFileError(f"{name} holds a damaged index: {err}") from None
        if trailing:
            raise VectorIndexFileError(f"{name} has trailing data")
        if index is not None and (
            not isinstance(index, faiss.IndexIVFScalarQuantizer)
            or index.metric_type != faiss.METRIC_INNER_PRODUCT
            or index.d != dim
            or not index.is_trained
        ):
            raise VectorIndexFileError(f"{name} does not hold a {dim}-d inner-product IVF index")
        loaded = cls(dim)
        loaded._index, loaded._trained_on = index, trained_on
        return loaded

    @property
    def ntotal(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def nlist(self) -> int:
        return 0 if self._index is None else int(self._index.nlist)

    @property
    def outgrown(self) -> bool:
        return self.ntotal > RETRAIN_GROWTH * self._trained_on

    def ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = _all_ids(self._index) if self._index is not None else np.empty(0, np.int64)
        return self._ids

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._index is None:
            self._index = _trained_index(self.dim, vectors)
            self._trained_on = len(vectors)
        self._index.add_with_ids(vectors, ids)
        self._ids = self._lists = None

    def _remove(self, ids: np.ndarray) -> int:
        if self._index is None:
            return 0
        faiss = import_faiss()
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        if removed:
            self._ids = self._lists = None
        return removed

    def _search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | IdSubset | None, *, far: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = import_faiss()
        nlist = self.nlist
        nprobe = max(MIN_PROBE, math.ceil(nlist * self.scan_share * (FAR_WIDENING if far else 1)))
        if allowed is not None:
            subset = allowed if isinstance(allowed, IdSubset) else IdSubset(allowed)
            return self._filtered_search(queries, k, subset, nprobe)
        params = faiss.SearchParametersIVF(nprobe=min(nprobe, nlist))
        scores, ids = self._index.search(queries, k, params=params)
        if (ids < 0).any() and params.nprobe < nlist:  # the lists held fewer than k: all
            params = faiss.SearchParametersIVF(nprobe=nlist)
            scores, ids = self._index.search(queries, k, params=params)
        return scores, ids

    def _filtered_search(
        self, queries: np.ndarray, k: int, allowed: IdSubset, nprobe: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """A search of the ids in ``allowed``, where an unfiltered one scans ``nprobe`` lists.
        Every list is ranked once per query, for counting the allowed vectors ahead (see
        :meth:`_filtered_probe`) and for the search itself, which then skips FAISS's own
        ranking of the lists (``search_preassigned``).

        A filter keeping at least ``POST_FILTER_SHARE`` is applied to an unfiltered search's
        results instead, where they hold k allowed ids: skipping a vector saves little of a
        scan (the lists are read whole), so a filtered scan of more lists costs more."""
        if len(allowed) >= POST_FILTER_SHARE * self.ntotal:
            found = self._post_filtered(queries, k, allowed, nprobe)
            if found is not None:
                return found
        closeness, ranked = self._ranked_lists(queries)
        nprobe = min(self._filtered_probe(ranked, allowed, nprobe), self.nlist)
        selector, _bitmap = _selector(allowed, self.ntotal)  # must outlive the search
        scores, ids = self._preassigned(queries, k, ranked[:, :nprobe], closeness, selector)
        if (ids < 0).any() and nprobe < self.nlist:  # too few allowed in those lists: all
            scores, ids = self._preassigned(queries, k, ranked, closeness, selector)
        return scores, ids

    def _post_filtered(
        self, queries: np.ndarray, k: int, allowed: IdSubset, nprobe: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The k best allowed ids among an unfiltered search's best ``2 k / share + 16``, or
        None where a query's results hold fewer than k of them. Exact for the lists scanned:
        an allowed vector scoring above the k-th one found would have been among them."""
        faiss = import_faiss()
        fetch = min(self.ntotal, math.ceil(2 * k * self.ntotal / len(allowed)) + 16)
        params = faiss.SearchParametersIVF(nprobe=min(nprobe, self.nlist))
        scores, ids = self._index.search(queries, fetch, params=params)
        kept = allowed.contains(ids) & (ids >= 0)
        if (kept.sum(axis=1) < k).any():
            return None
        rows = np.argsort(~kept, axis=1, kind="stable")[:, :k]  # the first k kept, in order
        return np.take_along_axis(scores, rows, axis=1), np.take_along_axis(ids, rows, axis=1)

    def _ranked_lists(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query, every list's centroid score and the lists by it, best first."""
        if self._centroids is None:
            faiss = import_faiss()
            quantizer = faiss.downcast_index(self._index.quantizer)
            flat = faiss.rev_swig_ptr(quantizer.get_xb(), self.nlist * self.dim)
            self._centroids = flat.reshape(self.nlist, self.dim).copy()
        scores = queries @ self._centroids.T
        ranked = np.argsort(-scores, axis=1, kind="stable")
        return np.take_along_axis(scores, ranked, axis=1), ranked

    def _preassigned(
        self, queries: np.ndarray, k: int, lists: np.ndarray, closeness: np.ndarray, selector
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's search of ``lists`` (per query, best first) through ``selector``. The
        Python wrapper of ``search_preassigned`` refuses search parameters (the selector), so
        this calls the C++ method; ``closeness`` holds the lists' scores (at least as many)."""
        faiss = import_faiss()
        count, probe = lists.shape
        lists = np.ascontiguousarray(lists, dtype=np.int64)
        closeness = np.ascontiguousarray(closeness[:, :probe], dtype=np.float32)
        scores = np.empty((count, k), np.float32)
        ids = np.empty((count, k), np.int64)
        params = faiss.SearchParametersIVF(nprobe=probe, sel=selector)
        self._index.search_preassigned_c(
            count,
            faiss.swig_ptr(queries),
            k,
            faiss.swig_ptr(lists),
            faiss.swig_ptr(closeness),
            faiss.swig_ptr(scores),
            faiss.swig_ptr(ids),
            False,  # store_pairs: ids, not (list, offset) pairs
            params,
        )
        return scores, ids

    def _filtered_probe(self, ranked: np.ndarray, allowed: IdSubset, nprobe: int) -> int:
        """How many lists a search restricted to ``allowed`` scans, where an unrestricted one
        scans ``nprobe``; ``ranked`` holds every list per query, best first.

        The k best allowed vectors rank lower among all vectors than the k best do (the 10
        best of a 10 % filter are about the 100 best of all), so they lie in more lists: the
        lists, in the order the query ranks them, are scanned until they held as many allowed
        vectors as ``(1 / share) ** FILTER_WIDENING * nprobe`` lists would hold were the
        filter spread evenly (every list, for small filters: the search is exact then).
        Counting each list's allowed vectors, rather than assuming them spread evenly, keeps
        the recall of a filter on what the photos show, whose vectors crowd into some lists.
        """
        share = len(allowed) / self.ntotal
        if share <= (nprobe / self.nlist) ** (1 / FILTER_WIDENING):
            return self.nlist  # so few that they fill no fewer lists, however they crowd
        numbers = self._list_numbers()
        if numbers is None:  # ids too sparse for a table: 1 / share times as many lists
            return math.ceil(nprobe / share)
        # Each list's allowed vectors, counted on a sample of at most ~16k of them (what
        # matters are sums over hundreds of lists); the sample's share scales the target.
        sample = allowed.sample(1 << 14)
        found = numbers[sample[sample < len(numbers)]]
        counts = np.bincount(found[found >= 0], minlength=self.nlist)
        if not counts.any():
            return self.nlist
        held = counts.sum() * len(allowed) / len(sample)
        wanted = nprobe * self.ntotal / self.nlist * (held / self.ntotal) ** (1 - FILTER_WIDENING)
        met = np.cumsum(counts[ranked], axis=1) * (len(allowed) / len(sample))
        return int((met < wanted).sum(axis=1).max()) + 1

    def _list_numbers(self) -> np.ndarray | None:
        """For each id up to the largest held, the number of the list holding it (-1: none);
        None where the ids are too sparse for such a table."""
        if self._lists is None:
            held = self.ids()
            size = int(held.max()) + 1 if len(held) else 0
            if size > 64 * len(held) + (1 << 20):
                return None
            self._lists = _list_numbers(self._index, size)
        return self._lists

    def _write(self, file: BinaryIO) -> None:
        faiss = import_faiss()
        _HEADER.write(file, self.dim, self._trained_on)
        if self._index is not None:  # else: empty and untrained, the header says it all
            faiss.write_index(self._index, faiss.PyCallbackIOWriter(file.write))


def _trained_index(dim: int, vectors: np.ndarray) -> Any:
    """An empty IVF index whose centroids are trained on (a sample of) ``vectors``."""
    faiss = import_faiss()
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer,
        dim,
        list_count(len(vectors)),
        faiss.ScalarQuantizer.QT_fp16,
        faiss.METRIC_INNER_PRODUCT,
        False,
    )  # by_residual False: fp16 of the vectors themselves is exact enough, and faster to scan
    train_lists(index, quantizer, vectors)
    return index


def list_count(count: int) -> int:
    """The lists an IVF over ``count`` vectors gets: ``LISTS_PER_SQRT`` sqrt(count)."""
    return max(1, min(count, round(LISTS_PER_SQRT * math.sqrt(count))))


def train_lists(index: Any, quantizer: Any, vectors: np.ndarray, rounds: int | None = None) -> None:
    """Train a new IVF ``index`` (made over ``quantizer``, which it then owns) on
    ``TRAIN_PER_LIST`` vectors a list drawn from ``vectors`` (rows read in order: they may be
    memory-mapped), unit-length centroids; ``rounds`` of k-means (None: FAISS's default)."""
    index.cp.seed = _SEED
    index.cp.spherical = True  # unit-length centroids, as the vectors are
    index.cp.min_points_per_centroid = 1  # small collections (tests): no warning on stderr
    if rounds is not None:
        index.cp.niter = rounds
    index.own_fields = True
    quantizer.this.disown()  # the index owns and frees its quantizer
    sample = TRAIN_PER_LIST * index.nlist
    if len(vectors) > sample:  # k-means on a sample
        rows = np.random.default_rng(_SEED).choice(len(vectors), sample, False)
        vectors = vectors[np.sort(rows)]
    index.train(np.ascontiguousarray(vectors, dtype=np.float32))


def _selector(allowed: IdSubset, count: int) -> tuple[Any, np.ndarray | None]:
    """A FAISS selector for ``allowed`` and the bitmap it points into.

    A bitmap indexed by id: one bit test per scanned vector, where FAISS's IDSelectorBatch (a
    hash set) made filtered searches much slower than unfiltered ones (docs/benchmarks.md,
    section "FAISS threads and the BLAS threshold"). Catalog ids grow from 1, so the bitmap is
    ~count/8 bytes; absurdly large ids fall back to the set."""
    faiss = import_faiss()
    size = allowed.largest() + 1
    if size > 64 * max(count, len(allowed)) + (1 << 20):
        return faiss.IDSelectorBatch(allowed.ids), None
    # id i: bit i & 7 of byte i >> 3
    bitmap = np.packbits(allowed.member_mask(size), bitorder="little")
    return faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap  # n: bytes


def _list_numbers(index: Any, size: int) -> np.ndarray:
    faiss = import_faiss()
    lists = index.invlists
    numbers = np.full(size, -1, np.int32)
    for i in range(index.nlist):
        if count := lists.list_size(i):
            numbers[faiss.rev_swig_ptr(lists.get_ids(i), count)] = i
    return numbers


def _all_ids(index: Any) -> np.ndarray:
    faiss = import_faiss()
    lists = index.invlists
    parts = [
        faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
        for i in range(index.nlist)
        if lists.list_size(i)
    ]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)
