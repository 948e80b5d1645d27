"""A transformers dual encoder's two towers as torch modules, and its outputs as numpy: what
the encoder runs in bf16 and what the ONNX export traces (:mod:`.clip`, :mod:`.onnx_export`).
Imports torch.

Every family of :mod:`.families` has the parts used here: ``vision_model`` (whose
``pooler_output`` is one vector per image), a ``visual_projection`` where the family projects
(SigLIP does not: its attention-pooled output is the embedding) and ``get_text_features``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch


class ImageTower(torch.nn.Module):
    """The image path (``get_image_features``): vision model, then projection (if any)."""

    def __init__(self, vision_model: torch.nn.Module, projection: torch.nn.Module) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.projection = projection

    @classmethod
    def of(cls, model: torch.nn.Module) -> ImageTower:
        """The image tower of a loaded model (it shares the model's weights)."""
        projection = getattr(model, "visual_projection", None)
        return cls(model.vision_model, torch.nn.Identity() if projection is None else projection)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.vision_model(pixel_values=pixel_values, return_dict=True).pooler_output
        return self.projection(pooled)


class TextTower(torch.nn.Module):
    """The text path (``get_text_features``): the inputs named ``input_names``, in that order,
    in; the raw text embeddings out."""

    def __init__(self, model: torch.nn.Module, input_names: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = tuple(input_names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        output = self.model.get_text_features(**dict(zip(self.input_names, inputs, strict=True)))
        return output if isinstance(output, torch.Tensor) else output.pooler_output


def features(output) -> np.ndarray:
    """Embeddings from ``get_*_features``: a tensor (transformers 4) or an output object whose
    ``pooler_output`` holds them (transformers 5)."""
    tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    return tensor.detach().to("cpu", torch.float32).numpy()


def example_pixels(image_size: int) -> torch.Tensor:
    """A batch of two blank images: the input the image tower is traced on."""
    return torch.zeros(2, 3, image_size, image_size)


@contextlib.contextmanager
def eager_on_cpu(model: torch.nn.Module, device: str) -> Iterator[None]:
    """A transformers model switched to eager attention (a traced graph free of
    shape-specialised fast paths) and to the CPU (traced on CPU, run on CPU) while the block
    runs; then back to its own attention and to ``device``."""
    previous = _attention_implementations(model.config)
    try:
        model.to("cpu")
        model.set_attn_implementation("eager")
        yield
    finally:
        model.set_attn_implementation(previous)
        model.to(device)


def _attention_implementations(config) -> dict:
    """The attention implementation of a model and of each sub-model, in the form
    ``set_attn_implementation`` takes back: restoring one string for all would ask sub-models
    without attention (a ResNet image tower) for an implementation they refuse."""
    found = {"": config._attn_implementation}
    for key in config.sub_configs:
        sub = getattr(config, key, None)
        if sub is not None:
            found[key] = _attention_implementations(sub)
    return found


def trace_to_onnx(module, inputs: tuple, path, input_axes: dict, output: str, opset: int) -> None:
    """Trace ``module`` on ``inputs`` into an ONNX graph at ``path``, whose inputs vary along
    ``input_axes`` and whose one output, ``output``, has a batch axis. The TorchScript exporter
    (``dynamo=False``) needs only the onnx package."""
    with torch.no_grad():
        torch.onnx.export(
            module.eval(),
            inputs,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=list(input_axes),
            output_names=[output],
            dynamic_axes={**input_axes, output: {0: "batch"}},
        )
