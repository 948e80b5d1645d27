"""Random-weight OpenCLIP checkpoints, laid out as OpenCLIP's hub repos are.

``build_random_open_clip(directory)`` writes ``open_clip_config.json`` (``model_cfg`` and
``preprocess_cfg``) and ``open_clip_model.safetensors`` (always both: a checkpoint without
weights is refused on loading, never taken as a random model), which load through the same
route as a user's download (``--model DIRECTORY``). Without a ``model_cfg`` it builds a tiny
ViT (32 px, two layers) whose vectors a test can compute in milliseconds; with one of
OpenCLIP's own model configs (``open_clip.get_model_config("ViT-B-32")``, ``"MobileCLIP-S2"``,
...) it builds that architecture with random weights, to time it. The text tower uses
OpenCLIP's default tokenizer (CLIP's BPE, 49,408 tokens) unless the config names another.

A config whose text tower is a transformers model (``hf_model_name``: the multilingual
``xlm-roberta-base-ViT-B-32``, ``nllb-clip-base-siglip``) would need that model's config and
tokenizer from the hub. For the models in ``HF_TEXT_CONFIGS`` the builder writes them instead:
the text model's config (as its hub repo has it) into ``DIRECTORY/text-model`` and a small random
XLM-R-style tokenizer into the checkpoint directory, where OpenCLIP reads a local checkpoint's
tokenizer from; ``hf_model_name`` then names that directory by its absolute path, so such a
checkpoint is for timing on this machine, not for moving. Offline; imports torch and open_clip.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from searchclip._encoders.open_clip_files import CONFIG_FILE, SAFETENSORS_FILE

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
TINY_MODEL_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
# The transformers text towers of OpenCLIP's multilingual configs, as their hub configs define
# them (architecture only: random weights).
HF_TEXT_CONFIGS = {
    "xlm-roberta-base": {
        "model_type": "xlm-roberta",
        "vocab_size": 250002,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 514,
        "type_vocab_size": 1,
        "layer_norm_eps": 1e-05,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
    },
    "facebook/nllb-200-distilled-600M": {
        "model_type": "m2m_100",
        "vocab_size": 256206,
        "d_model": 1024,
        "encoder_layers": 12,
        "decoder_layers": 12,
        "encoder_attention_heads": 16,
        "decoder_attention_heads": 16,
        "encoder_ffn_dim": 4096,
        "decoder_ffn_dim": 4096,
        "max_position_embeddings": 1024,
        "scale_embedding": True,
        "activation_function": "relu",
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "decoder_start_token_id": 2,
    },
}
DEFAULT_PREPROCESS_CFG = {
    "mean": OPENAI_MEAN,
    "std": OPENAI_STD,
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


def build_random_open_clip(
    directory: Path,
    model_cfg: dict | None = None,
    preprocess_cfg: dict | None = None,
    seed: int = 0,
) -> Path:
    """Write a random-weight OpenCLIP checkpoint for ``model_cfg`` (default: a tiny ViT) into
    ``directory`` (created); returns it. ``preprocess_cfg`` overrides OpenCLIP's defaults
    (OpenAI mean/std, bicubic, resize the shortest side and crop the centre); the image size is
    the model's. Seeded: the same arguments give the same weights."""
    from safetensors.torch import save_file

    from searchclip._encoders.open_clip_loading import open_clip_module

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model_cfg = copy.deepcopy(model_cfg if model_cfg is not None else TINY_MODEL_CFG)
    _write_text_model(directory, model_cfg["text_cfg"])
    preprocess = {**DEFAULT_PREPROCESS_CFG, **(preprocess_cfg or {})}
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess}
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", "utf-8")
    (directory / SAFETENSORS_FILE).unlink(missing_ok=True)  # a rebuild never reads old weights
    torch.manual_seed(seed)
    model = _random_model(open_clip_module(), model_cfg)
    state = {
        name: tensor.detach().contiguous().clone() for name, tensor in model.state_dict().items()
    }
    save_file(state, str(directory / SAFETENSORS_FILE))
    return directory


def _write_text_model(directory: Path, text_cfg: dict) -> None:
    """For a transformers text tower of HF_TEXT_CONFIGS: its config and a random tokenizer,
    written locally, and ``text_cfg`` pointed at them (see the module docstring)."""
    name = text_cfg.get("hf_model_name")
    if name is None or Path(name).is_dir():
        return
    if name not in HF_TEXT_CONFIGS:
        known = ", ".join(HF_TEXT_CONFIGS)
        raise ValueError(f"the text tower {name!r} needs the hub; offline: {known}")
    from transformers import AutoConfig

    from searchclip.training.random_tokenizers import saved, xlm_roberta_tokenizer

    fields = dict(HF_TEXT_CONFIGS[name])
    AutoConfig.for_model(fields.pop("model_type"), **fields).save_pretrained(
        directory / "text-model"
    )
    saved(xlm_roberta_tokenizer(int(text_cfg.get("context_length", 77))), directory)
    text_cfg["hf_model_name"] = str((directory / "text-model").resolve())
    text_cfg["hf_tokenizer_name"] = str(directory.resolve())


def _random_model(open_clip, model_cfg: dict) -> torch.nn.Module:
    """The class OpenCLIP's factory picks for ``model_cfg``, initialised as OpenCLIP does, and no
    pretrained tower fetched. Made directly rather than through ``create_model``, which logs
    warnings to the root logger about a checkpoint without weights."""
    cfg = copy.deepcopy(model_cfg)
    text, vision = cfg["text_cfg"], cfg["vision_cfg"]
    custom_text = cfg.pop("custom_text", False) or "hf_model_name" in text
    if "timm_model_name" in vision:
        vision["timm_model_pretrained"] = False
    if "hf_model_name" in text:
        text["hf_model_pretrained"] = False
    if "multimodal_cfg" in cfg:
        return open_clip.CoCa(**cfg)
    return (open_clip.CustomTextCLIP if custom_text else open_clip.CLIP)(**cfg)
