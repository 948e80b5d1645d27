"""`searchclip info`: what an index holds."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Annotated

import typer

from searchclip._cli._common import IndexOption, JsonOption, echo_names, open_engine


def info(
    index: IndexOption = None,
    failures: Annotated[
        bool, typer.Option("--failures", help="List the files that could not be indexed.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show what an index holds: its model, image count and failures, and a model switch in
    progress (--migrate) or models kept (--keep-old)."""
    with open_engine(index, create=False) as engine:
        summary = engine.info()
        failed = engine.failures() if failures else []
    if as_json:
        found = dataclasses.asdict(summary)
        if failures:
            found["failed_files"] = [dataclasses.asdict(failure) for failure in failed]
        echo_names([json.dumps(found, ensure_ascii=False)])
        return
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
    if summary.migration is not None:
        _echo_migration(summary.migration)
    for kept in summary.kept_models:
        typer.echo(
            f"kept:     {kept.model} ({kept.dim} dimensions): {kept.vectors} images' vectors "
            "(switching back encodes only what changed)"
        )
    echo_names(f"  {failure.path}: {failure.reason}" for failure in failed)


def _echo_migration(migration) -> None:
    precision = f"; images in {migration.precision}" if migration.precision else ""
    typer.echo(
        f"migrating: {migration.model} ({migration.dim} dimensions{precision}): "
        f"{migration.encoded}/{migration.total} images re-embedded"
    )
    echo_names(
        f"  waiting for {folder.path}: {folder.images} images offline (bring it online, or "
        "--migrate --forget-offline to switch without them)"
        for folder in migration.waiting_for
    )


def _date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")
