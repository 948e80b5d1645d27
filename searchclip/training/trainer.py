"""Contrastive training of a CLIP-style model (``transformers.CLIPModel``, searchclip's
``ConvClipModel``: anything with ``get_image_features``, ``get_text_features`` and
``logit_scale``): the loop, and a batch source for (image, caption) pairs.

A batch source is anything with ``next_batch() -> Batch``: ``PairBatches`` wraps a list of
(PIL image, caption) pairs (a user's captioned photos); ``searchclip.training.shapes_data``
serves generated scenes. Images always go through the model's own image processor, so the
model is trained on exactly what the indexer will feed it.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from searchclip.training.loss import MAX_LOGIT_SCALE, clip_loss


@dataclass(frozen=True)
class Batch:
    """One training batch, already preprocessed and tokenized.

    ``positives`` is the (images x texts) boolean matrix of true matches; ``None`` means the
    diagonal (text i describes image i and nothing else).
    """

    pixel_values: torch.Tensor  # (n, 3, s, s) float32
    input_ids: torch.Tensor  # (m, length)
    attention_mask: torch.Tensor  # (m, length)
    positives: torch.Tensor | None = None  # (n, m) bool
    labels: torch.Tensor | None = None  # (n, L) float multi-hot, for ``label_loss_weight``


class BatchSource(Protocol):
    def next_batch(self) -> Batch: ...


class PairBatches:
    """Batches drawn from (image, caption) pairs, reshuffled each epoch with a seeded RNG.

    Images are preprocessed by ``processor`` when drawn; identical captions in a batch count as
    matches of each other's images rather than as negatives.
    """

    def __init__(
        self,
        pairs: Iterable[tuple[object, str]],
        *,
        processor,
        tokenizer,
        batch_size: int,
        seed: int = 0,
        max_length: int | None = None,
    ):
        self.pairs: Sequence = pairs if isinstance(pairs, Sequence) else list(pairs)
        if len(self.pairs) < 2:
            raise ValueError("contrastive training needs at least two (image, caption) pairs")
        self.processor = processor
        self.tokenizer = tokenizer
        self.batch_size = min(batch_size, len(self.pairs))
        self.max_length = max_length or tokenizer.model_max_length
        self._rng = random.Random(seed)
        self._order: list[int] = []

    def next_batch(self) -> Batch:
        if len(self._order) < self.batch_size:
            epoch = list(range(len(self.pairs)))
            self._rng.shuffle(epoch)
            self._order += epoch
        chosen, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        images = [self.pairs[i][0] for i in chosen]
        captions = [self.pairs[i][1] for i in chosen]
        pixels = self.processor(images=images, return_tensors="np")["pixel_values"]
        pixels = torch.from_numpy(np.asarray(pixels, dtype=np.float32))
        ids, mask = tokenize(self.tokenizer, captions, self.max_length)
        same = torch.tensor([[a == b for b in captions] for a in captions])
        return Batch(pixels, ids, mask, same)


def tokenize(tokenizer, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask, as the encoder tokenizes queries."""
    tokenizer.padding_side = "right"  # CLIP pools the first end-of-text token
    batch = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return batch["input_ids"], batch["attention_mask"]


@dataclass(frozen=True)
class TrainingResult:
    steps: int
    seconds: float
    losses: tuple[float, ...]  # one per step
    logit_scale: float  # the learned log-scale at the end
    history: tuple[dict, ...] = field(default=())  # every ``log_every`` steps

    @property
    def first_loss(self) -> float:
        """Mean loss over the first steps (a fifth of the run, at most 50)."""
        return float(np.mean(self.losses[: self._window]))

    @property
    def final_loss(self) -> float:
        """Mean loss over the last steps (a fifth of the run, at most 50)."""
        return float(np.mean(self.losses[-self._window :]))

    @property
    def _window(self) -> int:
        return max(1, min(50, len(self.losses) // 5))


def train_clip(
    model,
    data: BatchSource | Iterable[tuple[object, str]],
    *,
    steps: int,
    tokenizer=None,
    processor=None,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    warmup_steps: int | None = None,
    min_lr_ratio: float = 0.02,
    grad_clip: float = 1.0,
    seed: int = 0,
    progress: bool = True,
    log_every: int = 50,
    label_loss_weight: float = 0.0,
) -> TrainingResult:
    """Train ``model`` (a CLIP-style model) in place with the CLIP objective for ``steps`` steps.

    ``data`` is a batch source, or (image, caption) pairs that need ``tokenizer`` and
    ``processor``. AdamW with betas (0.9, 0.98) as in CLIP, no weight decay on biases, norms,
    embeddings' gains or the logit scale; the learning rate warms up linearly for
    ``warmup_steps`` (default 5 % of ``steps``) and then follows a cosine down to
    ``min_lr_ratio * lr``. Gradients are clipped to norm ``grad_clip``; the logit scale is
    clamped to ln(100) after every step. A tqdm bar on stderr shows the running loss.

    With ``label_loss_weight`` > 0 and batches that carry ``labels``, a linear head on the
    image embeddings learns to predict them (multi-label binary cross-entropy), its loss added
    with that weight: an auxiliary supervised signal that makes the image tower learn what the
    labels name (shape, say) long before the contrastive signal alone would. The head is
    training scaffolding and is not part of the model.
    """
    if steps < 1:
        raise ValueError("steps must be at least 1")
    torch.manual_seed(seed)
    if not hasattr(data, "next_batch"):
        if tokenizer is None or processor is None:
            raise ValueError("training on (image, caption) pairs needs tokenizer and processor")
        data = PairBatches(
            data, processor=processor, tokenizer=tokenizer, batch_size=batch_size, seed=seed
        )
    warmup = max(1, round(0.05 * steps) if warmup_steps is None else warmup_steps)
    device = next(model.parameters()).device
    first = data.next_batch()
    head = None
    if label_loss_weight > 0 and first.labels is not None:
        head = torch.nn.Linear(int(model.config.projection_dim), first.labels.shape[1]).to(device)
    trained = torch.nn.ModuleList([model] if head is None else [model, head])
    optimizer = torch.optim.AdamW(
        _parameter_groups(trained, weight_decay), lr=lr, betas=(0.9, 0.98), eps=1e-6
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, steps, warmup, min_lr_ratio)
    )
    losses: list[float] = []
    history: list[dict] = []
    started = time.perf_counter()
    model.train()
    bar = tqdm(total=steps, desc="training", file=sys.stderr, disable=not progress)
    for step in range(1, steps + 1):
        batch = first if step == 1 else data.next_batch()
        loss = _batch_loss(model, batch, device, head, label_loss_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained.parameters(), grad_clip)
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)
        losses.append(float(loss.detach()))
        recent = float(np.mean(losses[-log_every:]))
        bar.set_postfix(loss=f"{recent:.3f}", scale=f"{model.logit_scale.exp().item():.1f}")
        bar.update()
        if step % log_every == 0 or step == steps:
            history.append(
                {
                    "step": step,
                    "loss": round(recent, 4),
                    "lr": optimizer.param_groups[0]["lr"],
                    "scale": round(model.logit_scale.exp().item(), 2),
                }
            )
    bar.close()
    model.eval()
    seconds = time.perf_counter() - started
    return TrainingResult(steps, seconds, tuple(losses), model.logit_scale.item(), tuple(history))


def _batch_loss(model, batch: Batch, device, head=None, head_weight: float = 0.0) -> torch.Tensor:
    images = _features(model.get_image_features(pixel_values=batch.pixel_values.to(device)))
    texts = _features(
        model.get_text_features(
            input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)
        )
    )
    positives = None if batch.positives is None else batch.positives.to(device)
    loss = clip_loss(images, texts, model.logit_scale, positives=positives)
    if head is not None:
        predicted = head(torch.nn.functional.normalize(images, dim=-1))
        target = batch.labels.to(device)
        loss = loss + head_weight * F.binary_cross_entropy_with_logits(predicted, target)
    return loss


def _features(output) -> torch.Tensor:
    """The projected embeddings of ``get_*_features``: a tensor in transformers 4, an output
    object's ``pooler_output`` in transformers 5. Unlike the encoder's, keeps the graph."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _parameter_groups(model, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only: not on biases, LayerNorm gains, the class embedding or
    the logit scale (all 0-D or 1-D), as in CLIP and OpenCLIP."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        plain = parameter.ndim < 2 or name.endswith("logit_scale")
        (no_decay if plain else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _lr_factor(step: int, total: int, warmup: int, floor: float) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to ``floor``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
