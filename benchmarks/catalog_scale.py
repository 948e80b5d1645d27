"""SearchClip's SQLite catalog at N rows (1M, 10M): insert rate, size on disk, reads, streaming.

Builds a catalog of N photos (one files row with realistic metadata and one 512-d float32
vector each) in a fresh file under --out, then measures it. Rows are written the way an index
run writes them, through ``Catalog.apply`` in batches (--batch rows a transaction); past
--api-rows the middle of the catalog is filled with raw sqlite3 ``executemany`` of exactly the
columns ``apply`` writes (labelled "raw fill": a shortcut of this benchmark, not what an index
run pays), and the last --tail-rows go through ``apply`` again, so the API's rate is also
measured at full size (the first ``PROBE_ROWS`` of them in batches of 32, the indexer's default
batch size). Dates rise with the row (an index run walks /photos/YYYY/MM/ in order) over ten
years, 2015-2024; cameras are drawn with fixed shares (Canon 10 %, Leica 1 %, ...).

Then, each in its own process (its peak RSS is the phase's): ``Catalog.open`` + ``state()``,
``count_files``, ``files_by_id`` of 100 random ids, ``vectors_by_id`` of 100 and 1,000,
``matching`` for a 10 % (taken in 2024) and a 1 % (camera Leica) filter, ``content_hashes``,
``files_under`` of a year and of the root, every vector streamed in chunks of 100k rows
(a loop of this benchmark: keyset-paged selects on the catalog's tables), ``all_vectors``
where it fits in memory, and the bytes each table takes (SQLite's dbstat). A read is timed
once fresh in its process ("first": the snapshot loads, SQLAlchemy's compiled-statement
cache) and then --runs (or --heavy-runs for whole-table reads) times ("median").

    python benchmarks/catalog_scale.py --rows 1000000 --out /tmp/catalog-scale
        [--api-rows 1000000] [--tail-rows 50000] [--batch 1000] [--runs 7] [--heavy-runs 3]
        [--memory-limit-gb 12] [--keep] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sqlite3
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from metadata_filters import _nbytes

DIM = 512
MODEL = "benchmark-512"
PROBE_ROWS = 9_600  # of the tail, in batches of 32 (IngestOptions.batch_size's default)
FILL_CHUNK = 10_000  # rows a transaction of the raw fill
STREAM_CHUNK = 100_000
ALL_VECTORS_PEAK_PER_BYTE = 4  # Catalog.all_vectors' peak RSS / the vectors' bytes (1M rows)
FIRST_DAY = datetime(2015, 1, 1, tzinfo=UTC).timestamp()
LAST_DAY = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
# (make, model, lens, share): make and model as EXIF writes them
CAMERAS = (
    ("Apple", "iPhone 13", None, 0.25),
    ("Apple", "iPhone 15 Pro", None, 0.15),
    ("samsung", "SM-S911B", None, 0.20),
    ("Canon", "Canon EOS R6", "RF24-105mm F4 L IS USM", 0.10),
    ("NIKON CORPORATION", "NIKON Z 6", "NIKKOR Z 24-70mm f/4 S", 0.09),
    ("SONY", "ILCE-7M3", "FE 28-70mm F3.5-5.6 OSS", 0.09),
    ("FUJIFILM", "X-T4", "XF16-80mmF4 R OIS WR", 0.05),
    ("Google", "Pixel 7", None, 0.06),
    ("LEICA CAMERA AG", "LEICA Q2", "SUMMILUX 1:1.7/28 ASPH.", 0.01),
)
SHAPES = ((4032, 3024), (3024, 4032), (4000, 3000), (6000, 4000), (4000, 6000))


def _catalog():
    from searchclip._catalog import Catalog, CatalogChanges

    return Catalog, CatalogChanges


def _filters() -> dict:
    from searchclip import PhotoFilter

    year = PhotoFilter(taken_from=datetime(2024, 1, 1), taken_until=datetime(2025, 1, 1))
    return {"taken in 2024 (10 %)": year, "camera Leica (1 %)": PhotoFilter(camera="leica")}


# --- the rows --------------------------------------------------------------------------------


def entries(start: int, count: int, total: int) -> tuple[list, np.ndarray]:
    """The FileEntries and unit vectors of rows start .. start+count-1 of a library of
    ``total`` photos (row i is file id i+1); the same rows for the same arguments."""
    from searchclip._catalog import FileEntry
    from searchclip._results import PhotoMetadata

    rng = np.random.default_rng(start)
    rows = np.arange(start, start + count)
    taken = FIRST_DAY + (rows + rng.random(count)) / total * (LAST_DAY - FIRST_DAY)
    stamps = taken.astype("datetime64[s]")
    years = stamps.astype("datetime64[Y]").astype(int) + 1970
    months = stamps.astype("datetime64[M]").astype(int) % 12 + 1
    sizes = rng.integers(1_500_000, 9_000_000, count)
    mtimes = (taken * 1e9).astype(np.int64) + rng.integers(0, 10**12, count)
    hashes = rng.bytes(16 * count).hex()
    shapes = rng.integers(0, len(SHAPES), count)
    cameras = rng.choice(len(CAMERAS), count, p=[camera[3] for camera in CAMERAS])
    located = rng.random(count) < 0.35
    latitudes, longitudes = rng.uniform(-60, 70, count), rng.uniform(-180, 180, count)
    offsets = rng.choice([None, 0, 60, 120, -300, 540], count)
    phashes = rng.integers(-(2**63), 2**63 - 1, count, dtype=np.int64)
    files = []
    for k in range(count):
        make, model, lens, _ = CAMERAS[cameras[k]]
        width, height = SHAPES[shapes[k]]
        metadata = PhotoMetadata(
            taken_at=float(taken[k]),
            taken_at_source="exif",
            utc_offset_minutes=offsets[k],
            camera_make=make,
            camera_model=model,
            lens=lens,
            latitude=float(latitudes[k]) if located[k] else None,
            longitude=float(longitudes[k]) if located[k] else None,
            format="JPEG",
        )
        files.append(
            FileEntry(
                f"/photos/{years[k]}/{months[k]:02d}/IMG_{rows[k] + 1:08d}.jpg",
                int(sizes[k]),
                int(mtimes[k]),
                hashes[32 * k : 32 * k + 32],
                width,
                height,
                metadata,
                int(phashes[k]),
            )
        )
    vectors = rng.standard_normal((count, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return files, vectors


# --- phases, each run in a process of its own ------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_child(limit_gb: float, function, *args) -> dict:
    """Run ``function`` here (a fresh process) under an address-space limit; its figures, the
    RSS after imports and the peak RSS, or the error that stopped it."""
    limit = int(limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _catalog()
    base = _rss_mb()
    started = time.perf_counter()
    try:
        result = function(*args)
    except Exception as exc:  # MemoryError too: reported, the run goes on
        result = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    result["wall_s"] = time.perf_counter() - started
    result["base_rss_mb"], result["peak_rss_mb"] = base, _rss_mb()
    return result


def phase(args, function, *call_args) -> dict:
    """``function(*call_args)`` in a spawned process (so ru_maxrss is this phase's alone)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_in_child, args.memory_limit_gb, function, *call_args).result()


def insert_through_api(path: str, start: int, count: int, batch: int, total: int) -> dict:
    """Rows start .. start+count-1 through ``Catalog.apply``, ``batch`` upserts a transaction;
    the rate of ``apply`` alone (making the rows is not timed) and per 100k rows."""
    Catalog, CatalogChanges = _catalog()
    applying, blocks, block_s, block_rows, wal = 0.0, [], 0.0, 0, 0
    with Catalog.open(path) as catalog:
        model = catalog.model() or catalog.set_model(MODEL, DIM)
        for begin in range(start, start + count, batch):
            files, vectors = entries(begin, min(batch, start + count - begin), total)
            changes = CatalogChanges(upserts=list(zip(files, vectors, strict=True)))
            started = time.perf_counter()
            ids = catalog.apply(changes, model)
            took = time.perf_counter() - started
            if ids[0] != begin + 1:
                raise RuntimeError(f"row {begin} got id {ids[0]}")
            wal = max(wal, _file_sizes(Path(path))["-wal"])
            applying, block_s, block_rows = applying + took, block_s + took, block_rows + len(ids)
            if block_rows >= 100_000 or begin + batch >= start + count:
                blocks.append(block_rows / block_s)
                print(f"  api: {begin + len(ids):,} rows, {blocks[-1]:,.0f} rows/s", flush=True)
                block_s, block_rows = 0.0, 0
    return {"rows": count, "batch": batch, "apply_s": applying, "blocks": blocks, "wal": wal}


def fill_raw(path: str, start: int, count: int, total: int) -> dict:
    """Rows start .. start+count-1 by raw sqlite3 executemany (FILL ONLY: the columns of
    ``Catalog.apply``'s, the catalog's connection settings, FILL_CHUNK rows a transaction),
    then bump the generation counters as ``apply`` does."""
    from searchclip._catalog.catalog import _entry_values

    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in ("synchronous=NORMAL", "foreign_keys=ON", "cache_size=-65536"):
        connection.execute(f"PRAGMA {pragma}")
    (model_id,) = connection.execute("SELECT id FROM models WHERE name = ?", (MODEL,)).fetchone()
    columns, wal = None, 0
    started = time.perf_counter()
    for begin in range(start, start + count, FILL_CHUNK):
        files, vectors = entries(begin, min(FILL_CHUNK, start + count - begin), total)
        now = time.time()
        rows = []
        for k, entry in enumerate(files):
            values = {"id": begin + k + 1, **_entry_values(entry), "indexed_at": now}
            columns = columns or list(values)
            rows.append(tuple(values[column] for column in columns))
        blobs = [
            (begin + k + 1, model_id, vector.astype("<f4").tobytes())
            for k, vector in enumerate(vectors)
        ]
        connection.execute("BEGIN")
        connection.executemany(
            f"INSERT INTO files ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            rows,
        )
        connection.executemany(
            "INSERT INTO vectors (file_id, model_id, vector) VALUES (?, ?, ?)", blobs
        )
        connection.execute("COMMIT")
        wal = max(wal, _file_sizes(Path(path))["-wal"])
        done = begin + len(files) - start
        if done % 1_000_000 < FILL_CHUNK:
            rate = done / (time.perf_counter() - started)
            print(f"  raw fill: {begin + len(files):,} rows, {rate:,.0f} rows/s", flush=True)
    took = time.perf_counter() - started
    connection.execute("BEGIN")
    for key in ("vectors_generation", "files_generation"):
        connection.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES "
            "(?, CAST(ifnull((SELECT value FROM settings WHERE key = ?), 0) + 1 AS TEXT))",
            (key, key),
        )
    connection.execute("COMMIT")
    connection.close()
    return {"rows": count, "fill_s": took, "wal": wal}


def _timed(call, runs: int) -> tuple[float, float, object]:
    """(first call's seconds, median of ``runs`` more, the last result)."""
    started = time.perf_counter()
    result = call()
    first = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times) if times else first, result


def read_open_state(path: str, runs: int) -> dict:
    Catalog, _ = _catalog()

    def call():
        with Catalog.open(path) as catalog:
            return catalog.state().files

    first, median, files = _timed(call, runs)
    return {"first_s": first, "median_s": median, "note": f"{files:,} files"}


def read_with_catalog(path: str, runs: int, what: str, total: int) -> dict:
    """One of the catalog's reads, by name, on random ids (new ones each call)."""
    Catalog, _ = _catalog()
    rng = np.random.default_rng(7)

    def random_ids(n: int) -> list[int]:
        return [int(i) for i in rng.choice(np.arange(1, total + 1), n, replace=False)]

    with Catalog.open(path) as catalog:
        model = catalog.model()
        calls = {
            "count_files": catalog.count_files,
            "files_by_id 100": lambda: len(catalog.files_by_id(random_ids(100))),
            "vectors_by_id 100": lambda: len(catalog.vectors_by_id(random_ids(100), model)),
            "vectors_by_id 1000": lambda: len(catalog.vectors_by_id(random_ids(1000), model)),
        }
        if what in calls:
            first, median, result = _timed(calls[what], runs)
            return {"first_s": first, "median_s": median, "note": f"{result:,}"}
        where = _filters()[what]
        first, median, subset = _timed(lambda: catalog.matching(where), runs)
        snapshot = catalog._filter_columns._snapshot
        columns = snapshot.ids.nbytes + sum(_nbytes(group) for group in snapshot.groups.values())
        return {
            "first_s": first,
            "median_s": median,
            "note": f"{len(subset):,} kept ({len(subset) / total:.1%}); first call loads the "
            f"columns ({columns / 1e6:.0f} MB)",
        }


def read_whole(path: str, runs: int, what: str) -> dict:
    """A read that returns one Python object per row: time, and the memory it takes."""
    Catalog, _ = _catalog()
    with Catalog.open(path) as catalog:
        model = catalog.model()
        before = _rss_mb()
        if what == "content_hashes":
            call = lambda: catalog.content_hashes(model)  # noqa: E731
        else:
            call = lambda: catalog.files_under(what.split(" ", 1)[1])  # noqa: E731
        started = time.perf_counter()
        result = call()
        first = time.perf_counter() - started
        held = _rss_mb() - before  # the peak so far: during the first call, result alive
        size = _deep_size(result) if what == "content_hashes" else None
        count = len(result)
        del result
        times = []
        for _ in range(runs - 1):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        median = statistics.median(times) if times else first
    note = f"{count:,} rows; peak RSS +{held:,.0f} MB during the first call"
    if size is not None:
        note += f"; the set itself {size / 1e6:,.0f} MB ({size / max(count, 1):.0f} B/hash)"
    return {"first_s": first, "median_s": median, "note": note}


def _deep_size(hashes: set[str]) -> int:
    return sys.getsizeof(hashes) + sum(sys.getsizeof(value) for value in hashes)


def stream_vectors(path: str, runs: int) -> dict:
    """BENCHMARK LOOP (no catalog API does this): every vector of the model, STREAM_CHUNK rows
    a select ordered by file_id (keyset paging), each chunk made one float32 array."""
    from sqlalchemy import select

    from searchclip._catalog import schema

    Catalog, _ = _catalog()
    vectors = schema.vectors
    with Catalog.open(path) as catalog:
        model = catalog.model()

        def call() -> int:
            seen, last = 0, 0
            with catalog._engine.connect() as connection:
                while True:
                    query = (
                        select(vectors.c.file_id, vectors.c.vector)
                        .where(vectors.c.model_id == model.id, vectors.c.file_id > last)
                        .order_by(vectors.c.file_id)
                        .limit(STREAM_CHUNK)
                    )
                    rows = connection.execute(query).all()
                    if not rows:
                        return seen
                    chunk = np.frombuffer(b"".join(row[1] for row in rows), "<f4")
                    seen, last = seen + len(chunk) // model.dim, rows[-1][0]

        first, median, seen = _timed(call, runs - 1)
    megabytes = seen * DIM * 4 / 1e6
    return {
        "first_s": first,
        "median_s": median,
        "note": f"{seen:,} vectors, {megabytes / first:,.0f} MB/s first, "
        f"{megabytes / median:,.0f} MB/s median",
    }


def read_all_vectors(path: str, runs: int) -> dict:
    Catalog, _ = _catalog()
    with Catalog.open(path) as catalog:
        model = catalog.model()
        first, median, (ids, _) = _timed(lambda: catalog.all_vectors(model), runs - 1)
    return {"first_s": first, "median_s": median, "note": f"{len(ids):,} vectors"}


def table_bytes(path: str) -> dict:
    """Bytes on disk per table and index (SQLite's dbstat, which reads every page)."""
    connection = sqlite3.connect(path)
    rows = connection.execute(
        "SELECT name, sum(pgsize), sum(unused) FROM dbstat GROUP BY name ORDER BY 2 DESC"
    ).fetchall()
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    connection.close()
    return {"tables": rows, "page_size": page_size}


# --- the run ---------------------------------------------------------------------------------


def _file_sizes(path: Path) -> dict:
    sizes = {}
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        sizes[suffix or "main"] = part.stat().st_size if part.exists() else 0
    return sizes


def build(args, path: Path) -> list[tuple[str, dict]]:
    """The catalog of --rows rows: API head, raw fill (if any), API tail."""
    n = args.rows
    tail = min(args.tail_rows, n)
    head = min(args.api_rows, n - tail)
    probe = min(PROBE_ROWS, tail)
    steps = [("api", f"apply, batches of {args.batch}", 0, head, args.batch)]
    if head < n - tail:
        label = "RAW FILL (sqlite3 executemany, not the API)"
        steps.append(("raw", label, head, n - tail - head, 0))
    steps.append(("api", "apply at full size, batches of 32", n - tail, probe, 32))
    steps.append(
        (
            "api",
            f"apply at full size, batches of {args.batch}",
            n - tail + probe,
            tail - probe,
            args.batch,
        )
    )
    done = []
    for kind, label, start, count, batch in steps:
        if count <= 0:
            continue
        print(f"{label}: rows {start:,} .. {start + count - 1:,}", flush=True)
        if kind == "api":
            result = phase(args, insert_through_api, str(path), start, count, batch, n)
            rate = count / result["apply_s"] if "apply_s" in result else 0
            result["note"] = (
                f"{rate:,.0f} rows/s in apply ({count / result['wall_s']:,.0f} "
                "wall, with making the rows)"
            )
            if len(result.get("blocks", [])) > 1:
                blocks = result["blocks"]
                result["note"] += f"; per 100k: first {blocks[0]:,.0f}, last {blocks[-2]:,.0f}"
        else:
            result = phase(args, fill_raw, str(path), start, count, n)
            rate = count / result["fill_s"] if "fill_s" in result else 0
            result["note"] = f"{rate:,.0f} rows/s (a shortcut of this benchmark)"
        result["rows_span"] = f"{start:,}+{count:,}"
        result["wal_after"] = _file_sizes(path)["-wal"]  # 0: the last close checkpoints it
        done.append((f"insert: {label}", result))
        print(f"  {result.get('error', result['note'])}; {result['wall_s']:.0f} s", flush=True)
    return done


def reads(args, path: Path) -> list[tuple[str, dict]]:
    n, where = args.rows, str(path)
    plan = [("Catalog.open + state()", read_open_state, (where, args.runs))]
    for what in ("count_files", "files_by_id 100", "vectors_by_id 100", "vectors_by_id 1000"):
        plan.append((what, read_with_catalog, (where, args.runs, what, n)))
    for what in _filters():
        plan.append((f"matching: {what}", read_with_catalog, (where, args.runs, what, n)))
    for what in ("content_hashes", "files_under /photos/2024", "files_under /photos"):
        plan.append((what, read_whole, (where, args.heavy_runs, what)))
    plan.append(
        (
            "stream all vectors, 100k a chunk (benchmark loop)",
            stream_vectors,
            (where, args.heavy_runs),
        )
    )
    # all_vectors holds every row (a bytes object each), their join and a float32 copy: at 1M
    # rows its peak RSS was 8.2 GB, 4x the 2.05 GB of vectors.
    needs = ALL_VECTORS_PEAK_PER_BYTE * n * DIM * 4
    skipped = None
    if needs < args.memory_limit_gb * 2**30:
        plan.append(("Catalog.all_vectors", read_all_vectors, (where, args.heavy_runs)))
    else:
        skipped = (
            f"not called: its peak RSS would be ~{needs / 1e9:.0f} GB "
            f"({ALL_VECTORS_PEAK_PER_BYTE}x the vectors' bytes, as measured at 1M rows), above "
            f"--memory-limit-gb {args.memory_limit_gb:g}"
        )
    done = []
    for name, function, call_args in plan:
        result = phase(args, function, *call_args)
        done.append((name, result))
        shown = result.get("error") or (
            f"first {result['first_s'] * 1000:,.1f} ms, median {result['median_s'] * 1000:,.1f} "
            f"ms; {result['note']}"
        )
        print(f"{name}: {shown}; peak RSS {result['peak_rss_mb']:,.0f} MB", flush=True)
    if skipped:
        print(f"Catalog.all_vectors: {skipped}", flush=True)
        done.append(("Catalog.all_vectors", {"error": skipped, "peak_rss_mb": 0}))
    return done


def print_table(args, built, measured, sizes: dict, tables: dict, wall: float) -> None:
    n = args.rows
    print(f"\n## Catalog at {n:,} rows ({DIM}-d float32 vectors), SQLite {sqlite3.sqlite_version}")
    print(
        "\n| insert phase | rows | wall | figure | peak RSS | -wal peak (after close) |"
        "\n|---|---:|---:|---|---:|---:|"
    )
    for name, result in built:
        shown = result.get("error") or result["note"]
        print(
            f"| {name} | {result['rows_span']} | {result['wall_s']:,.0f} s | {shown} "
            f"| {result['peak_rss_mb']:,.0f} MB | {result.get('wal', 0) / 1e6:,.0f} MB "
            f"({result['wal_after'] / 1e6:,.0f} MB) |"
        )
    total = sizes["main"]
    print(
        f"\nfile: {total:,} bytes ({total / n:,.0f} B/row), -wal {sizes['-wal']:,} bytes, "
        f"-shm {sizes['-shm']:,} bytes; page size {tables.get('page_size')}"
    )
    if "tables" in tables:
        listed = ", ".join(
            f"{name} {size / 1e9:.2f} GB ({size / n:,.0f} B/row, {unused / size:.0%} unused)"
            for name, size, unused in tables["tables"]
            if size >= 1e6
        )
        print(f"by table/index (dbstat): {listed}")
    print(
        "\n| read | first | median | runs | peak RSS (after imports) | notes |"
        "\n|---|---:|---:|---:|---:|---|"
    )
    for name, result in measured:
        if "error" in result:
            print(f"| {name} | - | - | - | {result['peak_rss_mb']:,.0f} MB | {result['error']} |")
            continue
        heavy = name.startswith(("content", "files_under", "stream", "Catalog.all"))
        runs = args.heavy_runs if heavy else args.runs
        print(
            f"| {name} | {_ms(result['first_s'])} | {_ms(result['median_s'])} | {runs} "
            f"| {result['peak_rss_mb']:,.0f} MB ({result['base_rss_mb']:,.0f}) "
            f"| {result['note']} |"
        )
    print(f"\ntotal wall: {wall / 60:.1f} min")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/catalog-scale"))
    parser.add_argument("--api-rows", type=int, default=1_000_000)
    parser.add_argument("--tail-rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--heavy-runs", type=int, default=3)
    parser.add_argument("--memory-limit-gb", type=float, default=12.0)
    parser.add_argument("--keep", action="store_true", help="keep the catalog files")
    parser.add_argument("--reuse", action="store_true", help="measure an existing catalog")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"catalog-{args.rows}.sqlite"
    started = time.perf_counter()
    built = []
    if not args.reuse:
        for part in _file_sizes(path):
            Path(f"{path}{'' if part == 'main' else part}").unlink(missing_ok=True)
        built = build(args, path)
    sizes = _file_sizes(path)
    measured = reads(args, path)
    print("dbstat: bytes per table", flush=True)
    tables = phase(args, table_bytes, str(path))
    sizes_after = _file_sizes(path)
    wall = time.perf_counter() - started
    print_table(args, built, measured, sizes, tables, wall)
    print(f"-wal at the end of the run: {sizes_after['-wal']:,} bytes")
    record = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "built": built,
        "measured": measured,
        "sizes": sizes,
        "sizes_after": sizes_after,
        "tables": tables,
        "wall_s": wall,
    }
    (args.out / f"results-{args.rows}.json").write_text(json.dumps(record, indent=1, default=str))
    if not args.keep:
        for part in sizes_after:
            Path(f"{path}{'' if part == 'main' else part}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
