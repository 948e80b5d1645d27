"""Images per second of an index run on a Ray cluster with 1 and 2 worker nodes, against a local
run of the same photos (issue 18, docs/scale.md).

The cluster is Ray's own multi-node simulation on this machine (``ray.cluster_utils.Cluster``:
each node its own raylet): a head node with no CPUs for actors (it holds the driver, which
scans, plans and commits), and N worker nodes of ``--cpus`` CPUs each, one encoder actor a CPU.
Every run indexes the same photos into a new index, with the model's exports cached beforehand
(the int8 image tower is exported once per machine, not per run); the cluster is started
before the clock starts, so a run's time includes Ray Data's start and each actor's model load.
Two rates, medians of ``--runs``: the whole run's (images encoded / the run's elapsed time)
and the steady one (files handled from a quarter of the run to its end, over that time).

    python benchmarks/make_random_vitb32.py      # once: the random-weight ViT-B/32
    python benchmarks/cluster_scaling.py [--photos DIR] [--count 256] [--runs 3] [--cpus 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEFAULT_MODEL = REPO / "benchmarks" / "out" / "vit-b32-random"


def photo_set(count: int, out: Path) -> Path:
    """``count`` real photos (COCO first, then ImageNet samples) linked into ``out``."""
    sources = sorted((SHARED / "coco128_multilabel" / "images").glob("*.jpg"))
    sources += sorted((SHARED / "imagenet_1k_samples").rglob("*.JPEG"))
    sources += sorted((SHARED / "imagenette_val").rglob("*.JPEG"))
    out.mkdir(parents=True, exist_ok=True)
    for i, source in enumerate(sources[:count]):
        os.symlink(source, out / f"{i:05d}{source.suffix.lower()}")
    return out


def one_run(
    photos: Path, model: str, precision: str, address: str | None
) -> tuple[float, float, float, int]:
    """One new index of ``photos``: (whole run's img/s, steady img/s, this process's CPU ms
    per image while steady, images encoded). Steady: the files handled from a quarter of the
    run to its end, over that time (what a long run sees once every actor has its model); on
    a cluster this process is the driver, and its CPU per image bounds what one driver can
    commit."""
    from searchclip import SearchEngine

    seen: list[tuple[float, int]] = []
    with (
        tempfile.TemporaryDirectory(prefix="searchclip-scale-") as index_dir,
        SearchEngine(Path(index_dir) / "index", model=model, precision=precision) as engine,
    ):
        started = time.perf_counter()
        report = engine.index(
            photos,
            ray_address=address,
            on_progress=lambda event: seen.append(
                (time.perf_counter(), event.done, time.process_time())
            ),
        )
        elapsed = time.perf_counter() - started
    quarter = next(i for i, (_, done, _) in enumerate(seen) if done >= len(seen) // 4)
    (t0, n0, cpu0), (t1, n1, cpu1) = seen[quarter], seen[-1]
    steady = (n1 - n0) / (t1 - t0)
    return report.encoded / elapsed, steady, (cpu1 - cpu0) * 1000 / (n1 - n0), report.encoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path)
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=1, help="CPUs of each worker node")
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    scratch = Path(tempfile.mkdtemp(prefix="searchclip-scale-photos-"))
    try:
        photos = args.photos or photo_set(args.count, scratch / "photos")
        one_run(photos, args.model, args.precision, None)  # fills the export cache
        rates: dict[str, list[list[float]]] = {}  # name -> per run: whole, steady, driver CPU
        for _ in range(args.runs):
            *figures, encoded = one_run(photos, args.model, args.precision, None)
            rates.setdefault("local", []).append(figures)
        for count in args.nodes:
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
            for _ in range(count):
                cluster.add_node(num_cpus=args.cpus, object_store_memory=300_000_000)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False)
            try:
                for _ in range(args.runs):
                    *figures, encoded = one_run(photos, args.model, args.precision, cluster.address)
                    rates.setdefault(f"{count} worker node(s)", []).append(figures)
            finally:
                ray.shutdown()
                cluster.shutdown()
        print(f"{encoded} photos, {args.precision}, worker nodes of {args.cpus} CPU(s)")
        print(f"{'run':<18} {'whole img/s':>11} {'steady img/s':>12} {'driver CPU ms/img':>17}")
        local = [statistics.median(column) for column in zip(*rates["local"], strict=True)]
        for name, values in rates.items():
            whole, steady, cpu = (statistics.median(c) for c in zip(*values, strict=True))
            runs = ", ".join(f"{w:.1f}/{s:.1f}" for w, s, _ in values)
            ratio = f"{whole / local[0]:.2f}x / {steady / local[1]:.2f}x local"
            print(f"{name:<18} {whole:>11.1f} {steady:>12.1f} {cpu:>17.1f}  {ratio}  ({runs})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
