"""How long a photo metadata filter takes at a million images (issue 14), alone and with the
vector search it narrows.

Fills the files table of a catalog made by searchclip's migrations with N rows (default
1,000,000) of plausible metadata (ten years of dates, 40 cameras, a third with GPS, 1,000
folders, 70 % landscape, 25 % portrait, 5 % square), straight through sqlite3: the filter reads
only this table. Then times `Catalog.ids_matching` for filters from narrow to wide: warm
(median of R runs after one call that loads the columns) and cold (the first call after a
change of the files table, which reloads the columns the filter reads), and prints how many
ids each keeps.

``--vectors`` also builds the vector index the engine builds for N vectors (IVF beyond 100k;
N CLIP-like 512-d unit vectors, benchmarks/ann_recall.py's, a few minutes at 1M), one per
catalog id, and times filter + search, as the engine searches a text query
(``index.search(query, 10, allowed=ids, far=True)``), median over Q text queries, for filters
keeping ~1 %, ~10 % and ~50 % of the images, with recall@10 against an exact search of the
allowed vectors; the same for "content-correlated" filters (the images most aligned with one
direction of the embedding, as a filter on a kind of photo would be); and the search alone as
it scanned before issue 14 (1/share times the lists of an unfiltered search).

    python benchmarks/metadata_filters.py [--images N] [--runs R] [--vectors] [--queries Q]
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from searchclip import PhotoFilter
from searchclip._catalog import Catalog, CatalogChanges

FILTERS = {
    "one day": PhotoFilter(taken_from=datetime(2020, 6, 15), taken_until=datetime(2020, 6, 16)),
    "one month": PhotoFilter(taken_from=datetime(2020, 6, 1), taken_until=datetime(2020, 7, 1)),
    "one year": PhotoFilter(taken_from=datetime(2020, 1, 1), taken_until=datetime(2021, 1, 1)),
    "five years": PhotoFilter(taken_until=datetime(2020, 1, 1)),
    "one folder": PhotoFilter(folder="/photos/f0500"),
    "ten folders": PhotoFilter(folders=tuple(f"/photos/f{i:04d}" for i in range(100, 1000, 90))),
    "camera (substring)": PhotoFilter(camera="model 7"),
    "with GPS": PhotoFilter(has_location=True),
    "portrait": PhotoFilter(orientation="portrait"),
    "near a point, 500 km": PhotoFilter(near=(48.86, 2.35), within_km=500),
    "near a point, 5,000 km": PhotoFilter(near=(10.0, 179.0), within_km=5000),
    "path glob /photos/f05*": PhotoFilter(path_glob="/photos/f05*"),
    "path glob IMG_*7.jpg": PhotoFilter(path_glob="IMG_*7.jpg"),
    "path glob f0??0/* (? checked per path)": PhotoFilter(path_glob="f0??0/*"),
    "year + camera + GPS": PhotoFilter(
        taken_from=datetime(2020, 1, 1),
        taken_until=datetime(2021, 1, 1),
        camera="Make 3",
        has_location=True,
    ),
}
SEARCHED = ("one month", "one year", "five years", "with GPS", "ten folders")


def fill(path: Path, images: int) -> None:
    Catalog.open(path).close()  # the schema, by our migrations
    rng = np.random.default_rng(0)
    start = datetime(2015, 1, 1).timestamp()
    taken = start + rng.uniform(0, 10 * 365.25 * 86400, images)
    cameras = rng.integers(0, 40, images)
    located = rng.random(images) < 1 / 3
    shape = rng.choice(3, images, p=[0.7, 0.25, 0.05])  # landscape, portrait, square
    sizes = np.array([(4032, 3024), (3024, 4032), (3024, 3024)])[shape]
    with sqlite3.connect(path) as connection:
        rows = (
            (
                i + 1,
                f"/photos/f{i % 1000:04d}/IMG_{i:07d}.jpg",
                2_000_000,
                0,
                f"{i:032x}",
                int(sizes[i, 0]),
                int(sizes[i, 1]),
                0.0,
                float(taken[i]),
                "exif",
                f"Make {cameras[i] % 8}",
                f"Model {cameras[i]}",
                float(rng.uniform(-60, 60)) if located[i] else None,
                float(rng.uniform(-180, 180)) if located[i] else None,
                "JPEG",
                f"/photos/f{i % 1000:04d}",
            )
            for i in range(images)
        )
        connection.executemany(
            "INSERT INTO files (id, path, size, mtime_ns, content_hash, width, height, "
            "indexed_at, taken_at, taken_at_source, camera_make, camera_model, latitude, "
            "longitude, format, folder) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def touch_one_file(catalog: Catalog) -> None:
    """A change of the files table, as an index run that finds one file touched makes."""
    record = catalog.files_by_id([1])[1]
    model = catalog.model() or catalog.set_model("benchmark", 512)
    catalog.apply(CatalogChanges(restats=[(1, record)]), model)


def time_filters(catalog: Catalog, runs: int) -> dict[str, np.ndarray]:
    print("| filter | ids kept | warm (median) | cold (after a change) |\n|---|---:|---:|---:|")
    kept = {}
    for name, where in FILTERS.items():
        touch_one_file(catalog)
        start = time.perf_counter()
        ids = catalog.ids_matching(where)
        cold = time.perf_counter() - start
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            ids = catalog.ids_matching(where)
            times.append(time.perf_counter() - start)
        kept[name] = ids
        warm = statistics.median(times) * 1000
        print(f"| {name} | {len(ids):,} | {warm:.1f} ms | {cold * 1000:.0f} ms |", flush=True)
    touch_one_file(catalog)
    start = time.perf_counter()
    catalog.ids_matching(PhotoFilter(**_every_group()))
    print(f"cold, every column loaded at once: {time.perf_counter() - start:.2f} s")
    snapshot = catalog._filter_columns._snapshot
    sizes = {name: _nbytes(group) / 1e6 for name, group in snapshot.groups.items()}
    sizes["ids"] = snapshot.ids.nbytes / 1e6
    listed = ", ".join(f"{name} {mb:.0f}" for name, mb in sizes.items())
    print(f"the columns in memory: {sum(sizes.values()):.0f} MB ({listed})")
    return kept


def _nbytes(group) -> int:
    if isinstance(group, np.ndarray):
        return group.nbytes
    if isinstance(group, tuple):
        return sum(_nbytes(part) for part in group)
    return sum(_nbytes(part) for part in vars(group).values() if isinstance(part, np.ndarray))


def _every_group() -> dict:
    return {
        "taken_from": 0.0,
        "camera": "x",
        "lens": "x",
        "formats": ("JPEG",),
        "folder": "/",
        "near": (0.0, 0.0),
        "within_km": 1.0,
        "min_width": 1,
        "path_glob": "*",
    }


def time_searches(catalog: Catalog, kept: dict[str, np.ndarray], images: int, args) -> None:
    from ann_recall import clip_like

    from searchclip._vector_index import build_flat_index, build_index

    started = time.perf_counter()
    vectors = clip_like(images, seed=1)
    queries = clip_like(args.queries, seed=2, text=True)
    ids = np.arange(1, images + 1, dtype=np.int64)
    index = build_index(vectors.shape[1], ids, vectors)
    print(
        f"\n{type(index).__name__} of {images:,} vectors built in "
        f"{time.perf_counter() - started:.0f} s ({getattr(index, 'nlist', 0)} lists)"
    )
    direction = clip_like(1, seed=4)[0]
    alignment = vectors @ direction
    cases = [(name, FILTERS[name], kept[name]) for name in SEARCHED]
    for share in (0.01, 0.1, 0.5):  # the best aligned images: a filter on what they show
        best = np.sort(ids[np.argsort(-alignment)[: int(share * images)]])
        cases.append((f"content-correlated {share:.0%}", None, best))
    print(
        "| filter | ids kept | filter + search | search | search before | unfiltered search "
        "| recall@10 (before) | how (lists before) |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for name, where, allowed in cases:
        rows = allowed - 1
        truth = build_flat_index(vectors.shape[1], allowed, vectors[rows]).search(queries, 10)[1]
        got = _searches(catalog, index, where, allowed, queries, truth)
        print(
            f"| {name} | {len(allowed):,} | {got['total']:.1f} ms | {got['now']:.1f} ms "
            f"| {got['before']:.1f} ms | {got['unfiltered']:.1f} ms "
            f"| {got['recall now']:.3f} ({got['recall before']:.3f}) "
            f"| {got['how']} ({min(index.nlist, got['lists before']):,}) |",
            flush=True,
        )
    start = time.perf_counter()
    for _ in range(args.runs):
        np.intersect1d(index.ids(), kept["five years"], assume_unique=True)
    each = (time.perf_counter() - start) / args.runs * 1000
    print(f"np.intersect1d(index.ids(), ids of 'five years'): {each:.0f} ms a call")


def _probe_before(index, ranked: np.ndarray, allowed, nprobe: int) -> int:
    """The lists a filtered search scanned before issue 14: as many allowed vectors met as
    an unfiltered search meets vectors, assuming them spread evenly."""
    return math.ceil(nprobe * index.ntotal / max(len(allowed), 1))


def _searches(catalog, index, where, allowed, queries, truth) -> dict:
    """Medians over the queries of filter + search (as the engine: the catalog's IdSubset),
    the search alone, the search as before issue 14, and an unfiltered search (ms); recall@10
    now and before; how the search ran (lists scanned, or "post-filter" for an unfiltered
    search's results filtered). The searches of a query run one after the other, so that they
    share the machine's load of that moment."""
    from searchclip._id_subset import IdSubset
    from searchclip._vector_index import ivf

    now_probe, now_share = ivf.IVFIndex._filtered_probe, ivf.POST_FILTER_SHARE
    base = max(ivf.MIN_PROBE, math.ceil(index.nlist * index.scan_share * ivf.FAR_WIDENING))
    times: dict[str, list[float]] = {"total": [], "now": [], "before": [], "unfiltered": []}
    hits: dict[str, list[float]] = {"now": [], "before": []}
    how: list[int] = []  # lists scanned; 0: post-filtered
    for query, best in zip(queries, truth, strict=True):
        start = time.perf_counter()
        subset = catalog.matching(where) if where is not None else IdSubset(allowed)
        middle = time.perf_counter()
        found = index.search(query[None], 10, allowed=subset, far=True)[1][0]
        end = time.perf_counter()
        times["total"].append(end - start)
        times["now"].append(end - middle)
        hits["now"].append(len(set(found.tolist()) & set(best.tolist())) / 10)
        post = len(subset) >= now_share * index.ntotal
        if post and index._post_filtered(query[None], 10, subset, base) is not None:
            how.append(0)
        else:
            ranked = index._ranked_lists(query[None])[1]
            how.append(min(index.nlist, now_probe(index, ranked, subset, base)))
        ivf.IVFIndex._filtered_probe, ivf.POST_FILTER_SHARE = _probe_before, 2.0
        try:
            start = time.perf_counter()
            found = index.search(query[None], 10, allowed=subset.ids, far=True)[1][0]
            times["before"].append(time.perf_counter() - start)
        finally:
            ivf.IVFIndex._filtered_probe, ivf.POST_FILTER_SHARE = now_probe, now_share
        hits["before"].append(len(set(found.tolist()) & set(best.tolist())) / 10)
        start = time.perf_counter()
        index.search(query[None], 10, far=True)
        times["unfiltered"].append(time.perf_counter() - start)
    result: dict = {name: statistics.median(values) * 1000 for name, values in times.items()}
    result.update((f"recall {name}", float(np.mean(values))) for name, values in hits.items())
    lists = [count for count in how if count]
    posted = len(how) - len(lists)
    result["how"] = (
        (f"post-filter ({posted} of {len(how)})" if posted else "")
        + (" + " if posted and lists else "")
        + (f"{int(np.median(lists)):,} lists" if lists else "")
    )
    result["lists before"] = _probe_before(index, None, allowed, base)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--vectors", action="store_true", help="also time the filtered search")
    parser.add_argument("--queries", type=int, default=40, help="text queries searched")
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="metadata-filters-")) / "catalog.sqlite"
    started = time.perf_counter()
    fill(path, args.images)
    print(f"{args.images:,} rows written in {time.perf_counter() - started:.0f} s")
    with Catalog.open(path) as catalog:
        kept = time_filters(catalog, args.runs)
        if args.vectors:
            time_searches(catalog, kept, args.images, args)


if __name__ == "__main__":
    main()
