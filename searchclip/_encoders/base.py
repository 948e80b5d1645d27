"""The encoder seam: images and texts in, float32 L2-normalised vectors out.

Subclasses implement three small hooks (``preprocess``, ``_embed_pixels``, ``_embed_texts``);
batching, normalisation and sanity checks live here once.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from searchclip._errors import InvalidArgumentError, ModelLoadError

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class MatchProbability:
    """A sigmoid-trained model's (SigLIP's) own reading of a text-image cosine: the probability
    ``sigmoid(scale * cosine + bias)`` that the text describes the image, with ``scale`` the
    model's ``exp(logit_scale)`` and ``bias`` its ``logit_bias``. Softmax-trained models (CLIP)
    have no such calibration: their scores only rank."""

    scale: float
    bias: float

    def of(self, cosine: float) -> float:
        """The match probability of ``cosine``."""
        return 1.0 / (1.0 + math.exp(-(self.scale * cosine + self.bias)))

    def cosine_at(self, probability: float) -> float:
        """The cosine whose match probability is ``probability`` (0 < probability < 1)."""
        return (math.log(probability / (1.0 - probability)) - self.bias) / self.scale


class Encoder(ABC):
    """Turns images and texts into comparable unit vectors.

    To implement one, set three attributes and override three methods:

    - ``model_id``: what an index records (a Hugging Face id, or a local directory's absolute
      path); an index opened later with this encoder must find the same id;
    - ``dim``: the vector length;
    - ``image_size``: the side of the square model input, which lets decoders shrink large
      images early;
    - ``preprocess(image)``: one RGB PIL image to float32 (3, image_size, image_size); called
      on several decoding threads at once, so it must be thread-safe;
    - ``_embed_pixels(pixels)``: a batch (n, 3, s, s) of preprocessed images to raw vectors
      (n, dim), any scale;
    - ``_embed_texts(texts)``: a list of texts to raw vectors (n, dim).

    The ``_embed_*`` hooks too may run on several threads at once (searches on one shared
    engine): state an encoder builds on first use needs a lock.
    The public ``encode_*`` methods batch (``batch_size``), check shapes and finiteness, and
    L2-normalise; never override them. An encoder with faster low precisions also overrides
    ``low_image_precisions`` and ``_embed_pixels_at`` (and ``set_image_precision`` if it accepts
    more precisions than those). ``onnx_exportable`` says whether the engine may export its
    towers to ONNX next to an index: True only for an encoder with everything
    ``onnx_export.ExportableEncoder`` names (the CLIP encoder). ``match_probability`` is set
    for a sigmoid-trained model: the relevance cut-off reads it (:mod:`searchclip._relevance`).
    """

    model_id: str
    dim: int
    image_size: int
    batch_size: int = 32
    image_precision: str = "fp32"  # see precision.py
    onnx_exportable: ClassVar[bool] = False
    match_probability: MatchProbability | None = None
    # Where the encoder may keep files derived from its model (the int8 image tower): the
    # engine sets its index directory. None: such files live in a temporary directory.
    artifact_dir: Path | None = None

    @abstractmethod
    def preprocess(self, image: Image.Image) -> np.ndarray:
        """One RGB image to the model's input, float32 (3, image_size, image_size).

        Must be thread-safe: the indexer calls it on decoding threads.
        """

    @abstractmethod
    def _embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """A batch (n, 3, s, s) of preprocessed images to raw embeddings (n, dim)."""

    @abstractmethod
    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        """A batch of texts to raw embeddings (n, dim)."""

    def low_image_precisions(self) -> tuple[str, ...]:
        """The image precisions besides fp32 that may be faster on this encoder's device
        ("int8", "bf16"); ``auto`` tries each of them against fp32."""
        return ()

    def set_image_precision(self, precision: str) -> None:
        """Encode images at ``precision`` from now on (fp32, or one of low_image_precisions)."""
        if precision != "fp32" and precision not in self.low_image_precisions():
            raise InvalidArgumentError(
                f"this encoder cannot encode images in {precision} on its device; use fp32",
                value=precision,
            )
        self.image_precision = precision

    def _embed_pixels_at(self, pixels: np.ndarray, precision: str) -> np.ndarray:
        """Like ``_embed_pixels`` at a given precision; encoders with a low one override this."""
        if precision != "fp32":
            raise InvalidArgumentError(
                f"this encoder cannot encode images in {precision}", value=precision
            )
        return self._embed_pixels(pixels)

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed images (n, 3, s, s) to unit vectors (n, dim), in batches."""
        return self._batched(_checked_pixels(pixels), len(pixels), self._embed_pixels)

    def encode_pixels_at(self, pixels: np.ndarray, precision: str) -> np.ndarray:
        """``encode_pixels`` at ``precision``, leaving the encoder's own precision as it is."""
        pixels = _checked_pixels(pixels)
        return self._batched(pixels, len(pixels), lambda b: self._embed_pixels_at(b, precision))

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB images to unit vectors (n, dim)."""
        if not images:
            return np.empty((0, self.dim), dtype=np.float32)
        return self.encode_pixels(np.stack([self.preprocess(image) for image in images]))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts to unit vectors (n, dim)."""
        texts = list(texts)
        return self._batched(texts, len(texts), self._embed_texts)

    def _batched(self, items, count: int, embed) -> np.ndarray:
        if count == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        parts = [embed(items[i : i + self.batch_size]) for i in range(0, count, self.batch_size)]
        vectors = np.concatenate(parts).astype(np.float32, copy=False)
        return normalize(vectors, self.dim, model=getattr(self, "model_id", None))


def _checked_pixels(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim != 4 or pixels.shape[1] != 3:
        raise InvalidArgumentError(
            f"expected pixels of shape (n, 3, s, s), got {pixels.shape}", value=pixels.shape
        )
    return pixels


def normalize(vectors: np.ndarray, dim: int, *, model: str | None = None) -> np.ndarray:
    """L2-normalise rows, refusing shapes or values that would corrupt an index: a model that
    returns them cannot be used (ModelLoadError, with ``model`` as its context)."""
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ModelLoadError(
            f"the encoder returned vectors of shape {vectors.shape}, expected (n, {dim})",
            model=model,
        )
    if not np.isfinite(vectors).all():
        raise ModelLoadError("the encoder returned non-finite values", model=model)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
