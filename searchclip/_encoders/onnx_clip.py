"""A dual encoder made of an index's ONNX exports: no torch, no transformers.

An index encoded in int8 whose directory holds both exports (the int8 image tower with its
preprocessing settings, and the text tower: int8 where it agrees with torch, else fp32) is
indexed into and queried with this encoder: a run skips the import of torch and transformers
and the model load, the bulk of a small run's time (docs/benchmarks.md, "Indexing speed"). Its
vectors are the ones the torch encoder makes at int8 (the same graph; preprocessing equal
within float rounding).

Threads: everything is built when the encoder is made; it may encode on several threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from searchclip._encoders.base import Encoder
from searchclip._encoders.onnx_image import (
    INT8_FORMAT,
    INT8_ONNX_FILE,
    ImageExportInfo,
    OnnxImageTower,
)
from searchclip._encoders.onnx_text import OnnxTextEncoder
from searchclip._errors import InvalidArgumentError

if TYPE_CHECKING:
    from PIL import Image


class OnnxClipEncoder(Encoder):
    """Images through the int8 image tower, texts through the exported text tower."""

    image_precision = "int8"

    def __init__(self, image_path: Path, info: ImageExportInfo, text: OnnxTextEncoder) -> None:
        preprocess = info.image_preprocess()
        if preprocess is None:
            raise InvalidArgumentError("this export has no preprocessing settings", value=info)
        self.model_id = info.model_id
        self.dim = info.dim
        self.image_size = info.image_size
        self.artifact_dir = image_path.parent
        self._preprocess = preprocess
        self._image_tower = OnnxImageTower(image_path)
        self.text = text
        self.match_probability = text.match_probability

    @classmethod
    def load(
        cls, directory: Path, model_id: str, dim: int, text: OnnxTextEncoder | None = None
    ) -> OnnxClipEncoder | None:
        """The encoder for ``directory``'s exports of ``model_id``; None unless both are there,
        current and loadable (the caller then loads the torch encoder). ``text``: the text
        encoder of those exports, if the caller has it loaded already."""
        info = ImageExportInfo.read(directory)
        if info is None or (info.model_id, info.dim, info.format) != (model_id, dim, INT8_FORMAT):
            return None
        image_path = directory / INT8_ONNX_FILE
        if info.preprocess is None or not image_path.is_file():
            return None  # checked before the text session is opened for nothing
        text = text or OnnxTextEncoder.load(directory, model_id, dim, int8=True)
        if text is None:
            return None
        try:
            return cls(image_path, info, text)
        except Exception:  # a damaged graph, odd settings: the torch encoder can still work
            return None

    def set_image_precision(self, precision: str) -> None:
        if precision != "int8":
            raise InvalidArgumentError(
                f"the ONNX encoder encodes images in int8 only, not {precision}", value=precision
            )

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self._preprocess(image)

    def _embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return self._image_tower(pixels)

    def _embed_pixels_at(self, pixels: np.ndarray, precision: str) -> np.ndarray:
        self.set_image_precision(precision)
        return self._embed_pixels(pixels)

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        return self.text.encode_texts(texts)
