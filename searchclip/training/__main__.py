"""Retrain the bundled shapes CLIP from scratch: ``python -m searchclip.training``.

Trains with a fixed seed, saves the model directory, measures it on held-out scenes through
the real index and query code (``searchclip.quality``), prints the figures and writes them,
with the exact command, to TRAINING.md and metrics.json in the directory.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from searchclip.quality import ShapesQuality, measure_shapes_quality
from searchclip.training.tiny_model import DEFAULT_ARCHITECTURE, train_shapes_model

BUNDLED = Path(__file__).resolve().parents[1] / "models" / "shapes-clip"
DEFAULTS = {"seed": 0, "steps": 800, "batch_size": 128, "pool_size": 24_000, "lr": 2e-3}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    result, summary = train_shapes_model(
        args.out,
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        pool_size=args.pool_size,
        lr=args.lr,
        workers=args.workers,
        progress=not args.quiet,
        **dict(args.arch),
    )
    evaluation = {
        "seed": args.eval_seed,
        "gallery_size": args.eval_scenes,
        "singles": args.eval_single,
    }
    with tempfile.TemporaryDirectory(prefix="searchclip-quality-") as workdir:
        quality = measure_shapes_quality(args.out, workdir, **evaluation)
    metrics = quality.as_dict()
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    recorded = {"evaluation": evaluation, "metrics": metrics}
    (Path(args.out) / "metrics.json").write_text(json.dumps(recorded, indent=2) + "\n")
    command = "python -m searchclip.training " + shlex.join(sys.argv[1:] if argv is None else argv)
    _write_notes(Path(args.out), command, summary, result.history, quality, evaluation)
    print(json.dumps({**summary, "metrics": metrics}, indent=2))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m searchclip.training",
        description="Train the bundled shapes CLIP from scratch and report its search quality.",
    )
    parser.add_argument("--out", type=Path, default=BUNDLED, help="model directory to write")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--pool-size", type=int, default=DEFAULTS["pool_size"])
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    parser.add_argument("--workers", type=int, default=2, help="processes rendering scenes")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--eval-seed", type=int, default=1000, help="seed of held-out scenes")
    parser.add_argument("--eval-scenes", type=int, default=500)
    parser.add_argument("--eval-single", type=int, default=200)
    parser.add_argument(
        "--arch",
        type=_architecture_item,
        action="append",
        default=[],
        metavar="KEY=INT",
        help=f"override the architecture; keys: {', '.join(DEFAULT_ARCHITECTURE)}",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _architecture_item(text: str) -> tuple[str, int]:
    key, _, value = text.partition("=")
    if key not in DEFAULT_ARCHITECTURE or not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected KEY=INT with KEY one of {DEFAULT_ARCHITECTURE}")
    return key, int(value)


def _write_notes(
    out: Path, command: str, summary: dict, history, quality: ShapesQuality, held_out: dict
) -> None:
    arch = summary["architecture"]
    metrics = quality.as_dict()
    lines = [
        "# shapes-clip: how this model was trained",
        "",
        "A tiny CLIP trained from scratch by searchclip on generated scenes (`searchclip.scenes`:",
        "1-3 coloured shapes, 8 colours x 5 shapes) with the contrastive objective of CLIP.",
        "",
        "## Command",
        "",
        "```",
        command,
        "```",
        "",
        f"Deterministic for a seed on one machine; wall time {summary['wall_seconds']:.0f} s "
        f"({summary['render_seconds']:.0f} s rendering {summary['pool_size']} scenes, "
        f"{summary['train_seconds']:.0f} s training) on {platform.machine()} with "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        "",
        "## Settings",
        "",
        f"- seed {summary['seed']}, {summary['steps']} steps, batch size {summary['batch_size']}"
        f" images, AdamW lr {summary['lr']} (warm-up then cosine), weight decay "
        f"{summary['weight_decay']}",
        f"- vision: {arch['image_size']} px, patch {arch['patch_size']}, width "
        f"{arch['vision_width']}, {arch['vision_layers']} layers; text: width "
        f"{arch['text_width']}, {arch['text_layers']} layers, {arch['max_text_length']} "
        f"positions, vocabulary {summary['vocab_size']}; {arch['heads']} heads; "
        f"embedding {arch['projection_dim']}",
        f"- {summary['parameters']:,} parameters, stored as float16; directory "
        f"{summary['directory_bytes'] / 2**20:.2f} MiB",
        f"- loss {summary['first_loss']} at the start, {summary['final_loss']} at the end "
        f"(mean of the last 50 steps); logit scale {summary['logit_scale']}",
        "",
        "## Quality on held-out scenes",
        "",
        f"Gallery `write_scenes(dir, {held_out['gallery_size']}, {held_out['seed']})`, "
        f"single-object queries `write_scenes(dir, {held_out['singles']}, "
        f"{held_out['seed'] + 1}, n_objects=1)`, indexed and searched with `SearchEngine` "
        "(`searchclip.quality.measure_shapes_quality`):",
        "",
        f"- text→image precision@10, mean over the 40 pairs: {metrics['precision@10']}",
        f"- worst pair: {metrics['worst_pair']} at {metrics['worst_precision@10']}",
        f"- zero-shot top-1 over the 40 pairs: {metrics['zero_shot_top1']}",
        f"- image→image, share of top-5 holding the query's pair: {metrics['image_to_image@5']}",
        "",
        "Per pair precision@10: "
        + ", ".join(f"{pair} {value:.1f}" for pair, value in quality.per_pair_precision.items()),
        "",
        "## Loss during training",
        "",
        "| step | loss | lr | scale |",
        "|---:|---:|---:|---:|",
        *(f"| {h['step']} | {h['loss']} | {h['lr']:.2e} | {h['scale']} |" for h in history),
        "",
    ]
    (out / "TRAINING.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
