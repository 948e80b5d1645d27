"""Build a tiny, randomly initialised CLIP model directory for tests.

Everything is made here, offline: a CLIP-format BPE tokenizer (byte-level vocab plus a few
merges: searchclip.training.random_tokenizers), a small ``CLIPConfig`` and a
``CLIPImageProcessorPil`` for 32x32 inputs. Models of the other families:
searchclip.training.random_models. The result
loads through the same public route as a user's ``--model PATH``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

from searchclip.training.random_models import CLIP_MEAN, CLIP_STD
from searchclip.training.random_tokenizers import CLIP_BOS as BOS
from searchclip.training.random_tokenizers import CLIP_EOS as EOS
from searchclip.training.random_tokenizers import CLIP_MERGES as MERGES
from searchclip.training.random_tokenizers import clip_tokenizer
from searchclip.training.random_tokenizers import clip_vocab as tiny_vocab

# Re-exported: tests import the tiny tokenizer's parts from here.
__all__ = ["BOS", "EOS", "MERGES", "tiny_vocab"]


def write_tokenizer(directory: Path) -> CLIPTokenizer:
    """Write ``vocab.json`` + ``merges.txt``, load them as a CLIP tokenizer and save it fully."""
    tokenizer = clip_tokenizer(directory, max_length=77)
    tokenizer.save_pretrained(directory)
    return tokenizer


def tiny_config(vocab_size: int, bos_id: int, eos_id: int, pad_id: int) -> CLIPConfig:
    """A CLIP config small enough to run in milliseconds on a CPU."""
    common = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    common["intermediate_size"] = 64
    text = dict(common, vocab_size=vocab_size, max_position_embeddings=77)
    text.update(bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id)
    vision = dict(common, image_size=32, patch_size=8)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)


def write_model(directory: Path, config: CLIPConfig, seed: int = 0) -> None:
    """Random weights for ``config`` (seeded), saved as safetensors."""
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(directory)


def write_processor(directory: Path, size: int = 32) -> None:
    """A CLIP image processor for ``size`` x ``size`` inputs with CLIP's mean and std."""
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": size},
        crop_size={"height": size, "width": size},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    processor.save_pretrained(directory)


def build_tiny_clip(directory: Path, seed: int = 0, tokenizer_dir: Path | None = None) -> Path:
    """Write a complete tiny CLIP model directory (weights, tokenizer, processor) and return it.

    With ``tokenizer_dir``, the tokenizer saved there (e.g. the real CLIP one) is loaded and saved
    into ``directory`` instead of the tiny one, and the text vocabulary is sized to match it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is None:
        tokenizer = write_tokenizer(directory)
    else:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
        tokenizer.save_pretrained(directory)
    config = tiny_config(
        len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    )
    write_model(directory, config, seed)
    write_processor(directory)
    return directory


def build_tiny_conv_clip(directory: Path, seed: int = 0) -> Path:
    """A tiny random ``ConvClipModel`` directory (searchclip's convolutional CLIP family): the
    tiny tokenizer, a two-stage ResNet image tower and the tiny CLIP's text tower."""
    from searchclip._encoders.conv_clip import ConvClipConfig, ConvClipModel

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = write_tokenizer(directory)
    text = tiny_config(
        len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    ).text_config.to_dict()
    vision = {"embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1]}
    vision["layer_type"] = "basic"
    config = ConvClipConfig(text_config=text, vision_config=vision, projection_dim=16)
    torch.manual_seed(seed)
    model = ConvClipModel(config)
    with torch.no_grad():  # BatchNorm statistics other than the initial ones, as after training
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    model.save_pretrained(directory)
    write_processor(directory)
    return directory
