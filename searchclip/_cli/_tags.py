"""`searchclip tag` and `searchclip tags`: store tags, show one image's tags."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from searchclip._cli._common import DeviceOption, IndexOption, open_engine


def tag(
    index: IndexOption = None,
    vocab: Annotated[
        str, typer.Option("--vocab", help="Built-in vocabulary (coco, imagenet) or a labels file.")
    ] = "coco",
    top_k: Annotated[int, typer.Option("--top-k", help="Tags per image (without thresholds).")] = 3,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", help="Every label scoring at least this (cosine).", show_default=False
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The run's figures as one JSON object.")
    ] = False,
    device: DeviceOption = "auto",
) -> None:
    """Tag every indexed image not yet tagged with a label vocabulary (zero-shot CLIP).

    Images get their --top-k best labels, or with --threshold every label that passes it, or,
    after `searchclip calibrate`, every label that passes its own calibrated threshold.
    """
    with open_engine(index, create=False, device=device) as engine:
        report = engine.tag(vocab, top_k=top_k, threshold=threshold)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(report)))
        return
    typer.echo(
        f"tagged {report.scored} images with {report.vocabulary} ({report.labels} labels, "
        f"{report.rule}): {report.tags} tags; {report.already} already tagged; "
        f"{report.elapsed_s:.1f} s"
    )


def tags(
    path: Annotated[Path, typer.Argument(help="An indexed image.")],
    index: IndexOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per tag: label, score, vocabulary.")
    ] = False,
) -> None:
    """Show the stored tags of one image, best score first."""
    with open_engine(index, create=False) as engine:
        found = engine.tags(path)
    for item in found:
        if as_json:
            typer.echo(json.dumps(dataclasses.asdict(item)))
        else:
            typer.echo(f"{item.score:.4f}  {item.label}  ({item.vocabulary})")
