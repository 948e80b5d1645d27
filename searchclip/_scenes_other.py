"""A second, independent renderer of :mod:`searchclip._scenes`'s pictures, kept for held-out checks.

A model trained on ``scenes.py``'s pictures could pass its quality bars by learning that one
drawing routine (its polygons, its LANCZOS anti-aliasing, its backgrounds) instead of the colour
and shape words. So the bars are also measured on these pictures, which share everything a caption
speaks of and the ranges of what it does not (the vocabulary, the colours and their jitter, object
and image sizes, outline share, captions and the data set format) but are drawn by other code:

* shapes are analytic inside-tests (signed distances and half-planes) evaluated on a 3x3
  supersampled pixel grid and averaged, not ImageDraw polygons downsampled with LANCZOS; circles
  are true circles, squares have slightly rounded corners, stars a random inner radius (0.38-0.5
  of the outer) and crosses a random arm width (0.28-0.38 of the size);
* outlines are a band just inside the shape's boundary, measured by distance;
* backgrounds are plain, linear or radial gradients or low-frequency blotches, with optional fine
  noise, in muted tones of their own, and still far from every fill;
* image sizes, layouts (rejection sampling of whole layouts) and random streams are its own.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from searchclip._errors import InvalidArgumentError
from searchclip._scenes import (
    BACKGROUND_MIN_DISTANCE,
    MAX_OBJECTS,
    MAX_SIDE,
    MAX_SIZE,
    MIN_SIDE,
    MIN_SIZE,
    PAIRS,
    RGB,
    Scene,
    SceneObject,
    canonical_caption,
    checked_n_objects,
    distance_to_blend,
    jittered_fill,
    save_scenes,
)

_K = 3  # samples per pixel along each axis
_EDGE_MARGIN = 1.0  # pixels kept free between an object and the central square's edge
_TRIES = 40  # spots tried per object before the whole layout is redrawn smaller
_COS36, _SIN36 = math.cos(math.pi / 5), math.sin(math.pi / 5)
# Two unit vectors orthogonal to grey (1, 1, 1): a muted tone is a grey plus a little of them.
_TINT_AXES = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]) / np.array([[2**0.5], [6**0.5]])

Sdf = Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]


def random_scene(rng: random.Random, *, n_objects: int | None = None) -> Scene:
    """Draw one scene of 1 to MAX_OBJECTS objects (exactly ``n_objects`` if given)."""
    n = rng.randint(1, MAX_OBJECTS) if n_objects is None else checked_n_objects(n_objects)
    size = _image_size(rng)
    spots = _layout(rng, n, size)
    tones = None
    while tones is None:  # rarely repeats: only when no muted tone keeps clear of the fills
        pairs = rng.sample(PAIRS, n)
        fills = [jittered_fill(rng, p.split()[0]) for p in pairs]
        tones = _pick_tones(rng, fills)
    noise = rng.uniform(2.0, 10.0) if rng.random() < 0.4 else 0.0
    canvas = _background(rng, size, tones, noise)
    objects = []
    for pair, fill, (centre, diameter) in zip(pairs, fills, spots, strict=True):
        colour, shape = pair.split()
        param = _shape_param(rng, shape)
        angle = 0.0 if shape == "circle" else rng.uniform(0.0, 360.0)
        outline, width = _outline(rng, shape, param, fill, diameter)
        obj = SceneObject(colour, shape, fill, centre, diameter, angle, outline, width)
        _paint(canvas, obj, param)
        objects.append(obj)
    image = Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")
    return Scene(image, tuple(objects), canonical_caption(objects), tones, noise)


def scenes(seed: int, count: int, *, n_objects: int | None = None) -> Iterator[Scene]:
    """``count`` scenes from ``seed``: the same seed gives byte-identical images and captions."""
    if count < 0:
        raise InvalidArgumentError(f"count must be >= 0, got {count}")
    if n_objects is not None:
        checked_n_objects(n_objects)
    # A stream of its own, so that a seed's scenes are not scenes.py's drawn another way.
    rng = random.Random(f"searchclip.scenes_other-{seed}")
    return (random_scene(rng, n_objects=n_objects) for _ in range(count))


def write_scenes(
    directory: str | os.PathLike[str], count: int, seed: int, *, n_objects: int | None = None
) -> Path:
    """Write ``scenes(seed, count)`` as ``scenes.write_scenes`` does; return labels.jsonl."""
    files = random.Random(f"searchclip.scenes_other.files-{seed}")
    return save_scenes(directory, scenes(seed, count, n_objects=n_objects), files)


def _image_size(rng: random.Random) -> tuple[int, int]:
    """(width, height): short side 64-256, aspect ratio uniform up to 2:1, either way."""
    short = rng.randint(MIN_SIDE, MAX_SIDE)
    long = rng.randint(short, 2 * short)
    return (long, short) if rng.random() < 0.5 else (short, long)


def _layout(
    rng: random.Random, n: int, size: tuple[int, int]
) -> list[tuple[tuple[float, float], float]]:
    """(centre, diameter) of ``n`` objects wholly inside the central square (CLIP's crop).

    A layout that gets stuck is redrawn with every object smaller; at the smallest size all
    MAX_OBJECTS fit easily, so this ends.
    """
    side = min(size)
    left, top = (size[0] - side) / 2, (size[1] - side) / 2
    scale = 1.0
    while True:
        placed: list[tuple[tuple[float, float], float]] = []
        for _ in range(n):
            diameter = max(MIN_SIZE, scale * rng.uniform(MIN_SIZE, MAX_SIZE)) * side
            lo, hi = diameter / 2 + _EDGE_MARGIN, side - diameter / 2 - _EDGE_MARGIN
            for _ in range(_TRIES):
                centre = (left + rng.uniform(lo, hi), top + rng.uniform(lo, hi))
                if all(_apart(centre, diameter / 2, c, d / 2) for c, d in placed):
                    placed.append((centre, diameter))
                    break
            else:
                break
        if len(placed) == n:
            return placed
        scale *= 0.9


def _apart(a: tuple[float, float], ra: float, b: tuple[float, float], rb: float) -> bool:
    """Far enough that neither hides much of the other, nor any of the other's centre."""
    need = max(0.6 * (ra + rb), max(ra, rb) + 0.25 * min(ra, rb))
    return math.dist(a, b) >= need


def _pick_tones(rng: random.Random, fills: Sequence[RGB]) -> tuple[RGB, ...] | None:
    """One tone (plain) or two (the ends of every other kind), with no fill near any blend."""
    n_tones = 1 if rng.random() < 0.25 else 2
    for _ in range(100):
        tones = tuple(_muted(rng) for _ in range(n_tones))
        a, b = np.array(tones[0], dtype=float), np.array(tones[-1], dtype=float)
        if all(distance_to_blend(f, a, b) > BACKGROUND_MIN_DISTANCE for f in fills):
            return tones
    return None


def _muted(rng: random.Random) -> RGB:
    """A grey level plus a tint of random hue and small chroma."""
    hue = rng.uniform(0.0, 2 * math.pi)
    tint = rng.uniform(0.0, 30.0) * np.array([math.cos(hue), math.sin(hue)]) @ _TINT_AXES
    r, g, b = (int(v) for v in np.clip(np.rint(rng.uniform(40.0, 215.0) + tint), 0, 255))
    return r, g, b


def _background(
    rng: random.Random, size: tuple[int, int], tones: tuple[RGB, ...], noise: float
) -> np.ndarray:
    """A float (h, w, 3) canvas: a blend t in [0, 1] of the two tones, then fine noise."""
    w, h = size
    xs = np.arange(w, dtype=np.float32)[None, :] + 0.5  # pixel centres
    ys = np.arange(h, dtype=np.float32)[:, None] + 0.5
    kind = "plain" if len(tones) == 1 else rng.choice(("linear", "radial", "blotchy"))
    if kind == "plain":
        t = np.zeros((h, w), dtype=np.float32)
    elif kind == "linear":
        turn = rng.uniform(0.0, 2 * math.pi)
        t = xs * math.cos(turn) + ys * math.sin(turn)
    elif kind == "radial":
        t = np.hypot(xs - rng.uniform(0, w), ys - rng.uniform(0, h))
    else:  # a few random cells per side, smoothly upsampled: soft blotches
        gw, gh = rng.randint(2, 6), rng.randint(2, 6)
        cells = np.array([rng.random() for _ in range(gw * gh)], dtype=np.float32)
        smooth = Image.fromarray(cells.reshape(gh, gw), "F")
        t = np.asarray(smooth.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    if kind != "plain":  # stretched to the full range, which also undoes bicubic overshoot
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    a, b = (np.array(tone, dtype=np.float32) for tone in (tones[0], tones[-1]))
    pixels = a + t[..., None] * (b - a)
    if noise:
        np_rng = np.random.default_rng(rng.getrandbits(64))
        pixels += noise * np_rng.standard_normal(pixels.shape, dtype=np.float32)
    return pixels


def _shape_param(rng: random.Random, shape: str) -> float:
    """The free part of a shape's geometry, as a fraction of its radius (or size, for crosses)."""
    ranges = {"square": (0.0, 0.2), "star": (0.38, 0.5), "cross": (0.28, 0.38)}
    return rng.uniform(*ranges[shape]) if shape in ranges else 0.0


def _outline(
    rng: random.Random, shape: str, param: float, fill: RGB, diameter: float
) -> tuple[RGB | None, int]:
    """A contrasting band for ~30 % of objects: 1-3 px, at most 1/8 of the size as in scenes.py.

    It is also at most half as deep as the shape's centre, so that the centre shows the fill.
    """
    if rng.random() >= 0.3:
        return None, 0
    zero = np.zeros(1)
    depth = -float(_SDF[shape](zero, zero, diameter / 2, param)[0])
    width = min(rng.randint(1, 3), int(diameter / 8), int(depth / 2))
    if width == 0:
        return None, 0
    light = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2] > 110
    lo, hi = (0, 50) if light else (205, 255)
    r, g, b = (rng.randint(lo, hi) for _ in range(3))
    return (r, g, b), width


# Signed distances in pixels (negative inside) in the object's own frame, for radius r: the
# farthest point of every shape lies at r, the size a SceneObject records. Coverage needs only
# their sign; outlines need them (near) exact inside, which all are.


def _box(u: np.ndarray, v: np.ndarray, half_u: float, half_v: float, round_: float) -> np.ndarray:
    qu, qv = np.abs(u) - (half_u - round_), np.abs(v) - (half_v - round_)
    outside = np.hypot(np.maximum(qu, 0.0), np.maximum(qv, 0.0))
    return outside + np.minimum(np.maximum(qu, qv), 0.0) - round_


def _circle(u: np.ndarray, v: np.ndarray, r: float, _: float) -> np.ndarray:
    return np.hypot(u, v) - r


def _square(u: np.ndarray, v: np.ndarray, r: float, rounding: float) -> np.ndarray:
    rc = rounding * r  # corner radius; the half side grows so that the corners still reach r
    half = (r - rc) / math.sqrt(2) + rc
    return _box(u, v, half, half, rc)


def _triangle(u: np.ndarray, v: np.ndarray, r: float, _: float) -> np.ndarray:
    # Equilateral: three half-planes whose edges lie r / 2 from the centroid.
    turns = np.radians([0.0, 120.0, 240.0])
    sides = [u * math.cos(a) + v * math.sin(a) for a in turns]
    return np.maximum(np.maximum(sides[0], sides[1]), sides[2]) - r / 2


def _star(u: np.ndarray, v: np.ndarray, r: float, inner: float) -> np.ndarray:
    # Fold the plane into one half-point (0 to 36 degrees from a tip), whose edge runs from the
    # tip (r, 0) to the inner corner at inner * r and 36 degrees.
    phi = np.abs(np.mod(np.arctan2(v, u) + math.pi / 5, 2 * math.pi / 5) - math.pi / 5)
    rho = np.hypot(u, v)
    wu, wv = rho * np.cos(phi) - r, rho * np.sin(phi)
    eu, ev = inner * r * _COS36 - r, inner * r * _SIN36
    t = np.clip((wu * eu + wv * ev) / (eu * eu + ev * ev), 0.0, 1.0)
    dist = np.hypot(wu - t * eu, wv - t * ev)
    return np.where(eu * wv - ev * wu > 0, -dist, dist)  # the centre's side of the edge is in


def _cross(u: np.ndarray, v: np.ndarray, r: float, arm_width: float) -> np.ndarray:
    half = arm_width * r  # arm_width is a fraction of the size, 2 r
    length = math.sqrt(r * r - half * half)  # an arm's outer corners reach r
    return np.minimum(_box(u, v, length, half, 0.0), _box(u, v, half, length, 0.0))


_SDF: dict[str, Sdf] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "star": _star,
    "cross": _cross,
}


def _paint(canvas: np.ndarray, obj: SceneObject, param: float) -> None:
    """Blend ``obj`` into ``canvas`` by the share of each pixel's 3x3 samples that it covers."""
    if obj.centre is None or obj.fill is None:
        raise InvalidArgumentError(f"{obj.name} has no centre or fill to draw it with")
    (cx, cy), r = obj.centre, obj.size / 2
    h, w = canvas.shape[:2]
    x0, y0 = max(0, math.floor(cx - r) - 1), max(0, math.floor(cy - r) - 1)
    x1, y1 = min(w, math.ceil(cx + r) + 1), min(h, math.ceil(cy + r) + 1)
    offsets = (np.arange(_K, dtype=np.float32) + 0.5) / _K
    dx = (np.arange(x0, x1, dtype=np.float32)[:, None] + offsets).ravel()[None, :] - cx
    dy = (np.arange(y0, y1, dtype=np.float32)[:, None] + offsets).ravel()[:, None] - cy
    turn = math.radians(obj.angle)
    c, s = math.cos(turn), math.sin(turn)
    d = _SDF[obj.shape](dx * c + dy * s, dy * c - dx * s, r, param)

    def cover(mask: np.ndarray) -> np.ndarray:
        return mask.reshape(y1 - y0, _K, x1 - x0, _K).mean(axis=(1, 3))[..., None]

    inside = d <= 0
    covered = cover(inside)
    band = cover(inside & (d > -obj.outline_width))  # none without an outline: width 0
    fill, outline = (np.array(c, dtype=np.float32) for c in (obj.fill, obj.outline or obj.fill))
    patch = canvas[y0:y1, x0:x1]
    patch[...] = patch * (1 - covered) + fill * (covered - band) + outline * band
