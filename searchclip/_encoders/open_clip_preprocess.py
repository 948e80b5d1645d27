"""OpenCLIP's image preprocessing in torch-free form, where it has one.

OpenCLIP's eval transform of a PIL image, for a square input size, is torchvision's
``Resize`` (PIL's own resize, bicubic or bilinear), then ``CenterCrop``, ``ToTensor`` and
``Normalize(mean, std)``. With ``resize_mode="shortest"`` (most checkpoints: OpenAI, LAION,
DataComp, DFN, MobileCLIP) the resize is of the shortest side, the long one truncated to an
int; with ``"squash"`` (some SigLIP ViTs) it is to the square itself, ignoring the aspect ratio.
Both are what :class:`~.onnx_image.ImagePreprocess` does, so an int8 index of such a model is
indexed into without torch. ``"longest"`` (fit inside the square and pad) has no torch-free
form here: such an index encodes images through torch (:func:`torch_free_reason` says why).
Torch-free.
"""

from __future__ import annotations

from dataclasses import asdict

from searchclip._encoders.onnx_image import ImagePreprocess

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenCLIP's defaults (open_clip.constants)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_PIL_FILTERS = {"bicubic": 3, "bilinear": 2}  # PIL.Image.Resampling values torchvision uses


def torch_free_reason(cfg: dict) -> str | None:
    """Why OpenCLIP's transform for ``cfg`` (a model's final preprocess_cfg) has no torch-free
    form; None when it has one."""
    mode = cfg.get("resize_mode", "shortest")
    if mode not in ("shortest", "squash"):
        return f"its resize mode {mode!r} is not reproduced without torch"
    interpolation = cfg.get("interpolation", "bicubic")
    if interpolation not in _PIL_FILTERS:
        return f"its interpolation {interpolation!r} is not reproduced without torch"
    size = cfg.get("size", 224)
    if not isinstance(size, int) and (len(size) != 2 or size[0] != size[1]):
        return f"its input size {size} is not square"
    if cfg.get("mode", "RGB") != "RGB":
        return f"it reads {cfg['mode']} images"
    return None


def preprocess_settings(cfg: dict, image_size: int) -> dict | None:
    """ImagePreprocess's fields for OpenCLIP's transform of ``cfg``; None where
    :func:`torch_free_reason` gives a reason."""
    if torch_free_reason(cfg) is not None:
        return None
    shortest = cfg.get("resize_mode", "shortest") == "shortest"
    settings = ImagePreprocess(
        resample=_PIL_FILTERS[cfg.get("interpolation", "bicubic")],
        rescale=1 / 255,
        mean=_three(cfg.get("mean") or OPENAI_MEAN),
        std=_three(cfg.get("std") or OPENAI_STD),
        shortest_edge=image_size if shortest else None,
        height=None if shortest else image_size,
        width=None if shortest else image_size,
        crop=image_size if shortest else None,
        crop_rounding="round",  # torchvision's CenterCrop
    )
    return asdict(settings)


def _three(values) -> list[float]:
    """A per-channel list, as OpenCLIP widens a single value to three."""
    if isinstance(values, int | float):
        return [float(values)] * 3
    return [float(value) for value in values]
