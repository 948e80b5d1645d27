"""What an ingest run is given: its options, its model's encoding, its listeners; and the
bounded, in-order thread pool map that ingest and a model migration read files with."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from searchclip import _images as images
from searchclip._errors import InvalidArgumentError
from searchclip._results import IndexProgress


class ImageEncoding(Protocol):
    """What ingest needs from a model: its input size, preprocessing (run on decoding threads)
    and batch encoding. The engine's implementation loads the model on first use, so a run that
    encodes nothing never loads it."""

    def image_size(self) -> int: ...

    def preprocess(self, image: Image.Image) -> np.ndarray: ...

    def encode(self, pixels: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class BatchCommitted:
    """One committed batch's effect on the vectors: ids whose vector is new or replaced, those
    vectors, and ids whose vector is gone (the engine keeps its vector index in step)."""

    upserted: list[int]
    vectors: list[np.ndarray]
    removed: list[int]


@dataclass(frozen=True)
class IngestOptions:
    batch_size: int = 32
    workers: int = min(4, os.cpu_count() or 1)
    # An explicit per-image pixel limit, which replaces the decode budget; None means the
    # budget: images.decode_budget(workers) per decode.
    max_pixels: int | None = None
    # Remove the files of missing or empty folders (a deleted folder) instead of keeping them
    # offline (an unmounted drive).
    forget_offline: bool = False

    @classmethod
    def checked(
        cls,
        batch_size: int,
        workers: int | None,
        max_pixels: int | None,
        forget_offline: bool = False,
    ):
        """Options from a caller's values (None: the default), each checked."""
        for name, value in (("workers", workers), ("max_pixels", max_pixels)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidArgumentError(f"{name} must be at least 1, got {value!r}", value=value)
        given = {"workers": workers} if workers else {}
        return cls(
            batch_size=batch_size, max_pixels=max_pixels, forget_offline=forget_offline, **given
        )

    def decode_limits(self) -> dict:
        """The keyword limits for images.decode_image: the caller's max_pixels as given, else
        the per-worker share of the decode budget; the aspect-ratio cap and the reduction to
        the model's input size either way."""
        budget = images.decode_budget(self.workers) if self.max_pixels is None else None
        return {
            "max_pixels": self.max_pixels or images.DEFAULT_MAX_PIXELS,
            "decode_pixels": budget,
            "max_aspect": images.MAX_ASPECT_RATIO,
            "reduce": True,
        }


@dataclass(frozen=True)
class IngestListeners:
    """Who is told what while a run goes: ``progress`` after each file is handled,
    ``committed`` after each batch reaches the catalog."""

    progress: Callable[[IndexProgress], None] | None = None
    committed: Callable[[BatchCommitted], None] | None = None


def in_order(pool: ThreadPoolExecutor, work, items: Iterable[tuple], window: int) -> Iterator:
    """Results of ``work(*item)`` in input order, keeping at most ``window`` in flight."""
    pending: deque = deque()
    iterator = iter(items)
    for item in iterator:
        pending.append(pool.submit(work, *item))
        if len(pending) >= window:
            break
    while pending:
        result = pending.popleft().result()
        next_item = next(iterator, None)
        if next_item is not None:
            pending.append(pool.submit(work, *next_item))
        yield result
