"""CLIP through Hugging Face transformers: the one module of searchclip that imports torch.

Model, tokenizer and image processor always come from the same source: a local directory
(``--model PATH``) or a Hugging Face id, tried first in the local cache and downloaded only when
the hub can be reached. Weights load from safetensors only. Every failure is a one-line
:class:`~searchclip._errors.ModelLoadError`.
"""

from __future__ import annotations

import copy
import os
import re
import socket
import tempfile
import threading
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from huggingface_hub import try_to_load_from_cache
from PIL import Image
from transformers import AutoTokenizer, CLIPImageProcessorPil
from transformers.utils import logging as hf_logging

from searchclip._encoders import export_cache, families, looks_like_path, resolve_model_name
from searchclip._encoders.base import Encoder
from searchclip._encoders.onnx_image import (
    ClipPreprocess,
    ImageExportInfo,
    OnnxImageTower,
    current_int8_export,
)
from searchclip._errors import ModelLoadError

_TRUTHY = {"1", "true", "yes", "on"}
_DNS_TIMEOUT_S = 2.0


class ClipEncoder(Encoder):
    """A CLIP-style model (a family of encoders/families.py: ``transformers.CLIPModel``, or
    searchclip's convolutional CLIP) with its own tokenizer and image processor."""

    def __init__(
        self,
        model_id: str,
        model,
        tokenizer,
        processor,
        device: str,
        batch_size: int,
        source_dir: Path | None = None,
    ):
        crop = processor.crop_size
        if not processor.do_center_crop or crop.height is None or crop.height != crop.width:
            raise ModelLoadError(f"the image processor of {model_id} does not make square crops")
        self.model_id = model_id
        self.model = model
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "right"  # text pooling reads the first end-of-text token
        self.processor = processor
        self.device = device
        self.batch_size = batch_size
        self.dim = int(model.config.projection_dim)
        self.image_size = int(crop.height)
        self.max_text_length = int(model.config.text_config.max_position_embeddings)
        # The directory the model was read from, if any: it names the model's ONNX exports in
        # the shared cache (encoders/export_cache.py).
        self.export_key = export_cache.model_key(self.model_id, source_dir)
        # Low-precision copies of the image tower, built on first use; the fp32 model stays.
        self._bf16_tower: _ImageTower | None = None
        self._int8_tower: OnnxImageTower | None = None

    def low_image_precisions(self) -> tuple[str, ...]:
        # int8 runs in onnxruntime on the CPU; bf16 in torch, where the device has it natively.
        candidates = ("int8",) if self.device == "cpu" else ()
        return candidates + (("bf16",) if _has_fast_bf16(self.device) else ())

    def set_image_precision(self, precision: str) -> None:
        # Every precision is accepted everywhere (an index recorded as bf16 or int8 must open on
        # any machine); where one is not fast, auto never picks it.
        if precision not in ("fp32", "bf16", "int8"):
            raise ValueError(f"unknown image precision {precision!r}")
        self.image_precision = precision

    @classmethod
    def load(cls, model: str, device: str = "auto", batch_size: int = 32) -> ClipEncoder:
        """Load ``model`` (a local directory or a Hugging Face id) onto ``device``."""
        device = _pick_device(device)
        with _quiet_transformers():
            path = Path(model).expanduser()
            if path.is_dir():
                source = path.resolve()
                parts = _load_directory(source)
            elif looks_like_path(model):
                raise ModelLoadError(f"no model directory at {path}")
            else:
                parts = _load_hub(model)
                source = _hub_snapshot(model)
            clip = parts[0]
            try:
                clip.to(device)
            except Exception as exc:
                raise ModelLoadError(f"cannot move the model to {device}: {_line(exc)}") from exc
            clip.eval()
        return cls(
            resolve_model_name(model),
            *parts,
            device=device,
            batch_size=batch_size,
            source_dir=source,
        )

    def preprocess(self, image: Image.Image) -> np.ndarray:
        pixels = self.processor(images=image, return_tensors="np")["pixel_values"][0]
        return np.asarray(pixels, dtype=np.float32)

    def _embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return self._embed_pixels_at(pixels, self.image_precision)

    def _embed_pixels_at(self, pixels: np.ndarray, precision: str) -> np.ndarray:
        batch = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            if precision == "fp32":
                return _features(self.model.get_image_features(pixel_values=batch))
            if precision == "bf16":
                return _features(self.bf16_tower()(batch.to(torch.bfloat16)))
        if precision == "int8":
            return self.int8_tower()(pixels)
        raise ValueError(f"unknown image precision {precision!r}")

    def bf16_tower(self) -> _ImageTower:
        """A bfloat16 copy of the image tower. With weights cast to bf16, ViT-B/32 ran 2.0x
        faster than fp32 on Zen 4 (avx512_bf16; docs/benchmarks.md), while torch.autocast was
        slower than fp32; the text tower stays fp32."""
        if self._bf16_tower is None:
            tower = _ImageTower(self.model.vision_model, self.model.visual_projection)
            self._bf16_tower = copy.deepcopy(tower).to(torch.bfloat16).eval()
        return self._bf16_tower

    def int8_tower(self) -> OnnxImageTower:
        """The image tower quantised to int8, run by onnxruntime: ViT-B/32 ran 2.8-3x faster than
        fp32 torch here (docs/benchmarks.md). Loaded from ``artifact_dir`` when a current export
        is there, else exported (into ``artifact_dir`` when it is writable) and loaded."""
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
            self.model_id, self.dim, self.image_size, _preprocess_settings(self.processor)
        )

    def _export_int8_tower(self, info: ImageExportInfo) -> OnnxImageTower:
        from searchclip._encoders.onnx_export import export_int8_image_tower

        if self.artifact_dir is not None:
            with suppress(OSError):  # a read-only index: export for this process only
                return OnnxImageTower(export_int8_image_tower(self, self.artifact_dir, info))
        with tempfile.TemporaryDirectory(prefix="searchclip-int8-") as scratch:
            # the session holds the whole graph in memory: the file may go
            return OnnxImageTower(export_int8_image_tower(self, Path(scratch), info))

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_text_length,
            return_tensors="pt",
        )
        inputs = {key: batch[key].to(self.device) for key in ("input_ids", "attention_mask")}
        with torch.inference_mode():
            return _features(self.model.get_text_features(**inputs))


class _ImageTower(torch.nn.Module):
    """CLIP's image path (``get_image_features``): vision transformer, then projection."""

    def __init__(self, vision_model: torch.nn.Module, projection: torch.nn.Module) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.projection = projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.vision_model(pixel_values=pixel_values, return_dict=True).pooler_output
        return self.projection(pooled)


def _preprocess_settings(processor) -> dict | None:
    """ClipPreprocess's fields for ``processor``; None if it does something else (no resize of
    the shortest side, no rescaling or normalising), which ClipPreprocess would not reproduce."""
    shortest = getattr(processor.size, "shortest_edge", None)
    if not (processor.do_resize and shortest and processor.do_rescale and processor.do_normalize):
        return None
    return asdict(
        ClipPreprocess(
            shortest_edge=int(shortest),
            crop=int(processor.crop_size.height),
            resample=int(processor.resample),
            rescale=float(processor.rescale_factor),
            mean=[float(v) for v in processor.image_mean],
            std=[float(v) for v in processor.image_std],
        )
    )


def _has_fast_bf16(device: str) -> bool:
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


def _features(output) -> np.ndarray:
    """Projected embeddings from ``get_*_features``: a tensor (transformers 4) or an output
    object whose ``pooler_output`` holds them (transformers 5)."""
    tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    return tensor.detach().to("cpu", torch.float32).numpy()


def _pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"CUDA was requested (--device {device}) but torch sees no CUDA device"
            )
        return device  # a cuda:N beyond the last device fails when the model moves there
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise ModelLoadError("MPS was requested (--device mps) but torch sees no MPS device")
        return device
    raise ModelLoadError(f"unknown device '{device}': use auto, cpu, cuda, cuda:N or mps")


def _load_parts(source: str, local_files_only: bool):
    """Model, tokenizer and image processor, all from ``source``; the model's class is the one
    its config's ``model_type`` names (encoders/families.py)."""
    kwargs = {"local_files_only": local_files_only}
    config = families.read_config(source, **kwargs)
    model_class = families.model_class(getattr(config, "model_type", None), source)
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    processor = CLIPImageProcessorPil.from_pretrained(source, **kwargs)
    model = model_class.from_pretrained(
        source, config=config, use_safetensors=True, dtype=torch.float32, **kwargs
    )
    return model, tokenizer, processor


def _load_directory(path: Path):
    names = {entry.name for entry in path.iterdir()}
    if "config.json" not in names:
        raise ModelLoadError(f"{path} is not a model directory: it has no config.json")
    if not names & {"model.safetensors", "model.safetensors.index.json"}:
        has_bin = any(name.endswith(".bin") for name in names)
        found = "only PyTorch .bin weights" if has_bin else "no weights"
        raise ModelLoadError(
            f"{path} has {found}: safetensors weights (model.safetensors) are required; "
            "re-save the model with save_pretrained() to write them"
        )
    missing = []
    if "tokenizer.json" not in names and not {"vocab.json", "merges.txt"} <= names:
        missing.append("tokenizer files (tokenizer.json, or vocab.json and merges.txt)")
    if "preprocessor_config.json" not in names:
        missing.append("the image processor file preprocessor_config.json")
    if missing:
        raise ModelLoadError(f"{path} is missing {' and '.join(missing)}")
    try:
        return _load_parts(str(path), local_files_only=True)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"cannot load the model in {path}: {_line(exc)}") from exc


def _load_hub(model: str):
    try:
        return _load_parts(model, local_files_only=True)
    except ModelLoadError:
        raise  # loaded, but not a model searchclip can use
    except Exception as exc:
        cached_error = exc
    if _hub_unreachable():
        if _in_cache(model):
            raise ModelLoadError(
                f"cannot load model '{model}' from the local Hugging Face cache "
                f"({_line(cached_error)}) and huggingface.co cannot be reached; "
                "pass --model PATH to a complete local copy"
            ) from cached_error
        raise ModelLoadError(
            f"cannot load model '{model}': it is not in the local Hugging Face cache and "
            "huggingface.co cannot be reached. Download it on a machine with network access "
            "(save_pretrained) and pass --model PATH"
        ) from cached_error
    try:
        return _load_parts(model, local_files_only=False)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot download model '{model}' from Hugging Face: {_line(exc)}. "
            "Check the id, or save the model locally and pass --model PATH"
        ) from exc


def _hub_snapshot(model: str) -> Path | None:
    """The local snapshot directory a hub model was loaded from."""
    try:
        config = try_to_load_from_cache(model, "config.json")
    except Exception:
        return None
    return Path(config).parent if isinstance(config, str) else None


def _in_cache(model: str) -> bool:
    try:
        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except Exception:
        return False


def _hub_unreachable() -> bool:
    """True when offline mode is on or the hub's host name does not resolve (in ~2 s at most)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY:
        return True
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname
    if not host:
        return True
    resolved: list[bool] = []

    def lookup() -> None:
        with suppress(OSError):
            resolved.append(bool(socket.getaddrinfo(host, 443)))

    thread = threading.Thread(target=lookup, name="searchclip-dns", daemon=True)
    thread.start()
    thread.join(_DNS_TIMEOUT_S)
    return not resolved


@contextmanager
def _quiet_transformers():
    """Silence transformers' info/warning logs and its progress bars while loading."""
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, shortened: never a traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
