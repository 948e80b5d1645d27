"""The recommended models ``searchclip models`` lists: what each is, how big, how good its
authors measured it, and the architecture its speed is timed on (random weights, built offline).

Quality is the figure the authors (or OpenCLIP's evaluation of their checkpoint) published for
text-to-image retrieval, the task a photo search is: recall@1 on MSCOCO's 5k test images where
it was published, else the benchmark named in the row. Download sizes are the fp32 weights
(parameters x 4 bytes) unless the model card states one. Torch-free: speeds are measured by
:mod:`searchclip.training.model_speed`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OPENCLIP_RESULTS = (
    "OpenCLIP's evaluation, docs/openclip_retrieval_results.csv "
    "(github.com/mlfoundations/open_clip), MSCOCO image retrieval R@1"
)


@dataclass(frozen=True)
class Quality:
    """A published zero-shot text-to-image recall@1: ``value`` (percent) on ``benchmark``,
    from ``source``."""

    value: float
    benchmark: str
    source: str


@dataclass(frozen=True)
class RecommendedModel:
    """One row of the table. ``build`` says how to make a random-weight model of the same
    architecture: ``("transformers", family, config keywords)`` or ``("open_clip", OpenCLIP
    model config name, {})``."""

    model_id: str  # what --model takes
    family: str
    languages: str
    dim: int
    params_millions: float
    quality: Quality
    build: tuple[str, str, dict] = field(compare=False)
    download_gb: float | None = None  # stated by the model card; else from the parameters
    note: str = ""

    @property
    def download_size_gb(self) -> float:
        return self.download_gb or self.params_millions * 4 / 1000


def _coco(value: float, source: str = OPENCLIP_RESULTS) -> Quality:
    return Quality(value, "MSCOCO 5k", source)


def _vit(hidden: int, layers: int, heads: int, mlp: int, patch: int, image: int) -> dict:
    return {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": mlp,
        "patch_size": patch,
        "image_size": image,
    }


def _text(hidden: int, layers: int, heads: int, mlp: int, vocab: int, length: int) -> dict:
    return {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": mlp,
        "vocab_size": vocab,
        "max_position_embeddings": length,
    }


_CLIP_B32 = {
    "vision_config": _vit(768, 12, 12, 3072, 32, 224),
    "text_config": _text(512, 12, 8, 2048, 49408, 77),
    "projection_dim": 512,
}
_SIGLIP_B16_TEXT = _text(768, 12, 12, 3072, 32000, 64)
_SIGLIP_SO400M = _vit(1152, 27, 16, 4304, 14, 384)

RECOMMENDED: tuple[RecommendedModel, ...] = (
    RecommendedModel(
        "openai/clip-vit-base-patch32",
        "clip",
        "English",
        512,
        151.3,
        _coco(30.4),
        ("transformers", "clip", _CLIP_B32),
        note="searchclip's default",
    ),
    RecommendedModel(
        "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        "clip",
        "English",
        512,
        151.3,
        _coco(39.3),
        ("transformers", "clip", _CLIP_B32),
    ),
    RecommendedModel(
        "hf-hub:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K",
        "open_clip",
        "English",
        512,
        151.3,
        _coco(37.1),
        ("open_clip", "ViT-B-32", {}),
        note="rclip's model",
    ),
    RecommendedModel(
        "hf-hub:apple/MobileCLIP-S2-OpenCLIP",
        "open_clip",
        "English",
        512,
        99.1,
        _coco(45.4, "apple/ml-mobileclip, results/mobileclip_s2.jsonl"),
        ("open_clip", "MobileCLIP-S2", {}),
    ),
    RecommendedModel(
        "hf-hub:apple/DFN2B-CLIP-ViT-B-16",
        "open_clip",
        "English",
        512,
        149.6,
        _coco(43.4),
        ("open_clip", "ViT-B-16", {}),
    ),
    RecommendedModel(
        "google/siglip-base-patch16-224",
        "siglip",
        "English",
        768,
        203.2,
        _coco(47.8),
        (
            "transformers",
            "siglip",
            {"vision_config": _vit(768, 12, 12, 3072, 16, 224), "text_config": _SIGLIP_B16_TEXT},
        ),
    ),
    RecommendedModel(
        "google/siglip2-base-patch16-256",
        "siglip",
        "multilingual",
        768,
        375.2,
        _coco(53.2, "SigLIP 2 paper (arXiv:2502.14786), Table 1"),
        (
            "transformers",
            "siglip",
            {
                "vision_config": _vit(768, 12, 12, 3072, 16, 256),
                "text_config": _text(768, 12, 12, 3072, 256000, 64),
            },
        ),
    ),
    RecommendedModel(
        "google/siglip-so400m-patch14-384",
        "siglip",
        "English",
        1152,
        878.0,
        _coco(54.2),
        (
            "transformers",
            "siglip",
            {
                "vision_config": _SIGLIP_SO400M,
                "text_config": _text(1152, 27, 16, 4304, 32000, 64),
            },
        ),
    ),
    RecommendedModel(
        "hf-hub:apple/DFN5B-CLIP-ViT-H-14-378",
        "open_clip",
        "English",
        1024,
        986.7,
        _coco(55.6),
        ("open_clip", "ViT-H-14-378-quickgelu", {}),
    ),
    RecommendedModel(
        "google/siglip-base-patch16-256-multilingual",
        "siglip",
        "multilingual",
        768,
        370.6,
        _coco(44.9),
        (
            "transformers",
            "siglip",
            {
                "vision_config": _vit(768, 12, 12, 3072, 16, 256),
                "text_config": _text(768, 12, 12, 3072, 250000, 64),
            },
        ),
    ),
    RecommendedModel(
        "hf-hub:laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k",
        "open_clip",
        "multilingual",
        512,
        366.1,
        _coco(37.8),
        ("open_clip", "xlm-roberta-base-ViT-B-32", {}),
    ),
    RecommendedModel(
        "hf-hub:visheratin/nllb-clip-base-siglip",
        "open_clip",
        "multilingual (201)",
        768,
        507.5,
        _coco(43.2),
        ("open_clip", "nllb-clip-base-siglip", {}),
    ),
    RecommendedModel(
        "BAAI/AltCLIP",
        "altclip",
        "English, Chinese",
        768,
        864.0,
        Quality(66.3, "Flickr30k; 63.7 Flickr30k-CN", "BAAI/AltCLIP model card"),
        (
            "transformers",
            "altclip",
            {
                "vision_config": _vit(1024, 24, 16, 4096, 14, 224),
                "text_config": {
                    **_text(1024, 24, 16, 4096, 250002, 514),
                    "project_dim": 768,
                },
                "projection_dim": 768,
            },
        ),
        download_gb=3.22,
    ),
    RecommendedModel(
        "OFA-Sys/chinese-clip-vit-base-patch16",
        "chinese_clip",
        "Chinese",
        512,
        188.3,
        Quality(62.2, "COCO-CN", "OFA-Sys/Chinese-CLIP, Results.md"),
        (
            "transformers",
            "chinese_clip",
            {
                "vision_config": _vit(768, 12, 12, 3072, 16, 224),
                "text_config": _text(768, 12, 12, 3072, 21128, 512),
                "projection_dim": 512,
            },
        ),
    ),
)


def recommended(model_id: str) -> RecommendedModel | None:
    """The row for ``model_id``, if it is one of the recommended models."""
    return next((row for row in RECOMMENDED if row.model_id == model_id), None)
