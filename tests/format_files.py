"""Real HEIC, AVIF and DNG files for the format tests: HEIC written by pillow-heif, AVIF by
Pillow's own AVIF plugin, DNG by PiDNG's TIFF/DNG writer (a Bayer mosaic, 16-bit, with or
without an embedded JPEG preview in a SubIFD, as cameras and Adobe's converter write them).

Each picture is split in two: its left half blue, its right half red, so a test can tell how
it was turned."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

BLUE = (40, 40, 200)
RED = (200, 40, 40)
TAKEN = "2021:03:04 05:06:07"
# XYZ (D65) to linear sRGB: a "camera" whose sensor sees linear sRGB, so LibRaw's output is
# the picture the mosaic was made from.
_XYZ_TO_SRGB = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415), (0.0557, -0.2040, 1.0570))


def halves(size: tuple[int, int]) -> Image.Image:
    """``size`` pixels: the left half blue, the right half red."""
    img = Image.new("RGB", size, RED)
    img.paste(BLUE, (0, 0, size[0] // 2, size[1]))
    return img


def camera_exif(orientation: int = 1, make: str = "Apple", model: str = "iPhone 15") -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = make
    exif[ExifTags.Base.Model] = model
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = TAKEN
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (IFDRational(48, 1), IFDRational(30, 1), IFDRational(0, 1)),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (IFDRational(2, 1), IFDRational(15, 1), IFDRational(0, 1)),
        }
    )
    return exif


def write_heic(path: Path, size=(96, 64), orientation: int = 1) -> Path:
    """A HEIC as pillow-heif writes it (it stores the orientation as the HEIF rotation)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    path.parent.mkdir(parents=True, exist_ok=True)
    halves(size).save(path, "HEIF", exif=camera_exif(orientation).tobytes(), quality=90)
    return path


def write_avif(path: Path, size=(96, 64), orientation: int = 1) -> Path:
    """An AVIF as Pillow writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    halves(size).save(path, "AVIF", exif=camera_exif(orientation).tobytes(), quality=90)
    return path


def dng_bytes(
    size=(256, 192),
    *,
    preview: tuple[int, int] | None = None,
    orientation: int = 1,
    make: str = "Canon",
    model: str = "EOS R5",
) -> bytes:
    """A DNG of :func:`halves`: an RGGB mosaic of the picture in linear light, and with
    ``preview`` an embedded JPEG preview of that size."""
    from pidng.defs import CFAPattern, DNGVersion, PhotometricInterpretation
    from pidng.dng import DNG, Tag, Type, dngIFD, dngTag

    def pointer(tag_id: int, ifd) -> dngTag:
        # PiDNG 4.0.9's own IFD-typed tag fails on Python 3 (str + bytes); the same layout:
        tag = dngTag((tag_id, Type.Long), [0])
        tag.subIFD = ifd
        return tag

    mosaic = _mosaic(halves(size))
    width, height = size
    template = DNG()
    template.ImageDataStrips.append(mosaic.tobytes())
    main = dngIFD()
    raw_offset = dngTag(Tag.StripOffsets, [0])
    matrix = [[round(v * 10000), 10000] for row in _XYZ_TO_SRGB for v in row]
    main.tags += [
        raw_offset,
        dngTag(Tag.NewSubfileType, [0]),
        dngTag(Tag.ImageWidth, [width]),
        dngTag(Tag.ImageLength, [height]),
        dngTag(Tag.BitsPerSample, [16]),
        dngTag(Tag.Compression, [1]),
        dngTag(Tag.PhotometricInterpretation, [PhotometricInterpretation.Color_Filter_Array]),
        dngTag(Tag.SamplesPerPixel, [1]),
        dngTag(Tag.RowsPerStrip, [height]),
        dngTag(Tag.StripByteCounts, [mosaic.nbytes]),
        dngTag(Tag.PlanarConfiguration, [1]),
        dngTag(Tag.CFARepeatPatternDim, [2, 2]),
        dngTag(Tag.CFAPattern, CFAPattern.RGGB),
        dngTag(Tag.BlackLevel, [0]),
        dngTag(Tag.WhiteLevel, [65535]),
        dngTag(Tag.ColorMatrix1, matrix),
        dngTag(Tag.CalibrationIlluminant1, [21]),  # D65
        dngTag(Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
        dngTag(Tag.Orientation, [orientation]),
        dngTag(Tag.Make, make),
        dngTag(Tag.Model, model),
        dngTag(Tag.UniqueCameraModel, f"{make} {model}"),
        dngTag(Tag.DateTime, TAKEN),
        dngTag(Tag.DNGVersion, DNGVersion.V1_4),
        dngTag(Tag.DNGBackwardVersion, DNGVersion.V1_1),
    ]
    exif = dngIFD()
    exif.tags.append(dngTag(Tag.DateTimeOriginal, TAKEN))
    main.tags.append(pointer(34665, exif))
    preview_offset = None
    if preview is not None:
        buffer = io.BytesIO()
        halves(size).resize(preview).save(buffer, "JPEG", quality=90)
        jpeg = buffer.getvalue()
        template.ImageDataStrips.append(jpeg)
        sub = dngIFD()
        preview_offset = dngTag(Tag.StripOffsets, [0])
        sub.tags += [
            preview_offset,
            dngTag(Tag.NewSubfileType, [1]),  # a reduced-resolution copy
            dngTag(Tag.ImageWidth, [preview[0]]),
            dngTag(Tag.ImageLength, [preview[1]]),
            dngTag(Tag.BitsPerSample, [8, 8, 8]),
            dngTag(Tag.Compression, [7]),  # JPEG
            dngTag(Tag.PhotometricInterpretation, [6]),  # YCbCr
            dngTag(Tag.SamplesPerPixel, [3]),
            dngTag(Tag.RowsPerStrip, [preview[1]]),
            dngTag(Tag.StripByteCounts, [len(jpeg)]),
        ]
        main.tags.append(pointer(330, sub))  # SubIFDs
    template.IFDs.append(main)
    total = template.dataLen()  # lays out the strips: their offsets are known from here
    raw_offset.setValue([template.StripOffsets[0]])
    if preview_offset is not None:
        preview_offset.setValue([template.StripOffsets[1]])
    buffer = bytearray(total)
    template.setBuffer(buffer)
    template.write()
    return bytes(buffer)


def write_dng(path: Path, size=(256, 192), **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dng_bytes(size, **options))
    return path


def _mosaic(img: Image.Image) -> np.ndarray:
    """The RGGB Bayer mosaic of ``img`` in linear light, 16-bit."""
    srgb = np.asarray(img).astype(np.float32) / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    values = np.round(linear * 65535).astype(np.uint16)
    mosaic = np.empty(values.shape[:2], np.uint16)
    mosaic[0::2, 0::2] = values[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = values[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = values[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = values[1::2, 1::2, 2]
    return mosaic
