"""`searchclip query`: combined text and image queries, filters, a cut-off and an order."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from searchclip._cli._common import DeviceOption, IndexOption, echo_names, open_engine
from searchclip._cli._query_output import cutoff_note, format_hits, missing_note
from searchclip._errors import InvalidArgumentError
from searchclip._filter_words import photo_filter
from searchclip._query import Query
from searchclip._results import SORT_ORDERS

_FILTERS = "Filters"
_TERMS = "Query terms"


def _many(flag: str, help_text: str, panel: str = _TERMS, metavar: str | None = None):
    return typer.Option(
        flag, help=help_text, show_default=False, rich_help_panel=panel, metavar=metavar
    )


def query(
    text: Annotated[
        str | None,
        typer.Argument(
            help="What to look for, in words; '2:sunset' weighs a term twice.", metavar="[TEXT]"
        ),
    ] = None,
    index: IndexOption = None,
    not_texts: Annotated[
        list[str] | None,
        _many("--not", "Push images like this text down (repeatable).", metavar="TEXT"),
    ] = None,
    like: Annotated[
        list[Path] | None,
        typer.Option(
            "--like",
            "--image",
            help="Find images similar to this one (repeatable).",
            show_default=False,
            metavar="PATH",
            rich_help_panel=_TERMS,
        ),
    ] = None,
    not_like: Annotated[
        list[Path] | None,
        _many("--not-like", "Push images like this one down (repeatable).", metavar="PATH"),
    ] = None,
    k: Annotated[
        int | None,
        typer.Option(
            "-k",
            "--top-k",
            help="Number of results [default: 10; every match with --min-score or --relevant].",
            show_default=False,
            metavar="N",
        ),
    ] = None,
    min_score: Annotated[
        float | None,
        typer.Option(
            "--min-score", help="Every image scoring at least S (-k: at most k).", metavar="S"
        ),
    ] = None,
    relevant: Annotated[
        bool,
        typer.Option("--relevant", help="Every image that stands out for the query (see docs)."),
    ] = False,
    sort: Annotated[
        str,
        typer.Option("--sort", help="score, date (oldest first), -date or path.", metavar="ORDER"),
    ] = "score",
    tag: Annotated[
        list[str] | None,
        _many("--tag", "Only images with this stored tag (repeatable).", _FILTERS, "LABEL"),
    ] = None,
    no_tag: Annotated[
        list[str] | None,
        _many("--no-tag", "No images with this stored tag (repeatable).", _FILTERS, "LABEL"),
    ] = None,
    after: Annotated[
        str | None,
        _many("--after", "Taken on or after: 2023, 2023-06, 2023-06-15[T14:30].", _FILTERS, "DATE"),
    ] = None,
    before: Annotated[
        str | None, _many("--before", "Taken before (same forms).", _FILTERS, "DATE")
    ] = None,
    folders: Annotated[
        list[Path] | None, _many("--in", "Under this folder (repeatable).", _FILTERS, "FOLDER")
    ] = None,
    path_glob: Annotated[
        str | None,
        _many("--path", "Path matches this glob: '*/2023/*.jpg'.", _FILTERS, "GLOB"),
    ] = None,
    camera: Annotated[
        str | None, _many("--camera", "Camera make or model contains this.", _FILTERS, "TEXT")
    ] = None,
    lens: Annotated[str | None, _many("--lens", "Lens contains this.", _FILTERS, "TEXT")] = None,
    formats: Annotated[
        list[str] | None,
        _many("--format", "jpeg, png, webp, ... (repeatable).", _FILTERS, "FORMAT"),
    ] = None,
    min_width: Annotated[
        int | None, _many("--min-width", "At least this wide.", _FILTERS, "PIXELS")
    ] = None,
    min_height: Annotated[
        int | None, _many("--min-height", "At least this high.", _FILTERS, "PIXELS")
    ] = None,
    orientation: Annotated[
        str | None, _many("--orientation", "landscape, portrait or square.", _FILTERS, "SHAPE")
    ] = None,
    has_gps: Annotated[
        bool | None, _many("--has-gps/--no-gps", "With (or without) a GPS position.", _FILTERS)
    ] = None,
    near: Annotated[
        str | None, _many("--near", "Taken near LAT,LON (with --within).", _FILTERS, "LAT,LON")
    ] = None,
    within: Annotated[
        float | None, _many("--within", "Kilometres from --near.", _FILTERS, "KM")
    ] = None,
    include_offline: Annotated[
        bool,
        _many("--include-offline", "Also images of drives missing at the last index.", _FILTERS),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line, with photo metadata.")
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
    device: DeviceOption = "auto",
) -> None:
    """Find the indexed images that best match TEXT and the other terms, filtered by tags and
    photo metadata (dates are the camera's wall-clock time, or UTC).

    With --tag and no query terms, list the images carrying the tag, best score first.

    \b
    Examples:
      searchclip query "dog on beach" --not people
      searchclip query 2:sunset --like ./ref.jpg --not-like ./blurry.jpg
      searchclip query "beach" --relevant --sort -date
      searchclip query "mountains" --after 2023-06 --before 2023-09 --camera iphone
      searchclip query "bridge" --near 48.8584,2.2945 --within 5 --json
    """
    tags, not_tags = tag or [], no_tag or []
    where = photo_filter(
        after=after,
        before=before,
        folders=folders or [],
        path_glob=path_glob,
        camera=camera,
        lens=lens,
        formats=formats or [],
        min_width=min_width,
        min_height=min_height,
        orientation=orientation,
        has_gps=has_gps,
        near=near,
        within_km=within,
        include_offline=include_offline,
    )
    has_terms = text is not None or bool(like) or bool(not_texts) or bool(not_like)
    if not has_terms and not tags:
        raise InvalidArgumentError("give a query TEXT, --like PATH or --tag LABEL")
    if sort not in SORT_ORDERS:
        raise InvalidArgumentError(f"--sort is one of {', '.join(SORT_ORDERS)}; got {sort!r}")
    if as_json + paths_only + null > 1:
        raise InvalidArgumentError("choose one output format: --json, --paths or --null")
    if not has_terms and (min_score is not None or relevant):
        raise InvalidArgumentError("--min-score and --relevant need a query TEXT or --like PATH")
    cap = k if k is not None or min_score is not None or relevant else 10
    negatives = {"not_texts": not_texts or (), "not_like": not_like or ()}
    terms = Query.parse(text, like=like or (), **negatives) if has_terms else None
    with open_engine(index, create=False, device=device) as engine:
        if terms is not None:
            hits = engine.search(
                terms,
                cap,
                tags=tags,
                not_tags=not_tags,
                where=where,
                min_score=min_score,
                relevant=relevant,
            )
        else:
            first, *others = tags
            hits = engine.images_with_tag(first, cap, tags=others, not_tags=not_tags, where=where)
    hits = hits.sorted_by(sort)
    if hits.missing:
        echo_names([missing_note(hits.missing)], err=True)
    if hits.cutoff is not None:
        echo_names([cutoff_note(hits.cutoff, len(hits))], err=True)
    if null:
        echo_names([hit.path for hit in hits], end="\0")
    else:
        echo_names(format_hits(hits, as_json=as_json, paths_only=paths_only))
