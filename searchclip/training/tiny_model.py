"""The tiny shapes CLIP: its configuration, and training it from scratch on generated scenes.

The configuration is a scaled-down ViT-B/32 CLIP sized to two constraints: a full training run
in ~15 minutes on 2 CPU cores, and a saved directory under 5 MB (weights stored in float16).

- Vision: 64x64 inputs in 8x8 patches (64 patch tokens + class token). At 64 px the smallest
  objects (10 % of the short side) still span ~6 px, enough to tell a star from a cross, and
  65 tokens keep attention cheap. Width 128, 4 heads, 4 layers: the image tower is where the
  work is (binding colour to shape at the right place).
- Text: width 128, 4 heads, 2 layers, 32 positions. Captions are short sentences over a
  ~40-word vocabulary, each word a single token (see ``tokenizer.py``).
- Shared embedding space of 64 dimensions: ample for 40 colour-shape concepts.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

from searchclip.training.shapes_data import PROMPT, SceneBatches, render_pool
from searchclip.training.tokenizer import build_tokenizer, caption_words, save_tokenizer
from searchclip.training.trainer import TrainingResult, train_clip

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

DEFAULT_ARCHITECTURE = {
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
    from searchclip import scenes

    rng = random.Random(0)
    texts = [PROMPT.format(pair) for pair in scenes.PAIRS]
    texts += [scene.caption for scene in scenes.scenes(0, 50)]
    objects = [scenes.SceneObject(*pair.split(" ", 1)) for pair in scenes.PAIRS]
    for _ in range(samples):
        chosen = tuple(rng.sample(objects, rng.randint(1, 3)))
        texts.append(scenes.caption_variants(chosen, rng))
    return caption_words(texts)


def shapes_config(tokenizer, **architecture) -> CLIPConfig:
    """A ``CLIPConfig`` for ``tokenizer``'s vocabulary, ``DEFAULT_ARCHITECTURE`` overridden by
    ``architecture``."""
    unknown = set(architecture) - set(DEFAULT_ARCHITECTURE)
    if unknown:
        raise ValueError(f"unknown architecture settings: {sorted(unknown)}")
    arch = {**DEFAULT_ARCHITECTURE, **architecture}
    text = {
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
    vision = {
        "image_size": arch["image_size"],
        "patch_size": arch["patch_size"],
        "hidden_size": arch["vision_width"],
        "intermediate_size": 4 * arch["vision_width"],
        "num_hidden_layers": arch["vision_layers"],
        "num_attention_heads": arch["heads"],
        "projection_dim": arch["projection_dim"],
    }
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=arch["projection_dim"])


def shapes_processor(image_size: int) -> CLIPImageProcessorPil:
    """CLIP's preprocessing (short side resized, centre crop, CLIP mean/std) at ``image_size``."""
    return CLIPImageProcessorPil(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )


def save_model(model: CLIPModel, tokenizer, processor, out_dir: Path) -> None:
    """Weights as float16 safetensors (half the bytes; ``config.json`` keeps float32 as the
    dtype to run in, so loaders upcast), the tokenizer and the image processor."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.dtype = torch.float32  # what loaders build; the stored tensors are float16
    state = {name: tensor.to(torch.float16) for name, tensor in model.state_dict().items()}
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
    weight_decay: float = 0.1,
    workers: int = 2,
    progress: bool = True,
    **architecture,
) -> tuple[TrainingResult, dict]:
    """Build, train on ``searchclip.scenes`` and save the shapes CLIP in ``out_dir``.

    Returns the training result and a summary of the run (settings, sizes, timings).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    config_args = {**DEFAULT_ARCHITECTURE, **architecture}
    tokenizer = build_tokenizer(caption_vocabulary(), max_length=config_args["max_text_length"])
    processor = shapes_processor(config_args["image_size"])
    model = CLIPModel(shapes_config(tokenizer, **architecture))
    pool = render_pool(processor, seed=seed, count=pool_size, workers=workers, progress=progress)
    rendered = time.perf_counter()
    batches = SceneBatches(
        pool, processor=processor, tokenizer=tokenizer, batch_size=batch_size, seed=seed
    )
    result = train_clip(
        model, batches, steps=steps, lr=lr, weight_decay=weight_decay, seed=seed, progress=progress
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
