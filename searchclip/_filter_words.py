"""Filters given as words (the CLI's options, the HTTP API's parameters) into a PhotoFilter."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from searchclip._errors import InvalidArgumentError
from searchclip._filters import PhotoFilter

_DATE_FORMS = (
    "%Y",
    "%Y-%m",
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
)


def photo_filter(
    *,
    after: str | None = None,
    before: str | None = None,
    folders: list[Path] = (),
    path_glob: str | None = None,
    camera: str | None = None,
    lens: str | None = None,
    formats: list[str] = (),
    min_width: int | None = None,
    min_height: int | None = None,
    orientation: str | None = None,
    has_gps: bool | None = None,
    near: str | None = None,
    within_km: float | None = None,
    include_offline: bool = False,
    flag: str = "--",
) -> PhotoFilter | None:
    """The metadata filter the options ask for; None when they ask for none. Messages name
    each option as ``flag`` + its name: ``--after`` on the command line, ``after`` in a URL."""
    if within_km is not None and near is None:
        raise InvalidArgumentError(f"{flag}within needs {flag}near LAT,LON to measure from")
    if near is not None and within_km is None:
        raise InvalidArgumentError(f"{flag}near needs {flag}within KM: how far from that point")
    asked = (after, before, path_glob, camera, lens, min_width, min_height, orientation, near)
    if not folders and not formats and has_gps is None and all(v is None for v in asked):
        return PhotoFilter(include_offline=True) if include_offline else None
    return PhotoFilter(
        taken_from=period_start(after, f"{flag}after") if after else None,
        taken_until=period_start(before, f"{flag}before") if before else None,
        folders=tuple(folders),
        path_glob=path_glob,
        camera=camera,
        lens=lens,
        formats=tuple(format_name(name) for name in formats),
        min_width=min_width,
        min_height=min_height,
        orientation=orientation.lower() if orientation else None,
        has_location=has_gps,
        near=_point(near, f"{flag}near") if near is not None else None,
        within_km=within_km,
        include_offline=include_offline,
    )


def period_start(text: str, option: str) -> datetime:
    """The moment the year, month, day, minute or second ``text`` names begins."""
    for form in _DATE_FORMS:
        try:
            return datetime.strptime(text.strip(), form)
        except ValueError:
            continue
    raise InvalidArgumentError(
        f"{option} takes a date such as 2023, 2023-06, 2023-06-15 or 2023-06-15T14:30; "
        f"got {text!r}",
        value=text,
    )


def format_name(name: str) -> str:
    """Pillow's name of a format given by name or file extension: jpg, JPEG, .png, heic..."""
    from PIL import Image

    wanted = name.strip().lstrip(".").upper()
    extensions = Image.registered_extensions()  # ".jpg" -> "JPEG"
    known = set(extensions.values())
    by_suffix = {suffix.lstrip(".").upper(): fmt for suffix, fmt in extensions.items()}
    if wanted in known:
        return wanted
    if wanted in by_suffix:
        return by_suffix[wanted]
    common = "jpeg, png, webp, gif, bmp, tiff"
    raise InvalidArgumentError(
        f"unknown image format {name!r}: use a format or extension such as {common}", value=name
    )


def _point(text: str, option: str) -> tuple[float, float]:
    parts = text.replace(" ", "").split(",")
    try:
        latitude, longitude = (float(part) for part in parts)
    except ValueError:
        raise InvalidArgumentError(
            f"{option} takes LAT,LON in degrees, such as 48.8584,2.2945; got {text!r}", value=text
        ) from None
    return latitude, longitude
