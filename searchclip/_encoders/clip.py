"""The transformers dual encoder through torch (CLIP and the other families of
:mod:`.families`): encoding images and texts, at fp32, bf16 or int8.

Loading the model is :mod:`.loading`'s job; the towers are :mod:`.towers`' modules; how each
family differs is :mod:`.families`'. Imports torch and transformers.
"""

from __future__ import annotations

import copy
import re
import threading
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from searchclip._encoders import export_cache, families, onnx_export, siglip_tokenizer
from searchclip._encoders.base import Encoder
from searchclip._encoders.loading import LoadedModel, load_model
from searchclip._encoders.onnx_image import ImageExportInfo, OnnxImageTower, preprocess_settings
from searchclip._encoders.onnx_text import TextExportInfo
from searchclip._encoders.towers import ImageTower, TextTower, eager_on_cpu, features
from searchclip._errors import InvalidArgumentError, ModelLoadError

IMAGE_PRECISIONS = ("fp32", "bf16", "int8")


class ClipEncoder(Encoder):
    """A transformers dual encoder (a family of :mod:`.families`: ``CLIPModel``,
    ``SiglipModel``, ``AltCLIPModel``, ``ChineseCLIPModel``, ``VisionTextDualEncoderModel``, or
    searchclip's convolutional CLIP) with its own tokenizer and image processor.

    Threads: encoding may run on several threads at once. The low-precision towers are built
    once, under a lock; tokenizing holds a lock, as a transformers fast tokenizer sets its
    padding and truncation on its shared Rust tokenizer for each call.
    """

    onnx_exportable = True

    def __init__(self, loaded: LoadedModel, batch_size: int) -> None:
        self.model_id = loaded.model_id
        self.model = loaded.model
        self.family = families.family_of(self.model.config.model_type, self.model_id)
        self.processor = loaded.processor
        self.image_size = _square_input_side(loaded.processor, self.model_id)
        self.tokenizer = loaded.tokenizer
        # CLIP's text pooling reads the first end-of-text token, SigLIP's the last position of
        # a text padded to the full length: both need the padding on the right.
        self.tokenizer.padding_side = "right"
        self.tokenizing = families.text_tokenizing(
            self.family, self.model.config, self.tokenizer, self.model_id
        )
        self.max_text_length = self.tokenizing.max_length
        self.match_probability = families.match_probability(self.family, self.model)
        self.device = loaded.device
        self.batch_size = batch_size
        self.dim = families.embedding_dim(self.model)
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
                self._int8_tower = onnx_export.int8_image_tower(self, self.int8_export_info())
            return self._int8_tower

    def int8_export_info(self) -> ImageExportInfo:
        """The sidecar a current int8 export of this model has."""
        return ImageExportInfo(
            self.model_id, self.dim, self.image_size, preprocess_settings(self.processor)
        )

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """The text tower's inputs for ``texts`` (``input_ids``, and ``attention_mask`` unless
        the family takes none): truncated to the model's length, padded to the longest text
        or, for a family trained so, to the full length."""
        tokenizing = self.tokenizing
        with self._tokenizer_lock:
            batch = self.tokenizer(
                list(texts),
                padding="max_length" if tokenizing.pad_to_max_length else True,
                truncation=True,
                max_length=tokenizing.max_length,
                return_tensors="pt",
            )
        return {name: batch[name] for name in tokenizing.input_names}

    # The seams of onnx_export.ExportableEncoder: what an export traces, and how.

    def text_tower_module(self) -> torch.nn.Module:
        return TextTower(self.model, self.tokenizing.input_names)

    def image_tower_module(self) -> torch.nn.Module:
        return ImageTower.of(self.model)

    def export_mode(self) -> AbstractContextManager:
        return eager_on_cpu(self.model, self.device)

    def text_export_info(self) -> TextExportInfo:
        return TextExportInfo.of(self.model_id, self.dim, self.tokenizing, self.match_probability)

    def save_tokenizer_json(self, path: Path) -> bool:
        """Write the tokenizer as a ``tokenizer.json`` for the ``tokenizers`` library; False
        if it has no such form (a slow, Python-only tokenizer other than SigLIP's)."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None and not siglip_tokenizer.is_siglip_sentencepiece(self.tokenizer):
            return False
        with self._tokenizer_lock:
            if backend is None:  # SigLIP's SentencePiece tokenizer: rebuilt for `tokenizers`
                siglip_tokenizer.save_siglip_tokenizer_json(self.tokenizer, path)
            else:
                backend.save(str(path))
        return True

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        inputs = {key: value.to(self.device) for key, value in self.tokenize(texts).items()}
        with torch.inference_mode():
            return features(self.model.get_text_features(**inputs))


def _square_input_side(processor, model_id: str) -> int:
    """The side of the square images ``processor`` makes: its centre crop's, or its fixed-size
    resize's (SigLIP, ViT); ModelLoadError for a processor that makes no square image."""
    if getattr(processor, "do_center_crop", False):
        crop = processor.crop_size
        side = crop.height if crop.height is not None and crop.height == crop.width else None
    else:
        size = getattr(processor, "size", None)
        height, width = getattr(size, "height", None), getattr(size, "width", None)
        side = height if height is not None and height == width else None
    if side is None:
        raise ModelLoadError(
            f"the image processor of {model_id} makes no square images (no square centre crop, "
            "no square fixed-size resize)",
            model=model_id,
        )
    return int(side)


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
