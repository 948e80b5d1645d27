"""Random-weight model directories of each transformers family searchclip loads, built offline.

A directory holds what ``save_pretrained`` writes for a downloaded checkpoint (config.json,
model.safetensors, the tokenizer's files, preprocessor_config.json), so it loads through the
same ``--model PATH`` route as a user's download. Tests use the tiny default architectures
(32 px images, two layers: milliseconds per batch); ``searchclip models`` builds real-size
architectures (``architecture``: the config's keyword arguments) to time them without
downloading weights. The tokenizers are :mod:`.random_tokenizers`' small multilingual ones.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch

from searchclip.training import random_tokenizers

FAMILIES = ("clip", "siglip", "altclip", "chinese_clip", "vision-text-dual-encoder")
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
HALF = [0.5, 0.5, 0.5]  # SigLIP's and ViT's mean and std
# SigLIP's initial logit scale and bias (log 10 and -10, as its paper trains from): a random
# model's match probabilities are then those of an untrained SigLIP.
SIGLIP_LOGIT_SCALE = math.log(10.0)
SIGLIP_LOGIT_BIAS = -10.0

_LAYERS = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
_LAYERS["intermediate_size"] = 64
_TINY_VISION = dict(_LAYERS, image_size=32, patch_size=8)
TINY = {
    "clip": {
        "text_config": dict(_LAYERS, max_position_embeddings=77),
        "vision_config": _TINY_VISION,
        "projection_dim": 16,
    },
    "siglip": {
        "text_config": dict(_LAYERS, max_position_embeddings=64),
        "vision_config": _TINY_VISION,
    },
    "altclip": {
        # XLM-R positions start after the padding id: 79 positions take 77 tokens
        "text_config": dict(_LAYERS, max_position_embeddings=79, project_dim=32),
        "vision_config": _TINY_VISION,
        "projection_dim": 16,
    },
    "chinese_clip": {
        "text_config": dict(_LAYERS, max_position_embeddings=64),
        "vision_config": _TINY_VISION,
        "projection_dim": 16,
    },
    "vision-text-dual-encoder": {
        "vision_config": dict(_TINY_VISION, model_type="vit"),
        "text_config": dict(_LAYERS, model_type="bert", max_position_embeddings=64),
        "projection_dim": 16,
    },
}


def build_random_model(
    family: str, directory: Path, architecture: dict | None = None, seed: int = 0
) -> Path:
    """Write a random-weight ``family`` model into ``directory`` and return it.

    ``architecture`` is the config's keyword arguments (e.g. for siglip ``{"text_config":
    {...}, "vision_config": {...}}``; for vision-text-dual-encoder ``{"vision_config":
    {"model_type": "vit", ...}, "text_config": {"model_type": "bert", ...}, "projection_dim":
    512}``); None: a tiny model (32 px images, two layers). The text vocabulary is the small
    tokenizer's unless ``text_config`` sets a larger ``vocab_size``; the image processor is
    the family's, for the vision config's ``image_size``. Weights are seeded by ``seed``.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}: use one of {', '.join(FAMILIES)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    kwargs = copy.deepcopy(TINY[family] if architecture is None else architecture)
    kwargs.setdefault("vision_config", {})
    kwargs.setdefault("text_config", {})
    tokenizer = _tokenizer(family, directory, kwargs["text_config"])
    _fit_text_config(family, kwargs["text_config"], tokenizer)
    config = _config(family, kwargs)
    torch.manual_seed(seed)
    model = _model_class(family)(config)
    if family == "siglip":
        with torch.no_grad():
            model.logit_scale.fill_(SIGLIP_LOGIT_SCALE)
            model.logit_bias.fill_(SIGLIP_LOGIT_BIAS)
    model.save_pretrained(directory)
    _processor(family, int(_vision(config).image_size)).save_pretrained(directory)
    return directory


def _tokenizer(family: str, directory: Path, text: dict):
    positions = text.get("max_position_embeddings")
    if family == "clip":
        tokenizer = random_tokenizers.clip_tokenizer(directory, positions or 77)
    elif family == "siglip":
        tokenizer = random_tokenizers.siglip_tokenizer(positions or 64)
    elif family == "altclip" or text.get("model_type") in ("roberta", "xlm-roberta"):
        # XLM-R positions start after the padding id: two fewer tokens than positions
        tokenizer = random_tokenizers.xlm_roberta_tokenizer(
            77 if positions is None else positions - 2
        )
    else:
        tokenizer = random_tokenizers.bert_tokenizer(positions or 512)
    random_tokenizers.saved(tokenizer, directory)
    return tokenizer


def _fit_text_config(family: str, text: dict, tokenizer) -> None:
    """The text config's vocabulary and special token ids set to the tokenizer's."""
    vocab_size = text.setdefault("vocab_size", len(tokenizer))
    if vocab_size < len(tokenizer):
        raise ValueError(
            f"vocab_size {vocab_size} is smaller than the tokenizer's {len(tokenizer)}"
        )
    text["pad_token_id"] = tokenizer.pad_token_id
    if family in ("clip", "siglip"):
        text.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    elif family == "altclip":
        text.update(bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id)


def _config(family: str, kwargs: dict):
    import transformers

    names = {
        "clip": "CLIPConfig",
        "siglip": "SiglipConfig",
        "altclip": "AltCLIPConfig",
        "chinese_clip": "ChineseCLIPConfig",
        "vision-text-dual-encoder": "VisionTextDualEncoderConfig",
    }
    return getattr(transformers, names[family])(**kwargs)


def _model_class(family: str):
    import transformers

    names = {
        "clip": "CLIPModel",
        "siglip": "SiglipModel",
        "altclip": "AltCLIPModel",
        "chinese_clip": "ChineseCLIPModel",
        "vision-text-dual-encoder": "VisionTextDualEncoderModel",
    }
    return getattr(transformers, names[family])


def _vision(config):
    return config.vision_config


def _processor(family: str, size: int):
    """The family's own image processor (its PIL backend) for ``size`` x ``size`` inputs."""
    import transformers

    square = {"height": size, "width": size}
    if family in ("clip", "altclip"):
        return transformers.CLIPImageProcessorPil(
            size={"shortest_edge": size}, crop_size=square, image_mean=CLIP_MEAN, image_std=CLIP_STD
        )
    if family == "chinese_clip":  # as its checkpoints: a fixed-size resize, then the crop
        return transformers.ChineseCLIPImageProcessorPil(
            size=square, crop_size=square, image_mean=CLIP_MEAN, image_std=CLIP_STD
        )
    if family == "siglip":
        return transformers.SiglipImageProcessorPil(size=square, image_mean=HALF, image_std=HALF)
    return transformers.ViTImageProcessorPil(size=square, image_mean=HALF, image_std=HALF)
