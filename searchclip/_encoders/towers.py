"""A CLIP's two towers as torch modules, and its outputs as numpy: what the encoder runs in
bf16 and what the ONNX export traces (:mod:`.clip`, :mod:`.onnx_export`). Imports torch.

Every family of :mod:`.families` has the parts used here: ``vision_model`` (whose
``pooler_output`` is one vector per image), ``visual_projection`` and ``get_text_features``.
"""

from __future__ import annotations

import numpy as np
import torch


class ImageTower(torch.nn.Module):
    """CLIP's image path (``get_image_features``): vision model, then projection."""

    def __init__(self, vision_model: torch.nn.Module, projection: torch.nn.Module) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.projection = projection

    @classmethod
    def of(cls, clip: torch.nn.Module) -> ImageTower:
        """The image tower of a loaded model (it shares the model's weights)."""
        return cls(clip.vision_model, clip.visual_projection)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.vision_model(pixel_values=pixel_values, return_dict=True).pooler_output
        return self.projection(pooled)


class TextTower(torch.nn.Module):
    """CLIP's text transformer + text projection: token ids in, ``text_embeds`` out."""

    def __init__(self, clip: torch.nn.Module) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        output = self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        return output if isinstance(output, torch.Tensor) else output.pooler_output


def features(output) -> np.ndarray:
    """Projected embeddings from ``get_*_features``: a tensor (transformers 4) or an output
    object whose ``pooler_output`` holds them (transformers 5)."""
    tensor = output if isinstance(output, torch.Tensor) else output.pooler_output
    return tensor.detach().to("cpu", torch.float32).numpy()


def example_pixels(image_size: int) -> torch.Tensor:
    """A batch of two blank images: the input the image tower is traced on."""
    return torch.zeros(2, 3, image_size, image_size)


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
