"""What the commands share: the one error handler, the common options, opening an index."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from searchclip._encoders import looks_like_path
from searchclip._engine import SearchEngine
from searchclip._errors import (
    CatalogDamagedError,
    EmptyIndexError,
    IndexNotFoundError,
    MigrationPendingError,
    ModelLoadError,
    ModelMismatchError,
    PrecisionMismatchError,
    SearchclipError,
    WholeFileSystemError,
)
from searchclip._images import IMAGE_SUFFIXES
from searchclip._index_dir import INDEX_ENV_VAR, default_index_dir
from searchclip._results import IndexProgress, IndexReport

FAILURES_SHOWN = 10


DEBUG_ENV_VAR = "SEARCHCLIP_DEBUG"


class ErrorHandlingGroup(TyperGroup):
    """Every failure becomes one line on stderr and exit code 1, here and nowhere else:
    searchclip's own errors with the CLI's hint, an OSError with its path and cause, anything
    unexpected with its type. ``--debug`` (or ``SEARCHCLIP_DEBUG=1``) shows the traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise  # usage errors and deliberate exits: Typer reports them (usage: exit 2)
        except KeyboardInterrupt:
            typer.echo(
                "interrupted: work committed so far is kept; run the same command to resume",
                err=True,
            )
            raise typer.Exit(130) from None
        except Exception as exc:
            if ctx.meta.get("debug") or os.environ.get(DEBUG_ENV_VAR, "") not in ("", "0"):
                raise
            line = " ".join(error_line(exc).splitlines())  # one line, whatever a message holds
            typer.echo(f"error: {line}", err=True)
            raise typer.Exit(1) from None


def error_line(exc: Exception) -> str:
    """The one line a failure is reported in."""
    if isinstance(exc, SearchclipError):
        hint = cli_hint(exc)
        return f"{exc}" + (f"; {hint}" if hint else "")
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        cause = exc.strerror or str(exc) or type(exc).__name__
        return f"{where}{cause}"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (
        f"unexpected {type(exc).__name__}"
        + (f": {first}" if first else "")
        + f" (run with --debug or {DEBUG_ENV_VAR}=1 for the traceback, and please report it)"
    )


def cli_hint(exc: SearchclipError) -> str:
    """What to type next, for the errors where the command line has the answer."""
    if isinstance(exc, IndexNotFoundError):
        return f"create one with `searchclip index PATH --index {exc.index_dir}`"
    if isinstance(exc, EmptyIndexError):
        return f"index some with `searchclip index PATH --index {exc.index_dir}`"
    if isinstance(exc, CatalogDamagedError):
        return (
            f"run `searchclip check --index {exc.index_dir} --repair` to recover what it holds "
            "into a new catalog (the damaged file is kept)"
        )
    if isinstance(exc, MigrationPendingError):
        return (
            f"finish it with `--migrate --model {exc.pending}`, or abandon it with "
            "`searchclip index PATH --abandon-migration`"
        )
    if isinstance(exc, WholeFileSystemError):
        return "pass --force to index it anyway"
    if isinstance(exc, PrecisionMismatchError):
        return "omit --precision to use the index's own, or choose another --index for the new one"
    if isinstance(exc, ModelLoadError) and exc.model and not _is_local(exc.model):
        return "a local copy of a model is used with --model PATH"
    if isinstance(exc, ModelMismatchError):
        return (
            "omit --model to use the index's own model, or choose another --index for the new one"
        )
    return ""


def _is_local(model: str) -> bool:
    return looks_like_path(model) or Path(model).expanduser().exists()


def echo_names(lines: Iterable[str], *, end: str = "\n", err: bool = False) -> None:
    """Write lines that hold file names: byte for byte to a pipe or a file, since a name may
    hold any character but "/" and NUL (click's echo would strip what looks like an ANSI escape
    from them), and with control characters escaped visibly (``\\x1b``) on a terminal, where
    they would act instead of being seen."""
    stream = sys.stderr if err else sys.stdout
    visible = stream.isatty()
    text = "".join((_escape_controls(line) if visible else line) + end for line in lines)
    stream.flush()
    stream.buffer.write(text.encode("utf-8", errors="surrogateescape"))
    stream.buffer.flush()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escape_controls(line: str) -> str:
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", line)


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
    seen = report.changed_anything or report.unchanged or report.failed or report.ignored
    if not (seen or report.offline):
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        return f"indexed {path}: no image files found (searchclip reads {suffixes})"
    if report.ignored:
        why = ", ".join(f"{count} {reason}" for reason, count in report.ignored)
        counts += f", {sum(count for _, count in report.ignored)} ignored ({why})"
    if report.encoded:
        work = f"encoded {report.encoded} images"
    elif report.unchanged or report.changed_anything:
        work = "nothing to encode: every image was already indexed"
    else:
        work = "nothing to encode"
    if report.metadata_read:
        work += f"; photo metadata read for {report.metadata_read} indexed images, none re-encoded"
    if report.back_online:
        counts += f", {report.back_online} back online"
    return f"indexed {path}: {counts}; {work} in {report.elapsed_s:.1f} s{offline_note(report)}"


def offline_note(report: IndexReport) -> str:
    """The summary's last words on offline images: how many, and which folders are missing."""
    if not report.offline:
        return ""
    roots = report.offline_roots
    where = ", ".join(roots[:3]) + (f" and {len(roots) - 3} more" if len(roots) > 3 else "")
    return (
        f"; {report.offline} images kept offline: {where} missing or empty (an unmounted "
        "drive?); they return when it does (--forget-offline removes them)"
    )


class ProgressBar:
    """A tqdm bar on stderr fed by the library's progress events; drawn only once there is
    something to read (an index run over unchanged files shows none)."""

    def __init__(self, description: str) -> None:
        self._description = description
        self._bar = None

    def update(self, progress: IndexProgress) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=progress.total,
                unit="img",
                desc=self._description,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self._bar.update(progress.done - self._bar.n)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._bar is not None:
            self._bar.close()
