"""`searchclip xmp`: write an already tagged index's tags into XMP sidecars (also the output of
`searchclip tag --write-xmp`)."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated

import typer

from searchclip._cli._common import IndexOption, open_engine

if TYPE_CHECKING:
    from searchclip._xmp_write import XmpReport

SidecarOption = Annotated[
    str,
    typer.Option(
        "--sidecar",
        help="Sidecar naming: darktable (IMG_1.jpg.xmp, also digiKam's) or lightroom (IMG_1.xmp).",
    ),
]
RootOption = Annotated[
    str, typer.Option("--root", help="Root of the lr:hierarchicalSubject entries (root|label).")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Write nothing; show what each sidecar would gain, lose.")
]


def xmp(
    index: IndexOption = None,
    vocab: Annotated[
        str, typer.Option("--vocab", help="The tagged vocabulary whose tags to write.")
    ] = "coco",
    sidecar: SidecarOption = "darktable",
    root: RootOption = "searchclip",
    dry_run: DryRunOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="The report as one JSON object.")] = False,
) -> None:
    """Write each image's stored tags into its XMP sidecar, for photo managers to read.

    Tags become dc:subject keywords and lr:hierarchicalSubject ROOT|label entries. An existing
    sidecar keeps every field and keyword searchclip did not write; searchclip's own keywords
    from an earlier run that are no longer tags are removed. The image files are never touched.
    """
    with open_engine(index, create=False) as engine:
        report = engine.write_xmp(vocab, sidecar=sidecar, root=root, dry_run=dry_run)
    show_report(report, as_json=as_json)


def show_report(report: XmpReport, *, as_json: bool = False, err: bool = False) -> None:
    """Per changed sidecar what it gains (+) and loses (-), then one summary line (stderr);
    skipped images one line each on stderr. ``err`` sends the sidecar lines to stderr too."""
    if as_json:
        typer.echo(json.dumps({**dataclasses.asdict(report), "written": report.written}))
        return
    for change in report.changes:
        words = [f"+{word}" for word in change.added] + [f"-{word}" for word in change.removed]
        new = " (new)" if change.created else ""
        typer.echo(f"{change.sidecar}{new}: {' '.join(words)}", err=err)
    for image, reason in report.skipped:
        typer.echo(f"skipped {image}: {reason}", err=True)
    verb = "would write" if report.dry_run else "wrote"
    typer.echo(
        f"{verb} {len(report.changes)} sidecars ({report.vocabulary}, {report.sidecar_style}); "
        f"{report.unchanged} already up to date; {len(report.skipped)} skipped",
        err=True,
    )
