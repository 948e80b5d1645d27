"""Seconds to tag N stored vectors against the 1,000 ImageNet labels, label embeddings cached.

Builds a catalog with N random unit vectors (512-d, as CLIP ViT-B/32) and caches random label
embeddings for the built-in `imagenet` vocabulary under the fingerprint a real run would use,
so the timed part is exactly what `searchclip tag` does on a warm index: read the untagged
vectors, score them against every label, choose the tags, write them. Each run re-tags every
image (the rule alternates between top-5 and top-4, which drops the previous tags).

    python benchmarks/tagging_speed.py [--images 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from searchclip._catalog import Catalog, CatalogChanges, FileEntry
from searchclip._tagging import Tagger
from searchclip._templates import DEFAULT_TEMPLATES
from searchclip._vocabulary import load_vocabulary

DIM = 512


def unit(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def build(catalog: Catalog, images: int) -> Tagger:
    model = catalog.set_model("benchmark/random-512", DIM)
    vectors = unit(images, seed=0)
    for start in range(0, images, 5000):
        changes = CatalogChanges(
            upserts=[
                (FileEntry(f"/bench/{i:07d}.jpg", 1, 1, f"{i:032x}", 640, 480), vectors[i])
                for i in range(start, min(start + 5000, images))
            ]
        )
        catalog.apply(changes, model)
    vocabulary = load_vocabulary("imagenet")
    catalog.tags.add_vocabulary(
        model.id,
        vocabulary.name,
        vocabulary.fingerprint(DEFAULT_TEMPLATES),
        vocabulary.names,
        unit(len(vocabulary.labels), seed=1),
    )

    def no_encoder():
        raise AssertionError("label embeddings should come from the cache")

    return Tagger(catalog, model, no_encoder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch, Catalog.open(Path(scratch) / "c.sqlite") as cat:
        started = time.perf_counter()
        tagger = build(cat, args.images)
        print(f"built {args.images} vectors in {time.perf_counter() - started:.1f} s")
        seconds = []
        for run in range(args.runs):
            started = time.perf_counter()
            report = tagger.tag("imagenet", top_k=5 - run % 2)
            seconds.append(time.perf_counter() - started)
            print(
                f"run {run + 1}: {report.scored} images × {report.labels} labels, "
                f"{report.tags} tags, {seconds[-1]:.2f} s"
            )
    print(f"median over {args.runs} runs: {statistics.median(seconds):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
