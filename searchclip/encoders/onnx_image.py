"""CLIP's image tower as an int8 ONNX model (the ``int8`` image precision).

An index encoded in int8 keeps, next to its catalog:

    image-encoder-int8.onnx  pixel_values (float32, batch x 3 x s x s) -> image_embeds; the
                             image tower with its weights quantised to int8 per output channel
                             and activations quantised on the fly (ONNX Runtime dynamic
                             quantisation): ~2.5x the fp32 speed of ViT-B/32 on an AVX-512 CPU
    image-encoder-int8.json  what it was made from (model, dim, input side); written last

:mod:`searchclip.encoders.onnx_export` writes them from the torch model; this module only runs
them, and never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchclip.encoders.onnx_common import Sidecar, open_session

INT8_ONNX_FILE = "image-encoder-int8.onnx"
INT8_SIDECAR_FILE = "image-encoder-int8.json"
INT8_FORMAT = 1  # bump when the files' meaning changes: older exports are then stale


@dataclass(frozen=True)
class ImageExportInfo(Sidecar):
    """The sidecar of an int8 image tower."""

    FILE = INT8_SIDECAR_FILE

    model_id: str
    dim: int
    image_size: int
    format: int = INT8_FORMAT


def current_int8_export(directory: Path, expected: ImageExportInfo) -> Path | None:
    """The int8 graph in ``directory`` if its sidecar is ``expected``; else None."""
    if ImageExportInfo.read(directory) != expected or not (directory / INT8_ONNX_FILE).is_file():
        return None
    return directory / INT8_ONNX_FILE


class OnnxImageTower:
    """Preprocessed pixels (n, 3, s, s) to raw (not yet normalised) image embeddings."""

    def __init__(self, path: Path) -> None:
        # No spinning: while indexing, decoding threads need the cores between operators.
        self._session = open_session(path, spin=False)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        feed = {"pixel_values": np.ascontiguousarray(pixels, dtype=np.float32)}
        return self._session.run(["image_embeds"], feed)[0]
