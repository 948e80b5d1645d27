"""`searchclip duplicates`: groups of near-identical images, as a table, JSON or an HTML sheet."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from searchclip._cli._common import IndexOption, JsonOption, ProgressBar, echo_names, open_engine
from searchclip._duplicate_sheet import rule_summary
from searchclip._duplicates import GROUPINGS, DuplicateReport


def duplicates(
    index: IndexOption = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Embedding cosine from which images are copies [default: fitted per model].",
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        str, typer.Option("--by", help=f"What groups images: {', '.join(GROUPINGS)}.")
    ] = "both",
    refit: Annotated[
        bool, typer.Option("--refit", help="Fit the model's threshold again.")
    ] = False,
    as_json: JsonOption = False,
    sheet: Annotated[
        Path | None,
        typer.Option("--html", help="Also write an HTML contact sheet of the groups here."),
    ] = None,
) -> None:
    """Group near-identical images: bursts, re-saves, resized or lightly edited copies.

    Exact copies (same bytes) are marked; each group's first image is the suggested one to
    keep (largest, then oldest). Images indexed before perceptual hashes existed are hashed
    once and stored.
    """
    with open_engine(index, create=False) as engine, ProgressBar("hashing") as bar:
        report = engine.duplicates(threshold=threshold, by=by, refit=refit, on_progress=bar.update)
        if sheet is not None:
            written = engine.duplicate_sheet(report, sheet)
    for failure in report.hash_failures:
        echo_names([f"not hashed: {failure.path}: {failure.reason}"], err=True)
    typer.echo(_summary(report), err=True)
    if sheet is not None:
        echo_names([f"contact sheet: {written}"], err=True)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(report)))
        return
    for number, group in enumerate(report.groups, start=1):
        typer.echo(f"group {number}: {len(group.images)} images ({', '.join(group.linked_by)})")
        echo_names(_row(image, image is group.keep) for image in group.images)


def _summary(report: DuplicateReport) -> str:
    filled = (
        f"; hashed {report.hashes_filled} images indexed before" if report.hashes_filled else ""
    )
    return (
        f"{len(report.groups)} groups, {report.duplicates} copies among {report.images} images "
        f"({rule_summary(report)}){filled}; {report.elapsed_s:.1f} s"
    )


def _row(image, keep: bool) -> str:
    mark = "keep " if keep else "     "
    exact = " exact copy" if image.exact_copy else ""
    similarity = "" if keep else f"  cos {image.similarity:.3f}"
    return (
        f"  {mark}{image.width}x{image.height} {image.size:>9} B{similarity}{exact}  {image.path}"
    )
