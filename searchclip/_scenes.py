"""Captioned synthetic scenes ("a photo of a red circle and a blue star") to train a tiny CLIP.

No pretrained weights can be downloaded here, so the project trains its own contrastive model on
these pictures. Everything that a caption does not name (shade, size, position, rotation,
outline, background, image size, file format) varies at random, so that a model has to learn
the colour and shape words rather than one drawing routine; and whatever varies, the objects and
the caption of a :class:`Scene` describe exactly what was drawn.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from searchclip._errors import InvalidArgumentError

RGB = tuple[int, int, int]

# Base colours far enough apart that their jittered ranges stay apart on some channel.
COLOURS: dict[str, RGB] = {
    "red": (215, 35, 35),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 220, 40),
    "purple": (140, 50, 180),
    "orange": (245, 135, 20),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
PAIRS: tuple[str, ...] = tuple(f"{c} {s}" for c in COLOURS for s in SHAPES)
MAX_OBJECTS = 3

JITTER = round(0.15 * 255)  # per channel; black and white only move inward
BACKGROUND_MIN_DISTANCE = 90.0  # Euclidean RGB distance from every object's fill
MIN_SIDE, MAX_SIDE = 64, 256  # the image's short side
MIN_SIZE, MAX_SIZE = 0.25, 0.50  # object diameter, as a fraction of the short side (issue 11)
_SUPERSAMPLE = 4  # objects are drawn at 4x and downsampled, as a renderer anti-aliases
_PLACEMENT_TRIES = 30
_EDGE_MARGIN = 1.0  # pixels kept free between an object and the central square's edge
_TEMPLATES = (
    "a photo of {}",
    "a picture of {}",
    "an image showing {}",
    "an image of {}",
    "a drawing of {}",
    "a rendering of {}",
    "{}",
)


@dataclass(frozen=True)
class SceneObject:
    """One object: colour and shape are its identity and all that a caption says of it.

    The other fields record how it was drawn (pixel centre ``(x, y)``, bounding diameter in
    pixels, rotation in degrees, fill and outline colours), so that tests can check a picture
    against its caption; they take no part in equality.
    """

    colour: str
    shape: str
    fill: RGB | None = field(default=None, compare=False)
    centre: tuple[float, float] | None = field(default=None, compare=False)
    size: float = field(default=0.0, compare=False)
    angle: float = field(default=0.0, compare=False)
    outline: RGB | None = field(default=None, compare=False)
    outline_width: int = field(default=0, compare=False)

    @property
    def name(self) -> str:
        """The phrase a caption uses for this object: ``"red circle"``."""
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Scene:
    """An RGB picture, the objects drawn in it (in drawing order) and its canonical caption.

    ``background`` holds the one (plain) or two (gradient) base colours behind the objects and
    ``noise`` the sigma of the Gaussian noise added to them (0 for none).
    """

    image: Image.Image
    objects: tuple[SceneObject, ...]
    caption: str
    background: tuple[RGB, ...] = ()
    noise: float = 0.0

    @property
    def labels(self) -> list[str]:
        """Sorted unique colour, shape and "colour shape" labels, as the labels.jsonl files."""
        return sorted({x for o in self.objects for x in (o.colour, o.shape, o.name)})


def canonical_caption(objects: Sequence[SceneObject]) -> str:
    """The caption stored with a scene: "a photo of a red circle and a blue star"."""
    if not objects:
        raise InvalidArgumentError("a caption needs at least one object")
    return "a photo of " + _and_list([_with_article(o.name) for o in objects])


def caption_variants(objects: Sequence[SceneObject], rng: random.Random) -> str:
    """A random paraphrase for training that still names every object by colour and shape."""
    if not objects:
        raise InvalidArgumentError("a caption needs at least one object")
    names = [o.name for o in objects]
    if rng.random() < 0.5:
        rng.shuffle(names)
    if rng.random() < 0.15:
        return ", ".join(names)  # the terse style of tags: "red circle, blue star"
    phrases = [_with_article(n) for n in names]
    if len(phrases) > 1 and rng.random() < 0.3:
        connector = rng.choice((" next to ", " with ", " beside "))
        body = phrases[0] + connector + _and_list(phrases[1:])
    else:
        body = _and_list(phrases)
    return rng.choice(_TEMPLATES).format(body)


def random_scene(rng: random.Random, *, n_objects: int | None = None) -> Scene:
    """Draw one scene; fewer objects than asked only when no free spot is left for one."""
    n = rng.randint(1, MAX_OBJECTS) if n_objects is None else checked_n_objects(n_objects)
    size = _image_size(rng)
    spots = _place(rng, n, size)
    background = None
    while background is None:  # almost never repeats: only if no muted tone fits the fills
        pairs = rng.sample(PAIRS, len(spots))
        fills = [jittered_fill(rng, p.split()[0]) for p in pairs]
        background = _pick_background(rng, fills)
    noise = rng.uniform(5.0, 25.0) if rng.random() < 0.4 else 0.0
    image = _render_background(rng, size, background, noise)
    objects = []
    for pair, fill, (centre, diameter) in zip(pairs, fills, spots, strict=True):
        colour, shape = pair.split()
        style = _style(rng, shape, fill, diameter)
        obj = SceneObject(colour, shape, fill, centre, diameter, *style)
        _draw(image, obj)
        objects.append(obj)
    return Scene(image, tuple(objects), canonical_caption(objects), background, noise)


def scenes(seed: int, count: int, *, n_objects: int | None = None) -> Iterator[Scene]:
    """``count`` scenes from ``seed``: the same seed gives byte-identical images and captions."""
    if count < 0:
        raise InvalidArgumentError(f"count must be >= 0, got {count}")
    if n_objects is not None:
        checked_n_objects(n_objects)
    rng = random.Random(seed)
    return (random_scene(rng, n_objects=n_objects) for _ in range(count))


def write_scenes(
    directory: str | os.PathLike[str], count: int, seed: int, *, n_objects: int | None = None
) -> Path:
    """Write ``scenes(seed, count)`` as a data set like ``shared/data/*``; return labels.jsonl."""
    files = random.Random(f"searchclip.scenes.files-{seed}")
    return save_scenes(directory, scenes(seed, count, n_objects=n_objects), files)


def save_scenes(
    directory: str | os.PathLike[str], drawn: Iterable[Scene], files: random.Random
) -> Path:
    """Write ``drawn`` scenes under ``directory/images`` with a labels.jsonl beside (the path
    returned): {"file", "labels", "captions"} per scene, as ``shared/data/*`` has them.

    About half the images are JPEGs (quality 60-95), so a model also meets compression
    artefacts. The file choices come from ``files``, a random stream of their own, so the
    pictures are the renderer's whatever is chosen.
    """
    root = Path(directory)
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, scene in enumerate(drawn):
        if files.random() < 0.5:
            rel = f"images/scene-{i:05d}.jpg"
            scene.image.save(root / rel, "JPEG", quality=files.randint(60, 95))
        else:
            rel = f"images/scene-{i:05d}.png"
            scene.image.save(root / rel, "PNG")
        record = {"file": rel, "labels": scene.labels, "captions": [scene.caption]}
        lines.append(json.dumps(record) + "\n")
    labels_path = root / "labels.jsonl"
    labels_path.write_text("".join(lines), encoding="utf-8")
    return labels_path


def checked_n_objects(n_objects: int) -> int:
    """``n_objects`` if a scene can hold that many objects; else InvalidArgumentError."""
    if not 1 <= n_objects <= MAX_OBJECTS:
        raise InvalidArgumentError(f"n_objects must be 1 to {MAX_OBJECTS}, got {n_objects}")
    return n_objects


def _with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _and_list(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _image_size(rng: random.Random) -> tuple[int, int]:
    """(width, height): short side 64-256, aspect ratio log-uniform up to 2:1, either way."""
    short = rng.randint(MIN_SIDE, MAX_SIDE)
    long = min(2 * short, round(short * 2.0 ** rng.random()))
    return (long, short) if rng.random() < 0.5 else (short, long)


def _place(
    rng: random.Random, n: int, size: tuple[int, int]
) -> list[tuple[tuple[float, float], float]]:
    """(centre, diameter) for up to ``n`` objects, each wholly inside the central square.

    CLIP preprocessing crops that square, so nothing outside it would be seen. A spot that
    cannot be found shrinks the object, down to the smallest size, and then drops it.
    """
    side = min(size)
    left, top = (size[0] - side) / 2, (size[1] - side) / 2
    placed: list[tuple[tuple[float, float], float]] = []
    for _ in range(n):
        diameter = rng.uniform(MIN_SIZE, MAX_SIZE) * side
        for attempt in range(1, 5 * _PLACEMENT_TRIES + 1):
            r = diameter / 2
            lo, hi = r + _EDGE_MARGIN, side - r - _EDGE_MARGIN
            centre = (left + rng.uniform(lo, hi), top + rng.uniform(lo, hi))
            if all(_apart(centre, r, c, d / 2) for c, d in placed):
                placed.append((centre, diameter))
                break
            if attempt % _PLACEMENT_TRIES == 0:
                diameter = max(MIN_SIZE * side, 0.75 * diameter)
    return placed


def _apart(a: tuple[float, float], ra: float, b: tuple[float, float], rb: float) -> bool:
    """Centres ~0.6 (ra + rb) apart, and far enough that no object hides another's centre."""
    need = max(0.6 * (ra + rb), max(ra, rb) + 0.3 * min(ra, rb))
    return math.dist(a, b) >= need


def jittered_fill(rng: random.Random, colour: str) -> RGB:
    """A shade of ``colour``: +-JITTER per channel, black and white only inward, so that every
    renderer's "red" means the same range of fills."""
    lo, hi = {"black": (0, JITTER), "white": (-JITTER, 0)}.get(colour, (-JITTER, JITTER))
    r, g, b = (min(255, max(0, c + rng.randint(lo, hi))) for c in COLOURS[colour])
    return r, g, b


def _pick_background(rng: random.Random, fills: Sequence[RGB]) -> tuple[RGB, ...] | None:
    """One or two muted tones that no fill is near (the whole gradient between them counts)."""
    n_colours = 1 if rng.random() < 0.5 else 2
    for _ in range(200):
        colours = tuple(_muted(rng) for _ in range(n_colours))
        ends = np.array(colours * (3 - n_colours), dtype=float)[:2]
        if all(distance_to_blend(f, ends[0], ends[1]) > BACKGROUND_MIN_DISTANCE for f in fills):
            return colours
    return None


def _muted(rng: random.Random) -> RGB:
    """A greyish tone: a grey level plus a small tint, never a saturated colour."""
    grey = rng.uniform(30.0, 225.0)
    tint = 5.0 + 0.2 * min(grey, 255.0 - grey)  # dark and light tones get less of it
    r, g, b = (round(min(255.0, max(0.0, grey + rng.uniform(-tint, tint)))) for _ in range(3))
    return r, g, b


def distance_to_blend(point: RGB, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from ``point`` to the blends of tones ``a`` and ``b`` (the segment between)."""
    p, ab = np.asarray(point, dtype=float), b - a
    denom = float(ab @ ab)
    t = 0.0 if denom == 0 else min(1.0, max(0.0, float((p - a) @ ab) / denom))
    return float(np.linalg.norm(p - (a + t * ab)))


def _render_background(
    rng: random.Random, size: tuple[int, int], colours: tuple[RGB, ...], noise: float
) -> Image.Image:
    """Plain or a vertical, horizontal or diagonal gradient; then Gaussian noise, if any."""
    if len(colours) == 1 and noise == 0:
        return Image.new("RGB", size, colours[0])
    w, h = size
    a = np.array(colours[0], dtype=np.float32)
    b = np.array(colours[-1], dtype=np.float32)
    xs = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    t = rng.choice((xs + 0 * ys, ys + 0 * xs, (xs + ys) / 2, (1 - xs + ys) / 2))
    pixels = a + t[..., None] * (b - a)
    if noise:
        np_rng = np.random.default_rng(rng.getrandbits(64))
        pixels = pixels + np_rng.normal(0.0, noise, pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def _style(
    rng: random.Random, shape: str, fill: RGB, diameter: float
) -> tuple[float, RGB | None, int]:
    """(angle, outline colour, outline width): a contrasting outline for ~30 % of objects.

    Outlines are at most 1/8 of the diameter wide, and absent below 8 px, where they would
    cover the whole shape.
    """
    angle = 0.0 if shape == "circle" else rng.uniform(0.0, 360.0)
    width = min(rng.randint(1, 3), int(diameter // 8)) if rng.random() < 0.3 else 0
    if width == 0:
        return angle, None, 0
    dark = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2] > 110
    lo, hi = (0, 50) if dark else (205, 255)
    r, g, b = (rng.randint(lo, hi) for _ in range(3))
    return angle, (r, g, b), width


def _unit_polygon(shape: str) -> np.ndarray:
    """Vertices around (0, 0), the farthest at distance 1; a circle is a fine 96-gon."""
    if shape == "cross":  # a plus sign whose arms are 0.33 of its size wide
        h = 0.33
        arm = [(h, 1), (h, h), (1, h), (1, -h), (h, -h), (h, -1)]
        points = np.array(arm + [(-x, -y) for x, y in arm])
        return points / np.linalg.norm(points, axis=1).max()
    # (vertices, their radii in turn, first angle); the star's inner radius is 0.45
    n, radii, start = {
        "circle": (96, [1.0], 0),
        "square": (4, [1.0], 45),
        "triangle": (3, [1.0], -90),  # equilateral: its centroid is the origin
        "star": (10, [1.0, 0.45], -90),
    }[shape]
    angles = np.radians(start + np.arange(n) * 360 / n)
    return np.resize(radii, n)[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)


_POLYGONS = {s: _unit_polygon(s) for s in SHAPES}


def _draw(image: Image.Image, obj: SceneObject) -> None:
    """Paint ``obj`` into ``image`` through anti-aliased masks drawn at 4x in a small patch."""
    if obj.centre is None or obj.fill is None:
        raise InvalidArgumentError(f"{obj.name} has no centre or fill to draw it with")
    (cx, cy), r, k = obj.centre, obj.size / 2, _SUPERSAMPLE
    x0, y0 = math.floor(cx - r) - 2, math.floor(cy - r) - 2
    w, h = math.ceil(cx + r) + 2 - x0, math.ceil(cy + r) + 2 - y0
    turn = math.radians(obj.angle)
    rotation = np.array([[math.cos(turn), math.sin(turn)], [-math.sin(turn), math.cos(turn)]])
    corners = _POLYGONS[obj.shape] @ rotation * (r * k) + ((cx - x0) * k, (cy - y0) * k)
    points = [(float(x), float(y)) for x, y in corners]
    box = (x0, y0, x0 + w, y0 + h)
    layers = [(obj.fill, {"fill": 255})]
    if obj.outline is not None:
        layers.append((obj.outline, {"outline": 255, "width": obj.outline_width * k}))
    for colour, how in layers:
        mask = Image.new("L", (w * k, h * k))
        ImageDraw.Draw(mask).polygon(points, **how)
        image.paste(colour, box, mask.resize((w, h), Image.Resampling.LANCZOS))
