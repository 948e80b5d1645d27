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
from searchclip._results import MigrationReport


def index(
    path: Annotated[Path, typer.Argument(help="Folder (searched recursively) or image file.")],
    index: IndexOption = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help=f"Hugging Face id or local directory of a CLIP model; only when creating "
            f"an index, or with --migrate [default: {DEFAULT_MODEL}].",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per model call.")] = 32,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Decoding threads [default: up to 4].")
    ] = None,
    device: DeviceOption = "auto",
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Read, decode and encode on a Ray cluster (searchclip[ray]): auto (the "
            "cluster `ray start` runs here, or $RAY_ADDRESS), local (a Ray instance for this "
            "run), or HOST:PORT. Every node must see PATH at the same path.",
            show_default=False,
        ),
    ] = None,
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
            "instead of keeping them offline; with --migrate, switch without the offline "
            "images not yet encoded with the new model.",
        ),
    ] = False,
    migrate: Annotated[
        bool,
        typer.Option(
            "--migrate",
            help="Then re-encode the whole index with --model while queries keep using the "
            "current model, and switch to it once every image has its vector (resumable; "
            "--precision is the new model's).",
        ),
    ] = False,
    keep_old: Annotated[
        bool,
        typer.Option(
            "--keep-old",
            help="With --migrate: keep the old model's vectors and tags, so switching back "
            "needs no encoding.",
        ),
    ] = False,
    abandon_migration: Annotated[
        bool,
        typer.Option(
            "--abandon-migration",
            help="First forget a pending --migrate and delete what it encoded "
            "(with --keep-old: keep that, to resume later).",
        ),
    ] = False,
) -> None:
    """Add the images under PATH to the index, or bring it up to date (incremental).

    Folder symlinks and hidden folders inside PATH are not followed. Images in a folder that
    is missing or empty (an unmounted drive) are kept offline, vectors and tags intact, and
    come back when a run finds them again, where they were or elsewhere.

    With --migrate --model NEW, PATH is brought up to date first, then the whole index is
    re-encoded with NEW; every query keeps using the current model until the switch.
    """
    _check_migration_options(model, migrate, keep_old, abandon_migration)
    migrating = migrate or abandon_migration
    opening = {"model": None if migrating else model, "precision": None if migrate else precision}
    if migrating:
        opening["create"] = False
    migration = None
    with open_engine(index, device=device, batch_size=batch_size, **opening) as engine:
        if abandon_migration:
            abandoned = engine.abandon_migration(keep_vectors=keep_old)
            typer.echo(_abandoned_line(abandoned, keep_old), err=True)
        with ProgressBar("indexing") as bar:
            options = {"force": force, "forget_offline": forget_offline and not migrate}
            report = engine.index(
                path, workers=workers, on_progress=bar.update, ray_address=ray, **options
            )
        if migrate:
            with ProgressBar("re-encoding") as bar:
                migration = engine.migrate(
                    model,
                    precision=precision,
                    keep_old=keep_old,
                    forget_offline=forget_offline,
                    workers=workers,
                    on_progress=bar.update,
                )
        made = engine.make_thumbnails(workers=workers or 2) if thumbnails else None
    if report.precision_choice:
        typer.echo(f"precision: {report.precision_choice}", err=True)
    if report.vector_index:
        typer.echo(report.vector_index, err=True)
    typer.echo(index_summary(report, path))
    shown = report.failures[:FAILURES_SHOWN]
    echo_names((f"  skipped {failure.path}: {failure.reason}" for failure in shown), err=True)
    if report.failed > FAILURES_SHOWN:
        typer.echo(
            f"  ... and {report.failed - FAILURES_SHOWN} more (see `searchclip info --failures`)",
            err=True,
        )
    if migration is not None:
        echo_migration(migration)
    if made is not None:
        typer.echo(
            f"thumbnails: {made.made} made, {made.existing} already there, {made.failed} failed"
        )
        echo_names((f"  no thumbnail for {path}: {why}" for path, why in made.failures), err=True)


def _check_migration_options(
    model: str | None, migrate: bool, keep_old: bool, abandon: bool
) -> None:
    if migrate and not model:
        raise InvalidArgumentError("--migrate needs the new model: add --model NEW")
    if migrate and abandon:
        raise InvalidArgumentError("--migrate and --abandon-migration: choose one")
    if keep_old and not (migrate or abandon):
        raise InvalidArgumentError("--keep-old goes with --migrate or --abandon-migration")


def echo_migration(report: MigrationReport) -> None:
    """What a migration run did, and what its switch waits for if it did not switch."""
    if report.precision_choice:
        typer.echo(f"precision of {report.model}: {report.precision_choice}", err=True)
    work = (
        f"{report.encoded} images encoded, {report.copied} reused by content, "
        f"{report.already} done before, in {report.elapsed_s:.1f} s"
    )
    if report.switched:
        if report.kept_old:
            old = f"{report.previous}'s vectors kept (switch back with --migrate --model it)"
        else:
            old = f"{report.previous}'s vectors dropped"
        typer.echo(f"switched to {report.model}: {work}; {old}")
        if report.dropped_vocabularies:
            names = ", ".join(report.dropped_vocabularies)
            typer.echo(
                f"  tags of {names} were the old model's and went with it: run "
                f"`searchclip tag --vocab {report.dropped_vocabularies[0]}` again",
                err=True,
            )
        if report.forgotten:
            typer.echo(
                f"  {report.forgotten} offline images forgotten: they are indexed afresh "
                "when their folders are back",
                err=True,
            )
        return
    typer.echo(
        f"re-encoding with {report.model}: {work}; not switched yet, still {report.previous}"
    )
    shown = report.unreadable[:FAILURES_SHOWN]
    echo_names((f"  not encoded {f.path}: {f.reason}" for f in shown), err=True)
    if len(report.unreadable) > FAILURES_SHOWN:
        typer.echo(f"  ... and {len(report.unreadable) - FAILURES_SHOWN} more", err=True)
    echo_names(
        (
            f"  waiting for {folder.path}: {folder.images} images offline (bring it online "
            "and run again, or --forget-offline to switch without them)"
            for folder in report.waiting_for
        ),
        err=True,
    )


def _abandoned_line(abandoned: str | None, kept: bool) -> str:
    if abandoned is None:
        return "no migration was pending"
    what = "its vectors kept (a later --migrate resumes)" if kept else "its vectors deleted"
    return f"abandoned the migration to {abandoned}: {what}"


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
