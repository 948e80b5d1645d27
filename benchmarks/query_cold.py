"""A cold text query against a large index, as a fresh process (issue 5, target 3).

Builds (or reuses) an index of N synthetic vectors (default 100,000) for the full-size ViT-B/32
architecture with random weights (benchmarks/out/vit-b32-random, made by make_random_vitb32.py
when missing). Encoding 100k images would take hours, so the catalog is filled through its own
API (``Catalog.set_model`` + ``Catalog.apply`` with random unit vectors and made-up file rows),
the text tower is exported to ONNX as ``searchclip index`` does for an index of --precision
(int8, what ``auto`` picks on this project's CPU: also an int8 copy of the text tower, used when
it agrees with torch; or fp32), and the FAISS file is written as an index run writes it.
Then it times:

- ``searchclip query "a dog on a beach" --index DIR`` as a fresh subprocess, start to exit
  (the results are its last output), median of --runs after one untimed run;
- the warm library cost of ``engine.search`` (median over --warm-queries queries);
- how close the ONNX vectors are to torch's (min cosine; the int8 one as the export measured it);
- the peak memory (RSS) of the query processes.

    python benchmarks/query_cold.py [--n 100000] [--precision int8|fp32] [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = REPO / "benchmarks" / "out" / "query-cold"
DEFAULT_MODEL = REPO / "benchmarks" / "out" / "vit-b32-random"
QUERY = "a dog on a beach"
CHECK_TEXTS = [
    "a dog on a beach",
    "A Red Car parked by the old harbour, at dusk; people walking past!",
    "x",
    "a long caption " * 40,
]
WARM_QUERIES = [f"a photo of {thing} number {i}" for i in range(10) for thing in "abcde"]


def ensure_model(model: Path) -> Path:
    if not (model / "model.safetensors").is_file():
        subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "make_random_vitb32.py"), str(model)],
            check=True,
        )
    return model


def build_index(index_dir: Path, model: Path, n: int, precision: str, seed: int = 0) -> None:
    """Catalog rows + random unit vectors through the catalog's API."""
    from searchclip._catalog import Catalog, CatalogChanges, FileEntry
    from searchclip._encoders import resolve_model_name
    from searchclip._vector_store import VectorStore

    if index_dir.exists():
        shutil.rmtree(index_dir)
    index_dir.mkdir(parents=True)
    dim = 512  # ViT-B/32's projection
    rng = np.random.default_rng(seed)
    with Catalog.open(index_dir / "catalog.sqlite") as catalog:
        record = catalog.set_model(resolve_model_name(str(model)), dim)
        catalog.set_precision(precision, f"{precision} (requested)")
        for start in range(0, n, 10_000):
            count = min(10_000, n - start)
            vectors = rng.standard_normal((count, dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            upserts = [
                (
                    FileEntry(
                        f"/synthetic/day-{i // 1000:04d}/img-{i:06d}.jpg",
                        100_000 + i,
                        1_700_000_000_000_000_000 + i,
                        f"{i:064x}",
                        640,
                        480,
                    ),
                    vector,
                )
                for i, vector in zip(range(start, start + count), vectors, strict=True)
            ]
            catalog.apply(CatalogChanges(upserts=upserts), record)
        VectorStore(index_dir, catalog).refresh(catalog.state())  # what an index run writes


def ensure_export(index_dir: Path, model: Path, precision: str) -> None:
    """The ONNX export of the text tower, written as ``searchclip index`` writes it."""
    from searchclip._encoders import load_encoder, resolve_model_name
    from searchclip._encoders.onnx_export import export_text_encoder
    from searchclip._encoders.onnx_text import current_text_export

    if current_text_export(index_dir, resolve_model_name(str(model)), 512) is not None:
        return
    encoder = load_encoder(str(model), device="cpu")
    started = time.perf_counter()
    export_text_encoder(encoder, index_dir, int8=precision == "int8")
    print(f"exported the text tower to ONNX in {time.perf_counter() - started:.1f} s")


def agreement(index_dir: Path, model: Path) -> None:
    """Min cosine between torch's vectors and the fp32 export's; the int8 one's as measured by
    the export on its own check texts."""
    from searchclip._encoders import load_encoder
    from searchclip._encoders.onnx_text import OnnxTextEncoder, TextExportInfo

    torch_vectors = load_encoder(str(model), device="cpu").encode_texts(CHECK_TEXTS)
    info = TextExportInfo.read(index_dir)
    fp32 = OnnxTextEncoder(index_dir, info).encode_texts(CHECK_TEXTS)
    print(f"ONNX fp32 vs torch: min cosine {np.sum(fp32 * torch_vectors, axis=1).min():.6f}")
    if info.int8_min_cosine is not None:
        used = "used" if info.int8_agrees else "not used: below 0.999"
        print(f"ONNX int8 vs torch: min cosine {info.int8_min_cosine:.6f} ({used})")


def cold_query(index_dir: Path) -> float:
    command = [sys.executable, "-m", "searchclip", "query", QUERY, "--index", str(index_dir)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode or "rank" not in done.stdout:
        sys.exit(done.stderr)
    return elapsed


def query_peak_memory(index_dir: Path) -> float:
    """Peak RSS (MB) of one more query process, read from its own /proc/self/status at exit:
    getrusage's figures for a child include the RSS of the parent it was forked from."""
    script = (
        "import atexit, re, runpy, sys\n"
        "def report():\n"
        "    status = open('/proc/self/status').read()\n"
        "    print('VmHWM', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)\n"
        "atexit.register(report)\n"
        f"sys.argv = ['searchclip', 'query', {QUERY!r}, '--index', {str(index_dir)!r}]\n"
        "runpy.run_module('searchclip', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    kib = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("VmHWM")]
    if done.returncode or not kib:
        sys.exit(done.stderr)
    return int(kib[0]) / 1024


def warm_queries(index_dir: Path, count: int) -> tuple[float, float]:
    """Median ms of ``engine.search`` and of the text encoding alone."""
    from searchclip import SearchEngine

    with SearchEngine(index_dir, create=False) as engine:
        engine.search(QUERY)  # loads the export and the FAISS file
        texts = [WARM_QUERIES[i % len(WARM_QUERIES)] for i in range(count)]
        search, encode = [], []
        for text in texts:
            started = time.perf_counter()
            engine.search(text)
            search.append(time.perf_counter() - started)
            started = time.perf_counter()
            engine._encoders.text_encoder(engine._model).encode_texts([text])
            encode.append(time.perf_counter() - started)
    return statistics.median(search) * 1e3, statistics.median(encode) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warm-queries", type=int, default=50)
    parser.add_argument("--precision", choices=("int8", "fp32"), default="int8")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args()
    model = ensure_model(args.model.resolve())
    index_dir = args.workdir.resolve() / f"index-{args.n}-{args.precision}"
    if not (index_dir / "catalog.sqlite").is_file():
        started = time.perf_counter()
        build_index(index_dir, model, args.n, args.precision)
        print(
            f"built an index of {args.n} synthetic vectors in {time.perf_counter() - started:.1f} s"
        )
    ensure_export(index_dir, model, args.precision)
    agreement(index_dir, model)
    ms_search, ms_encode = warm_queries(index_dir, args.warm_queries)
    first = cold_query(index_dir)
    times = [cold_query(index_dir) for _ in range(args.runs)]
    peak_mb = query_peak_memory(index_dir)
    print(f"cold `searchclip query` (fresh process), first run: {first:.2f} s")
    print("cold `searchclip query`, wall per run (s):", " ".join(f"{t:.2f}" for t in times))
    print(f"cold median: {statistics.median(times):.2f} s over {args.n} vectors")
    print(f"peak memory (RSS) of a query process: {peak_mb:.0f} MB")
    print(f"warm engine.search median: {ms_search:.1f} ms (text encoding alone {ms_encode:.1f} ms)")


if __name__ == "__main__":
    main()
