"""`searchclip models`: the recommended models, with their speed on this machine."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from searchclip._cli._common import JsonOption
from searchclip._errors import InvalidArgumentError
from searchclip._model_speeds import ModelSpeed, host_name, load_speeds, save_speed
from searchclip._model_table import RECOMMENDED, RecommendedModel


def models(
    measure: Annotated[
        bool,
        typer.Option(
            "--measure",
            help="Time the models on this machine now (random weights of each architecture, "
            "built offline; a few minutes for the base-sized ones) and keep the figures.",
        ),
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--model", help="Only this model (repeat for more); with --measure, time only it."
        ),
    ] = None,
    language: Annotated[
        str | None,
        typer.Option("--language", help="Only models for this language, e.g. Chinese."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recommended models: embedding size, download size, speed measured on this machine
    (images/s at int8 and fp32, one text query in ms) and the zero-shot text-to-image
    recall@1 their authors published."""
    rows = _selected(only, language)
    speeds = load_speeds()
    if measure:
        from searchclip.training.model_speed import measure as time_model

        for row in rows:
            typer.echo(f"timing {row.model_id} ...", err=True)
            speeds[row.model_id] = time_model(row)
            save_speed(speeds[row.model_id])
    if as_json:
        typer.echo(json.dumps([_as_dict(row, speeds.get(row.model_id)) for row in rows]))
        return
    typer.echo("\n".join(table_lines(rows, speeds)))


def _selected(only: list[str] | None, language: str | None) -> list[RecommendedModel]:
    rows = list(RECOMMENDED)
    if only:
        known = {row.model_id for row in rows}
        unknown = [model for model in only if model not in known]
        if unknown:
            raise InvalidArgumentError(
                f"{unknown[0]} is not one of the recommended models (see `searchclip models`)",
                value=unknown[0],
            )
        rows = [row for row in rows if row.model_id in only]
    if language:
        wanted = language.strip().lower()
        rows = [
            row
            for row in rows
            if wanted in row.languages.lower() or row.languages.startswith("multilingual")
        ]
    return rows


def table_lines(rows: list[RecommendedModel], speeds: dict[str, ModelSpeed]) -> list[str]:
    """The table as text lines, with the sources of the quality figures under it."""
    sources: list[str] = []
    header = ("model", "family", "languages", "dim", "download", "int8 img/s", "fp32 img/s")
    header += ("query ms", "text-to-image R@1 (published)")
    table = [header]
    for row in rows:
        speed = speeds.get(row.model_id)
        if row.quality.source not in sources:
            sources.append(row.quality.source)
        note = sources.index(row.quality.source) + 1
        table.append(
            (
                row.model_id,
                row.family,
                row.languages,
                str(row.dim),
                f"{row.download_size_gb:.2f} GB",
                *_speed_cells(speed),
                f"{row.quality.value:.1f} {row.quality.benchmark} [{note}]",
            )
        )
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    lines.append("")
    lines += [f"[{number}] {source}" for number, source in enumerate(sources, 1)]
    listed = {row.model_id for row in rows}
    measured = [speed for speed in speeds.values() if speed.model_id in listed]
    if measured:
        lines.append(
            f"speeds: {host_name()}, random weights of each architecture, 16-image batches "
            "(median of 3), one query through the torch-free text export where the family has one"
        )
    lines += [f"{speed.model_id}: not timed: {speed.error}" for speed in measured if speed.error]
    lines += [
        f"{speed.model_id}: no int8: {speed.int8_note}"
        for speed in measured
        if not speed.error and speed.int8_note
    ]
    if len(measured) < len(rows):
        lines.append("models without speeds: time them with `searchclip models --measure`")
    return lines


def _speed_cells(speed: ModelSpeed | None) -> tuple[str, str, str]:
    if speed is None or speed.error:
        return ("-", "-", "-")
    int8 = f"{speed.int8_images_per_s:.1f}" if speed.int8_images_per_s else "-"
    fp32 = f"{speed.fp32_images_per_s:.1f}" if speed.fp32_images_per_s else "-"
    text = f"{speed.text_ms:.1f}" + (" (torch)" if speed.text_path == "torch" else "")
    return (int8, fp32, text if speed.text_ms is not None else "-")


def _as_dict(row: RecommendedModel, speed: ModelSpeed | None) -> dict:
    found = asdict(row)
    found.pop("build")
    found["download_size_gb"] = round(row.download_size_gb, 3)
    found["speed"] = None if speed is None else asdict(speed)
    return found
