"""`searchclip index` and `searchclip demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from searchclip._cli._common import (
    FAILURES_SHOWN,
    DeviceOption,
    IndexOption,
    ProgressBar,
    echo_names,
    index_summary,
    open_engine,
)
from searchclip._encoders import DEFAULT_MODEL
from searchclip._errors import InvalidArgumentError


def index(
    path: Annotated[Path, typer.Argument(help="Folder (searched recursively) or image file.")],
    index: IndexOption = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help=f"Hugging Face id or local directory of a CLIP model; only when creating "
            f"an index [default: {DEFAULT_MODEL}].",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per model call.")] = 32,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Decoding threads [default: up to 4].")
    ] = None,
    device: DeviceOption = "auto",
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="Image encoding precision: fp32, bf16, int8, or auto (the fastest here of those "
            "whose vectors of the first images agree with fp32's, cosine >= 0.999); fixed when "
            "the index gets its first images [default: the index's own, auto for a new index].",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Index PATH even when it is the whole file system (/).")
    ] = False,
    thumbnails: Annotated[
        bool,
        typer.Option(
            "--thumbnails",
            help="Also make the thumbnails `searchclip serve` shows (else on first view).",
        ),
    ] = False,
    forget_offline: Annotated[
        bool,
        typer.Option(
            "--forget-offline",
            help="Remove the images of missing or empty folders (deleted, not unmounted) "
            "instead of keeping them offline.",
        ),
    ] = False,
) -> None:
    """Add the images under PATH to the index, or bring it up to date (incremental).

    Folder symlinks and hidden folders inside PATH are not followed. Images in a folder that
    is missing or empty (an unmounted drive) are kept offline, vectors and tags intact, and
    come back when a run finds them again, where they were or elsewhere.
    """
    with (
        open_engine(
            index, model=model, device=device, batch_size=batch_size, precision=precision
        ) as engine,
        ProgressBar("indexing") as bar,
    ):
        options = {"force": force, "forget_offline": forget_offline}
        report = engine.index(path, workers=workers, on_progress=bar.update, **options)
        made = engine.make_thumbnails(workers=workers or 2) if thumbnails else None
    if report.precision_choice:
        typer.echo(f"precision: {report.precision_choice}", err=True)
    typer.echo(index_summary(report, path))
    shown = report.failures[:FAILURES_SHOWN]
    echo_names((f"  skipped {failure.path}: {failure.reason}" for failure in shown), err=True)
    if report.failed > FAILURES_SHOWN:
        typer.echo(
            f"  ... and {report.failed - FAILURES_SHOWN} more (see `searchclip info --failures`)",
            err=True,
        )
    if made is not None:
        typer.echo(
            f"thumbnails: {made.made} made, {made.existing} already there, {made.failed} failed"
        )
        echo_names((f"  no thumbnail for {path}: {why}" for path, why in made.failures), err=True)


def demo(
    directory: Annotated[
        Path, typer.Argument(help="Where to write the scenes (and the index).")
    ] = Path("searchclip-demo"),
    index: Annotated[
        Path | None,
        typer.Option(
            "--index", help="Index directory [default: DIRECTORY/index].", show_default=False
        ),
    ] = None,
    count: Annotated[int, typer.Option("--count", help="Scenes to generate.")] = 300,
) -> None:
    """Offline first run: generate shape scenes, index them with the bundled tiny CLIP, search."""
    from searchclip._demo import run_demo

    if count < 10:
        raise InvalidArgumentError(f"--count must be at least 10, got {count}")
    result = run_demo(directory, index_dir=index, count=count)
    typer.echo(f"index: {result.index_dir}", err=True)
    typer.echo(f"generated {count} scenes of coloured shapes in {result.scenes_dir}")
    typer.echo(index_summary(result.report, result.scenes_dir))
    for query in result.queries:
        typer.echo(f"\nquery {query.query!r}, looking for a {query.wanted}:")
        marks = query.correct(result.labels)
        for hit, caption, correct in zip(query.hits, query.captions, marks, strict=True):
            mark = "✓" if correct else "✗"
            name = Path(hit.path).name
            typer.echo(f"  {hit.rank}  {hit.score:.3f}  {mark}  {name}  {caption}")
    typer.echo(
        "\nThe bundled model knows 8 colours and 5 shapes; try "
        f'`searchclip query "a green square" --index {result.index_dir}`.'
    )
