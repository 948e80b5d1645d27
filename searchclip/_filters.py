"""Photo metadata filters: the conditions a search result must meet besides its score.

A filter narrows the set of images the vector search runs over (as tag filters do), so it is
exact: the k results are the k best of the images that pass, never fewer because the nearest
ones did not.

Times compare with :attr:`PhotoMetadata.taken_at`: a timezone-aware ``datetime`` as the
instant it is; a naive one as a wall-clock time in UTC, which is how a photo dated without a
UTC offset is stored, so "June 2023" means June 2023 as the cameras showed it.

Distances are great-circle distances on a sphere of the Earth's mean radius (haversine).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from searchclip._errors import InvalidArgumentError

ORIENTATIONS = ("landscape", "portrait", "square")
EARTH_RADIUS_KM = 6371.0088  # the mean radius (IUGG)


@dataclass(frozen=True)
class PhotoFilter:
    """Metadata conditions, all of which a result meets; ``None`` (or empty): no condition.

    ``taken_from`` is inclusive, ``taken_until`` exclusive (datetimes, or POSIX seconds);
    ``camera`` and ``lens`` match case-insensitively anywhere in the camera's make or model,
    or the lens; ``folder`` keeps that folder and every folder under it, ``folders`` those
    under any of several (``folder`` is simply one more); ``formats`` are Pillow's names
    (``"JPEG"``, ``"PNG"``...); ``has_location`` keeps only images with (True) or without
    (False) a GPS position; ``min_width``/``min_height`` are in pixels, upright.

    ``path_glob`` keeps the files whose absolute path matches a shell glob, case-sensitively
    (:func:`fnmatch.fnmatchcase`: ``*`` also matches ``/``, so ``"/photos/*.jpg"`` takes
    subfolders too); a glob that starts with neither ``/`` nor ``*`` matches anywhere below
    the root: ``"2023/*.jpg"`` means ``"*/2023/*.jpg"``. ``orientation`` is ``"landscape"``
    (wider than high), ``"portrait"`` or ``"square"``, upright. ``near`` (latitude, longitude
    in degrees) with ``within_km`` keeps the images taken at most that far from the point.

    ``include_offline`` also finds images whose drive was missing at the last index run
    (``IndexReport.offline``), which every search leaves out otherwise; their files cannot be
    opened until the drive is back.
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
    folders: tuple[str | os.PathLike, ...] = ()
    path_glob: str | None = None
    orientation: str | None = None
    near: tuple[float, float] | None = None
    within_km: float | None = None
    include_offline: bool = False

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
        folders = self.folders
        if isinstance(folders, str | os.PathLike):  # one folder, not its characters
            folders = (folders,)
        object.__setattr__(self, "folders", tuple(folders))
        if self.path_glob is not None and (not self.path_glob or "\0" in self.path_glob):
            raise InvalidArgumentError(
                f"path_glob must be a non-empty glob without NUL, got {self.path_glob!r}",
                value=self.path_glob,
            )
        if self.orientation is not None and self.orientation not in ORIENTATIONS:
            raise InvalidArgumentError(
                f"orientation is landscape, portrait or square, got {self.orientation!r}",
                value=self.orientation,
            )
        self._check_place()

    def _check_place(self) -> None:
        if self.near is None and self.within_km is None:
            return
        if self.near is None:
            raise InvalidArgumentError(
                f"within_km needs near: the point to measure {self.within_km!r} km from",
                value=self.within_km,
            )
        if self.within_km is None:
            raise InvalidArgumentError(
                f"near needs within_km: how far from {self.near!r} to look", value=self.near
            )
        try:
            latitude, longitude = (_real(value) for value in self.near)
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"near must be (latitude, longitude) in degrees, got {self.near!r}",
                value=self.near,
            ) from None
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise InvalidArgumentError(
                f"near needs a latitude in [-90, 90] and a longitude in [-180, 180], "
                f"got {self.near!r}",
                value=self.near,
            )
        try:
            within = _real(self.within_km)
        except (TypeError, ValueError):
            within = math.nan
        if not within > 0 or math.isinf(within):
            raise InvalidArgumentError(
                f"within_km must be a positive number of kilometres, got {self.within_km!r}",
                value=self.within_km,
            )
        object.__setattr__(self, "near", (latitude, longitude))
        object.__setattr__(self, "within_km", within)

    @property
    def metadata_conditions(self) -> PhotoFilter | None:
        """This filter's conditions on the photo metadata; None where it sets none."""
        conditions = dataclasses.replace(self, include_offline=False)
        return None if conditions == _NO_CONDITIONS else conditions

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
        return _absolute(self.folder)

    @property
    def folder_paths(self) -> tuple[str, ...]:
        """``folder`` and ``folders``, as the catalog stores paths: a file under any passes."""
        folders = self.folders if self.folder is None else (self.folder, *self.folders)
        return tuple(_absolute(folder) for folder in folders)

    @property
    def path_pattern(self) -> str | None:
        """``path_glob`` as a glob on absolute paths (a relative one gets ``*/`` before it)."""
        glob = self.path_glob
        if glob is None or glob.startswith(("/", "*")):
            return glob
        return "*/" + glob


def _absolute(folder: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(folder)))


def _real(value) -> float:
    """A float from a real number (not a bool, a string or NaN)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(value)
    value = float(value)
    if math.isnan(value):
        raise ValueError(value)
    return value


def _seconds(moment: datetime | float | None) -> float | None:
    if moment is None or isinstance(moment, int | float):
        return moment
    if moment.tzinfo is None:  # a wall-clock time: stored as if it were UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


_NO_CONDITIONS = PhotoFilter()  # after the helpers its checks call
