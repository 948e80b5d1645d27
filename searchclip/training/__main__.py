"""Retrain the bundled shapes CLIP from scratch: ``python -m searchclip.training``.

Trains with a fixed seed, saves the model directory, measures it on held-out scenes of both
renderers through the real index, query and tagging code (``searchclip._quality``), prints the
figures and writes them, with the exact command, to TRAINING.md and metrics.json in the
directory.

Needs the ``clip`` extra: without torch or transformers it says so in one line and exits 1.
torch and the training modules are therefore imported inside the functions, after that check.
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

from searchclip._errors import MissingExtraError
from searchclip.training import _require_clip_extra

BUNDLED = Path(__file__).resolve().parents[1] / "models" / "shapes-clip"
DEFAULTS = {
    "seed": 0,
    "steps": 6000,
    "batch_size": 128,
    "pool_size": 48_000,
    "lr": 2e-3,
    "label_loss_weight": 10.0,
}


def main(argv: list[str] | None = None) -> int:
    try:
        _require_clip_extra()
    except MissingExtraError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    import torch

    from searchclip._quality import RENDERERS, measure_shapes_quality, measure_tagging_quality
    from searchclip.training.tiny_model import train_shapes_model

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
        label_loss_weight=args.label_loss_weight,
        workers=args.workers,
        progress=not args.quiet,
        **dict(args.arch),
    )
    evaluation = {
        "seed": args.eval_seed,
        "gallery_size": args.eval_scenes,
        "singles": args.eval_single,
    }
    tagging = {"seed": args.eval_seed + 10, "calibration_size": args.eval_tagging}
    tagging["test_size"] = args.eval_tagging
    recorded: dict = {"evaluation": evaluation, "tagging_evaluation": tagging}
    per_pair = {}
    with tempfile.TemporaryDirectory(prefix="searchclip-quality-") as workdir:
        for renderer in RENDERERS:
            quality = measure_shapes_quality(
                args.out, Path(workdir) / renderer, renderer=renderer, **evaluation
            )
            per_pair[renderer] = quality.per_pair_precision
            tags = measure_tagging_quality(
                args.out, Path(workdir) / f"tags-{renderer}", renderer=renderer, **tagging
            )
            recorded[_key("metrics", renderer)] = quality.as_dict()
            recorded[_key("tagging", renderer)] = tags.as_dict()
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    recorded["wall_seconds"] = summary["wall_seconds"]
    (Path(args.out) / "metrics.json").write_text(json.dumps(recorded, indent=2) + "\n")
    command = "python -m searchclip.training " + shlex.join(sys.argv[1:] if argv is None else argv)
    _write_notes(Path(args.out), command, summary, result.history, recorded, per_pair)
    print(json.dumps({**summary, **recorded}, indent=2))
    return 0


def _key(name: str, renderer: str) -> str:
    """metrics.json's keys: ``metrics`` / ``tagging`` for searchclip._scenes, with ``_other``
    for the other renderer."""
    return name if renderer == "scenes" else f"{name}_{renderer}"


def _parser() -> argparse.ArgumentParser:
    from searchclip.training.tiny_model import DEFAULT_ARCHITECTURE

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
    parser.add_argument(
        "--label-loss-weight",
        type=float,
        default=DEFAULTS["label_loss_weight"],
        help="weight of the auxiliary loss on the scenes' labels (0: contrastive only)",
    )
    parser.add_argument("--workers", type=int, default=2, help="processes rendering scenes")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--eval-seed", type=int, default=1000, help="seed of held-out scenes")
    parser.add_argument("--eval-scenes", type=int, default=500)
    parser.add_argument("--eval-single", type=int, default=200)
    parser.add_argument("--eval-tagging", type=int, default=500, help="scenes per tagging set")
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
    from searchclip.training.tiny_model import DEFAULT_ARCHITECTURE

    key, _, value = text.partition("=")
    if key not in DEFAULT_ARCHITECTURE or not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected KEY=INT with KEY one of {DEFAULT_ARCHITECTURE}")
    return key, int(value)


def _write_notes(
    out: Path, command: str, summary: dict, history, recorded: dict, per_pair: dict
) -> None:
    import torch

    from searchclip._quality import RENDERERS

    arch = summary["architecture"]
    held_out, tagging = recorded["evaluation"], recorded["tagging_evaluation"]
    lines = [
        "# shapes-clip: how this model was trained",
        "",
        "A small CLIP trained from scratch by searchclip on generated scenes",
        "(`searchclip._scenes`: 1-3 coloured shapes, 8 colours x 5 shapes, objects 25-50 % of the",
        "short side). Model",
        "type `searchclip-conv-clip` (`searchclip._encoders.conv_clip.ConvClipModel`): a ResNet",
        "image tower with a global max pool and CLIP's text transformer.",
        "",
        "## Command",
        "",
        "```",
        command,
        "```",
        "",
        f"Deterministic for a seed on one machine; wall time {summary['wall_seconds']:.0f} s "
        f"({summary['render_seconds']:.0f} s rendering {summary['pool_size']} scenes, "
        f"{summary['train_seconds']:.0f} s training, the rest measuring) on "
        f"{platform.machine()} with {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}.",
        "",
        "## Recipe",
        "",
        "CLIP's contrastive loss over each batch's images against their captions, the 40",
        "colour-shape prompts (in the search template or a tagging template) and colour-swapped",
        "hard negatives, plus an auxiliary loss: a linear head on the image embeddings predicts",
        "the scene's labels (40 pairs, 8 colours, 5 shapes; multi-label binary cross-entropy),",
        f"weighted {summary['label_loss_weight']}. The auxiliary signal is what makes the image",
        "tower learn shape within the budget (docs/shapes-model-experiments.md); the head is",
        "dropped after training.",
        "",
        "## Settings",
        "",
        f"- seed {summary['seed']}, {summary['steps']} steps, batch size {summary['batch_size']}"
        f" images, AdamW lr {summary['lr']} (warm-up then cosine), weight decay "
        f"{summary['weight_decay']}, a pool of {summary['pool_size']} scenes seen with random",
        "  quarter turns and flips",
        f"- vision: {arch['image_size']} px, ResNet stem then {arch['vision_stages']} stages of "
        f"{arch['vision_depth']} basic block(s), {arch['vision_width']} channels doubling per "
        f"stage, global max pool; text: width {arch['text_width']}, {arch['text_layers']} "
        f"layers, {arch['heads']} heads, {arch['max_text_length']} positions, vocabulary "
        f"{summary['vocab_size']}; embedding {arch['projection_dim']}",
        f"- {summary['parameters']:,} parameters, stored as float16; directory "
        f"{summary['directory_bytes'] / 2**20:.2f} MiB",
        f"- loss {summary['first_loss']} at the start, {summary['final_loss']} at the end "
        f"(mean of the last 50 steps); logit scale {summary['logit_scale']}",
        "",
        "## Quality on held-out scenes",
        "",
        f"Galleries of {held_out['gallery_size']} scenes (seed {held_out['seed']}) and "
        f"{held_out['singles']} single-object query scenes (seed {held_out['seed'] + 1}) from "
        "each renderer, indexed and searched with `SearchEngine` "
        "(`searchclip._quality.measure_shapes_quality`); tagging on "
        f"{tagging['test_size']} test scenes, calibrated on {tagging['calibration_size']} others "
        "(`measure_tagging_quality`). `scenes` is the training renderer, `other` "
        "`searchclip._scenes_other`, which draws the same vocabulary its own way.",
        "",
        "| measure | scenes | other |",
        "|---|---:|---:|",
    ]
    rows = [
        ("text→image precision@10, mean of the 40 pairs", "metrics", "precision@10"),
        ("worst pair's precision@10", "metrics", "worst_precision@10"),
        ("zero-shot top-1 over the 40 pairs", "metrics", "zero_shot_top1"),
        ("image→image: top-5 sharing the query's pair", "metrics", "image_to_image@5"),
        ("tagging mAP (40 pairs)", "tagging", "mAP"),
        ("macro-F1, top-3 rule", "tagging", "macro_f1_uncalibrated"),
        ("macro-F1 after calibrate", "tagging", "macro_f1_calibrated"),
    ]
    for label, group, name in rows:
        values = [recorded[_key(group, renderer)][name] for renderer in RENDERERS]
        lines.append(f"| {label} | " + " | ".join(f"{v}" for v in values) + " |")
    worst = " | ".join(recorded[_key("metrics", r)]["worst_pair"] for r in RENDERERS)
    lines.append(f"| worst pair | {worst} |")
    for renderer in RENDERERS:
        lines += [
            "",
            f"Per pair precision@10 ({renderer}): "
            + ", ".join(f"{pair} {value:.1f}" for pair, value in per_pair[renderer].items()),
        ]
    lines += [
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
