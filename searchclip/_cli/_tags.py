"""`searchclip tag` and `searchclip tags`: store tags, show one image's tags."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from searchclip._cli._common import DeviceOption, IndexOption, open_engine
from searchclip._cli._xmp import DryRunOption, RootOption, SidecarOption, show_report


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
    write_xmp: Annotated[
        bool, typer.Option("--write-xmp", help="Then write the tags into XMP sidecars.")
    ] = False,
    sidecar: SidecarOption = "darktable",
    root: RootOption = "searchclip",
    dry_run: DryRunOption = False,
) -> None:
    """Tag every indexed image not yet tagged with a label vocabulary (zero-shot CLIP).

    Images get their --top-k best labels, or with --threshold every label that passes it, or,
    after `searchclip calibrate`, every label that passes its own calibrated threshold.
    --write-xmp then writes them into XMP sidecars, as `searchclip xmp` does.
    """
    if not write_xmp and (dry_run or sidecar != "darktable" or root != "searchclip"):
        raise typer.BadParameter("--sidecar, --root and --dry-run go with --write-xmp")
    with open_engine(index, create=False, device=device) as engine:
        report = engine.tag(vocab, top_k=top_k, threshold=threshold)
        if write_xmp:
            written = engine.write_xmp(vocab, sidecar=sidecar, root=root, dry_run=dry_run)
    if write_xmp:
        show_report(written, err=as_json)  # stdout stays one JSON object with --json
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
    """Show the stored tags of one image, best score first, then the keywords people gave it
    (read from its XMP sidecar and embedded XMP/IPTC; not with --json)."""
    with open_engine(index, create=False) as engine:
        found = engine.tags(path)
        keywords = [] if as_json else engine.keywords(path)
    for item in found:
        if as_json:
            typer.echo(json.dumps(dataclasses.asdict(item)))
        else:
            typer.echo(f"{item.score:.4f}  {item.label}  ({item.vocabulary})")
    for keyword in keywords:
        typer.echo(f"keyword  {keyword.keyword}  ({keyword.source})")
