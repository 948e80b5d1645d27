"""Which transformers class a model is loaded with, by the ``model_type`` its config declares.

Each family here has what the CLIP encoder relies on: ``get_image_features`` /
``get_text_features``, an image tower made of ``vision_model`` (whose ``pooler_output`` is
one vector per image) and ``visual_projection``, ``config.projection_dim`` and a
``config.text_config`` with ``max_position_embeddings``. So every path of the encoder
(ONNX text export, int8 and bf16 image towers, torch-free queries, the export cache) works
for each of them.
"""

from __future__ import annotations

from searchclip._errors import ModelLoadError

# model_type -> the family's name, as error messages and docs say it
SUPPORTED = {
    "clip": "CLIPModel",
    "searchclip-conv-clip": "ConvClipModel (searchclip's convolutional CLIP)",
}


def model_class(model_type: str | None, source: str):
    """The ``PreTrainedModel`` class for ``model_type``; ModelLoadError for any other type."""
    if model_type == "clip":
        from transformers import CLIPModel

        return CLIPModel
    if model_type == "searchclip-conv-clip":
        from searchclip._encoders.conv_clip import ConvClipModel, register

        register()
        return ConvClipModel
    raise ModelLoadError(
        f"{source} is a '{model_type}' model; searchclip loads "
        + ", ".join(f"'{name}' ({family})" for name, family in SUPPORTED.items()),
        model=source,
    )


def read_config(source: str, **kwargs):
    """The model's config, with searchclip's own model types known to ``AutoConfig``."""
    from transformers import AutoConfig

    from searchclip._encoders.conv_clip import register

    register()
    return AutoConfig.from_pretrained(source, **kwargs)
