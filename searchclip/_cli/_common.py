"""What the commands share: the one error handler, the common options, opening an index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from searchclip._engine import INDEX_ENV_VAR, SearchEngine, default_index_dir
from searchclip._errors import SearchclipError
from searchclip._results import IndexReport

FAILURES_SHOWN = 10


class ErrorHandlingGroup(TyperGroup):
    """Library errors become one line on stderr and exit code 1, here and nowhere else."""

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
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object instead of a table.")]


def open_engine(index: Path | None, **kwargs) -> SearchEngine:
    """The engine for ``--index`` (or the default index), saying on stderr which one it is."""
    engine = SearchEngine(index if index is not None else default_index_dir(), **kwargs)
    typer.echo(f"index: {engine.index_dir}", err=True)
    return engine


def index_summary(report: IndexReport, path: Path) -> str:
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
