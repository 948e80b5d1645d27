"""read_photo_metadata on real files that Pillow wrote: JPEG, PNG and WebP with and without EXIF,
broken EXIF values, and the promise that no pixel is decoded."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from searchclip._photo_metadata import PhotoMetadata, read_photo_metadata

MTIME_NS = 1_600_000_000_123_456_789
Base = ExifTags.Base
GPS = ExifTags.GPS


def _dms(degrees: int, minutes: int, seconds_hundredths: int) -> tuple[IFDRational, ...]:
    return (IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds_hundredths, 100))


def _exif(
    ifd0: dict[int, object] | None = None,
    exif_ifd: dict[int, object] | None = None,
    gps_ifd: dict[int, object] | None = None,
) -> Image.Exif:
    exif = Image.Exif()
    for tag, value in (ifd0 or {}).items():
        exif[tag] = value
    # get_ifd on a new Exif gives an empty dict that is kept and written on save as the sub-IFD.
    exif.get_ifd(ExifTags.IFD.Exif).update(exif_ifd or {})
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(gps_ifd or {})
    return exif


def _write(path: Path, exif: Image.Exif | None = None, size: tuple[int, int] = (32, 24)) -> Path:
    picture = Image.new("RGB", size, (200, 120, 40))
    if exif is None:
        picture.save(path)
    else:
        picture.save(path, exif=exif)
    return path


def _read(path: Path) -> PhotoMetadata:
    with Image.open(path) as img:
        return read_photo_metadata(img, MTIME_NS)


FULL_EXIF = {
    "ifd0": {
        Base.Make: "Canon",
        Base.Model: "Canon EOS R5",
        Base.DateTime: "2024:01:01 09:00:00",  # edited later: not when it was taken
    },
    "exif_ifd": {
        Base.DateTimeOriginal: "2023:06:15 14:30:05",
        Base.OffsetTimeOriginal: "+02:00",
        Base.LensModel: "RF24-70mm F2.8 L IS USM",
    },
    "gps_ifd": {
        GPS.GPSLatitudeRef: "S",
        GPS.GPSLatitude: _dms(33, 51, 3540),  # 33°51'35.40"S
        GPS.GPSLongitudeRef: "W",
        GPS.GPSLongitude: _dms(151, 12, 3000),  # 151°12'30.00"W
    },
}


def test_full_exif_jpeg(tmp_path):
    meta = _read(_write(tmp_path / "full.jpg", _exif(**FULL_EXIF)))

    taken = datetime(2023, 6, 15, 14, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    assert meta.taken_at == taken.timestamp()
    assert meta.taken_at == datetime(2023, 6, 15, 12, 30, 5, tzinfo=UTC).timestamp()
    assert meta.taken_at_source == "exif"
    assert meta.utc_offset_minutes == 120
    assert meta.camera_make == "Canon"
    assert meta.camera_model == "Canon EOS R5"
    assert meta.lens == "RF24-70mm F2.8 L IS USM"
    assert meta.latitude == pytest.approx(-(33 + 51 / 60 + 35.40 / 3600), abs=1e-6)
    assert meta.longitude == pytest.approx(-(151 + 12 / 60 + 30 / 3600), abs=1e-6)
    assert meta.format == "JPEG"


def test_north_east_positions_are_positive_and_negative_offsets_subtract(tmp_path):
    exif = _exif(
        exif_ifd={Base.DateTimeOriginal: "2023:06:15 14:30:05", Base.OffsetTimeOriginal: "-05:30"},
        gps_ifd={
            GPS.GPSLatitudeRef: "N",
            GPS.GPSLatitude: _dms(48, 51, 2400),
            GPS.GPSLongitudeRef: "E",
            GPS.GPSLongitude: _dms(2, 21, 0),
        },
    )
    meta = _read(_write(tmp_path / "paris.jpg", exif))

    assert meta.utc_offset_minutes == -330
    assert meta.taken_at == datetime(2023, 6, 15, 20, 0, 5, tzinfo=UTC).timestamp()
    assert meta.latitude == pytest.approx(48 + 51 / 60 + 24 / 3600, abs=1e-6)
    assert meta.longitude == pytest.approx(2 + 21 / 60, abs=1e-6)


def test_png_without_exif_takes_the_mtime_and_is_not_decoded(tmp_path, monkeypatch):
    path = _write(tmp_path / "plain.png")
    with Image.open(path) as img:
        loads: list[None] = []
        monkeypatch.setattr(img, "load", lambda: loads.append(None))
        meta = read_photo_metadata(img, MTIME_NS)
        assert loads == []
        # The spy sees what it guards against: Pillow's own PNG getexif() decodes here.
        img.getexif()
        assert loads == [None]

    assert meta == PhotoMetadata(
        taken_at=MTIME_NS / 1e9,
        taken_at_source="mtime",
        utc_offset_minutes=None,
        camera_make=None,
        camera_model=None,
        lens=None,
        latitude=None,
        longitude=None,
        format="PNG",
    )


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_exif_is_read_without_decoding(tmp_path, monkeypatch, suffix):
    path = _write(tmp_path / f"photo{suffix}", _exif(**FULL_EXIF), size=(640, 480))
    with Image.open(path) as img:
        loads: list[None] = []
        monkeypatch.setattr(img, "load", lambda: loads.append(None))
        meta = read_photo_metadata(img, MTIME_NS)
        assert loads == []

    assert meta.format == {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[suffix]
    assert meta.taken_at_source == "exif"
    assert meta.utc_offset_minutes == 120
    assert meta.camera_model == "Canon EOS R5"
    assert meta.lens == "RF24-70mm F2.8 L IS USM"
    assert meta.latitude == pytest.approx(-33.859833, abs=1e-6)


def test_date_without_offset_is_the_wall_clock_taken_as_utc(tmp_path):
    exif = _exif(exif_ifd={Base.DateTimeOriginal: "2023:06:15 14:30:05"})
    meta = _read(_write(tmp_path / "no_offset.jpg", exif))

    assert meta.taken_at == datetime(2023, 6, 15, 14, 30, 5, tzinfo=UTC).timestamp()
    assert meta.taken_at_source == "exif"
    assert meta.utc_offset_minutes is None


@pytest.mark.parametrize(
    ("ifd0", "exif_ifd", "expected", "offset"),
    [
        # No DateTimeOriginal: DateTimeDigitized, with its own offset.
        (
            {Base.DateTime: "2020:01:01 00:00:00"},
            {Base.DateTimeDigitized: "2021:03:04 05:06:07", Base.OffsetTimeDigitized: "+01:00"},
            datetime(2021, 3, 4, 4, 6, 7, tzinfo=UTC),
            60,
        ),
        # Only IFD0's DateTime, with OffsetTime.
        (
            {Base.DateTime: "2019:12:31 23:59:59"},
            {Base.OffsetTime: "+09:00"},
            datetime(2019, 12, 31, 14, 59, 59, tzinfo=UTC),
            540,
        ),
        # DateTimeOriginal with only another date's offset: the camera's zone all the same.
        (
            {},
            {Base.DateTimeOriginal: "2022:07:01 12:00:00", Base.OffsetTime: "-03:00"},
            datetime(2022, 7, 1, 15, 0, 0, tzinfo=UTC),
            -180,
        ),
        # Dashes, and a fraction of a second.
        (
            {},
            {Base.DateTimeOriginal: "2022-07-01 12:00:00"},
            datetime(2022, 7, 1, 12, tzinfo=UTC),
            None,
        ),
        (
            {},
            {Base.DateTimeOriginal: "2022:07:01 12:00:00.250"},
            datetime(2022, 7, 1, 12, tzinfo=UTC),
            None,
        ),
        # A broken DateTimeOriginal gives way to the next date.
        (
            {Base.DateTime: "2018:02:03 04:05:06"},
            {Base.DateTimeOriginal: "0000:00:00 00:00:00"},
            datetime(2018, 2, 3, 4, 5, 6, tzinfo=UTC),
            None,
        ),
        # An impossible offset is no offset.
        (
            {},
            {Base.DateTimeOriginal: "2022:07:01 12:00:00", Base.OffsetTimeOriginal: "+25:00"},
            datetime(2022, 7, 1, 12, tzinfo=UTC),
            None,
        ),
    ],
)
def test_which_date_and_offset(tmp_path, ifd0, exif_ifd, expected, offset):
    meta = _read(_write(tmp_path / "dated.jpg", _exif(ifd0=ifd0, exif_ifd=exif_ifd)))

    assert meta.taken_at == expected.timestamp()
    assert meta.taken_at_source == "exif"
    assert meta.utc_offset_minutes == offset


@pytest.mark.parametrize(
    "bad_date",
    ["garbage", "0000:00:00 00:00:00", "    :  :     :  :  ", "2023:13:01 00:00:00", "", "2023"],
)
def test_unusable_dates_fall_back_to_the_mtime(tmp_path, bad_date):
    exif = _exif(
        ifd0={Base.Make: "Nikon"},
        exif_ifd={Base.DateTimeOriginal: bad_date, Base.OffsetTimeOriginal: "+02:00"},
    )
    meta = _read(_write(tmp_path / "bad_date.jpg", exif))

    assert meta.taken_at == MTIME_NS / 1e9
    assert meta.taken_at_source == "mtime"
    assert meta.utc_offset_minutes is None  # an offset applies to an EXIF date only
    assert meta.camera_make == "Nikon"


@pytest.mark.parametrize(
    "gps_ifd",
    [
        # A rational with a zero denominator.
        {
            GPS.GPSLatitudeRef: "N",
            GPS.GPSLatitude: (IFDRational(10, 0), IFDRational(0, 1), IFDRational(0, 1)),
        },
        # Latitude 200.
        {GPS.GPSLatitudeRef: "N", GPS.GPSLatitude: _dms(200, 0, 0)},
        # Sixty-one minutes.
        {GPS.GPSLatitudeRef: "N", GPS.GPSLatitude: _dms(10, 61, 0)},
        # A reference that is no direction.
        {GPS.GPSLatitudeRef: "Q", GPS.GPSLatitude: _dms(10, 0, 0)},
        # No latitude at all.
        {},
    ],
)
def test_broken_positions_are_none_and_the_rest_still_reads(tmp_path, gps_ifd):
    gps = {GPS.GPSLongitudeRef: "E", GPS.GPSLongitude: _dms(2, 21, 0), **gps_ifd}
    exif = _exif(
        ifd0={Base.Make: "Fujifilm", Base.Model: "X-T5"},
        exif_ifd={Base.DateTimeOriginal: "2023:06:15 14:30:05"},
        gps_ifd=gps,
    )
    meta = _read(_write(tmp_path / "bad_gps.jpg", exif))

    # Half a position is no position: both go.
    assert (meta.latitude, meta.longitude) == (None, None)
    assert (meta.camera_make, meta.camera_model) == ("Fujifilm", "X-T5")
    assert meta.taken_at == datetime(2023, 6, 15, 14, 30, 5, tzinfo=UTC).timestamp()


def test_longitude_over_180_is_none(tmp_path):
    gps = {
        GPS.GPSLatitudeRef: "N",
        GPS.GPSLatitude: _dms(10, 0, 0),
        GPS.GPSLongitudeRef: "E",
        GPS.GPSLongitude: _dms(181, 0, 0),
    }
    meta = _read(_write(tmp_path / "lon.jpg", _exif(ifd0={Base.Make: "Leica"}, gps_ifd=gps)))

    assert (meta.latitude, meta.longitude) == (None, None)
    assert meta.camera_make == "Leica"


def test_strings_are_cleaned(tmp_path):
    exif = _exif(
        ifd0={
            Base.Make: "  Canon\x00\x00\x00",
            Base.Model: "Sony α7 IV".encode(),  # UTF-8 bytes in an ASCII tag
        },
        exif_ifd={Base.LensModel: "L" * 500},
    )
    meta = _read(_write(tmp_path / "strings.jpg", exif))

    assert meta.camera_make == "Canon"
    assert meta.camera_model == "Sony α7 IV"
    assert meta.lens == "L" * 200


@pytest.mark.parametrize("blank", ["", "   ", "\x00\x00\x00\x00"])
def test_blank_strings_are_none(tmp_path, blank):
    exif = _exif(ifd0={Base.Make: blank, Base.Model: "EOS R5"}, exif_ifd={Base.LensModel: blank})
    meta = _read(_write(tmp_path / "blank.jpg", exif))

    assert meta.camera_make is None
    assert meta.lens is None
    assert meta.camera_model == "EOS R5"


GARBAGE_EXIF = b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xf0garbage"  # IFD0 far past the end


def test_garbage_exif_block_in_a_jpeg_reads_as_no_exif(tmp_path):
    path = tmp_path / "garbage.jpg"
    Image.new("RGB", (16, 16)).save(path, exif=GARBAGE_EXIF)
    with warnings.catch_warnings():
        # JPEG's open() reads the EXIF itself, for the DPI, and warns that it is corrupt.
        warnings.simplefilter("ignore")
        img = Image.open(path)
    with img:
        meta = read_photo_metadata(img, MTIME_NS)

    assert (meta.taken_at, meta.taken_at_source) == (MTIME_NS / 1e9, "mtime")
    assert meta.camera_make is None
    assert meta.format == "JPEG"


def test_garbage_exif_chunk_in_a_png_reads_as_no_exif(tmp_path):
    # PNG's open() leaves the EXIF alone: Pillow's warning about it comes from inside
    # read_photo_metadata, an exception under this suite's filterwarnings = error.
    path = tmp_path / "garbage.png"
    Image.new("RGB", (16, 16)).save(path, exif=GARBAGE_EXIF)
    meta = _read(path)

    assert (meta.taken_at, meta.taken_at_source) == (MTIME_NS / 1e9, "mtime")
    assert meta.camera_make is None
    assert meta.format == "PNG"


def test_no_mtime_and_no_date_gives_no_time(tmp_path):
    with Image.open(_write(tmp_path / "plain.jpg")) as img:
        meta = read_photo_metadata(img, None)

    assert (meta.taken_at, meta.taken_at_source) == (None, "")
