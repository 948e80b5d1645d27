"""Generated training scenes: deterministic, varied, and drawn exactly as their captions say."""

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

from searchclip._errors import InvalidArgumentError
from searchclip._scenes import (
    COLOURS,
    MAX_SIZE,
    MIN_SIZE,
    PAIRS,
    SHAPES,
    Scene,
    SceneObject,
    canonical_caption,
    caption_variants,
    random_scene,
    scenes,
    write_scenes,
)

JITTER = 0.15 * 255
# Area of each shape as a fraction of its bounding circle's, worked out by hand from the spec.
_H = 0.33  # the cross's arm width, relative to its arm length
SHAPE_AREA = {
    "circle": 1.0,
    "square": 2 / math.pi,
    "triangle": 3 * math.sqrt(3) / 4 / math.pi,
    "star": 5 * 0.45 * math.sin(math.radians(36)) / math.pi,
    "cross": (8 * _H - 4 * _H**2) / (1 + _H**2) / math.pi,
}


@pytest.fixture(scope="module")
def many() -> list[Scene]:
    return list(scenes(1234, 300))


def obj(colour: str, shape: str) -> SceneObject:
    return SceneObject(colour, shape)


def in_jitter_range(rgb: tuple[int, ...], colour: str, slack: float = 0.0) -> bool:
    return all(abs(v - b) <= JITTER + slack for v, b in zip(rgb, COLOURS[colour], strict=True))


def test_vocabulary() -> None:
    assert list(COLOURS) == [
        *("red", "green", "blue", "yellow"),
        *("purple", "orange", "black", "white"),
    ]
    assert all(len(rgb) == 3 and all(0 <= c <= 255 for c in rgb) for rgb in COLOURS.values())
    assert SHAPES == ("circle", "square", "triangle", "star", "cross")
    assert len(PAIRS) == len(set(PAIRS)) == 40
    assert PAIRS[:6] == (
        *("red circle", "red square", "red triangle"),
        *("red star", "red cross", "green circle"),
    )
    assert PAIRS[-1] == "white cross"


def test_same_seed_gives_identical_scenes_and_other_seeds_differ() -> None:
    first, again, other = (list(scenes(seed, 20)) for seed in (7, 7, 8))
    assert [s.image.tobytes() for s in first] == [s.image.tobytes() for s in again]
    assert [s.caption for s in first] == [s.caption for s in again]
    assert [s.image.tobytes() for s in first] != [s.image.tobytes() for s in other]
    assert [s.caption for s in first] != [s.caption for s in other]


def test_canonical_caption_names_every_object_in_order() -> None:
    assert canonical_caption([obj("red", "circle")]) == "a photo of a red circle"
    two = [obj("red", "circle"), obj("blue", "star")]
    assert canonical_caption(two) == "a photo of a red circle and a blue star"
    three = [*two, obj("orange", "cross")]
    assert canonical_caption(three) == "a photo of a red circle, a blue star and an orange cross"
    with pytest.raises(InvalidArgumentError):
        canonical_caption([])


def test_labels_hold_colours_shapes_and_pairs_only(many: list[Scene]) -> None:
    scene = Scene(Image.new("RGB", (64, 64)), (obj("red", "circle"), obj("red", "star")), "x")
    assert scene.labels == ["circle", "red", "red circle", "red star", "star"]
    vocabulary = set(COLOURS) | set(SHAPES) | set(PAIRS)
    for s in many:
        expected = {x for o in s.objects for x in (o.colour, o.shape, o.name)}
        assert s.labels == sorted(expected)
        assert set(s.labels) <= vocabulary
        assert s.caption == canonical_caption(s.objects)


def test_caption_variants_mention_every_pair_with_right_articles(many: list[Scene]) -> None:
    rng = random.Random(0)
    captions = Counter()
    for s in many:
        for _ in range(5):
            text = caption_variants(s.objects, rng)
            captions[text] += 1
            assert all(o.name in text for o in s.objects), text
            assert "a orange" not in text and "a image" not in text
            if any(o.colour == "orange" for o in s.objects) and text.startswith(("a ", "an ")):
                assert "an orange" in text
    prefixes = {" ".join(t.split()[:3]) for t in captions if t.startswith(("a ", "an "))}
    assert len(prefixes) >= 6  # the templates, seen through their first words
    two = (obj("red", "circle"), obj("blue", "star"))
    orders = {caption_variants(two, random.Random(i)).index("red") for i in range(50)}
    assert len(orders) > 1  # objects are sometimes named in another order
    with pytest.raises(InvalidArgumentError):
        caption_variants([], rng)


def test_sizes_counts_and_vocabulary_coverage(many: list[Scene]) -> None:
    counts = Counter(len(s.objects) for s in many)
    assert set(counts) == {1, 2, 3} and min(counts.values()) > 60
    for s in many:
        w, h = s.image.size
        assert s.image.mode == "RGB"
        assert 64 <= min(w, h) <= 256 and 0.5 <= w / h <= 2.0
        assert len({(o.colour, o.shape) for o in s.objects}) == len(s.objects)
    assert {o.colour for s in many for o in s.objects} == set(COLOURS)
    assert {o.shape for s in many for o in s.objects} == set(SHAPES)
    assert len({s.image.size for s in many}) > 200
    assert {w > h for s in many for w, h in [s.image.size]} == {True, False}


def test_objects_lie_inside_the_central_square(many: list[Scene]) -> None:
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
            assert math.dist(a.centre, b.centre) >= 0.6 * (a.size + b.size) / 2 - 1e-9


def test_requested_object_count_is_kept() -> None:
    for n in (1, 2, 3):
        assert {len(s.objects) for s in scenes(3, 100, n_objects=n)} == {n}
    for bad in (0, 4):
        with pytest.raises(InvalidArgumentError):
            scenes(0, 1, n_objects=bad)
        with pytest.raises(InvalidArgumentError):
            random_scene(random.Random(0), n_objects=bad)
    with pytest.raises(InvalidArgumentError):
        scenes(0, -1)


def test_object_is_drawn_where_and_in_the_colour_claimed() -> None:
    rng = random.Random(99)
    checked = Counter()
    while min(checked.values(), default=0) < 8 or len(checked) < len(COLOURS) * len(SHAPES):
        s = random_scene(rng)
        if s.noise or len(s.background) != 1:
            continue
        pixels = np.asarray(s.image)
        assert tuple(pixels[0, 0]) == s.background[0]  # the corners show the background
        for o in s.objects:  # no later object covers an earlier one's centre
            assert in_jitter_range(o.fill, o.colour)
            x, y = (math.floor(c) for c in o.centre)
            centre = tuple(int(v) for v in pixels[y, x])
            assert in_jitter_range(centre, o.colour, slack=12), (o, centre)
            assert math.dist(centre, o.fill) < 25, (o, centre)
            checked[o.colour, o.shape] += 1


def test_shapes_cover_the_area_of_the_shape_claimed() -> None:
    """Unmix fill from background over the object's box: the covered area names the shape."""
    for o, area in covered_areas(random_scene):
        assert area == pytest.approx(SHAPE_AREA[o.shape], rel=0.08), o


def test_background_is_never_confusable_with_an_object() -> None:
    kinds = Counter()
    for s in scenes(77, 200):
        assert len(s.background) in (1, 2)
        kinds[len(s.background), s.noise > 0] += 1
        assert s.noise == 0 or 5 <= s.noise <= 25
        ends = np.array(s.background, dtype=float)
        for o in s.objects:
            for t in np.linspace(0.0, 1.0, 11):  # the whole gradient, not only its ends
                tone = ends[0] + t * (ends[-1] - ends[0])
                assert np.linalg.norm(tone - np.array(o.fill)) > 90, (s.caption, s.background)
        if not s.noise:
            corners = np.asarray(s.image)[[0, 0, -1, -1], [0, -1, 0, -1]].astype(int)
            assert (corners >= ends.min(axis=0) - 1).all()
            assert (corners <= ends.max(axis=0) + 1).all()
    assert set(kinds) == {(1, False), (1, True), (2, False), (2, True)}


def test_white_and_black_objects_stay_light_and_dark(many: list[Scene]) -> None:
    for o in (o for s in many for o in s.objects):
        if o.colour == "white":
            assert min(o.fill) >= 255 - JITTER
        elif o.colour == "black":
            assert max(o.fill) <= JITTER


def test_object_identity_is_its_colour_and_shape(many: list[Scene]) -> None:
    drawn = many[0].objects[0]
    assert drawn == SceneObject(drawn.colour, drawn.shape)
    assert drawn.name == f"{drawn.colour} {drawn.shape}"


def test_write_scenes_makes_a_labelled_data_set(tmp_path: Path) -> None:
    root = tmp_path / "new" / "scenes"
    labels_path = write_scenes(root, 40, seed=3)
    assert labels_path == root / "labels.jsonl"
    records = [json.loads(line) for line in labels_path.read_text().splitlines()]
    expected = list(scenes(3, 40))
    assert len(records) == 40
    suffixes = Counter(Path(r["file"]).suffix for r in records)
    assert set(suffixes) == {".png", ".jpg"} and min(suffixes.values()) >= 10
    for i, (record, scene) in enumerate(zip(records, expected, strict=True)):
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


def test_a_thousand_scenes_generate_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    """Speed sanity, not a timed assert: this takes about two seconds on one core."""
    assert sum(len(s.objects) for s in scenes(11, 1000, n_objects=3)) == 3000
    assert capsys.readouterr() == ("", "")
