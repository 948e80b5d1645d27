"""A fake encoder for tests and examples: deterministic vectors from numpy alone, no torch.

Like httpx's ``MockTransport``, it lets code built on searchclip (and searchclip's own tests)
index and search real images without a real model. Its vectors are fixed functions of their
input, the same in every process and on every machine:

- an image's vector is a fixed random projection of its downsampled pixels, plus a term for
  its mean colour: identical images get identical vectors and a slightly altered copy lands
  close to its original;
- a text's vector is the sum of a fixed random vector per word (seeded by a hash of the word),
  plus the same colour term for colour words: the same text always gives the same vector, and
  "red" lands nearer mostly-red images than mostly-blue ones.

Its scores mean nothing about what a picture shows beyond its colours. A model directory for it
is just a ``config.json`` (:func:`write_fake_model`), so it goes wherever a model path goes
(``SearchEngine(dir, model=path)``, ``searchclip index PHOTOS --model PATH``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from searchclip._encoders import FAKE_MODEL_TYPE
from searchclip._encoders.base import Encoder
from searchclip._errors import InvalidArgumentError, ModelLoadError

if TYPE_CHECKING:
    from PIL import Image

CONFIG_FILE = "config.json"
_PRECISIONS = ("fp32", "bf16", "int8")
_GRID = 8  # images are pooled to GRID x GRID cells before the projection
# How strongly the mean colour pulls a vector: enough for a colour word to rank images of its
# colour first, little enough that two pictures of one colour still get distinct vectors.
_COLOUR_WEIGHT = 2.0
_COLOUR_WORDS = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
    "purple": (0.5, 0.0, 0.5),
    "orange": (1.0, 0.5, 0.0),
    "white": (1.0, 1.0, 1.0),
    "black": (0.0, 0.0, 0.0),
}
_WORD = re.compile(r"\w+")


class FakeEncoder(Encoder):
    """Deterministic image and text vectors of ``dim`` values, computed with numpy.

    ``image_size`` is the side of the square input ``preprocess`` makes. Every precision is
    accepted, as by the CLIP encoder (an index recorded in bf16 or int8 opens anywhere); bf16
    and int8 round the projection the way those precisions would. ``low_precisions`` are the
    ones ``auto`` may try (none by default: ``auto`` then keeps fp32).
    """

    onnx_exportable = False  # nothing to export: the engine never writes ONNX files for it

    def __init__(
        self,
        dim: int = 32,
        image_size: int = 32,
        *,
        model_id: str = FAKE_MODEL_TYPE,
        batch_size: int = 32,
        low_precisions: tuple[str, ...] = (),
    ) -> None:
        for name, value in (("dim", dim), ("image_size", image_size), ("batch_size", batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
        unknown = set(low_precisions) - {"bf16", "int8"}
        if unknown:
            raise InvalidArgumentError(f"unknown low precisions {sorted(unknown)}: use bf16, int8")
        self.model_id = model_id
        self.dim = dim
        self.image_size = image_size
        self.batch_size = batch_size
        self._low_precisions = tuple(low_precisions)
        self._grid = min(_GRID, image_size)
        features = 3 * self._grid * self._grid
        # Fixed by (dim, grid) alone: two fakes of the same shape give the same vectors.
        rng = np.random.default_rng([dim, self._grid, 0x5EA5C11])
        self._projection = (rng.standard_normal((features, dim)) / np.sqrt(features)).astype(
            np.float32
        )
        self._colour_axes = np.linalg.qr(rng.standard_normal((dim, 3)))[0].T.astype(np.float32)
        if dim < 3:  # too few dimensions for three orthonormal colour axes: use what there is
            self._colour_axes = rng.standard_normal((3, dim)).astype(np.float32)

    @classmethod
    def load(cls, directory: str | os.PathLike, *, batch_size: int = 32) -> FakeEncoder:
        """The fake model in ``directory`` (a ``config.json`` as :func:`write_fake_model`
        writes); its ``model_id`` is the directory's absolute path, as an index records it."""
        path = Path(directory).expanduser()
        where = str(path.resolve()) if path.exists() else str(path)
        config = _read_config(path, where)
        try:
            return cls(config["dim"], config["image_size"], model_id=where, batch_size=batch_size)
        except (KeyError, InvalidArgumentError) as exc:
            raise ModelLoadError(
                f"{path / CONFIG_FILE} is not a valid fake model config: {exc}", model=where
            ) from None

    # --- the encoder's hooks -------------------------------------------------------------------

    def preprocess(self, image: Image.Image) -> np.ndarray:
        from PIL import Image

        side = self.image_size
        square = image.convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
        return (np.asarray(square, dtype=np.float32) / 255.0).transpose(2, 0, 1).copy()

    def low_image_precisions(self) -> tuple[str, ...]:
        return self._low_precisions

    def set_image_precision(self, precision: str) -> None:
        if precision not in _PRECISIONS:
            raise InvalidArgumentError(f"unknown image precision {precision!r}")
        self.image_precision = precision

    def _embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return self._embed_pixels_at(pixels, self.image_precision)

    def _embed_pixels_at(self, pixels: np.ndarray, precision: str) -> np.ndarray:
        if precision not in _PRECISIONS:
            raise InvalidArgumentError(f"unknown image precision {precision!r}")
        pixels = np.asarray(pixels, dtype=np.float32)
        cells = _centred(_pooled(pixels, self._grid)).reshape(len(pixels), -1)
        projection = self._projection
        if precision == "int8":
            scale = np.abs(projection).max(axis=0, keepdims=True) / 127.0
            projection = np.round(projection / scale) * scale
        elif precision == "bf16":
            projection, cells = _bf16(projection), _bf16(cells)
        shape = cells @ projection
        colour = _centred(pixels.mean(axis=(2, 3))) @ self._colour_axes
        return shape + _COLOUR_WEIGHT * colour

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._text_vector(text) for text in texts]).astype(np.float32)

    def _text_vector(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower()) or [text]  # punctuation alone is still a text
        vector = np.zeros(self.dim, dtype=np.float64)
        for word in words:
            vector += _word_vector(word, self.dim)
            if word in _COLOUR_WORDS:
                rgb = np.array([_COLOUR_WORDS[word]], dtype=np.float32)
                colour = _centred(rgb)[0] @ self._colour_axes
                # a colour word points mostly along its colour: several of its length
                vector += 3.0 * np.sqrt(self.dim) * colour / max(np.linalg.norm(colour), 1e-6)
        return vector


def write_fake_model(directory: str | os.PathLike, *, dim: int = 32, image_size: int = 32) -> Path:
    """Write a fake model directory (its ``config.json``) and return the directory."""
    FakeEncoder(dim, image_size)  # the same checks as loading it will make
    path = Path(directory).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    config = {"model_type": FAKE_MODEL_TYPE, "dim": dim, "image_size": image_size}
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


def is_fake_model(directory: str | os.PathLike) -> bool:
    """True if ``directory`` holds a fake model (its config names ``searchclip-fake``)."""
    try:
        config = json.loads((Path(directory).expanduser() / CONFIG_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == FAKE_MODEL_TYPE


def _read_config(path: Path, where: str) -> dict:
    if not path.is_dir():
        raise ModelLoadError(f"no model directory at {path}", model=where)
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(
            f"{path} is not a model directory: it has no config.json", model=where
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path / CONFIG_FILE}: {exc}", model=where) from None
    if not isinstance(config, dict) or config.get("model_type") != FAKE_MODEL_TYPE:
        raise ModelLoadError(
            f"{path / CONFIG_FILE} is not a fake model config (model_type {FAKE_MODEL_TYPE!r})",
            model=where,
        )
    return config


def _pooled(pixels: np.ndarray, grid: int) -> np.ndarray:
    """Mean of each of grid x grid cells (n, 3, grid, grid), for any image side >= grid."""
    side = pixels.shape[-1]
    edges = np.linspace(0, side, grid + 1).astype(int)[:-1]
    rows = np.add.reduceat(pixels, edges, axis=2)
    cells = np.add.reduceat(rows, edges, axis=3)
    sizes = np.diff(np.append(edges, side))
    return cells / (sizes[:, None] * sizes[None, :])


def _centred(values: np.ndarray) -> np.ndarray:
    """Pixel values in [0, 1] centred on mid-grey: black, white and every hue point apart."""
    return values - 0.5


def _bf16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (to nearest, ties to even) and back."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


def _word_vector(word: str, dim: int) -> np.ndarray:
    """A fixed random vector per (word, dim), the same in every process."""
    seed = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "big")
    return np.random.default_rng([seed, dim]).standard_normal(dim)
