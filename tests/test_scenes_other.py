"""The held-out renderer: scenes.py's vocabulary and sizes, drawn by other code, as labelled."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scene_checks import covered_areas

from searchclip import _scenes as training_scenes
from searchclip._errors import InvalidArgumentError
from searchclip._scenes import (
    BACKGROUND_MIN_DISTANCE,
    COLOURS,
    JITTER,
    MAX_OBJECTS,
    MAX_SIDE,
    MAX_SIZE,
    MIN_SIDE,
    MIN_SIZE,
    PAIRS,
    SHAPES,
    Scene,
    canonical_caption,
)
from searchclip._scenes_other import random_scene, scenes, write_scenes


def _star_area(inner: float) -> float:
    return 5 * inner * math.sin(math.radians(36)) / math.pi


def _cross_area(width: float) -> float:
    length = math.sqrt(1 - width**2)
    return (8 * length * width - 4 * width**2) / math.pi


def _square_area(rounding: float) -> float:
    half = (1 - rounding) / math.sqrt(2) + rounding
    return (4 * half**2 - (4 - math.pi) * rounding**2) / math.pi


# Area of each shape over its bounding circle's, for the ends of its random geometry.
SHAPE_AREA = {
    "circle": (1.0, 1.0),
    "square": (_square_area(0.0), _square_area(0.2)),
    "triangle": (3 * math.sqrt(3) / 4 / math.pi,) * 2,
    "star": (_star_area(0.38), _star_area(0.5)),
    "cross": (_cross_area(0.28), _cross_area(0.38)),
}


@pytest.fixture(scope="module")
def many() -> list[Scene]:
    return list(scenes(4321, 300))


def test_same_seed_gives_identical_scenes_and_other_seeds_differ() -> None:
    first, again, other = (list(scenes(seed, 20)) for seed in (7, 7, 8))
    assert [s.image.tobytes() for s in first] == [s.image.tobytes() for s in again]
    assert [s.caption for s in first] == [s.caption for s in again]
    assert [s.labels for s in first] == [s.labels for s in again]
    assert [s.image.tobytes() for s in first] != [s.image.tobytes() for s in other]
    assert [s.caption for s in first] != [s.caption for s in other]


def test_pictures_differ_from_the_training_renderers_for_the_same_seed() -> None:
    ours = [s.image.tobytes() for s in scenes(7, 20)]
    theirs = {s.image.tobytes() for s in training_scenes.scenes(7, 20)}
    assert not theirs.intersection(ours)


def test_labels_and_captions_describe_the_objects(many: list[Scene]) -> None:
    vocabulary = set(COLOURS) | set(SHAPES) | set(PAIRS)
    for s in many:
        assert s.caption == canonical_caption(s.objects)
        assert s.labels == sorted({x for o in s.objects for x in (o.colour, o.shape, o.name)})
        assert set(s.labels) <= vocabulary
        assert len({o.name for o in s.objects}) == len(s.objects)
    assert {o.colour for s in many for o in s.objects} == set(COLOURS)
    assert {o.shape for s in many for o in s.objects} == set(SHAPES)


def test_requested_object_count_is_kept_and_bad_arguments_refused() -> None:
    assert {len(s.objects) for s in scenes(1, 100)} == set(range(1, MAX_OBJECTS + 1))
    for n in range(1, MAX_OBJECTS + 1):
        assert {len(s.objects) for s in scenes(3, 60, n_objects=n)} == {n}
    for bad in (0, MAX_OBJECTS + 1):
        with pytest.raises(InvalidArgumentError):
            scenes(0, 1, n_objects=bad)
        with pytest.raises(InvalidArgumentError):
            random_scene(random.Random(0), n_objects=bad)
    with pytest.raises(InvalidArgumentError):
        scenes(0, -1)
    assert list(scenes(0, 0)) == []


def test_image_sizes_and_aspect_ratios(many: list[Scene]) -> None:
    for s in many:
        w, h = s.image.size
        assert s.image.mode == "RGB"
        assert MIN_SIDE <= min(w, h) <= MAX_SIDE and 0.5 <= w / h <= 2.0
    assert len({s.image.size for s in many}) > 200
    assert {w > h for w, h in (s.image.size for s in many)} == {True, False}


def test_objects_are_sized_spaced_and_inside_the_central_square(many: list[Scene]) -> None:
    for s in many:
        w, h = s.image.size
        side = min(w, h)
        left, top = (w - side) / 2, (h - side) / 2
        for o in s.objects:
            (x, y), r = o.centre, o.size / 2
            assert MIN_SIZE * side - 1e-9 <= o.size <= MAX_SIZE * side + 1e-9
            assert left <= x - r and x + r <= left + side
            assert top <= y - r and y + r <= top + side
        for a, b in itertools.combinations(s.objects, 2):
            apart = math.dist(a.centre, b.centre)
            assert apart >= 0.6 * (a.size + b.size) / 2 - 1e-9
            assert apart > max(a.size, b.size) / 2 + 1  # no centre under another object


def test_fills_follow_the_jitter_rule_and_outlines_contrast(many: list[Scene]) -> None:
    drawn = [o for s in many for o in s.objects]
    for o in drawn:
        base = COLOURS[o.colour]
        assert all(abs(v - b) <= JITTER for v, b in zip(o.fill, base, strict=True))
        if o.colour == "white":
            assert min(o.fill) >= 255 - JITTER
        elif o.colour == "black":
            assert max(o.fill) <= JITTER
        if o.shape == "circle":
            assert o.angle == 0
        if o.outline is not None:
            assert 1 <= o.outline_width <= 3 and o.outline_width <= o.size / 8
            assert math.dist(o.outline, o.fill) > 100
    outlined = sum(o.outline is not None for o in drawn) / len(drawn)
    assert 0.2 < outlined < 0.4


def test_each_centre_pixel_shows_its_objects_fill(many: list[Scene]) -> None:
    """All five shapes contain their centre, and outlines and later objects stay clear of it."""
    seen = Counter()
    for s in many:
        pixels = np.asarray(s.image).astype(int)
        for o in s.objects:
            x, y = (math.floor(c) for c in o.centre)
            assert np.abs(pixels[y, x] - o.fill).max() <= 1, (s.caption, o)
            seen[o.shape, o.outline is not None] += 1
    assert set(seen) == {(shape, outlined) for shape in SHAPES for outlined in (False, True)}


def test_backgrounds_stay_far_from_every_fill(many: list[Scene]) -> None:
    kinds = Counter()
    for s in many:
        assert len(s.background) in (1, 2)
        assert s.noise == 0 or 2 <= s.noise <= 10
        kinds[len(s.background), s.noise > 0] += 1
        ends = np.array(s.background, dtype=float)
        tones = [ends[0] + t * (ends[-1] - ends[0]) for t in np.linspace(0.0, 1.0, 21)]
        for o in s.objects:
            gap = min(np.linalg.norm(tone - np.array(o.fill)) for tone in tones)
            assert gap > BACKGROUND_MIN_DISTANCE, (s.caption, s.background)
        if s.noise:
            continue
        # Away from the objects, every pixel is one of the tones checked above.
        pixels = np.asarray(s.image).astype(int)
        ys, xs = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]] + 0.5
        free = np.ones(pixels.shape[:2], dtype=bool)
        for o in s.objects:
            free &= np.hypot(xs - o.centre[0], ys - o.centre[1]) > o.size / 2 + 1.5
        shown = pixels[free]
        assert (shown >= ends.min(axis=0) - 1).all() and (shown <= ends.max(axis=0) + 1).all()
    assert set(kinds) == {(1, False), (1, True), (2, False), (2, True)}


def test_shapes_cover_the_area_of_the_shape_claimed() -> None:
    """Unmix fill from background over the object's box: the covered area names the shape."""
    for o, area in covered_areas(random_scene):
        low, high = SHAPE_AREA[o.shape]
        assert low * 0.98 <= area <= high * 1.02, (o, area)


def test_write_scenes_makes_a_data_set_in_the_training_format(tmp_path: Path) -> None:
    root = tmp_path / "new" / "held-out"
    labels_path = write_scenes(root, 40, seed=3)
    assert labels_path == root / "labels.jsonl"
    records = [json.loads(line) for line in labels_path.read_text().splitlines()]
    reference = training_scenes.write_scenes(tmp_path / "reference", 2, seed=3).read_text()
    assert {tuple(json.loads(line)) for line in reference.splitlines()} == {
        tuple(r) for r in records
    }  # the same fields, in the same order
    suffixes = Counter(Path(r["file"]).suffix for r in records)
    assert set(suffixes) == {".png", ".jpg"} and min(suffixes.values()) >= 10
    for i, (record, scene) in enumerate(zip(records, scenes(3, 40), strict=True)):
        assert set(record) == {"file", "labels", "captions"}
        assert record["file"].startswith(f"images/scene-{i:05d}.")
        assert record["labels"] == scene.labels and record["captions"] == [scene.caption]
        with Image.open(root / record["file"]) as img:
            img.load()
            assert img.format == ("PNG" if record["file"].endswith(".png") else "JPEG")
            assert img.size == scene.image.size
            if img.format == "PNG":
                assert img.convert("RGB").tobytes() == scene.image.tobytes()
    assert sorted(p.name for p in (root / "images").iterdir()) == sorted(
        Path(r["file"]).name for r in records
    )
    assert write_scenes(root, 40, seed=3).read_text() == labels_path.read_text()
    pairs = write_scenes(tmp_path / "pairs", 20, seed=3, n_objects=2).read_text().splitlines()
    assert all(json.loads(line)["captions"][0].count(" and ") == 1 for line in pairs)
