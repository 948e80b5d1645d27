"""`searchclip check`: is an index sound; `--repair` puts right what can be."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer

from searchclip._check import check_index
from searchclip._cli._common import IndexOption, JsonOption, echo_names
from searchclip._index_dir import default_index_dir


def check(
    index: IndexOption = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Recover a damaged catalog into a new one (keeping the old), remove vanished "
            "files, rebuild the vector file, delete broken exports and leftovers.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Check an index: the catalog, the vector file, the exports, leftovers, files on disk.

    Exit code 0: nothing is (or, with --repair, is left) wrong; 1: problems remain.
    """
    report = check_index(index if index is not None else default_index_dir(), repair=repair)
    if as_json:
        body = dataclasses.asdict(report) | {"ok": report.ok}
        echo_names([json.dumps(body, ensure_ascii=False)])
    else:
        typer.echo(f"index: {report.index_dir}", err=True)
        lines = [
            f"{problem.part}: {problem.message}" + (" [repaired]" if problem.repaired else "")
            for problem in report.problems
        ]
        echo_names([*lines, *(f"note: {note}" for note in report.notes)])
        typer.echo(_verdict(report), err=True)
    if not report.ok:
        raise typer.Exit(1)


def _verdict(report) -> str:
    if not report.problems:
        return f"index is sound: {report.files} images"
    if report.ok:
        return f"repaired {len(report.problems)} problems: {report.files} images"
    return (
        f"{sum(not p.repaired for p in report.problems)} problems found; "
        f"run `searchclip check --index {report.index_dir} --repair` to put them right"
    )
