"""A photo's metadata, read from its EXIF and header, for the metadata filters (issue 14).

:func:`read_photo_metadata` runs on every image the indexer opens, so it reads only what Pillow
parsed from the file's header (``img.getexif()`` and ``img.format``) and never decodes a pixel.
A photo's EXIF is whatever its camera, phone or editing tool wrote, often wrong: every field is
read on its own, and one that is missing, broken or implausible is ``None`` while the others are
still read. Nothing here raises.

When the photo was taken, :attr:`PhotoMetadata.taken_at`, is a POSIX timestamp:

* with a UTC offset in the EXIF (``OffsetTimeOriginal`` and kin, EXIF 2.31), the real instant;
* without one (most cameras), the wall-clock time, taken as UTC: ``2023:06:15 14:30:05`` becomes
  the timestamp of 2023-06-15 14:30:05 UTC, whatever zone the camera was in, so that sorting and
  date ranges on wall-clock dates work without knowing the zone;
* without a usable EXIF date, the file's mtime (a real instant).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from PIL import ExifTags, Image

from searchclip._results import PhotoMetadata

MAX_TEXT_CHARS: int = 200

_DATE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?")
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")
_MAX_OFFSET_MINUTES = 14 * 60  # UTC offsets in use run from -12:00 to +14:00
# Each EXIF date, best first, with the offset tag that belongs to it.
_DATE_TAGS = (
    (ExifTags.Base.DateTimeOriginal, ExifTags.Base.OffsetTimeOriginal),
    (ExifTags.Base.DateTimeDigitized, ExifTags.Base.OffsetTimeDigitized),
    (ExifTags.Base.DateTime, ExifTags.Base.OffsetTime),
)
_OFFSET_TAGS = tuple(offset_tag for _, offset_tag in _DATE_TAGS)


def read_photo_metadata(img: Image.Image, mtime_ns: int | None) -> PhotoMetadata:
    """Read the metadata of ``img``, opened by ``Image.open`` and not loaded; never raises.

    ``mtime_ns`` is the file's mtime, the time taken when the EXIF gives no usable date.
    """
    return _metadata(*_exif_directories(img), getattr(img, "format", None), mtime_ns)


def metadata_from_exif(
    exif: Image.Exif | None, format_name: str | None, mtime_ns: int | None
) -> PhotoMetadata:
    """:func:`read_photo_metadata` for EXIF read apart from Pillow's opening of the file (a
    RAW's TIFF structure); ``format_name`` is the file's format ("DNG", "CR2"...)."""
    if exif is None:
        return _metadata({}, {}, {}, format_name, mtime_ns)
    gps = _sub_directory(exif, ExifTags.IFD.GPSInfo)
    return _metadata(exif, _sub_directory(exif, ExifTags.IFD.Exif), gps, format_name, mtime_ns)


def _metadata(
    ifd0: Any,
    exif_ifd: dict[int, Any],
    gps_ifd: dict[int, Any],
    format_name: str | None,
    mtime_ns: int | None,
) -> PhotoMetadata:
    taken_at, offset = _exif_taken_at(ifd0, exif_ifd)
    source = "exif"
    if taken_at is None:
        offset = None
        taken_at, source = _mtime_seconds(mtime_ns), "mtime"
        if taken_at is None:
            source = ""
    latitude, longitude = _position(gps_ifd)
    return PhotoMetadata(
        taken_at=taken_at,
        taken_at_source=source,
        utc_offset_minutes=offset,
        camera_make=_text(_tag(ifd0, ExifTags.Base.Make)),
        camera_model=_text(_tag(ifd0, ExifTags.Base.Model)),
        lens=_text(_tag(exif_ifd, ExifTags.Base.LensModel)),
        latitude=latitude,
        longitude=longitude,
        format=_text(format_name),
    )


def _exif_directories(img: Image.Image) -> tuple[Any, dict[int, Any], dict[int, Any]]:
    """IFD0, the Exif IFD and the GPS IFD, each empty where missing or unreadable."""
    # PNG's getexif() decodes the whole image when no eXIf chunk came before the pixel data, to
    # look for one after it; that costs a full decode per PNG, so such late chunks go unread.
    if img.format == "PNG" and not {"exif", "Raw profile type exif"} & img.info.keys():
        return {}, {}, {}
    try:
        exif = img.getexif()
    except Exception:
        return {}, {}, {}
    return exif, _sub_directory(exif, ExifTags.IFD.Exif), _sub_directory(exif, ExifTags.IFD.GPSInfo)


def _sub_directory(exif: Image.Exif, ifd: ExifTags.IFD) -> dict[int, Any]:
    try:
        return exif.get_ifd(ifd)
    except Exception:  # a pointer past the end, a loop, a truncated entry...
        return {}


def _tag(directory: Any, tag: int) -> Any:
    try:
        return directory.get(tag)
    except Exception:  # Pillow decodes IFD0 values lazily, on first access
        return None


def _text(value: Any) -> str | None:
    """A tag's value as a clean string: C-string semantics, trimmed, capped; None when empty."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", errors="replace")
    elif isinstance(value, str):
        text = _undo_latin1(value)
    else:
        return None
    text = text.strip(" \t\r\n\x00").split("\x00", 1)[0].strip()
    return text[:MAX_TEXT_CHARS] or None


def _undo_latin1(text: str) -> str:
    # Pillow decodes EXIF ASCII strings as Latin-1, but tools write UTF-8 there ("Sony α7 IV");
    # text that was valid UTF-8 is given back as such, true Latin-1 text is kept as it is.
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def _exif_taken_at(ifd0: Any, exif_ifd: dict[int, Any]) -> tuple[float | None, int | None]:
    """The first usable EXIF date as POSIX seconds, and the UTC offset applied to it."""
    for date_tag, own_offset_tag in _DATE_TAGS:
        directory = ifd0 if date_tag == ExifTags.Base.DateTime else exif_ifd
        local = _parse_date(_text(_tag(directory, date_tag)))
        if local is None:
            continue
        # A camera that writes any offset writes the same zone for all three dates.
        offset_tags = (own_offset_tag, *(t for t in _OFFSET_TAGS if t != own_offset_tag))
        offsets = (_parse_offset(_text(_tag(exif_ifd, t))) for t in offset_tags)
        offset = next((minutes for minutes in offsets if minutes is not None), None)
        zone = UTC if offset is None else timezone(timedelta(minutes=offset))
        try:
            return local.replace(tzinfo=zone).timestamp(), offset
        except (OverflowError, ValueError, OSError):  # year 1 minus an offset, and the like
            continue
    return None, None


def _parse_date(text: str | None) -> datetime | None:
    match = _DATE.fullmatch(text) if text else None
    if match is None:
        return None
    try:
        return datetime(*(int(part) for part in match.groups()))  # naive: a wall-clock time
    except ValueError:  # "0000:00:00 00:00:00", month 13, ...
        return None


def _parse_offset(text: str | None) -> int | None:
    match = _OFFSET.fullmatch(text) if text else None
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    total = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or total > _MAX_OFFSET_MINUTES:
        return None
    return -total if sign == "-" else total


def _mtime_seconds(mtime_ns: int | None) -> float | None:
    if not isinstance(mtime_ns, int) or isinstance(mtime_ns, bool):
        return None
    return mtime_ns / 1e9


def _position(gps_ifd: dict[int, Any]) -> tuple[float | None, float | None]:
    """Latitude and longitude, both or neither: half a position cannot be placed anywhere."""
    latitude = _coordinate(gps_ifd, ExifTags.GPS.GPSLatitude, ExifTags.GPS.GPSLatitudeRef, "S", 90)
    longitude = _coordinate(
        gps_ifd, ExifTags.GPS.GPSLongitude, ExifTags.GPS.GPSLongitudeRef, "W", 180
    )
    if latitude is None or longitude is None:
        return None, None
    return latitude, longitude


def _coordinate(
    gps_ifd: dict[int, Any], value_tag: int, ref_tag: int, negative_ref: str, limit: float
) -> float | None:
    """Degrees from (degrees, minutes, seconds) rationals, negative for the S or W ref."""
    ref = _text(_tag(gps_ifd, ref_tag))
    if ref is not None and ref.upper() not in ("NS" if negative_ref == "S" else "EW"):
        return None
    value = _tag(gps_ifd, value_tag)
    if value is None or isinstance(value, str | bytes):
        return None
    if not isinstance(value, tuple | list):
        value = (value,)  # a lone rational: decimal degrees
    try:
        parts = [float(part) for part in value]
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    # A rational with a zero denominator reads as NaN; minutes and seconds are under 60.
    if not 1 <= len(parts) <= 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        return None
    if any(p >= 60 for p in parts[1:]):
        return None
    degrees = sum(p / 60**i for i, p in enumerate(parts))
    if degrees > limit:
        return None
    return -degrees if ref is not None and ref.upper() == negative_ref else degrees
