"""`searchclip info`: what an index holds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from searchclip._cli._common import IndexOption, echo_names, open_engine


def info(
    index: IndexOption = None,
    failures: Annotated[
        bool, typer.Option("--failures", help="List the files that could not be indexed.")
    ] = False,
) -> None:
    """Show what an index holds: its model, image count and failures."""
    with open_engine(index, create=False) as engine:
        summary = engine.info()
        failed = engine.failures() if failures else []
    # the precision goes on the model line: scripts read the first three lines as the counts
    typer.echo(
        f"model:    {summary.model} ({summary.dim} dimensions; images in {summary.precision})"
    )
    typer.echo(f"images:   {summary.files}")
    typer.echo(f"failures: {summary.failures}")
    read, dated, located, cameras = summary.metadata
    typer.echo(
        f"metadata: {read} images read ({dated} dated by EXIF, {located} with GPS, "
        f"{cameras} cameras)"
        + (
            f"; {summary.files - read} not yet: the next index run reads them"
            if read < summary.files
            else ""
        )
    )
    for vocabulary in summary.vocabularies:
        calibrated = (
            f", {vocabulary.calibrated_labels} calibrated" if vocabulary.calibrated_labels else ""
        )
        typer.echo(
            f"tags:     {vocabulary.name}: {vocabulary.labels} labels, "
            f"{vocabulary.tagged_images} images tagged{calibrated}"
        )
    echo_names(
        f"offline:  {folder.path}: {folder.images} images since {_date(folder.since)} "
        "(missing or empty: an unmounted drive?)"
        for folder in summary.offline
    )
    echo_names(f"  {failure.path}: {failure.reason}" for failure in failed)


def _date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")
