"""Photo metadata filters: the conditions a search result must meet besides its score.

A filter narrows the set of images the vector search runs over (as tag filters do), so it is
exact: the k results are the k best of the images that pass, never fewer because the nearest
ones did not.

Times compare with :attr:`PhotoMetadata.taken_at`: a timezone-aware ``datetime`` as the
instant it is; a naive one as a wall-clock time in UTC, which is how a photo dated without a
UTC offset is stored, so "June 2023" means June 2023 as the cameras showed it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from searchclip._errors import InvalidArgumentError


@dataclass(frozen=True)
class PhotoFilter:
    """Metadata conditions, all of which a result meets; ``None`` (or empty): no condition.

    ``taken_from`` is inclusive, ``taken_until`` exclusive (datetimes, or POSIX seconds);
    ``camera`` and ``lens`` match case-insensitively anywhere in the camera's make or model,
    or the lens; ``folder`` keeps that folder and every folder under it; ``formats`` are
    Pillow's names (``"JPEG"``, ``"PNG"``...); ``has_location`` keeps only images with (True)
    or without (False) a GPS position; ``min_width``/``min_height`` are in pixels, upright.
    """

    taken_from: datetime | float | None = None
    taken_until: datetime | float | None = None
    camera: str | None = None
    lens: str | None = None
    folder: str | os.PathLike | None = None
    formats: tuple[str, ...] = ()
    has_location: bool | None = None
    min_width: int | None = None
    min_height: int | None = None

    def __post_init__(self) -> None:
        start, end = self.taken_from_seconds, self.taken_until_seconds
        if start is not None and end is not None and start >= end:
            raise InvalidArgumentError(
                "the time range is empty: taken_from must come before taken_until",
                value=(self.taken_from, self.taken_until),
            )
        for name in ("min_width", "min_height"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InvalidArgumentError(f"{name} must be at least 1, got {value!r}", value=value)
        for name in ("camera", "lens"):
            value = getattr(self, name)
            if value is not None and not str(value).strip():
                raise InvalidArgumentError(f"the {name} to match is empty", value=value)
        object.__setattr__(self, "formats", tuple(f.upper() for f in self.formats))

    @property
    def taken_from_seconds(self) -> float | None:
        return _seconds(self.taken_from)

    @property
    def taken_until_seconds(self) -> float | None:
        return _seconds(self.taken_until)

    @property
    def folder_path(self) -> str | None:
        """The folder as the catalog stores paths: absolute, no trailing slash."""
        if self.folder is None:
            return None
        return os.path.abspath(os.path.expanduser(os.fspath(self.folder)))


def _seconds(moment: datetime | float | None) -> float | None:
    if moment is None or isinstance(moment, int | float):
        return moment
    if moment.tzinfo is None:  # a wall-clock time: stored as if it were UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
