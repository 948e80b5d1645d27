"""Photo metadata filters evaluated on the files table's columns as numpy arrays.

``filter_columns`` loads the arrays (a snapshot per change of the files table); this module
only compares them: each condition is one vectorised pass over the rows, a text condition is
decided once per distinct value and then looked up by each row's code, and a path glob is
matched per folder where the folder settles it, else on the paths' UTF-8 bytes
(``path_glob``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from searchclip._catalog.path_glob import glob_rows, with_slash
from searchclip._filters import EARTH_RADIUS_KM, PhotoFilter


@dataclass(frozen=True)
class Coded:
    """A text column: its distinct values (None for NULL) and each row's index into them."""

    values: tuple[str | None, ...]
    codes: np.ndarray  # int32, one per row

    def rows_where(self, test: Callable[[str], bool]) -> np.ndarray:
        """A row mask: the rows whose value is not NULL and passes ``test``."""
        passes = [value is not None and test(value) for value in self.values]
        return np.array(passes, bool)[self.codes] if passes else np.zeros(len(self.codes), bool)


@dataclass(frozen=True)
class Located:
    """The rows with a GPS position (a latitude), and their latitude and longitude, of a
    snapshot of ``count`` rows."""

    rows: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray  # NaN where only the latitude is known
    count: int

    @cached_property
    def mask(self) -> np.ndarray:
        """A bool per row of the snapshot: has a position (made once, for "has GPS")."""
        mask = np.zeros(self.count, bool)
        mask[self.rows] = True
        mask.flags.writeable = False
        return mask


def groups_needed(where: PhotoFilter) -> set[str]:
    """The column groups (``filter_columns``' loaders) that ``where`` reads."""
    wanted = set()
    if where.taken_from is not None or where.taken_until is not None:
        wanted.add("taken")
    for name in ("camera", "lens"):
        if getattr(where, name) is not None:
            wanted.add(name)
    if where.formats:
        wanted.add("format")
    if where.folder_paths:
        wanted.add("folder")
    if where.path_glob is not None:  # the folders settle most rows, the paths the others
        wanted.update(("folder", "paths"))
    if where.has_location is not None or where.near is not None:
        wanted.add("location")
    if (where.min_width, where.min_height, where.orientation) != (None, None, None):
        wanted.add("size")
    return wanted


def matching_rows(where: PhotoFilter, groups: dict, count: int) -> np.ndarray:
    """The mask of the rows that meet every condition of ``where``; ``groups`` holds (at
    least) what :func:`groups_needed` names."""
    keep = np.ones(count, bool)
    start, end = where.taken_from_seconds, where.taken_until_seconds
    if start is not None:
        keep &= groups["taken"] >= start  # NaN (no time) compares false
    if end is not None:
        keep &= groups["taken"] < end
    if where.camera is not None:  # "Apple", "iPhone 13" and "apple iphone" all match
        keep &= groups["camera"].rows_where(_contains(where.camera))
    if where.lens is not None:
        keep &= groups["lens"].rows_where(_contains(where.lens))
    if where.formats:
        keep &= groups["format"].rows_where(set(where.formats).__contains__)
    if where.folder_paths:
        wanted = tuple(folder.rstrip("/") + "/" for folder in where.folder_paths)
        keep &= groups["folder"].rows_where(lambda folder: with_slash(folder).startswith(wanted))
    if where.has_location is not None:
        located = groups["location"].mask
        keep &= located if where.has_location else ~located
    if where.near is not None:
        keep &= _near(groups["location"], where.near, where.within_km, count)
    if "size" in groups:
        keep &= _size(where, *groups["size"])
    if where.path_pattern is not None:
        rows = np.flatnonzero(keep)  # the glob last: it reads the most bytes a row
        keep[:] = False
        folders = groups["folder"]
        keep[
            glob_rows(groups["paths"], folders.values, folders.codes, where.path_pattern, rows)
        ] = True
    return keep


def _contains(text: str) -> Callable[[str], bool]:
    needle = text.strip().casefold()
    return lambda value: needle in value.casefold()


def _size(where: PhotoFilter, width: np.ndarray, height: np.ndarray) -> np.ndarray | bool:
    keep: np.ndarray | bool = True
    if where.min_width is not None:
        keep = keep & (width >= where.min_width)
    if where.min_height is not None:
        keep = keep & (height >= where.min_height)
    if where.orientation == "landscape":
        keep = keep & (width > height)
    elif where.orientation == "portrait":
        keep = keep & (height > width)
    elif where.orientation == "square":
        keep = keep & (width == height)
    return keep


def _near(located: Located, near: tuple[float, float], within_km: float, count: int):
    """The mask of the rows taken at most ``within_km`` from ``near`` (great circle)."""
    latitude, longitude = near
    radius = within_km / EARTH_RADIUS_KM  # radians of arc
    slack = 1e-9  # degrees: a box edge rounded inwards must not cut off a point on the circle
    reach = math.degrees(radius) + slack
    lat, lon = located.latitude, located.longitude
    close = np.flatnonzero((lat >= latitude - reach) & (lat <= latitude + reach))
    if latitude - reach > -90 and latitude + reach < 90:  # no pole inside: longitude bounded
        spread = math.sin(radius) / math.cos(math.radians(latitude))
        lon_reach = math.degrees(math.asin(min(1.0, spread))) + slack
        # the difference of longitudes the short way round, so that 179 and -179 are 2 apart
        apart = np.abs((lon[close] - longitude + 180) % 360 - 180)
        close = close[apart <= lon_reach]  # NaN compares false
    close = close[_haversine_km(latitude, longitude, lat[close], lon[close]) <= within_km]
    keep = np.zeros(count, bool)
    keep[located.rows[close]] = True
    return keep


def _haversine_km(lat0: float, lon0: float, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi0, phi = math.radians(lat0), np.radians(lat)
    half_dphi, half_dlambda = (phi - phi0) / 2, np.radians(lon - lon0) / 2
    a = np.sin(half_dphi) ** 2 + math.cos(phi0) * np.cos(phi) * np.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
