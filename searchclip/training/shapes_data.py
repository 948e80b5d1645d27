"""Training batches of generated shape scenes (``searchclip._scenes``).

Design, for a 2-core CPU where every second spent drawing scenes is a second not spent
training: a pool of scenes is rendered once, in parallel worker processes, and kept as the
model's own preprocessed crops in uint8 (the processor's resize + centre crop with rescaling
and normalisation left to torch, which reproduces the processor's float output exactly).
Batches are then sampled from the pool epoch by epoch. What varies between two sightings of
a scene is its caption (canonical or a fresh random paraphrase), its batch-mates, its hard
negative and, with ``augment``, a flip or quarter turn of the crop, which keeps the labels
true (shapes are drawn at random rotations anyway) and stays an image the processor could
have produced.

Each batch holds, as texts:
- one caption per image;
- the 40 colour-shape pairs in one prompt template: "a photo of a <colour> <shape>" (the
  search prompt) in half the batches, else one of the tagging templates
  (``searchclip._templates.DEFAULT_TEMPLATES``), so every image is contrasted with every pair
  in the words it will be searched and tagged with;
- for every scene of two or more objects, a caption with the colours swapped between its
  objects (same colours, same shapes, wrong binding): the hard negative that teaches "a red
  circle and a blue star" apart from "a blue circle and a red star".
A text matches an image when the text's objects are a subset of the image's (see
``clip_loss``'s ``positives``), so duplicates and partial descriptions are never negatives.
"""

from __future__ import annotations

import io
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from searchclip import _scenes as scenes
from searchclip._templates import DEFAULT_TEMPLATES
from searchclip.training.trainer import Batch, tokenize

PROMPT = "a photo of a {}"
LABELS = (*scenes.PAIRS, *scenes.COLOURS, *scenes.SHAPES)  # what ``Batch.labels`` columns mean
_CHUNK = 250


@dataclass(frozen=True)
class ScenePool:
    pixels: np.ndarray  # (n, 3, s, s) uint8: resized and centre-cropped by the processor
    labels: tuple[tuple[str, ...], ...]  # the "colour shape" names of each scene's objects
    captions: tuple[str, ...]  # each scene's canonical caption


def render_pool(
    processor,
    *,
    seed: int,
    count: int,
    n_objects: int | None = None,
    workers: int = 1,
    progress: bool = True,
) -> ScenePool:
    """``count`` scenes (of ``n_objects`` objects, or 1-3) in chunks with seeds derived from
    ``seed``: the same pool whatever ``workers`` is."""
    jobs = [
        (processor, _chunk_seed(seed, index, n_objects), min(_CHUNK, count - start), n_objects)
        for index, start in enumerate(range(0, count, _CHUNK))
    ]
    bar = tqdm(total=count, desc="rendering scenes", unit="scene", disable=not progress)
    parts = []
    if workers <= 1:
        results = map(_render_chunk, jobs)
        for part in results:
            parts.append(part)
            bar.update(len(part[1]))
    else:
        context = multiprocessing.get_context("spawn")  # no fork of a process that runs torch
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for part in pool.map(_render_chunk, jobs):
                parts.append(part)
                bar.update(len(part[1]))
    bar.close()
    pixels = np.concatenate([part[0] for part in parts])
    labels = tuple(label for part in parts for label in part[1])
    captions = tuple(caption for part in parts for caption in part[2])
    return ScenePool(pixels, labels, captions)


def _chunk_seed(seed: int, index: int, n_objects: int | None = None) -> int:
    # Far from the small seeds that evaluations and demos use (7, 1000, 424242).
    return 10_000_000 * (seed + 1) + 100_000 * (n_objects or 0) + index


def _render_chunk(job) -> tuple[np.ndarray, list[tuple[str, ...]], list[str]]:
    processor, seed, count, n_objects = job
    files = random.Random(f"searchclip.training.files-{seed}")
    pixels, labels, captions = [], [], []
    for scene in scenes.scenes(seed, count, n_objects=n_objects):
        image = scene.image
        if files.random() < 0.5:  # as write_scenes stores half the scenes, and as indexed
            image = _as_indexed_jpeg(image, files.randint(60, 95), processor)
        crop = processor(images=image, return_tensors="np", do_rescale=False, do_normalize=False)
        pixels.append(np.asarray(crop["pixel_values"][0], dtype=np.uint8))
        labels.append(tuple(obj.name for obj in scene.objects))
        captions.append(scene.caption)
    return np.stack(pixels), labels, captions


def _as_indexed_jpeg(image, quality: int, processor):
    """``image`` saved as a JPEG and decoded the way the indexer decodes files."""
    from searchclip._images import decode_image

    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    side = processor.crop_size.height
    return decode_image(buffer.getvalue(), min_side=side).image


class SceneBatches:
    """A batch source (``next_batch``) over a :class:`ScenePool`; deterministic per ``seed``."""

    def __init__(
        self,
        pool: ScenePool,
        *,
        processor,
        tokenizer,
        batch_size: int,
        seed: int = 0,
        canonical_share: float = 0.5,
        augment: bool = True,
    ):
        self.pool = pool
        self.tokenizer = tokenizer
        self.max_length = tokenizer.model_max_length
        self.batch_size = min(batch_size, len(pool.labels))
        self.canonical_share = canonical_share
        self.augment = augment
        self._pairs = {pair: index for index, pair in enumerate(scenes.PAIRS)}
        parts = {name: index for index, name in enumerate((*scenes.COLOURS, *scenes.SHAPES))}
        self._pair_parts = torch.zeros(len(scenes.PAIRS), len(parts))
        for row, pair in enumerate(scenes.PAIRS):
            for word in pair.split(" "):
                self._pair_parts[row, parts[word]] = 1.0
        self._rng = random.Random(seed)
        self._order: list[int] = []
        self._mean = torch.tensor(processor.image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(processor.image_std, dtype=torch.float32).view(1, 3, 1, 1)

    def next_batch(self) -> Batch:
        if len(self._order) < self.batch_size:
            epoch = list(range(len(self.pool.labels)))
            self._rng.shuffle(epoch)
            self._order += epoch
        chosen, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        texts: list[str] = []
        text_labels: list[tuple[str, ...]] = []
        for index in chosen:
            labels = self.pool.labels[index]
            if self._rng.random() < self.canonical_share:
                texts.append(self.pool.captions[index])
            else:
                texts.append(self._paraphrase(labels))
            text_labels.append(labels)
        texts += [self._prompt_template().format(pair) for pair in scenes.PAIRS]
        text_labels += [(pair,) for pair in scenes.PAIRS]
        for index in chosen:
            swapped = _swap_colours(self.pool.labels[index], self._rng)
            if swapped is not None:
                texts.append(self._paraphrase(swapped))
                text_labels.append(swapped)
        image_hot = self._multi_hot([self.pool.labels[index] for index in chosen])
        text_hot = self._multi_hot(text_labels)
        outside = text_hot.float() @ (~image_hot).float().T  # text objects not in the image
        ids, mask = tokenize(self.tokenizer, texts, self.max_length)
        positives = (outside == 0).T.contiguous()
        return Batch(self._pixels(chosen), ids, mask, positives, self._label_targets(image_hot))

    def _label_targets(self, pair_hot: torch.Tensor) -> torch.Tensor:
        """Multi-hot over the 40 pairs, then the 8 colours, then the 5 shapes (``LABELS``)."""
        hot = pair_hot.float()
        return torch.cat([hot, (hot @ self._pair_parts > 0).float()], dim=1)

    def _prompt_template(self) -> str:
        """The search prompt for half the batches, else one of the tagging templates: both are
        what the model is queried with."""
        return PROMPT if self._rng.random() < 0.5 else self._rng.choice(DEFAULT_TEMPLATES)

    def _paraphrase(self, labels: tuple[str, ...]) -> str:
        objects = [scenes.SceneObject(*label.split(" ", 1)) for label in labels]
        return scenes.caption_variants(tuple(objects), self._rng)

    def _multi_hot(self, labels: list[tuple[str, ...]]) -> torch.Tensor:
        hot = torch.zeros(len(labels), len(self._pairs), dtype=torch.bool)
        for row, names in enumerate(labels):
            hot[row, [self._pairs[name] for name in names]] = True
        return hot

    def _pixels(self, chosen: list[int]) -> torch.Tensor:
        crops = torch.from_numpy(self.pool.pixels[chosen])
        if self.augment:
            crops = torch.stack([self._dihedral(crop) for crop in crops])
        return (crops.float() / 255.0 - self._mean) / self._std

    def _dihedral(self, crop: torch.Tensor) -> torch.Tensor:
        turned = torch.rot90(crop, self._rng.randrange(4), dims=(1, 2))
        return turned.flip(2) if self._rng.random() < 0.5 else turned


def _swap_colours(labels: tuple[str, ...], rng: random.Random) -> tuple[str, ...] | None:
    """The objects with their colours rotated so that at least one binding is wrong, or None
    when no rotation changes the set (one object, or all colours or all shapes alike)."""
    colours = [label.split(" ", 1)[0] for label in labels]
    shapes = [label.split(" ", 1)[1] for label in labels]
    shifts = list(range(1, len(labels)))
    rng.shuffle(shifts)
    for shift in shifts:
        turned = colours[shift:] + colours[:shift]
        swapped = tuple(f"{c} {s}" for c, s in zip(turned, shapes, strict=True))
        if set(swapped) != set(labels) and len(set(swapped)) == len(swapped):
            return swapped
    return None
