"""Switching an index to another model (issue 17, part 3): what a migration costs.

Builds N distinct pictures, then measures:

- a plain index run of the collection with the new model, into a fresh index (img/s);
- ``migrate`` of an index of the same collection from the old model to the new one (img/s),
  while one thread queries the index in a loop;
- the median and 95th percentile of a text query's latency before, during and after the
  migration (the same engine, shared by the querying thread and the migration).

The models are two fake encoders by default (numpy only: the figures are searchclip's own
overhead, reading, decoding, committing, not a model's speed); ``--new-model tiny`` migrates to
a random-weight tiny CLIP through torch instead, ``--new-model PATH`` to any model.

    python benchmarks/model_migration.py [--n 2000] [--new-model fake|tiny|PATH] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from searchclip import SearchEngine
from searchclip._encoders.fake import write_fake_model

QUERIES = ("a dog on the beach", "red", "a city street at night", "blue sky", "two cats")


def write_photos(root: Path, n: int) -> None:
    """``n`` distinct 96x64 blocky JPEGs, 500 per folder."""
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"day-{i // 500:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(blocks).resize((96, 64), Image.Resampling.NEAREST)
        image.save(folder / f"img-{i:05d}.jpg", quality=90)


def tiny_clip(out: Path) -> Path:
    """A random CLIP at 32 px (as benchmarks/reindex_unchanged.py): fast, meaningless."""
    from transformers import CLIPModel

    from searchclip.training.tiny_model import (
        caption_vocabulary,
        save_model,
        shapes_config,
        shapes_processor,
    )
    from searchclip.training.tokenizer import build_tokenizer

    small = {"image_size": 32, "vision_width": 32, "vision_layers": 1, "text_width": 32}
    small |= {"text_layers": 1, "heads": 2, "projection_dim": 16}
    tokenizer = build_tokenizer(caption_vocabulary(200), max_length=32)
    save_model(CLIPModel(shapes_config(tokenizer, **small)), tokenizer, shapes_processor(32), out)
    return out


def latencies(engine: SearchEngine, rounds: int) -> list[float]:
    found = []
    for i in range(rounds):
        started = time.perf_counter()
        engine.search(QUERIES[i % len(QUERIES)], k=10)
        found.append(time.perf_counter() - started)
    return found


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"{name:<8} {statistics.median(ms):8.2f} {p95:8.2f} {len(ms):8d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--new-model", default="fake")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="searchclip-migration-"))
    photos = work / "photos"
    if not photos.exists():
        write_photos(photos, args.n)
    old = str(write_fake_model(work / "fake-old", dim=512, image_size=32))
    if args.new_model == "fake":
        new = str(write_fake_model(work / "fake-new", dim=256, image_size=32))
    elif args.new_model == "tiny":
        new = str(tiny_clip(work / "tiny-clip"))
    else:
        new = args.new_model
    options = {"batch_size": args.batch_size, "precision": "fp32"}

    with SearchEngine(work / f"plain-{time.time_ns()}", model=new, **options) as plain:
        started = time.perf_counter()
        plain.index(photos)
        plain_s = time.perf_counter() - started

    with SearchEngine(work / f"index-{time.time_ns()}", model=old, **options) as engine:
        engine.index(photos)
        latencies(engine, 20)  # warm: the vector file, the encoder
        before = latencies(engine, 300)
        during: list[float] = []
        done = threading.Event()

        def query_loop() -> None:
            while not done.is_set():
                during.extend(latencies(engine, 1))

        querying = threading.Thread(target=query_loop)
        querying.start()
        started = time.perf_counter()
        report = engine.migrate(new, precision="fp32")
        migrate_s = time.perf_counter() - started
        done.set()
        querying.join()
        assert report.switched, report
        latencies(engine, 20)
        after = latencies(engine, 300)

    print(f"collection: {args.n} images (96x64 JPEG); old model: fake, 512 dims; new: {new}")
    print(f"plain index run, new model:  {plain_s:7.2f} s  {args.n / plain_s:8.1f} img/s")
    print(
        f"migrate, old -> new:         {migrate_s:7.2f} s  {args.n / migrate_s:8.1f} img/s "
        f"(encoded {report.encoded}, while {len(during)} queries ran)"
    )
    print(f"\n{'query':<8} {'median':>8} {'p95':>8} {'queries':>8}   (ms, k=10, one thread)")
    for name, seconds in (("before", before), ("during", during), ("after", after)):
        print(summary(name, seconds))


if __name__ == "__main__":
    main()
