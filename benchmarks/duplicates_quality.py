"""Near-duplicate grouping quality on real photos: precision and recall of the pairs it finds.

Originals are COCO photos (../shared/data/coco128_multilabel); each gets the four copies of
``searchclip._duplicate_fit.near_copies`` (resized 50 %, JPEG q=60, cropped 5 %, brightness
+15 %) saved as files beside it; distinct photos come from ../shared/data/imagenet_1k_samples.
Every set is indexed through ``SearchEngine`` with each model (the bundled shapes-clip, and a
random-weight ViT-B/32 built by benchmarks/make_random_vitb32.py), then grouped by hash alone,
by the fitted embedding threshold alone, and by both. A pair is right when both images come from
one original; recall counts the 10 pairs of each original and its copies.

    python benchmarks/duplicates_quality.py [--originals 60] [--distinct 200]
        [--models shapes,vitb32]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
DATA = REPO.parent / "shared" / "data"
SHAPES = REPO / "searchclip" / "models" / "shapes-clip"
VITB32 = REPO / "benchmarks" / "out" / "vit-b32-random"


def write_set(root: Path, originals: int, distinct: int) -> dict[str, str]:
    """The photos and copies, as files; path -> the original it comes from (itself if none)."""
    from PIL import Image

    from searchclip._duplicate_fit import near_copies

    source_of = {}
    coco = sorted((DATA / "coco128_multilabel" / "images").glob("*.jpg"))[:originals]
    for number, path in enumerate(coco):
        image = Image.open(path).convert("RGB")
        folder = root / "originals" / f"{number:03d}"
        folder.mkdir(parents=True)
        image.save(folder / "original.jpg", quality=95)
        copies = near_copies(image)
        for kind, copy in zip(("half", "q60", "crop", "bright"), copies, strict=True):
            copy.save(folder / f"{kind}.jpg", quality=60 if kind == "q60" else 95)
        for file in folder.iterdir():
            source_of[str(file)] = str(folder)
    imagenet = sorted((DATA / "imagenet_1k_samples" / "images").glob("*"))[:distinct]
    (root / "distinct").mkdir()
    for path in imagenet:
        target = root / "distinct" / path.name
        target.write_bytes(path.read_bytes())
        source_of[str(target)] = str(target)
    return source_of


def pair_scores(report, source_of: dict[str, str]) -> tuple[float, float]:
    found = {
        tuple(sorted((a.path, b.path)))
        for group in report.groups
        for a, b in itertools.combinations(group.images, 2)
    }
    by_source: dict[str, list[str]] = {}
    for path, source in source_of.items():
        by_source.setdefault(source, []).append(path)
    truth = {
        tuple(sorted(pair))
        for paths in by_source.values()
        for pair in itertools.combinations(paths, 2)
    }
    right = len(found & truth)
    return (right / len(found) if found else 1.0), right / len(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--originals", type=int, default=60)
    parser.add_argument("--distinct", type=int, default=200)
    parser.add_argument("--models", default="shapes,vitb32")
    args = parser.parse_args()

    from searchclip import SearchEngine

    models = {"shapes": SHAPES, "vitb32": VITB32}
    if "vitb32" in args.models and not VITB32.is_dir():
        from make_random_vitb32 import DEFAULT_TOKENIZER, build

        build(VITB32, DEFAULT_TOKENIZER)
    with tempfile.TemporaryDirectory(prefix="searchclip-duplicates-") as scratch:
        photos = Path(scratch) / "photos"
        source_of = write_set(photos, args.originals, args.distinct)
        print(f"{len(source_of)} images: {args.originals} originals x 5, {args.distinct} distinct")
        print("model | grouping | threshold | precision | recall | groups | seconds")
        for name in args.models.split(","):
            with SearchEngine(Path(scratch) / f"index-{name}", model=str(models[name])) as engine:
                engine.index(photos)
                for by in ("hash", "embedding", "both"):
                    started = time.monotonic()
                    report = engine.duplicates(by=by)
                    precision, recall = pair_scores(report, source_of)
                    t = report.threshold
                    shown = (
                        "-"
                        if t.value is None
                        else f"{t.value:.4f} (copies {t.copies:.4f}, distinct {t.distinct:.4f})"
                    )
                    print(
                        f"{name} | {by} | {shown} | {precision:.3f} | {recall:.3f} | "
                        f"{len(report.groups)} | {time.monotonic() - started:.1f}"
                    )


if __name__ == "__main__":
    main()
