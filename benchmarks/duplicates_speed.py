"""Near-duplicate grouping at scale: 100,000 images in well under a minute.

Vectors are benchmarks/ann_recall.py's CLIP-like ones (512-d, ViT-B/32's spectrum) with
``--copies`` planted near-copies (cosine ~0.97 to their original); perceptual hashes are random
64-bit values, the copies' within 3 bits of their original's. Times the grouping itself
(``searchclip._duplicates.duplicate_components``: the FAISS self-joins and the union-find) and
reports how many planted copies were found.

    python benchmarks/duplicates_speed.py [--n 100000] [--copies 3000] [--threshold 0.93]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--copies", type=int, default=3000)
    parser.add_argument("--threshold", type=float, default=0.93)
    args = parser.parse_args()

    from ann_recall import clip_like

    from searchclip._duplicates import duplicate_components

    rng = np.random.default_rng(1)
    vectors = clip_like(args.n, 1)
    originals = rng.choice(args.n, 2 * args.copies, replace=False)
    source, copy = originals[: args.copies], originals[args.copies :]
    vectors[copy] = vectors[source] + 0.012 * rng.standard_normal((args.copies, vectors.shape[1]))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    hashes = rng.integers(-(2**63), 2**63 - 1, args.n, dtype=np.int64)
    flips = np.zeros(args.copies, np.int64)
    for _ in range(3):  # up to 3 bits each (a bit may repeat)
        flips ^= np.int64(1) << rng.integers(0, 63, args.copies)
    hashes[copy] = hashes[source] ^ flips
    hashes[copy[: args.copies // 2]] = rng.integers(-(2**63), 2**63 - 1, args.copies // 2)
    content = [str(i) for i in range(args.n)]
    known = np.ones(args.n, bool)

    for label, threshold, limit in (
        ("hash", None, 8),
        ("embedding", args.threshold, None),
        ("both", args.threshold, 8),
    ):
        started = time.monotonic()
        found = duplicate_components(
            vectors, content, hashes, known, threshold=threshold, hash_limit=limit
        )
        elapsed = time.monotonic() - started
        group_of = np.full(args.n, -1)
        for number, rows in enumerate(found.rows):
            group_of[rows] = number
        joined = np.mean((group_of[source] == group_of[copy]) & (group_of[source] >= 0))
        print(
            f"{label}: {args.n} images grouped in {elapsed:.1f} s: {len(found.rows)} groups, "
            f"{joined:.1%} of {args.copies} planted copies with their original"
        )


if __name__ == "__main__":
    main()
