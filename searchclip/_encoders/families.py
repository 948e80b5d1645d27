"""Which transformers class a model is loaded with, by the ``model_type`` its config declares,
and how each family differs: its embedding, its text inputs and padding, its text length, and
whether its scores are sigmoid probabilities.

Each family here has what the transformers encoder (:mod:`.clip`) relies on:
``get_image_features`` / ``get_text_features`` whose ``pooler_output`` is the embedding, and an
image tower made of ``vision_model`` (whose ``pooler_output`` is one vector per image) and a
``visual_projection`` where the family projects. So every path of the encoder (ONNX text
export, int8 and bf16 image towers, torch-free queries, the export cache) works for each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from searchclip._encoders.base import MatchProbability
from searchclip._encoders.onnx_text import TEXT_INPUTS, TextTokenizing
from searchclip._errors import ModelLoadError

# Text towers whose position ids start after the padding id (fairseq's convention): they take
# ``max_position_embeddings - pad_token_id - 1`` tokens at most.
_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "altclip_text_model"})
# A tokenizer's model_max_length above this is transformers' "unset" sentinel, not a length.
_NO_LENGTH = 1_000_000


@dataclass(frozen=True)
class Family:
    """A model type searchclip loads, as its config names it."""

    model_type: str
    class_name: str  # the transformers class, as error messages and docs say it
    text_inputs: tuple[str, ...] = TEXT_INPUTS
    pad_to_max_length: bool = False  # trained on texts padded to the full length
    sigmoid: bool = False  # trained with a sigmoid loss: its logits are match probabilities


FAMILIES = {
    family.model_type: family
    for family in (
        Family("clip", "CLIPModel"),
        # SigLIP and SigLIP 2's fixed-resolution checkpoints: texts padded to the length they
        # were trained with (64), no attention mask, sigmoid scores.
        Family("siglip", "SiglipModel", ("input_ids",), pad_to_max_length=True, sigmoid=True),
        Family("altclip", "AltCLIPModel"),
        Family("chinese_clip", "ChineseCLIPModel"),
        Family("vision-text-dual-encoder", "VisionTextDualEncoderModel"),
        Family("searchclip-conv-clip", "ConvClipModel (searchclip's convolutional CLIP)"),
    )
}
# Types that are near a family but do not fit it, and why (one line each).
REFUSED = {
    "siglip2": "SigLIP 2's NaFlex checkpoints take a variable number of patches per image, "
    "which searchclip's fixed-size image input does not fit; use a fixed-resolution SigLIP 2 "
    "checkpoint (e.g. google/siglip2-base-patch16-224, model type 'siglip')",
}


def family_of(model_type: str | None, source: str) -> Family:
    """The family of ``model_type``; ModelLoadError for a type searchclip does not load."""
    found = FAMILIES.get(model_type or "")
    if found is not None:
        return found
    reason = REFUSED.get(model_type or "")
    if reason is not None:
        raise ModelLoadError(f"{source} is a '{model_type}' model: {reason}", model=source)
    raise ModelLoadError(
        f"{source} is a '{model_type}' model; searchclip loads "
        + ", ".join(f"'{name}' ({family.class_name})" for name, family in FAMILIES.items()),
        model=source,
    )


def model_class(model_type: str | None, source: str):
    """The ``PreTrainedModel`` class for ``model_type``; ModelLoadError for any other type."""
    family = family_of(model_type, source)
    if family.model_type == "searchclip-conv-clip":
        from searchclip._encoders.conv_clip import ConvClipModel, register

        register()
        return ConvClipModel
    import transformers

    return getattr(transformers, family.class_name)


def embedding_dim(model) -> int:
    """The length of the model's embeddings: its projection's, or (SigLIP, which does not
    project) its vision model's hidden size."""
    projection = getattr(model, "visual_projection", None)
    if projection is not None:
        return int(projection.out_features)
    return int(model.config.vision_config.hidden_size)


def text_tokenizing(family: Family, config, tokenizer, source: str) -> TextTokenizing:
    """How the model's texts are tokenized: its family's inputs and padding, truncated to the
    number of positions its text tower has (and to the tokenizer's own limit, where it sets
    one)."""
    text = config.text_config
    length = int(text.max_position_embeddings)
    if getattr(text, "model_type", None) in _OFFSET_POSITIONS:
        length -= int(text.pad_token_id) + 1
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _NO_LENGTH:
        length = min(length, limit)
    if tokenizer.pad_token_id is None:
        raise ModelLoadError(f"the tokenizer of {source} has no padding token", model=source)
    return TextTokenizing(
        length, int(tokenizer.pad_token_id), family.text_inputs, family.pad_to_max_length
    )


def match_probability(family: Family, model) -> MatchProbability | None:
    """A sigmoid model's match probability (its learnt scale and bias); None for the others."""
    if not family.sigmoid:
        return None
    scale = math.exp(float(model.logit_scale.detach().reshape(-1)[0]))
    return MatchProbability(scale, float(model.logit_bias.detach().reshape(-1)[0]))


def read_config(source: str, **kwargs):
    """The model's config, with searchclip's own model types known to ``AutoConfig``."""
    from transformers import AutoConfig

    from searchclip._encoders.conv_clip import register

    register()
    return AutoConfig.from_pretrained(source, **kwargs)
