"""A model's image tower as an int8 ONNX model (the ``int8`` image precision).

An index encoded in int8 keeps, next to its catalog:

    image-encoder-int8.onnx  pixel_values (float32, batch x 3 x s x s) -> image_embeds; the
                             image tower with its weights quantised to int8 (one scale per
                             tensor) and activations quantised on the fly (ONNX Runtime dynamic
                             quantisation); its speed against fp32: docs/benchmarks.md, "Image
                             encoding precision"
    image-encoder-int8.json  what it was made from (model, dim) and how to preprocess images
                             for it (the model's image processor settings, as ImagePreprocess
                             fields; None where ImagePreprocess cannot reproduce it); written
                             last

:mod:`searchclip._encoders.onnx_export` writes them from the torch model; this module only runs
them, and never imports torch or transformers: with both exports, an int8 index is encoded and
queried without them (:mod:`searchclip._encoders.onnx_clip`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from searchclip._encoders.onnx_common import Sidecar, open_session

if TYPE_CHECKING:
    from PIL import Image

INT8_ONNX_FILE = "image-encoder-int8.onnx"
INT8_SIDECAR_FILE = "image-encoder-int8.json"
# Bump when the files' meaning changes: older exports are then stale. 3: the preprocessing
# settings are ImagePreprocess's (a fixed-size resize, an optional crop).
INT8_FORMAT = 3


@dataclass(frozen=True)
class ImagePreprocess:
    """A transformers image processor's preprocessing (its PIL backend: ``CLIPImageProcessor``,
    ``SiglipImageProcessor``, ``ViTImageProcessor``...): resize, either the shortest side to
    ``shortest_edge`` (lengths truncated, as transformers does) or to exactly ``height`` x
    ``width``; crop the centre square of ``crop`` if set; scale to [0, 1]; normalise per
    channel. Same output as the processor within float rounding (tested on real photos),
    without importing transformers."""

    resample: int  # a PIL resampling filter
    rescale: float
    mean: list[float]  # lists, as the JSON sidecar holds them: a read sidecar compares equal
    std: list[float]
    shortest_edge: int | None = None
    height: int | None = None  # with width: a resize to this fixed size, ignoring aspect
    width: int | None = None
    crop: int | None = None
    # The crop offset of an odd margin: "floor" as transformers; "round" (half to even) as
    # torchvision's CenterCrop, which OpenCLIP's transform uses (open_clip_preprocess.py).
    crop_rounding: str = "floor"

    def __call__(self, image: Image.Image) -> np.ndarray:
        """One RGB image to float32 (3, side, side)."""
        width, height = image.size
        if self.shortest_edge is None:
            size = (int(self.width), int(self.height))
        elif width <= height:
            size = (self.shortest_edge, int(self.shortest_edge * height / width))
        else:
            size = (int(self.shortest_edge * width / height), self.shortest_edge)
        resized = image.resize(size, self.resample)
        if self.crop is not None:
            left, top = self._crop_offset(size[0]), self._crop_offset(size[1])
            resized = resized.crop((left, top, left + self.crop, top + self.crop))
        pixels = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(3, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(3, 1, 1)
        return (pixels * np.float32(self.rescale) - mean) / std

    def _crop_offset(self, length: int) -> int:
        margin = length - self.crop
        return round(margin / 2) if self.crop_rounding == "round" else margin // 2


ClipPreprocess = ImagePreprocess  # its name before other families had one


def preprocess_settings(processor) -> dict | None:
    """ImagePreprocess's fields for a transformers image processor; None if it does something
    else (no resize, no rescaling or normalising, a crop that is not square, a resize to a
    bounded size), which ImagePreprocess would not reproduce. Reads the processor's attributes
    only."""
    if not (processor.do_resize and processor.do_rescale and processor.do_normalize):
        return None
    size = processor.size
    shortest = getattr(size, "shortest_edge", None)
    height, width = getattr(size, "height", None), getattr(size, "width", None)
    if getattr(size, "longest_edge", None) or not (shortest or (height and width)):
        return None
    crop = None
    if getattr(processor, "do_center_crop", False):
        crop_size = processor.crop_size
        if crop_size.height is None or crop_size.height != crop_size.width:
            return None
        crop = int(crop_size.height)
    settings = ImagePreprocess(
        resample=int(processor.resample),
        rescale=float(processor.rescale_factor),
        mean=[float(v) for v in processor.image_mean],
        std=[float(v) for v in processor.image_std],
        shortest_edge=int(shortest) if shortest else None,
        height=None if shortest else int(height),
        width=None if shortest else int(width),
        crop=crop,
    )
    return asdict(settings)


@dataclass(frozen=True)
class ImageExportInfo(Sidecar):
    """The sidecar of an int8 image tower. ``preprocess`` is None for image processors that
    ImagePreprocess does not reproduce: such an index still needs torch to encode images."""

    FILE = INT8_SIDECAR_FILE

    model_id: str
    dim: int
    image_size: int
    preprocess: dict | None = None  # ImagePreprocess's fields
    format: int = INT8_FORMAT

    def image_preprocess(self) -> ImagePreprocess | None:
        return None if self.preprocess is None else ImagePreprocess(**self.preprocess)


def current_int8_export(directory: Path, expected: ImageExportInfo) -> Path | None:
    """The int8 graph in ``directory`` if its sidecar is ``expected``; else None."""
    if ImageExportInfo.read(directory) != expected or not (directory / INT8_ONNX_FILE).is_file():
        return None
    return directory / INT8_ONNX_FILE


class OnnxImageTower:
    """Preprocessed pixels (n, 3, s, s) to raw (not yet normalised) image embeddings.

    Threads: one session, opened when the tower is made; ``InferenceSession.run`` may be
    called from several threads at once.
    """

    def __init__(self, path: Path) -> None:
        # No spinning: while indexing, decoding threads need the cores between operators.
        self._session = open_session(path, spin=False)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        feed = {"pixel_values": np.ascontiguousarray(pixels, dtype=np.float32)}
        return self._session.run(["image_embeds"], feed)[0]
