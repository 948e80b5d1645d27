"""``ConvClipModel``: a CLIP whose image tower is a convolutional network, registered with
transformers' Auto classes as model type ``searchclip-conv-clip``.

CLIP's own image tower is a ViT, and a ViT trained from scratch on a few CPU minutes does not
learn shape (docs/shapes-model-experiments.md); a small CNN with a stride-4 stem, 3x3
convolutions with BatchNorm and a global *max* pool does. transformers' ``ResNetModel`` is
that network, but its pooled output is an average kept as a 4-D map, which neither
``CLIPModel`` nor ``VisionTextDualEncoderModel`` can project. So this model pairs:

- ``vision_model``: ``ResNetModel``'s feature map, max-pooled over space (``vision_pooling``
  ``"max"``, or ``"mean"``) into ``pooler_output`` (batch, channels);
- ``text_model``: transformers' ``CLIPTextModel`` (EOS pooling, CLIP's BPE tokenizer);
- ``visual_projection`` / ``text_projection`` and ``logit_scale``, as ``CLIPModel`` names them,

with ``get_image_features`` / ``get_text_features`` as ``CLIPModel`` has them, so every path
of the CLIP encoder (ONNX text export, int8 image tower, bf16, torch-free queries) applies.
A directory written by ``save_pretrained`` loads with ``AutoModel.from_pretrained`` once
:func:`register` has run (``searchclip._encoders`` runs it before loading any model); no
``trust_remote_code``.
"""

from __future__ import annotations

import threading

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    CLIPTextConfig,
    CLIPTextModel,
    PreTrainedConfig,
    PreTrainedModel,
    ResNetConfig,
    ResNetModel,
)
from transformers.configuration_utils import SubConfigSpec
from transformers.modeling_outputs import BaseModelOutputWithPooling

MODEL_TYPE = "searchclip-conv-clip"


@strict
class ConvClipConfig(PreTrainedConfig):
    """A ``ResNetConfig`` image tower and a ``CLIPTextConfig`` text tower, projected to
    ``projection_dim``."""

    model_type = MODEL_TYPE
    sub_configs_defaults = {  # noqa: RUF012 (read by transformers as a class attribute)
        "text_config": SubConfigSpec(config_class=CLIPTextConfig, model_type="clip_text_model"),
        "vision_config": SubConfigSpec(config_class=ResNetConfig, model_type="resnet"),
    }

    text_config: dict | CLIPTextConfig | None = None
    vision_config: dict | ResNetConfig | None = None
    projection_dim: int = 64
    vision_pooling: str = "max"
    logit_scale_init_value: float | int = 2.6592

    def validate_architecture(self):
        # A ValueError, as transformers' config validation expects; loading turns it into
        # a one-line ModelLoadError.
        if self.vision_pooling not in ("max", "mean"):
            raise ValueError(f"vision_pooling must be 'max' or 'mean', not {self.vision_pooling!r}")


class ConvClipVisionModel(nn.Module):
    """The ResNet feature map pooled over space: ``pooler_output`` is (batch, channels)."""

    def __init__(self, config: ResNetConfig, pooling: str) -> None:
        super().__init__()
        self.resnet = ResNetModel(config)
        self.pooling = pooling

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        features = self.resnet(pixel_values=pixel_values, return_dict=True).last_hidden_state
        pooled = features.amax(dim=(2, 3)) if self.pooling == "max" else features.mean(dim=(2, 3))
        return BaseModelOutputWithPooling(last_hidden_state=features, pooler_output=pooled)


class ConvClipPreTrainedModel(PreTrainedModel):
    config: ConvClipConfig
    config_class = ConvClipConfig
    base_model_prefix = "conv_clip"
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    _supports_sdpa = True

    def _init_weights(self, module):
        # The towers are transformers models and initialise themselves; this covers the rest.
        if isinstance(module, ConvClipModel):
            nn.init.normal_(module.visual_projection.weight, std=module.vision_embed_dim**-0.5)
            nn.init.normal_(module.text_projection.weight, std=module.text_embed_dim**-0.5)
            with torch.no_grad():
                module.logit_scale.fill_(self.config.logit_scale_init_value)


class ConvClipModel(ConvClipPreTrainedModel):
    def __init__(self, config: ConvClipConfig):
        super().__init__(config)
        self.vision_model = ConvClipVisionModel(config.vision_config, config.vision_pooling)
        self.text_model = CLIPTextModel(config.text_config)
        self.vision_embed_dim = config.vision_config.hidden_sizes[-1]
        self.text_embed_dim = config.text_config.hidden_size
        self.visual_projection = nn.Linear(self.vision_embed_dim, config.projection_dim, bias=False)
        self.text_projection = nn.Linear(self.text_embed_dim, config.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        self.post_init()

    def get_image_features(
        self, pixel_values: torch.Tensor, **kwargs
    ) -> BaseModelOutputWithPooling:
        output = self.vision_model(pixel_values=pixel_values)
        output.pooler_output = self.visual_projection(output.pooler_output)
        return output

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithPooling:
        output = self.text_model(
            input_ids=input_ids, attention_mask=attention_mask, return_dict=True
        )
        return BaseModelOutputWithPooling(
            last_hidden_state=output.last_hidden_state,
            pooler_output=self.text_projection(output.pooler_output),
        )

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None, **kwargs):
        """Both embeddings, L2-normalised, and the scaled image-text logits."""
        images = self.get_image_features(pixel_values).pooler_output
        texts = self.get_text_features(input_ids, attention_mask).pooler_output
        images = images / images.norm(dim=-1, keepdim=True)
        texts = texts / texts.norm(dim=-1, keepdim=True)
        logits = self.logit_scale.exp() * images @ texts.T
        return {"logits_per_image": logits, "image_embeds": images, "text_embeds": texts}


_registered = False
_register_lock = threading.Lock()  # models may load on several threads at once


def register() -> None:
    """Make ``AutoConfig`` / ``AutoModel`` know ``searchclip-conv-clip`` (idempotent)."""
    global _registered
    with _register_lock:
        if not _registered:
            AutoConfig.register(MODEL_TYPE, ConvClipConfig, exist_ok=True)
            AutoModel.register(ConvClipConfig, ConvClipModel, exist_ok=True)
            _registered = True
