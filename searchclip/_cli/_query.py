"""`searchclip query`: text, image or tag queries, in four output formats."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

import typer

from searchclip._cli._common import DeviceOption, IndexOption, echo_names, open_engine
from searchclip._errors import InvalidArgumentError
from searchclip._filters import PhotoFilter
from searchclip._results import PhotoMetadata, SearchHit


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
    taken_from: Annotated[
        str | None,
        typer.Option(
            "--from", help="Only photos taken from this date on: 2023, 2023-06, 2023-06-15[T14:30]."
        ),
    ] = None,
    taken_until: Annotated[
        str | None,
        typer.Option("--until", help="Only photos taken up to the end of this date (same forms)."),
    ] = None,
    camera: Annotated[
        str | None,
        typer.Option("--camera", help="Only photos whose camera make or model has this."),
    ] = None,
    lens: Annotated[
        str | None, typer.Option("--lens", help="Only photos whose lens has this.")
    ] = None,
    folder: Annotated[
        Path | None, typer.Option("--folder", help="Only images in this folder or under it.")
    ] = None,
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            help="Only images in this format: JPEG, PNG, ... (repeatable).",
            show_default=False,
        ),
    ] = None,
    gps: Annotated[
        bool | None,
        typer.Option(
            "--gps/--no-gps",
            help="Only photos with (or without) a GPS position.",
            show_default=False,
        ),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(
            "--sort", help="Order of the results: relevance, oldest or newest (by time taken)."
        ),
    ] = "relevance",
    device: DeviceOption = "auto",
) -> None:
    """Find the indexed images that best match TEXT (or --image), optionally filtered by tags
    and photo metadata (dates are the camera's wall-clock time, or UTC).

    With --tag and no TEXT or --image, list the images carrying the tag, best score first.
    """
    tags, not_tags = tag or [], no_tag or []
    where = photo_filter(taken_from, taken_until, camera, lens, folder, formats or [], gps)
    if text is not None and image is not None:
        raise InvalidArgumentError("give a query TEXT or --image PATH, not both")
    if text is None and image is None and not tags:
        raise InvalidArgumentError("give exactly one of a query TEXT, --image PATH or --tag LABEL")
    if sort not in ("relevance", "oldest", "newest"):
        raise InvalidArgumentError(f"--sort is relevance, oldest or newest; got {sort!r}")
    if as_json + paths_only + null > 1:
        raise InvalidArgumentError("choose one output format: --json, --paths or --null")
    with open_engine(index, create=False, device=device) as engine:
        if text is not None:
            hits = engine.search(text, k, tags=tags, not_tags=not_tags, where=where)
        elif image is not None:
            hits = engine.search_image(image, k, tags=tags, not_tags=not_tags, where=where)
        else:
            first, *others = tags
            hits = engine.images_with_tag(first, k, tags=others, not_tags=not_tags, where=where)
    if sort != "relevance":
        hits = hits.by_time_taken(newest_first=sort == "newest")
    if hits.missing:
        echo_names([missing_note(hits.missing)], err=True)
    if null:
        echo_names([hit.path for hit in hits], end="\0")
    else:
        echo_names(_format_hits(hits, as_json=as_json, paths_only=paths_only))


def photo_filter(taken_from, taken_until, camera, lens, folder, formats, gps) -> PhotoFilter | None:
    """The metadata filter the options ask for; None when they ask for none."""
    if not any((taken_from, taken_until, camera, lens, folder, formats, gps is not None)):
        return None
    return PhotoFilter(
        taken_from=_period(taken_from, "--from")[0] if taken_from else None,
        taken_until=_period(taken_until, "--until")[1] if taken_until else None,
        camera=camera,
        lens=lens,
        folder=folder,
        formats=tuple(formats),
        has_location=gps,
    )


def _period(text: str, option: str) -> tuple[datetime, datetime]:
    """The start and the (exclusive) end of the year, month, day or minute ``text`` names."""
    forms = (("%Y", "year"), ("%Y-%m", "month"), ("%Y-%m-%d", "day"))
    forms += (("%Y-%m-%dT%H:%M", "minute"), ("%Y-%m-%d %H:%M", "minute"))
    forms += (("%Y-%m-%dT%H:%M:%S", "second"), ("%Y-%m-%d %H:%M:%S", "second"))
    for form, unit in forms:
        try:
            start = datetime.strptime(text.strip(), form)
        except ValueError:
            continue
        if unit == "year":
            return start, start.replace(year=start.year + 1)
        if unit == "month":
            return start, (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        step = {"day": timedelta(days=1), "minute": timedelta(minutes=1)}.get(
            unit, timedelta(seconds=1)
        )
        return start, start + step
    raise InvalidArgumentError(
        f"{option} takes a date such as 2023, 2023-06, 2023-06-15 or 2023-06-15T14:30; "
        f"got {text!r}",
        value=text,
    )


def missing_note(missing: tuple[str, ...]) -> str:
    count = (
        f"{len(missing)} indexed files that no longer exist were"
        if len(missing) > 1
        else ("1 indexed file that no longer exists was")
    )
    return (
        f"note: {count} left out of the results ({missing[0]}"
        + (", ..." if len(missing) > 1 else "")
        + "); `searchclip index` on their folder, or `searchclip check --repair`, removes them"
    )


def hit_json(hit: SearchHit) -> dict:
    """One hit as JSON: the time taken in ISO 8601, with its UTC offset when the EXIF gave one
    (else the wall-clock time, as the camera showed it), and where it came from."""
    body = {"rank": hit.rank, "score": round(hit.score, 6), "path": hit.path}
    body |= {"width": hit.width, "height": hit.height, "size": hit.size}
    meta = hit.metadata
    if meta is not None:
        body |= dataclasses.asdict(meta) | {"taken_at": _iso_time(meta)}
    return body


def _iso_time(meta: PhotoMetadata) -> str | None:
    if meta.taken_at is None:
        return None
    if meta.taken_at_source == "mtime":  # a real instant: in UTC
        return datetime.fromtimestamp(meta.taken_at, UTC).isoformat(timespec="seconds")
    zone = (
        UTC
        if meta.utc_offset_minutes is None
        else timezone(timedelta(minutes=meta.utc_offset_minutes))
    )
    moment = datetime.fromtimestamp(meta.taken_at, zone).isoformat(timespec="seconds")
    return moment if meta.utc_offset_minutes is not None else moment.removesuffix("+00:00")


def _format_hits(hits: list[SearchHit], *, as_json: bool, paths_only: bool) -> list[str]:
    if paths_only:
        return [hit.path for hit in hits]
    if as_json:
        return [json.dumps(hit_json(hit)) for hit in hits]
    return ["rank  score   path"] + [f"{hit.rank:>4}  {hit.score:.4f}  {hit.path}" for hit in hits]
