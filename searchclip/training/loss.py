"""The symmetric contrastive objective of CLIP (Radford et al., 2021, section 2.3).

Both sets of embeddings are L2-normalised; ``logits = exp(logit_scale) * images @ texts.T``
with ``logit_scale`` the log of the temperature's inverse, as ``CLIPModel.logit_scale`` holds
it (initialised to ln(1/0.07)) and the scale itself capped at 100. The loss is the mean of the
cross-entropy over each row (image -> text) and over each column (text -> image).

Plain CLIP takes the diagonal as the only match. ``positives`` generalises that: a boolean
(images x texts) matrix of every true match, so that a batch may hold duplicate captions, or
captions naming only some of an image's objects, without teaching the model that they are
wrong. Each row (column) then targets the uniform distribution over its positives; texts with
no positive image (hard negatives) take part as columns of the image -> text softmax only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_LOGIT_SCALE = math.log(100.0)


def clip_loss(
    image_embeds: torch.Tensor,
    text_embeds: torch.Tensor,
    logit_scale: torch.Tensor | float,
    *,
    positives: torch.Tensor | None = None,
) -> torch.Tensor:
    """CLIP's symmetric cross-entropy; the diagonal is the target unless ``positives`` is given.

    ``image_embeds`` is (n, d), ``text_embeds`` (m, d); without ``positives`` m must equal n.
    Every image needs at least one positive text.
    """
    if image_embeds.ndim != 2 or text_embeds.ndim != 2:
        raise ValueError("embeddings must be 2-D (batch, dim)")
    if positives is None:
        if len(image_embeds) != len(text_embeds):
            raise ValueError("without `positives` there must be as many texts as images")
        positives = torch.eye(len(image_embeds), dtype=torch.bool, device=image_embeds.device)
    if positives.shape != (len(image_embeds), len(text_embeds)):
        raise ValueError(f"positives must be {len(image_embeds)} x {len(text_embeds)}")
    if not bool(positives.any(dim=1).all()):
        raise ValueError("every image needs at least one positive text")
    images = F.normalize(image_embeds.float(), dim=-1)
    texts = F.normalize(text_embeds.float(), dim=-1)
    scale = torch.as_tensor(logit_scale, dtype=torch.float32, device=images.device)
    logits = scale.exp().clamp(max=100.0) * images @ texts.T
    targets = positives.float()
    image_to_text = _soft_cross_entropy(logits, targets)
    matched = positives.any(dim=0)  # texts with at least one image
    text_to_image = _soft_cross_entropy(logits.T[matched], targets.T[matched])
    return (image_to_text + text_to_image) / 2


def _soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of the cross-entropy against ``targets`` normalised per row."""
    weights = targets / targets.sum(dim=1, keepdim=True)
    return -(weights * logits.log_softmax(dim=1)).sum(dim=1).mean()
