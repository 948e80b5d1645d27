"""Search quality of a model on held-out shape scenes, measured in memory with an encoder.

The same three figures as ``searchclip.quality`` (which goes through the real index) on the
same files: the scenes are written with ``write_scenes`` (half of them JPEGs) to a temporary
directory and decoded as the indexer decodes them, but searched exhaustively in memory, so
training can report the figures in seconds:

- text→image: for each of the 40 colour-shape pairs, the query "a photo of a <colour> <shape>"
  over ``n_scenes`` scenes of 1-3 objects; precision@10 = share of the 10 nearest scenes that
  hold the pair, averaged over pairs (and the worst pair);
- zero-shot: ``n_single`` single-object scenes classified among the 40 prompts; top-1;
- image→image: the same single-object scenes as queries; share of their 5 nearest gallery
  scenes that hold the query's pair.

Cosine similarity is the dot product of the encoder's unit vectors.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from searchclip import images
from searchclip.encoders.base import Encoder

PROMPT = "a photo of a {}"


def evaluate_shapes_model(
    encoder: Encoder, seed: int, n_scenes: int = 500, n_single: int = 200
) -> dict:
    """Gallery ``scenes(seed, n_scenes)``, queries ``scenes(seed + 1, n_single, n_objects=1)``."""
    from searchclip import scenes

    pairs = list(scenes.PAIRS)
    with tempfile.TemporaryDirectory(prefix="searchclip-eval-") as tmp:
        gallery = _read(scenes.write_scenes(Path(tmp, "gallery"), n_scenes, seed), encoder)
        singles = _read(
            scenes.write_scenes(Path(tmp, "singles"), n_single, seed + 1, n_objects=1), None
        )
    gallery_vectors = encoder.encode_images([image for image, _ in gallery])
    single_vectors = encoder.encode_images([image for image, _ in singles])
    prompt_vectors = encoder.encode_texts([PROMPT.format(pair) for pair in pairs])
    holds = np.array([[pair in labels for pair in pairs] for _, labels in gallery])

    top10 = _top(prompt_vectors @ gallery_vectors.T, 10)  # (40, 10) gallery indices
    per_pair = {pair: float(holds[top10[i], i].mean()) for i, pair in enumerate(pairs)}
    worst = min(per_pair, key=per_pair.get)

    truth = np.array([pairs.index(_pair(labels, pairs)) for _, labels in singles])
    predicted = (single_vectors @ prompt_vectors.T).argmax(axis=1)
    top5 = _top(single_vectors @ gallery_vectors.T, 5)  # (n_single, 5)
    image_hits = holds[top5, truth[:, None]]
    return {
        "precision@10": round(float(np.mean(list(per_pair.values()))), 4),
        "worst_pair": worst,
        "worst_precision@10": round(per_pair[worst], 4),
        "zero_shot_top1": round(float((predicted == truth).mean()), 4),
        "image_to_image@5": round(float(image_hits.mean()), 4),
        "per_pair_precision@10": per_pair,
        "evaluation": {"seed": seed, "gallery_size": n_scenes, "singles": n_single},
    }


def _top(similarity: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` largest values, best first (stable on ties)."""
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def _read(labels_file: Path, encoder: Encoder | None) -> list[tuple[object, set[str]]]:
    """(RGB image, labels) per record: decoded as the indexer does (``encoder`` given, JPEGs at
    reduced scale) or as a query image is (``None``)."""
    side = None if encoder is None else encoder.image_size
    records = [json.loads(line) for line in labels_file.read_text().splitlines()]
    return [
        (images.load_image(labels_file.parent / r["file"], min_side=side).image, set(r["labels"]))
        for r in records
    ]


def _pair(labels: set[str], pairs: list[str]) -> str:
    (pair,) = labels & set(pairs)
    return pair
