"""Search quality of a model on generated shape scenes, measured through the real engine.

Held-out scenes are written to disk, indexed with :class:`SearchEngine` and queried with its
text and image search, exactly as a user's photos would be, so the figures cover decoding,
preprocessing, the encoders, the catalog and FAISS, not only the model.

- text→image: for each of the 40 colour-shape pairs, "a photo of a <colour> <shape>" over the
  gallery; precision@10 = share of the 10 hits whose scene holds that pair.
- zero-shot: single-object scenes classified among the 40 pair prompts; top-1 accuracy.
- image→image: single-object scenes as query images; share of their 5 nearest gallery
  scenes that hold the same pair.
- tagging (:func:`measure_tagging_quality`): mAP over the 40 pairs of the ``shapes``
  vocabulary, and macro-F1 of the tags assigned before and after ``calibrate`` on a separate
  set, with ``searchclip._evaluation``'s code.

Scenes come from a renderer: ``scenes`` (``searchclip._scenes``, what the bundled model is
trained on) or ``other`` (``searchclip._scenes_other``, an independent drawing of the same
vocabulary), so that a figure on ``other`` says the model knows the concepts, not one drawing
routine.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchclip import _scenes as scenes
from searchclip._engine import SearchEngine
from searchclip._errors import InvalidArgumentError

PROMPT = "a photo of a {}"
RENDERERS = ("scenes", "other")


def renderer_module(name: str):
    """The module (with ``write_scenes``) that draws scenes for ``name`` in ``RENDERERS``."""
    if name == "scenes":
        return scenes
    if name == "other":
        from searchclip import _scenes_other as scenes_other

        return scenes_other
    raise InvalidArgumentError(
        f"unknown scene renderer {name!r}: use one of {RENDERERS}", value=name
    )


@dataclass(frozen=True)
class ShapesQuality:
    """Search quality on shape scenes; shares in [0, 1].

    ``precision_at_10`` is the mean, over the 40 colour-shape pairs, of the share of a text
    query's 10 hits that hold the pair (``per_pair_precision`` by pair; ``worst_pair`` scores
    lowest, ``worst_precision_at_10``); ``zero_shot_top1`` the share of single-object scenes
    classified as their pair; ``image_to_image_at_5`` the share of a single-object scene's 5
    nearest gallery scenes that hold its pair. :meth:`as_dict` is what metrics.json records.
    """

    precision_at_10: float
    worst_pair: str
    worst_precision_at_10: float
    zero_shot_top1: float
    image_to_image_at_5: float
    per_pair_precision: dict[str, float]

    def as_dict(self) -> dict:
        return {
            "precision@10": round(self.precision_at_10, 4),
            "worst_pair": self.worst_pair,
            "worst_precision@10": round(self.worst_precision_at_10, 4),
            "zero_shot_top1": round(self.zero_shot_top1, 4),
            "image_to_image@5": round(self.image_to_image_at_5, 4),
        }


def read_labels(labels_file: Path) -> dict[str, set[str]]:
    """Absolute image path → labels, from a labels.jsonl in ../shared/data's format."""
    root = labels_file.parent
    labels = {}
    for line in labels_file.read_text().splitlines():
        record = json.loads(line)
        labels[os.path.abspath(root / record["file"])] = set(record["labels"])
    return labels


def measure_shapes_quality(
    model: str | os.PathLike,
    workdir: str | os.PathLike,
    *,
    seed: int = 1000,
    gallery_size: int = 500,
    singles: int = 200,
    precision: str | None = None,
    renderer: str = "scenes",
) -> ShapesQuality:
    """Generate held-out scenes under ``workdir`` with ``renderer``, index them with ``model``
    (at ``precision``: default ``auto``), and score search."""
    workdir = Path(workdir)
    draw = renderer_module(renderer)
    gallery = read_labels(draw.write_scenes(workdir / "gallery", gallery_size, seed))
    single = read_labels(draw.write_scenes(workdir / "singles", singles, seed + 1, n_objects=1))
    with SearchEngine(workdir / "index", model=os.fspath(model), precision=precision) as engine:
        engine.index(workdir / "gallery")
        per_pair = {
            pair: _share(engine.search(PROMPT.format(pair), k=10), gallery, pair)
            for pair in scenes.PAIRS
        }
        single_pairs = {path: _pair_of(labels) for path, labels in single.items()}
        image_hits = [
            _share(engine.search_image(path, k=5), gallery, pair)
            for path, pair in single_pairs.items()
        ]
        zero_shot = _zero_shot_top1(engine, single_pairs)
    worst = min(per_pair, key=per_pair.get)
    return ShapesQuality(
        precision_at_10=float(np.mean(list(per_pair.values()))),
        worst_pair=worst,
        worst_precision_at_10=per_pair[worst],
        zero_shot_top1=zero_shot,
        image_to_image_at_5=float(np.mean(image_hits)),
        per_pair_precision=per_pair,
    )


def _share(hits, labels: dict[str, set[str]], pair: str) -> float:
    return sum(pair in labels[hit.path] for hit in hits) / len(hits)


def _pair_of(labels: set[str]) -> str:
    (pair,) = (label for label in labels if label in scenes.PAIRS)
    return pair


def _zero_shot_top1(engine: SearchEngine, single_pairs: dict[str, str]) -> float:
    from searchclip._images import load_image

    encoder = engine.encoder()
    classes = list(scenes.PAIRS)
    prompts = encoder.encode_texts([PROMPT.format(pair) for pair in classes])
    pictures = [load_image(path).image for path in single_pairs]
    predicted = (encoder.encode_images(pictures) @ prompts.T).argmax(axis=1)
    truth = [classes.index(pair) for pair in single_pairs.values()]
    return float(np.mean(predicted == np.array(truth)))


@dataclass(frozen=True)
class TaggingQuality:
    """Tagging quality on shape scenes with the ``shapes`` vocabulary, on ``images`` test scenes.

    ``mean_average_precision`` is over the 40 pairs; ``macro_f1_uncalibrated`` scores the
    default rule (each image's top 3 labels), ``macro_f1_calibrated`` the thresholds fitted on
    separate calibration scenes. :meth:`as_dict` is what metrics.json records.
    """

    mean_average_precision: float
    macro_f1_uncalibrated: float
    macro_f1_calibrated: float
    images: int

    def as_dict(self) -> dict:
        return {
            "mAP": round(self.mean_average_precision, 4),
            "macro_f1_uncalibrated": round(self.macro_f1_uncalibrated, 4),
            "macro_f1_calibrated": round(self.macro_f1_calibrated, 4),
            "images": self.images,
        }


def measure_tagging_quality(
    model: str | os.PathLike,
    workdir: str | os.PathLike,
    *,
    seed: int = 2000,
    calibration_size: int = 500,
    test_size: int = 500,
    renderer: str = "scenes",
) -> TaggingQuality:
    """Tag held-out scenes with the ``shapes`` vocabulary: mAP and macro-F1 on a test set, then
    macro-F1 again after calibrating the thresholds on another set (as ``searchclip
    calibrate`` and ``searchclip eval tagging`` do)."""
    from searchclip._evaluation import calibrate, evaluate_tagging

    workdir = Path(workdir)
    draw = renderer_module(renderer)
    calibration = draw.write_scenes(workdir / "calibration", calibration_size, seed)
    test = draw.write_scenes(workdir / "test", test_size, seed + 1)
    with SearchEngine(workdir / "tag-index", model=os.fspath(model)) as engine:
        engine.index(calibration.parent)
        engine.index(test.parent)
        before = evaluate_tagging(engine, test, "shapes", add_to_index=False)
        calibrate(engine, calibration, "shapes")
        after = evaluate_tagging(engine, test, "shapes", add_to_index=False)
    return TaggingQuality(
        mean_average_precision=before.mean_average_precision,
        macro_f1_uncalibrated=before.macro_f1,
        macro_f1_calibrated=after.macro_f1,
        images=before.images,
    )
