"""Building an on-disk IVF base (see :mod:`ondisk`) from a stream of vectors, autofaiss-style.

One pass over the stream writes the re-ranking file (fp16 vectors, the ids after them); the
IVF is trained on a sample of it; the vectors are then added shard by shard, each shard a job
of its own that starts from the trained, empty index and returns its lists (on a cluster, a Ray
task: :func:`searchclip._cluster.shards.ray_shard_runner`); FAISS merges the shards' lists into
one file that queries memory-map. The codes are SQ8 where the collection's codes fit the memory
budget, else PQ (8x smaller): a query's scan reads the codes of the lists it probes, so they
should stay in the page cache; re-ranking makes up what PQ loses (figures: docs/scale.md).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from searchclip._vector_index.faiss_setup import import_faiss
from searchclip._vector_index.ivf import list_count, train_lists
from searchclip._vector_index.ondisk import (
    OnDiskIVFIndex,
    base_files,
    mapped_rerank,
    write_rerank_header,
)

SHARD_VECTORS = 500_000  # per shard job: ~1.5 GB while it adds (fp32 in, codes out)
TRAIN_ITERATIONS = 10  # k-means rounds: at 10M, 25 rounds (FAISS's default) cost ~2.5x
MEMORY_BUDGET_ENV = "SEARCHCLIP_INDEX_MEMORY_MB"
_ADD_ROWS = 1 << 16  # vectors converted to fp32 and added at a time within a shard

# ``run_shards(function, shared, jobs)`` calls ``function(shared, *job)`` for every job, in
# any order and place, and yields the results; ``shared`` is the same for every call.
ShardRunner = Callable[[Callable[..., np.ndarray], Any, Iterable[tuple]], Iterator[np.ndarray]]


def run_shards_here(
    function: Callable[..., np.ndarray], shared: Any, jobs: Iterable[tuple]
) -> Iterator[np.ndarray]:
    """Each shard in turn, in this process: one shard's memory at a time."""
    for job in jobs:
        yield function(shared, *job)


def memory_budget() -> int:
    """Bytes the lists' codes may take (``$SEARCHCLIP_INDEX_MEMORY_MB``; else a quarter of
    this machine's memory): what the page cache should hold for queries to stay fast."""
    if value := os.environ.get(MEMORY_BUDGET_ENV):
        with contextlib.suppress(ValueError):
            return max(1, int(float(value) * 2**20))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (OSError, ValueError, AttributeError):  # no sysconf (Windows): assume 16 GB
        return 4 << 30


def codes_for(count: int, dim: int, budget: int) -> str:
    """The codes for ``count`` vectors: ``SQ8`` (a byte a dimension) where they fit ``budget``,
    else ``PQ<m>`` with m sub-quantizers of a byte (m = dim / 8, or the largest divisor of
    ``dim`` below it)."""
    if count * dim <= budget:
        return "SQ8"
    m = max(d for d in range(1, dim // 8 + 1) if dim % d == 0)
    return f"PQ{m}"


def build_on_disk(
    dim: int,
    chunks: Iterable[tuple[np.ndarray, np.ndarray]],
    directory: Path,
    *,
    codes: str | None = None,
    run_shards: ShardRunner | None = None,
    shard_vectors: int | None = None,
) -> OnDiskIVFIndex:
    """A new base in ``directory`` holding the (ids, vectors) of ``chunks`` (ids ascending
    across chunks, vectors unit length), opened; ``codes`` overrides :func:`codes_for`. The
    files are removed again if the build fails. ``run_shards``: where the shard jobs run
    (None: here, one after another); ``shard_vectors``: vectors a job adds (default
    ``SHARD_VECTORS``)."""
    run_shards = run_shards or run_shards_here
    shard_vectors = shard_vectors or SHARD_VECTORS
    base = f"ondisk-{secrets.token_hex(6)}"
    ivf_path, lists_path, rerank_path = base_files(directory, base)
    shard_paths: list[Path] = []
    try:
        count = _write_rerank(rerank_path, dim, chunks)
        if not count:
            raise ValueError("an on-disk index needs at least one vector")
        ids, rows = mapped_rerank(rerank_path, dim)
        index = _trained(dim, rows, codes or codes_for(count, dim, memory_budget()))
        faiss = import_faiss()
        trained = faiss.serialize_index(index)
        jobs = (
            (np.array(ids[start : start + shard_vectors]), rows[start : start + shard_vectors])
            for start in range(0, count, shard_vectors)
        )
        for number, shard in enumerate(run_shards(add_shard, trained, jobs)):
            shard_paths.append(directory / f"{base}.shard{number}")
            shard.tofile(shard_paths[-1])
        _merge(index, shard_paths, lists_path)
        faiss.write_index(index, os.fspath(ivf_path))
        del index
        return OnDiskIVFIndex.open_base(directory, base, dim)
    except BaseException:
        for path in base_files(directory, base):
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    finally:
        for path in shard_paths:
            with contextlib.suppress(OSError):
                path.unlink()


def add_shard(trained: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The trained, empty index (serialized) with ``rows`` (fp16) added under ``ids``,
    serialized: one shard's lists."""
    faiss = import_faiss()
    index = faiss.deserialize_index(trained)
    for start in range(0, len(ids), _ADD_ROWS):
        vectors = np.ascontiguousarray(rows[start : start + _ADD_ROWS], dtype=np.float32)
        index.add_with_ids(vectors, np.ascontiguousarray(ids[start : start + _ADD_ROWS]))
    return faiss.serialize_index(index)


def _write_rerank(path: Path, dim: int, chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> int:
    """Write every chunk's vectors at fp16, then their ids; return how many."""
    parts, last = [], -1
    with open(path, "wb") as file:
        write_rerank_header(file, dim, 0)  # the count, once known, below
        for ids, vectors in chunks:
            ids = np.asarray(ids, dtype=np.int64)
            if len(ids) and (ids[0] <= last or (len(ids) > 1 and (np.diff(ids) <= 0).any())):
                raise ValueError("ids must ascend across the chunks")
            if vectors.shape != (len(ids), dim):
                raise ValueError(f"a chunk holds {vectors.shape} vectors for {len(ids)} ids")
            file.write(np.ascontiguousarray(vectors, dtype=np.float16).tobytes())
            parts.append(ids)
            last = int(ids[-1]) if len(ids) else last
        ids = np.concatenate(parts) if parts else np.empty(0, np.int64)
        file.write(ids.tobytes())
        file.seek(0)
        write_rerank_header(file, dim, len(ids))
    return len(ids)


def _trained(dim: int, rows: np.ndarray, codes: str) -> Any:
    """An empty IVF over ``codes``, its lists and codes trained on a sample of ``rows``."""
    faiss = import_faiss()
    nlist = list_count(len(rows))
    quantizer = faiss.IndexFlatIP(dim)
    metric = faiss.METRIC_INNER_PRODUCT
    if codes == "SQ8":  # of the vectors themselves, as the in-memory IVF's fp16
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, metric, False
        )
    elif codes.startswith("PQ") and codes[2:].isdigit() and dim % int(codes[2:]) == 0:
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, int(codes[2:]), 8, metric)
    else:
        raise ValueError(f"unknown codes {codes!r}: SQ8 or PQ<m>, m dividing {dim}")
    train_lists(index, quantizer, rows, rounds=TRAIN_ITERATIONS)
    return index


def _merge(index: Any, shard_paths: list[Path], lists_path: Path) -> None:
    """Merge the shards' lists into ``lists_path`` and make them ``index``'s lists."""
    faiss = import_faiss()
    shards = [faiss.read_index(os.fspath(path), faiss.IO_FLAG_MMAP) for path in shard_paths]
    lists = faiss.OnDiskInvertedLists(index.nlist, index.code_size, os.fspath(lists_path))
    pointers = faiss.InvertedListsPtrVector()
    for shard in shards:
        pointers.push_back(shard.invlists)
    with _stdout_silenced():  # FAISS prints "resizing <file> to <n> bytes" as it grows
        total = lists.merge_from_multiple(pointers.data(), pointers.size(), False)
    index.ntotal = total
    index.replace_invlists(lists, True)
    lists.this.disown()  # the index owns and frees it (the shards' mappings close on return)


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """The process's stdout (the file descriptor, which C code writes to) on /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
