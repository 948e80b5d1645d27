"""Measuring what a renderer drew, shared by the tests of both scene renderers."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np

from searchclip._scenes import SHAPES, Scene, SceneObject


def covered_areas(
    random_scene: Callable[..., Scene], *, each: int = 5, seed: int = 5
) -> Iterator[tuple[SceneObject, float]]:
    """(object, covered area over its bounding circle's) for single-object scenes of
    ``random_scene`` on plain, noise-free backgrounds, until every shape was seen ``each``
    times. The area unmixes fill from background over the object's box."""
    rng = random.Random(seed)
    seen = Counter()
    while min(seen.values(), default=0) < each or len(seen) < len(SHAPES):
        s = random_scene(rng, n_objects=1)
        (o,) = s.objects
        if s.noise or len(s.background) != 1 or o.outline or o.size < 30:
            continue
        (x, y), r = o.centre, o.size / 2 + 3
        w, h = s.image.size
        box = (max(0, math.floor(x - r)), max(0, math.floor(y - r)))
        box += (min(w, math.ceil(x + r)), min(h, math.ceil(y + r)))
        patch = np.asarray(s.image.crop(box), dtype=float)
        bg, fill = np.array(s.background[0], dtype=float), np.array(o.fill, dtype=float)
        coverage = ((patch - bg) @ (fill - bg)) / ((fill - bg) @ (fill - bg))
        yield o, coverage.sum() / (math.pi * (o.size / 2) ** 2)
        seen[o.shape] += 1
