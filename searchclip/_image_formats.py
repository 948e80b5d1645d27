"""Photo formats read through optional packages: HEIF/HEIC (pillow-heif), AVIF (Pillow's own
plugin, 11.3 and later) and camera RAW (rawpy, which bundles LibRaw).

Formats are told apart by their bytes, not by their suffix, so a HEIC renamed ``.jpg`` or a
RAW behind a server upload is read all the same. Each package is imported on first use, never
by ``import searchclip``. A format whose package is missing is skipped with a reason naming the
extra to install (:func:`missing_extra`), never decoded as something else: Pillow would read a
NEF's 160-pixel thumbnail as if it were the photo.

RAW files are never fully demosaiced for the model: the embedded preview JPEG is used when its
short side covers the model's input (fast), else LibRaw demosaics at half size.
"""

from __future__ import annotations

import io
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from PIL import Image, features

from searchclip._errors import ImageReadError

HEIF_SUFFIXES: frozenset[str] = frozenset({".heic", ".heif", ".hif"})
AVIF_SUFFIXES: frozenset[str] = frozenset({".avif"})
RAW_SUFFIXES: frozenset[str] = frozenset(
    {".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"}
)
PLUGIN_SUFFIXES: frozenset[str] = HEIF_SUFFIXES | AVIF_SUFFIXES | RAW_SUFFIXES

_EXTRAS = {"HEIF": "heif", "AVIF": "avif", "RAW": "raw"}
_NEEDS = {"HEIF": "pillow-heif", "AVIF": "Pillow 11.3 or later with AVIF", "RAW": "rawpy"}
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_CONTAINER_BRANDS = frozenset({b"mif1", b"msf1"})
# Makers whose TIFF-based RAW holds its raw data in a SubIFD (NEF, ARW, PEF, SRW...); a TIFF a
# photo editor exported keeps the Make but has no SubIFDs.
_RAW_MAKERS = ("NIKON", "SONY", "PENTAX", "RICOH", "SAMSUNG", "CANON", "LEICA", "HASSELBLAD")
_RAW_NAMES = {"NIKON": "NEF", "SONY": "ARW", "PENTAX": "PEF", "RICOH": "PEF", "SAMSUNG": "SRW"}
_CFA_PHOTOMETRICS = frozenset({32803, 34892})  # colour filter array, linear raw
# LibRaw's flip (0, 3, 5, 6) as the EXIF orientation that turns the picture upright.
_FLIP_TO_ORIENTATION = {3: 3, 5: 8, 6: 6}
_PREVIEW_ASPECT_TOLERANCE = 0.05  # a preview cropped to another aspect ratio is not the photo
_register_lock = threading.Lock()


def family_of(data: bytes) -> str | None:
    """ "HEIF", "AVIF" or "RAW" for a file of those formats (from its first bytes), else None."""
    if data[4:8] == b"ftyp":
        major = data[8:12]
        brands = {major, *_compatible_brands(data)}
        if major == b"crx ":
            return "RAW"  # Canon CR3
        if major in _AVIF_BRANDS or (major in _CONTAINER_BRANDS and brands & _AVIF_BRANDS):
            return "AVIF"
        if major in _HEIF_BRANDS | _CONTAINER_BRANDS:
            return "HEIF"
        return None
    return "RAW" if raw_format_name(data) is not None else None


def raw_format_name(data: bytes) -> str | None:
    """The RAW format of ``data`` ("DNG", "CR2", "CR3", "NEF", "ORF"...), None if not RAW."""
    head = data[:16]
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return "RAF"
    if head[:4] in (b"IIRO", b"IIRS", b"MMOR"):
        return "ORF"
    if head[:4] == b"IIU\x00":
        return "RW2"
    if head[4:12] == b"ftypcrx ":
        return "CR3"
    if head[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    if head[8:10] == b"CR":
        return "CR2"
    ifd0 = tiff_exif(data)
    if ifd0 is None:
        return None
    if 50706 in ifd0:  # DNGVersion
        return "DNG"
    make = str(ifd0.get(271, "")).upper()
    maker = next((name for name in _RAW_MAKERS if make.startswith(name)), None)
    if ifd0.get(262) in _CFA_PHOTOMETRICS or (maker and 330 in ifd0):  # 330: SubIFDs
        return _RAW_NAMES.get(maker or "", "RAW")
    return None


def tiff_exif(data: bytes) -> Image.Exif | None:
    """The EXIF of a TIFF-structured RAW (IFD0, Exif and GPS IFDs), read by Pillow; ORF and RW2
    differ from TIFF only in their magic number. None when it cannot be parsed."""
    if data[:4] in (b"IIRO", b"IIRS", b"IIU\x00"):
        data = b"II*\x00" + data[4:]
    elif data[:4] == b"MMOR":
        data = b"MM\x00*" + data[4:]
    exif = Image.Exif()
    try:
        exif.load(data)
        _ = len(exif)  # IFD0 is parsed on first access
    except Exception:
        return None
    return exif


def missing_extra(family: str) -> str | None:
    """The skip reason for ``family`` when this install cannot read it, else None."""
    ready = {"HEIF": heif_ready, "AVIF": avif_ready, "RAW": raw_ready}[family]()
    if ready:
        return None
    return f"{family} photo: install searchclip[{_EXTRAS[family]}] ({_NEEDS[family]}) to read it"


def missing_extra_for_suffix(suffix: str) -> str | None:
    """:func:`missing_extra` for a file name's suffix; None for other suffixes."""
    for family, suffixes in (
        ("HEIF", HEIF_SUFFIXES),
        ("AVIF", AVIF_SUFFIXES),
        ("RAW", RAW_SUFFIXES),
    ):
        if suffix in suffixes:
            return missing_extra(family)
    return None


def prepare_open(data: bytes) -> str | None:
    """Make sure Pillow can open ``data`` if it is HEIF or AVIF (registering pillow-heif's
    opener on first use); returns its family. Raises ImageReadError naming the extra when the
    package is missing."""
    family = family_of(data)
    if family is not None and (reason := missing_extra(family)) is not None:
        raise ImageReadError(reason)
    return family


@cache
def heif_ready() -> bool:
    """True once pillow-heif's Pillow opener is registered (done here, on first call)."""
    with _register_lock:
        try:
            import pillow_heif
        except ImportError:
            return False
        # No thumbnails or depth maps: only the primary picture is read.
        pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
        return True


@cache
def avif_ready() -> bool:
    """True when Pillow itself decodes AVIF (Pillow 11.3 and later, built with libavif)."""
    try:
        return bool(features.check("avif"))
    except ValueError:  # a Pillow that does not know the feature's name
        return False


@cache
def raw_ready() -> bool:
    try:
        import rawpy  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class RawPreview:
    """The embedded preview of a RAW: JPEG bytes, or an already decoded bitmap; ``orientation``
    is the EXIF orientation still to apply (LibRaw does not turn previews)."""

    jpeg: bytes | None
    bitmap: Image.Image | None
    orientation: int


class RawFile:
    """A RAW file opened by LibRaw: its header is parsed, no pixel is decoded yet."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        sizes = raw.sizes
        self.width, self.height = sizes.width, sizes.height  # as stored, before the flip
        self.raw_pixels = sizes.raw_width * sizes.raw_height  # what unpacking allocates
        self.orientation = _FLIP_TO_ORIENTATION.get(sizes.flip, 1)

    @property
    def turned(self) -> bool:
        return self.orientation >= 5

    def preview(self, min_side: int | None) -> RawPreview | None:
        """The embedded preview when its short side is at least ``min_side`` (without
        ``min_side``: at least half the RAW's) and it shows the whole frame, else None."""
        import rawpy

        try:
            thumb = self._raw.extract_thumb()
        except (rawpy.LibRawError, rawpy.NotSupportedError, MemoryError):
            return None
        jpeg = bitmap = None
        orientation = self.orientation
        try:
            if thumb.format == rawpy.ThumbFormat.JPEG:
                jpeg = bytes(thumb.data)
                with Image.open(io.BytesIO(jpeg)) as img:
                    size = img.size
                    if int(img.getexif().get(0x0112, 1)) != 1:
                        orientation = 1  # the preview carries its own, which the decode applies
            else:
                bitmap = Image.fromarray(thumb.data).convert("RGB")
                size = bitmap.size
        except Exception:  # an unreadable preview: demosaic instead
            return None
        need = min_side if min_side is not None else (min(self.width, self.height) + 1) // 2
        if min(size) < need or not self._same_frame(size):
            return None
        return RawPreview(jpeg, bitmap, orientation)

    def demosaiced(self, min_side: int | None) -> Image.Image:
        """The picture demosaiced by LibRaw, upright (LibRaw applies the flip): at half size
        unless that would leave the short side under ``min_side``."""
        half = min_side is None or min(self.width, self.height) // 2 >= min_side
        rgb = self._raw.postprocess(half_size=half, use_camera_wb=True, output_bps=8)
        return Image.fromarray(rgb)

    def _same_frame(self, size: tuple[int, int]) -> bool:
        raw_ratio = max(self.width, self.height) / max(1, min(self.width, self.height))
        ratio = max(size) / max(1, min(size))
        return abs(ratio - raw_ratio) <= _PREVIEW_ASPECT_TOLERANCE * raw_ratio


@contextmanager
def open_raw(data: bytes):
    """The RAW in ``data`` as a :class:`RawFile`; ImageReadError when rawpy is missing or
    LibRaw cannot parse it. Errors while decoding inside the block become ImageReadError too."""
    if (reason := missing_extra("RAW")) is not None:
        raise ImageReadError(reason)
    import rawpy

    try:
        raw = rawpy.imread(io.BytesIO(data))
    except rawpy.LibRawFileUnsupportedError:
        raise ImageReadError("RAW format not supported by LibRaw, or corrupt RAW data") from None
    except Exception:
        raise ImageReadError("truncated or corrupt RAW data") from None
    try:
        yield RawFile(raw)
    except rawpy.LibRawError:
        raise ImageReadError("truncated or corrupt RAW data") from None
    finally:
        raw.close()


def decode_raw(
    data: bytes,
    *,
    min_side: int | None,
    max_pixels: int,
    decode_pixels: int | None,
    max_aspect: float | None,
    reduce: bool,
):
    """:func:`searchclip._images.decode_image` for a RAW file, under the same guards: the
    declared size and aspect ratio from the header, the decode budget on what is decoded (the
    preview's size, or the raw mosaic that demosaicing unpacks)."""
    from searchclip import _images as images

    with open_raw(data) as raw:
        width, height = raw.width, raw.height
        if width * height > max_pixels:
            raise ImageReadError(images._too_many_pixels(width, height, max_pixels))
        if max_aspect is not None and max(width, height) > max_aspect * max(1, min(width, height)):
            raise ImageReadError(images._too_thin(width, height, max_aspect))
        if raw.turned:
            width, height = height, width
        preview = raw.preview(min_side)
        if preview is not None and preview.jpeg is not None:
            try:
                decoded = images.decode_image(
                    preview.jpeg,
                    min_side=min_side,
                    max_pixels=max_pixels,
                    decode_pixels=decode_pixels,
                    reduce=reduce,
                )
            except ImageReadError:
                preview = None  # a broken preview: demosaic instead
            else:
                picture = decoded.image
        elif preview is not None:  # an uncompressed preview, already in memory
            picture = preview.bitmap
            if reduce and min_side is not None:
                picture = images._reduced(picture, min_side)
        if preview is not None:
            upright, _ = images._upright(picture, preview.orientation)
            return images.DecodedImage(image=upright, width=width, height=height)
        # Unpacking holds the 16-bit mosaic and LibRaw's 4-channel half-size copy: ~5 bytes a
        # pixel, within the budget's 6.
        if decode_pixels is not None and raw.raw_pixels > decode_pixels:
            raise ImageReadError(
                images._over_budget(raw.width, raw.height, (raw.width, raw.height), decode_pixels)
            )
        picture = raw.demosaiced(min_side)
    if reduce and min_side is not None:
        picture = images._reduced(picture, min_side)
    return images.DecodedImage(image=picture, width=width, height=height)


def raw_exif(data: bytes) -> Image.Exif | None:
    """The EXIF of a RAW file: from its TIFF structure when it has one, else (RAF, CR3) from
    its embedded preview JPEG when rawpy is installed; None when neither has any."""
    exif = tiff_exif(data)
    if exif is not None and len(exif):
        return exif
    if not raw_ready():
        return None
    try:
        with open_raw(data) as raw:
            thumb = raw._raw.extract_thumb()
            with Image.open(io.BytesIO(bytes(thumb.data))) as img:
                return img.getexif()
    except Exception:  # no preview, or not a JPEG one: the mtime dates the file
        return None


def _compatible_brands(data: bytes) -> list[bytes]:
    box_size = int.from_bytes(data[:4], "big")
    end = min(len(data), box_size if 16 <= box_size <= 256 else 64)
    return [data[i : i + 4] for i in range(16, end - 3, 4)]
