"""The bundled shapes model: its configuration, and training it from scratch on generated scenes.

The model is a ``ConvClipModel`` (``searchclip._encoders.conv_clip``): a CLIP whose image tower
is a small ResNet with a global max pool, because a ViT trained from scratch on 2 CPU cores
does not learn shape in any budget tried (docs/shapes-model-experiments.md). Sized to two
constraints: retraining within 60 minutes on 2 CPU cores, and a saved directory under 5 MB
(weights stored in float16).

- Vision: 64x64 inputs (objects are 25-50 % of the short side: 16-32 px), ResNet stem of a
  7x7 stride-2 convolution and a stride-2 max pool, then ``vision_stages`` stages of basic
  residual blocks (3x3 convolutions with BatchNorm) ``vision_width`` wide, doubling per stage.
- Text: CLIP's text transformer, width 128, 4 heads, 2 layers, 32 positions. Captions are
  short sentences over a ~40-word vocabulary, each word a single token (see ``tokenizer.py``).
- Shared embedding space of 64 dimensions: ample for 40 colour-shape concepts.

``shapes_config`` still builds a tiny transformers ``CLIPConfig`` for tests and benchmarks
that need a CLIP of this vocabulary.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPImageProcessorPil

from searchclip._encoders.conv_clip import ConvClipConfig, ConvClipModel
from searchclip._templates import DEFAULT_TEMPLATES
from searchclip.training.shapes_data import PROMPT, SceneBatches, render_pool
from searchclip.training.tokenizer import build_tokenizer, caption_words, save_tokenizer
from searchclip.training.trainer import TrainingResult, train_clip

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

DEFAULT_ARCHITECTURE = {
    "image_size": 64,
    "vision_width": 32,
    "vision_stages": 4,
    "vision_depth": 1,
    "text_width": 128,
    "text_layers": 2,
    "heads": 4,
    "projection_dim": 64,
    "max_text_length": 32,
}
# The ViT CLIP of ``shapes_config``: what tests and benchmarks use as a tiny CLIPModel.
CLIP_ARCHITECTURE = {
    "image_size": 64,
    "patch_size": 8,
    "vision_width": 128,
    "vision_layers": 4,
    "text_width": 128,
    "text_layers": 2,
    "heads": 4,
    "projection_dim": 64,
    "max_text_length": 32,
}


def caption_vocabulary(samples: int = 4000) -> list[str]:
    """Every word the scene captions and the search prompts use, found by sampling the caption
    generator (seeded, so the vocabulary is fixed)."""
    from searchclip import _scenes as scenes

    rng = random.Random(0)
    texts = [t.format(pair) for t in (PROMPT, *DEFAULT_TEMPLATES) for pair in scenes.PAIRS]
    texts += [scene.caption for scene in scenes.scenes(0, 50)]
    objects = [scenes.SceneObject(*pair.split(" ", 1)) for pair in scenes.PAIRS]
    for _ in range(samples):
        chosen = tuple(rng.sample(objects, rng.randint(1, 3)))
        texts.append(scenes.caption_variants(chosen, rng))
    return caption_words(texts)


def conv_shapes_config(tokenizer, **architecture) -> ConvClipConfig:
    """The bundled model's ``ConvClipConfig`` for ``tokenizer``'s vocabulary,
    ``DEFAULT_ARCHITECTURE`` overridden by ``architecture``."""
    arch = _architecture(DEFAULT_ARCHITECTURE, architecture)
    widths = [arch["vision_width"] * 2**stage for stage in range(arch["vision_stages"])]
    vision = {
        "embedding_size": arch["vision_width"],
        "hidden_sizes": widths,
        "depths": [arch["vision_depth"]] * arch["vision_stages"],
        "layer_type": "basic",
        "downsample_in_first_stage": False,
    }
    return ConvClipConfig(
        text_config=_text_config(tokenizer, arch),
        vision_config=vision,
        projection_dim=arch["projection_dim"],
        vision_pooling="max",
    )


def shapes_config(tokenizer, **architecture) -> CLIPConfig:
    """A ViT ``CLIPConfig`` for ``tokenizer``'s vocabulary, ``CLIP_ARCHITECTURE`` overridden by
    ``architecture``."""
    arch = _architecture(CLIP_ARCHITECTURE, architecture)
    vision = {
        "image_size": arch["image_size"],
        "patch_size": arch["patch_size"],
        "hidden_size": arch["vision_width"],
        "intermediate_size": 4 * arch["vision_width"],
        "num_hidden_layers": arch["vision_layers"],
        "num_attention_heads": arch["heads"],
        "projection_dim": arch["projection_dim"],
    }
    return CLIPConfig(
        text_config=_text_config(tokenizer, arch),
        vision_config=vision,
        projection_dim=arch["projection_dim"],
    )


def _architecture(defaults: dict, overrides: dict) -> dict:
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise ValueError(f"unknown architecture settings: {sorted(unknown)}")
    return {**defaults, **overrides}


def _text_config(tokenizer, arch: dict) -> dict:
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": arch["text_width"],
        "intermediate_size": 4 * arch["text_width"],
        "num_hidden_layers": arch["text_layers"],
        "num_attention_heads": arch["heads"],
        "max_position_embeddings": arch["max_text_length"],
        "projection_dim": arch["projection_dim"],
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def shapes_processor(image_size: int) -> CLIPImageProcessorPil:
    """CLIP's preprocessing (short side resized, centre crop, CLIP mean/std) at ``image_size``."""
    return CLIPImageProcessorPil(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )


def save_model(model, tokenizer, processor, out_dir: Path) -> None:
    """Weights as float16 safetensors (half the bytes; ``config.json`` keeps float32 as the
    dtype to run in, so loaders upcast), the tokenizer and the image processor."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.dtype = torch.float32  # what loaders build; the stored tensors are float16
    state = {
        name: tensor.to(torch.float16) if tensor.is_floating_point() else tensor
        for name, tensor in model.state_dict().items()  # BatchNorm's step counts stay int64
    }
    model.save_pretrained(out_dir, state_dict=state)
    save_tokenizer(tokenizer, out_dir)
    processor.save_pretrained(out_dir)


def train_shapes_model(
    out_dir: str | Path,
    *,
    seed: int = 0,
    steps: int = 800,
    batch_size: int = 128,
    pool_size: int = 24_000,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    label_loss_weight: float = 1.0,
    workers: int = 2,
    progress: bool = True,
    **architecture,
) -> tuple[TrainingResult, dict]:
    """Build, train on ``searchclip._scenes`` and save the shapes CLIP in ``out_dir``.

    Returns the training result and a summary of the run (settings, sizes, timings).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    config_args = _architecture(DEFAULT_ARCHITECTURE, architecture)  # unknown keys fail here
    tokenizer = build_tokenizer(caption_vocabulary(), max_length=config_args["max_text_length"])
    processor = shapes_processor(config_args["image_size"])
    model = ConvClipModel(conv_shapes_config(tokenizer, **architecture))
    pool = render_pool(processor, seed=seed, count=pool_size, workers=workers, progress=progress)
    rendered = time.perf_counter()
    batches = SceneBatches(
        pool, processor=processor, tokenizer=tokenizer, batch_size=batch_size, seed=seed
    )
    result = train_clip(
        model,
        batches,
        steps=steps,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        progress=progress,
        label_loss_weight=label_loss_weight,
    )
    save_model(model, tokenizer, processor, out_dir)
    size = sum(path.stat().st_size for path in out_dir.rglob("*") if path.is_file())
    summary = {
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "pool_size": pool_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "label_loss_weight": label_loss_weight,
        "architecture": config_args,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "render_seconds": round(rendered - started, 1),
        "train_seconds": round(result.seconds, 1),
        "first_loss": round(result.first_loss, 4),
        "final_loss": round(result.final_loss, 4),
        "logit_scale": round(float(torch.tensor(result.logit_scale).exp()), 2),
        "directory_bytes": size,
    }
    return result, summary
