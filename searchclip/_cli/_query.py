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
    with open_engine(index, create=False, device=device) as engine:
        if text is not None:
            hits = engine.search(text, k, tags=tags, not_tags=not_tags)
        elif image is not None:
            hits = engine.search_image(image, k, tags=tags, not_tags=not_tags)
        else:
            first, *others = tags
            hits = engine.images_with_tag(first, k, tags=others, not_tags=not_tags)
    if hits.missing:
        echo_names([missing_note(hits.missing)], err=True)
    if null:
        echo_names([hit.path for hit in hits], end="\0")
    else:
        echo_names(_format_hits(hits, as_json=as_json, paths_only=paths_only))


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
