"""The ``searchclip`` command: a thin layer over :class:`searchclip.SearchEngine`.

Each command parses its arguments, opens the engine, makes one library call and formats the
result. Results go to stdout; which index was used, progress and summaries go to stderr.
Library errors become a one-line message and exit code 1 in exactly one place: ``_Group.invoke``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from searchclip.encoders import DEFAULT_MODEL
from searchclip.engine import INDEX_ENV_VAR, SearchEngine, default_index_dir
from searchclip.errors import InvalidArgumentError, SearchclipError
from searchclip.results import IndexReport, SearchHit

FAILURES_SHOWN = 10


class _Group(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SearchclipError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo(
                "interrupted: work committed so far is kept; run the same command to resume",
                err=True,
            )
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Group,
    help="Semantic image search: index photo folders with CLIP, search them by text or image.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts say "[default: ...]"; rich would take it for markup
)

IndexOption = Annotated[
    Path | None,
    typer.Option(
        "--index",
        help=f"Index directory [default: ${INDEX_ENV_VAR} or ./indexes/default].",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="Where the model runs: auto (CUDA if present), cpu, cuda.")
]


def _open(index: Path | None, **kwargs) -> SearchEngine:
    engine = SearchEngine(index if index is not None else default_index_dir(), **kwargs)
    typer.echo(f"index: {engine.index_dir}", err=True)
    return engine


@app.command()
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
) -> None:
    """Add the images under PATH to the index, or bring it up to date (incremental)."""
    if not os.path.exists(path):
        raise InvalidArgumentError(f"{path} does not exist")
    with _open(
        index, model=model, device=device, batch_size=batch_size, precision=precision
    ) as engine:
        report = engine.index(path, progress=True, workers=workers)
    if report.precision_choice:
        typer.echo(f"precision: {report.precision_choice}", err=True)
    typer.echo(_summary(report, path))
    for failure in report.failures[:FAILURES_SHOWN]:
        typer.echo(f"  skipped {failure.path}: {failure.reason}", err=True)
    if report.failed > FAILURES_SHOWN:
        typer.echo(
            f"  ... and {report.failed - FAILURES_SHOWN} more (see `searchclip info --failures`)",
            err=True,
        )


def _summary(report: IndexReport, path: Path) -> str:
    counts = (
        f"{report.new} new, {report.updated} updated, {report.moved} moved, "
        f"{report.unchanged} unchanged, {report.removed} removed, {report.failed} failed"
    )
    work = (
        f"encoded {report.encoded} images"
        if report.encoded
        else "nothing to encode: every image was already indexed"
    )
    return f"indexed {path}: {counts}; {work} in {report.elapsed_s:.1f} s"


@app.command()
def query(
    text: Annotated[str | None, typer.Argument(help="What to look for, in words.")] = None,
    index: IndexOption = None,
    k: Annotated[int, typer.Option("-k", "--top-k", help="Number of results.")] = 10,
    image: Annotated[
        Path | None, typer.Option("--image", help="Find images similar to this one instead.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line: rank, score, path.")
    ] = False,
    paths_only: Annotated[bool, typer.Option("--paths", help="Only paths, one per line.")] = False,
    null: Annotated[
        bool,
        typer.Option(
            "-0",
            "--null",
            help="Only paths, each ended by a NUL character (for xargs -0: safe for any name).",
        ),
    ] = False,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag", help="Only images with this stored tag (repeatable).", show_default=False
        ),
    ] = None,
    no_tag: Annotated[
        list[str] | None,
        typer.Option(
            "--no-tag", help="No images with this stored tag (repeatable).", show_default=False
        ),
    ] = None,
    device: DeviceOption = "auto",
) -> None:
    """Find the indexed images that best match TEXT (or --image), optionally filtered by tags.

    With --tag and no TEXT or --image, list the images carrying the tag, best score first.
    """
    tags, not_tags = tag or [], no_tag or []
    if text is not None and image is not None:
        raise InvalidArgumentError("give a query TEXT or --image PATH, not both")
    if text is None and image is None and not tags:
        raise InvalidArgumentError("give exactly one of a query TEXT, --image PATH or --tag LABEL")
    if as_json + paths_only + null > 1:
        raise InvalidArgumentError("choose one output format: --json, --paths or --null")
    with _open(index, create=False, device=device) as engine:
        if text is not None:
            hits = engine.search(text, k, tags=tags, not_tags=not_tags)
        elif image is not None:
            hits = engine.search_image(image, k, tags=tags, not_tags=not_tags)
        else:
            first, *others = tags
            hits = engine.images_with_tag(first, k, tags=others, not_tags=not_tags)
    if null:
        typer.echo("".join(f"{hit.path}\0" for hit in hits), nl=False)
        return
    for line in _format_hits(hits, as_json=as_json, paths_only=paths_only):
        typer.echo(line)


def _format_hits(hits: list[SearchHit], *, as_json: bool, paths_only: bool) -> list[str]:
    if paths_only:
        return [hit.path for hit in hits]
    if as_json:
        return [
            json.dumps({"rank": hit.rank, "score": round(hit.score, 6), "path": hit.path})
            for hit in hits
        ]
    return ["rank  score   path"] + [f"{hit.rank:>4}  {hit.score:.4f}  {hit.path}" for hit in hits]


@app.command()
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
    with _open(index, create=False, device=device) as engine:
        report = engine.tag(vocab, top_k=top_k, threshold=threshold)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(report)))
        return
    typer.echo(
        f"tagged {report.scored} images with {report.vocabulary} ({report.labels} labels, "
        f"{report.rule}): {report.tags} tags; {report.already} already tagged; "
        f"{report.elapsed_s:.1f} s"
    )


@app.command()
def tags(
    path: Annotated[Path, typer.Argument(help="An indexed image.")],
    index: IndexOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per tag: label, score, vocabulary.")
    ] = False,
) -> None:
    """Show the stored tags of one image, best score first."""
    with _open(index, create=False) as engine:
        found = engine.tags(path)
    for item in found:
        if as_json:
            typer.echo(json.dumps(dataclasses.asdict(item)))
        else:
            typer.echo(f"{item.score:.4f}  {item.label}  ({item.vocabulary})")


@app.command()
def info(
    index: IndexOption = None,
    failures: Annotated[
        bool, typer.Option("--failures", help="List the files that could not be indexed.")
    ] = False,
) -> None:
    """Show what an index holds: its model, image count and failures."""
    with _open(index, create=False) as engine:
        summary = engine.info()
        failed = engine.failures() if failures else []
    # the precision goes on the model line: scripts read the first three lines as the counts
    typer.echo(
        f"model:    {summary.model} ({summary.dim} dimensions; images in {summary.precision})"
    )
    typer.echo(f"images:   {summary.files}")
    typer.echo(f"failures: {summary.failures}")
    for vocabulary in summary.vocabularies:
        calibrated = (
            f", {vocabulary.calibrated_labels} calibrated" if vocabulary.calibrated_labels else ""
        )
        typer.echo(
            f"tags:     {vocabulary.name}: {vocabulary.labels} labels, "
            f"{vocabulary.tagged_images} images tagged{calibrated}"
        )
    for failure in failed:
        typer.echo(f"  {failure.path}: {failure.reason}")


@app.command()
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
    from searchclip.demo import run_demo

    if count < 10:
        raise InvalidArgumentError(f"--count must be at least 10, got {count}")
    result = run_demo(directory, index_dir=index, count=count)
    typer.echo(f"index: {result.index_dir}", err=True)
    typer.echo(f"generated {count} scenes of coloured shapes in {result.scenes_dir}")
    typer.echo(_summary(result.report, result.scenes_dir))
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


def main() -> None:
    app()


# The calibration and evaluation commands live in their own module; importing it attaches
# them to ``app``.
from searchclip import cli_eval  # noqa: E402, F401
