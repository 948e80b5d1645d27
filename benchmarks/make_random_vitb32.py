"""Write a full-size ViT-B/32 CLIP with random weights, for speed figures without a download.

The architecture is ``CLIPConfig()``'s defaults (ViT-B/32, 512-d projection), the weights are
random (seed 0) and saved as safetensors; the tokenizer and image processor are the real CLIP
ones, loaded from ``../shared/models/clip-vit-base-patch32-tokenizer`` and saved alongside.
The vectors mean nothing; the timings match the real model's.

    python benchmarks/make_random_vitb32.py [OUT_DIR] [--tokenizer-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import searchclip._encoders  # noqa: F401  (its torchvision import hook, before transformers)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "out" / "vit-b32-random"
DEFAULT_TOKENIZER = REPO.parent / "shared" / "models" / "clip-vit-base-patch32-tokenizer"


def build(out: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """Write the random model, the real tokenizer and the real image processor into ``out``."""
    import torch
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessorPil, CLIPModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    processor = CLIPImageProcessorPil.from_pretrained(tokenizer_dir, local_files_only=True)
    config = CLIPConfig()
    if config.text_config.vocab_size != len(tokenizer):
        raise SystemExit(f"{tokenizer_dir} holds no CLIP tokenizer ({len(tokenizer)} tokens)")
    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    CLIPModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--tokenizer-dir", type=Path, default=DEFAULT_TOKENIZER)
    args = parser.parse_args(argv)
    out = args.out.expanduser().resolve()
    inside_repo = out == REPO or REPO in out.parents
    if inside_repo and not out.is_relative_to(REPO / "benchmarks" / "out"):
        parser.error(f"refusing to write into the repository outside benchmarks/out/: {out}")
    if not args.tokenizer_dir.is_dir():
        parser.error(f"no tokenizer directory at {args.tokenizer_dir}")
    print(f"wrote {build(out, args.tokenizer_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
