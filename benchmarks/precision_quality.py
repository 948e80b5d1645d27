"""Search quality of a trained CLIP at each image precision (issue 5 target 2: the default
precision must not lower the trained tiny model's retrieval metrics).

Indexes the same held-out generated scenes once per precision (fp32, bf16, int8, and auto,
which picks one of them) through ``SearchEngine`` and prints the metrics of
``searchclip._quality`` for each: text->image precision@10 over the 40 colour-shape pairs,
zero-shot top-1, image->image share of the top 5. Also prints the minimum cosine between each
scene's fp32 vector and its vector at the other precisions.

    python benchmarks/precision_quality.py --model DIR [--gallery 500] [--singles 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PRECISIONS = ("fp32", "bf16", "int8", "auto")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--gallery", type=int, default=500)
    parser.add_argument("--singles", type=int, default=200)
    args = parser.parse_args()

    from searchclip import SearchEngine
    from searchclip._quality import measure_shapes_quality

    with tempfile.TemporaryDirectory(prefix="searchclip-precision-quality-") as scratch:
        vectors = {}
        for precision in PRECISIONS:
            workdir = Path(scratch) / precision
            quality = measure_shapes_quality(
                args.model,
                workdir,
                gallery_size=args.gallery,
                singles=args.singles,
                precision=precision,
            )
            with SearchEngine(workdir / "index") as engine:
                images = (workdir / "gallery").rglob("*")
                paths = sorted(str(p) for p in images if p.suffix in (".png", ".jpg"))
                stored = engine.stored_vectors(paths)
                vectors[precision] = np.stack([stored[p] for p in paths])
                chosen = engine.info().precision
            print(
                f"{precision:>4}: precision@10 {quality.precision_at_10:.4f}, "
                f"zero-shot top-1 {quality.zero_shot_top1:.4f}, "
                f"image->image@5 {quality.image_to_image_at_5:.4f}  [{chosen}]"
            )
        for precision in PRECISIONS[1:]:
            cosine = np.sum(vectors["fp32"] * vectors[precision], axis=1).min()
            print(
                f"min cosine fp32 vs {precision} over {len(vectors['fp32'])} scenes: {cosine:.5f}"
            )


if __name__ == "__main__":
    main()
