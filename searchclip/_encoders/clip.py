"""The CLIP encoder through torch: encoding images and texts, at fp32, bf16 or int8.

Loading the model is :mod:`.loading`'s job; the towers are :mod:`.towers`' modules. Imports
torch and transformers.
"""

from __future__ import annotations

import copy
import re
import tempfile
import threading
from contextlib import suppress
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from searchclip._encoders import export_cache, onnx_export
from searchclip._encoders.base import Encoder
from searchclip._encoders.loading import LoadedModel, load_model
from searchclip._encoders.onnx_image import (
    ImageExportInfo,
    OnnxImageTower,
    current_int8_export,
    preprocess_settings,
)
from searchclip._encoders.towers import ImageTower, features
from searchclip._errors import InvalidArgumentError, ModelLoadError

IMAGE_PRECISIONS = ("fp32", "bf16", "int8")


class ClipEncoder(Encoder):
    """A CLIP-style model (a family of :mod:`.families`: ``transformers.CLIPModel``, or
    searchclip's convolutional CLIP) with its own tokenizer and image processor.

    Threads: encoding may run on several threads at once. The low-precision towers are built
    once, under a lock; tokenizing holds a lock, as a transformers fast tokenizer sets its
    padding and truncation on its shared Rust tokenizer for each call.
    """

    onnx_exportable = True

    def __init__(self, loaded: LoadedModel, batch_size: int) -> None:
        processor = loaded.processor
        crop = processor.crop_size
        if not processor.do_center_crop or crop.height is None or crop.height != crop.width:
            raise ModelLoadError(
                f"the image processor of {loaded.model_id} does not make square crops",
                model=loaded.model_id,
            )
        self.model_id = loaded.model_id
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.tokenizer.padding_side = "right"  # text pooling reads the first end-of-text token
        self.processor = processor
        self.device = loaded.device
        self.batch_size = batch_size
        self.dim = int(self.model.config.projection_dim)
        self.image_size = int(crop.height)
        self.max_text_length = int(self.model.config.text_config.max_position_embeddings)
        # The directory the model was read from, if any, names the model's ONNX exports in the
        # shared cache (see export_cache.py).
        self.export_key = export_cache.model_key(self.model_id, loaded.source_dir)
        # Low-precision copies of the image tower, built on first use; the fp32 model stays.
        self._bf16_tower: ImageTower | None = None
        self._int8_tower: OnnxImageTower | None = None
        self._towers_lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def load(cls, model: str, device: str = "auto", batch_size: int = 32) -> ClipEncoder:
        """Load ``model`` (a local directory or a Hugging Face id) onto ``device``."""
        return cls(load_model(model, device), batch_size)

    def low_image_precisions(self) -> tuple[str, ...]:
        # int8 runs in onnxruntime on the CPU; bf16 in torch, where the device has it natively.
        candidates = ("int8",) if self.device == "cpu" else ()
        return candidates + (("bf16",) if has_fast_bf16(self.device) else ())

    def set_image_precision(self, precision: str) -> None:
        # Every precision is accepted everywhere (an index recorded as bf16 or int8 must open on
        # any machine); where one is not fast, auto never picks it.
        self.image_precision = _checked_precision(precision)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        pixels = self.processor(images=image, return_tensors="np")["pixel_values"][0]
        return np.asarray(pixels, dtype=np.float32)

    def _embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return self._embed_pixels_at(pixels, self.image_precision)

    def _embed_pixels_at(self, pixels: np.ndarray, precision: str) -> np.ndarray:
        if _checked_precision(precision) == "int8":
            return self.int8_tower()(pixels)
        batch = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            if precision == "bf16":
                return features(self.bf16_tower()(batch.to(torch.bfloat16)))
            return features(self.model.get_image_features(pixel_values=batch))

    def bf16_tower(self) -> ImageTower:
        """A bfloat16 copy of the image tower: with its weights cast to bf16 it runs well
        ahead of fp32 where the device has native bf16, while torch.autocast ran slower than
        fp32 (docs/benchmarks.md, "Image encoding precision"). The text tower stays fp32."""
        with self._towers_lock:
            if self._bf16_tower is None:
                tower = copy.deepcopy(ImageTower.of(self.model))
                self._bf16_tower = tower.to(torch.bfloat16).eval()
            return self._bf16_tower

    def int8_tower(self) -> OnnxImageTower:
        """The image tower quantised to int8, run by onnxruntime (the fastest precision on
        CPUs: docs/benchmarks.md, "Image encoding precision"). Loaded from ``artifact_dir``
        when a current export is there, else exported (into ``artifact_dir`` when it is
        writable) and loaded."""
        with self._towers_lock:
            if self._int8_tower is None:
                info = self.int8_export_info()
                found = current_int8_export(self.artifact_dir, info) if self.artifact_dir else None
                with suppress(Exception):  # a damaged file is exported again
                    self._int8_tower = OnnxImageTower(found) if found else None
                if self._int8_tower is None:
                    self._int8_tower = self._export_int8_tower(info)
            return self._int8_tower

    def int8_export_info(self) -> ImageExportInfo:
        """The sidecar a current int8 export of this model has."""
        return ImageExportInfo(
            self.model_id, self.dim, self.image_size, preprocess_settings(self.processor)
        )

    def _export_int8_tower(self, info: ImageExportInfo) -> OnnxImageTower:
        if self.artifact_dir is not None:
            with suppress(OSError):  # a read-only index: export for this process only
                path = onnx_export.export_int8_image_tower(self, self.artifact_dir, info)
                return OnnxImageTower(path)
        with tempfile.TemporaryDirectory(prefix="searchclip-int8-") as scratch:
            # the session holds the whole graph in memory: the file may go
            return OnnxImageTower(onnx_export.export_int8_image_tower(self, Path(scratch), info))

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask`` for ``texts``: padded to the longest, truncated
        to the model's length."""
        with self._tokenizer_lock:
            batch = self.tokenizer(
                list(texts),
                padding=True,
                truncation=True,
                max_length=self.max_text_length,
                return_tensors="pt",
            )
        return {key: batch[key] for key in ("input_ids", "attention_mask")}

    def save_tokenizer_json(self, path: Path) -> bool:
        """Write the tokenizer as a ``tokenizer.json`` for the ``tokenizers`` library; False
        if it has no such form (a slow, Python-only tokenizer)."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            return False
        with self._tokenizer_lock:
            backend.save(str(path))
        return True

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        inputs = {key: value.to(self.device) for key, value in self.tokenize(texts).items()}
        with torch.inference_mode():
            return features(self.model.get_text_features(**inputs))


def _checked_precision(precision: str) -> str:
    if precision not in IMAGE_PRECISIONS:
        raise InvalidArgumentError(
            f"unknown image precision {precision!r}: use fp32, bf16 or int8", value=precision
        )
    return precision


def has_fast_bf16(device: str) -> bool:
    """True where bf16 matmuls run natively: CUDA GPUs that support bf16, or x86 CPUs with
    avx512_bf16 / amx_bf16 (elsewhere bf16 is emulated and slower than fp32)."""
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    if device != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))
