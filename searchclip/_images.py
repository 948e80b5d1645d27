"""Finding image files on disk and decoding them into RGB pictures.

Everything a bad file can do (vanish, be unreadable, lie about its format, be truncated, claim
billions of pixels) ends here as :class:`~searchclip._errors.ImageReadError` with a short reason
that the indexer records per file, so one bad photo never stops an indexing run.

Memory (issue 13): a file of a few hundred bytes can declare a canvas of 169 million pixels,
which Pillow allocates in full. The indexer therefore decodes under a pixel budget,
:data:`DECODE_BUDGET_PIXELS` shared by its decode workers (:func:`decode_budget`), checked from
the header (after JPEG draft scaling) before any pixel is decoded; it refuses images thinner
than 1:20 (:data:`MAX_ASPECT_RATIO`: the model would scale their short side up); and
every decoded image is reduced right after decoding to the smallest size whose short side
still covers the model's input, before any conversion or copy.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from searchclip import _image_formats as formats
from searchclip._errors import ImageReadError, InvalidArgumentError
from searchclip._results import PhotoMetadata

# HEIF, AVIF and RAW need optional packages (searchclip._image_formats): without them such
# files are counted as ignored, with the extra to install as the reason.
IMAGE_SUFFIXES: frozenset[str] = (
    frozenset(
        {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff"}
    )
    | formats.PLUGIN_SUFFIXES
)
# Photo formats people keep beside their JPEGs that searchclip does not read (yet): such files
# are counted as ignored, so that they do not vanish from a run's summary without a word.
UNREAD_IMAGE_SUFFIXES: frozenset[str] = frozenset({".jxl", ".svg", ".psd"})
DEFAULT_MAX_PIXELS: int = 2 * Image.MAX_IMAGE_PIXELS  # Pillow's own hard limit, ~179 MP
DEFAULT_MAX_FILE_BYTES: int = 512 * 2**20
# What the indexer's decode workers may decode at once, in pixels, shared among them. Decoding
# costs at most about 6 bytes a pixel (16-bit grey: 2 as decoded, 4 more once widened for the
# reduction; RGB and RGBA are 4, palette 1 + 4 once expanded), so 128 MP is at most ~0.8 GB
# however many workers run, and an index run stays under ~1.5 GB (docs/benchmarks.md).
DECODE_BUDGET_PIXELS: int = 128 * 10**6
MAX_ASPECT_RATIO: int = 20  # an image thinner than 1:20 is refused, not scaled up

_ORIENTATION_TAG = 0x0112
_WHITE = (255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "P"})  # composited via convert("RGBA")
_PREMULTIPLIED_MODES = frozenset({"La", "RGBa"})
_DEEP_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class FileStat:
    """A candidate image file: the (mtime, size) pair lets the indexer skip unchanged files."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan` found: usable files sorted by path, entries it could not use, and
    entries it left alone on purpose (``ignored``: path and why, e.g. "hidden file")."""

    files: list[FileStat]
    failures: list[tuple[str, str]]
    ignored: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class DecodedImage:
    """An RGB picture plus the full-resolution size, which draft decoding may not preserve."""

    image: Image.Image
    width: int
    height: int


def is_image_name(name: str) -> bool:
    """True for a visible file name with an image suffix (hidden and macOS ``._x`` excluded)."""
    if name.startswith("."):  # also covers the "._x" AppleDouble files macOS leaves behind
        return False
    suffix = os.path.splitext(name)[1].lower()
    return suffix in IMAGE_SUFFIXES and formats.missing_extra_for_suffix(suffix) is None


def ignored_reason(name: str) -> str | None:
    """Why a file that looks like a picture is not a candidate, or None for any other name
    (a text file is not "ignored": it was never a picture)."""
    suffix = os.path.splitext(name)[1].lower()
    if name.startswith("._") and suffix in IMAGE_SUFFIXES | UNREAD_IMAGE_SUFFIXES:
        return "macOS ._ metadata"
    if name.startswith(".") and suffix in IMAGE_SUFFIXES | UNREAD_IMAGE_SUFFIXES:
        return "hidden"
    if suffix in UNREAD_IMAGE_SUFFIXES:
        return f"{suffix}: format not read yet"
    return formats.missing_extra_for_suffix(suffix)  # e.g. HEIF without pillow-heif


def scan(root: str | os.PathLike[str]) -> ScanResult:
    """Find the image files under ``root`` (or ``root`` itself when it is a file).

    Symlinked directories are not followed (no cycles, no escaping the tree), but symlinked
    files are candidates; hidden folders are not searched. A bad entry becomes a failure; it
    never aborts the scan. Hidden files, folder symlinks and formats searchclip does not read
    are listed as ignored.
    """
    top = os.path.abspath(os.fspath(root))
    if not os.path.exists(top):
        raise InvalidArgumentError(f"{root} does not exist")
    files: list[FileStat] = []
    failures: list[tuple[str, str]] = []
    ignored: list[tuple[str, str]] = []
    if not os.path.isdir(top):
        # An explicitly named file only needs an image suffix to be a candidate.
        suffix = os.path.splitext(top)[1].lower()
        reason = ignored_reason("x" + suffix)
        candidates = [top] if suffix in IMAGE_SUFFIXES and reason is None else []
        if reason is not None:
            ignored.append((top, reason))
    else:
        candidates = []

        def on_error(err: OSError) -> None:
            reason = (
                "permission denied: cannot list directory"
                if isinstance(err, PermissionError)
                else _os_reason(err)
            )
            failures.append((os.path.abspath(err.filename or top), reason))

        for dirpath, dirnames, filenames in os.walk(top, onerror=on_error, followlinks=False):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in dirnames:
                if os.path.islink(os.path.join(dirpath, name)):
                    ignored.append((os.path.join(dirpath, name), "folder symlink: not followed"))
            for name in filenames:
                path = os.path.join(dirpath, name)
                if is_image_name(name):
                    candidates.append(path)
                elif (reason := ignored_reason(name)) is not None:
                    ignored.append((path, reason))
    for path in candidates:
        found = _stat_file(path)
        if isinstance(found, FileStat):
            files.append(found)
        else:
            failures.append((path, found))
    files.sort(key=lambda f: f.path)
    failures.sort()
    return ScanResult(files=files, failures=failures, ignored=sorted(ignored))


def _stat_file(path: str) -> FileStat | str:
    """Stat one candidate (following symlinks): its FileStat, or the reason it is unusable."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "broken symbolic link" if os.path.islink(path) else "file not found"
    except PermissionError:
        return "permission denied"
    except OSError as err:
        return _os_reason(err)
    if not stat.S_ISREG(st.st_mode):  # a FIFO named x.jpg would block the reader forever
        return "not a regular file"
    return FileStat(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)


def read_bytes(path: str, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """Read a whole file, refusing empty files and files above ``max_file_bytes``.

    Reading the bytes once lets the caller both hash them and decode them.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
            raise ImageReadError("not a regular file")
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_file_bytes:
                raise ImageReadError(_too_large_file(size, max_file_bytes))
            data = f.read(max_file_bytes + 1)  # the file may have grown since fstat
    except FileNotFoundError:
        raise ImageReadError("file not found") from None
    except PermissionError:
        raise ImageReadError("permission denied") from None
    except OSError as err:
        raise ImageReadError(_os_reason(err)) from None
    if not data:
        raise ImageReadError("empty file")
    if len(data) > max_file_bytes:
        raise ImageReadError(_too_large_file(len(data), max_file_bytes))
    return data


def content_hash(data: bytes) -> str:
    """A 128-bit BLAKE2b digest: identifies moved and duplicate files without re-encoding."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def decode_budget(workers: int) -> int:
    """The pixel budget of one decode when ``workers`` decode at once: an equal share of
    :data:`DECODE_BUDGET_PIXELS`, never above Pillow's own limit."""
    return min(DEFAULT_MAX_PIXELS, DECODE_BUDGET_PIXELS // max(1, workers))


def decode_image(
    data: bytes,
    *,
    min_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    decode_pixels: int | None = None,
    max_aspect: float | None = None,
    reduce: bool = False,
) -> DecodedImage:
    """Decode ``data`` into an upright RGB image (first frame of animations).

    Every limit is checked from the header before any pixel is decoded, so a tiny file that
    claims a huge canvas costs nothing: ``max_pixels`` on the declared size, ``decode_pixels``
    on the size that would really be decoded (a JPEG's draft size), ``max_aspect`` on the
    ratio of the long side to the short one. With ``min_side``, JPEGs are decoded by libjpeg at
    a reduced scale whose short side stays >= ``min_side``; with ``reduce`` too, any image is
    then reduced right after decoding (by an integer factor, box filter), before any
    conversion or copy, to the smallest size whose short side is still >= ``min_side``: the
    model resizes to that anyway. ``width`` and ``height`` stay the full-resolution size.
    HEIF needs pillow-heif and RAW rawpy (searchclip._image_formats); RAW is read from its
    embedded preview when that covers ``min_side``, else demosaiced at half size.
    """
    family = formats.prepare_open(data)
    if family == "RAW":
        limits = {"max_pixels": max_pixels, "decode_pixels": decode_pixels}
        return formats.decode_raw(
            data, min_side=min_side, max_aspect=max_aspect, reduce=reduce, **limits
        )
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:  # a HEIF or AVIF container its decoder cannot parse
        unknown = "not an image (unrecognised format)"
        raise ImageReadError(f"truncated or corrupt {family} data" if family else unknown) from None
    except Image.DecompressionBombError:  # above Pillow's own limit, which hides the size
        raise ImageReadError(
            f"image too large: exceeds Pillow's limit of {DEFAULT_MAX_PIXELS / 1e6:.4g} "
            "megapixels (decompression-bomb guard)"
        ) from None
    except Exception:
        raise ImageReadError("truncated or corrupt image data") from None
    width, height = img.size
    if width * height > max_pixels:
        raise ImageReadError(_too_many_pixels(width, height, max_pixels))
    if max_aspect is not None and max(width, height) > max_aspect * max(1, min(width, height)):
        raise ImageReadError(_too_thin(width, height, max_aspect))
    try:
        if min_side is not None and img.format == "JPEG":
            img.draft("RGB", (min_side, min_side))
    except Exception:
        raise ImageReadError("truncated or corrupt image data") from None
    if decode_pixels is not None and img.size[0] * img.size[1] > decode_pixels:
        raise ImageReadError(_over_budget(width, height, img.size, decode_pixels))
    try:
        img.load()
        orientation = _orientation(img)
        if reduce and min_side is not None:
            img = _reduced(img, min_side)
        img, turned = _upright(img, orientation)
        rgb = _to_rgb(img)
    except Image.DecompressionBombError:
        raise ImageReadError(_too_many_pixels(width, height, max_pixels)) from None
    except Exception:
        raise ImageReadError("truncated or corrupt image data") from None
    if turned:
        width, height = height, width
    return DecodedImage(image=rgb, width=width, height=height)


def read_metadata(data: bytes, mtime_ns: int) -> PhotoMetadata:
    """What the EXIF and header of the file ``data`` say (no pixel is decoded); a file Pillow
    cannot open still gets its mtime as the time taken."""
    from searchclip._photo_metadata import metadata_from_exif, read_photo_metadata

    try:
        if formats.prepare_open(data) == "RAW":
            return metadata_from_exif(
                formats.raw_exif(data), formats.raw_format_name(data), mtime_ns
            )
        with Image.open(io.BytesIO(data)) as img:
            return read_photo_metadata(img, mtime_ns)
    except Exception:  # the decode that follows reports what is wrong with the file
        return PhotoMetadata(taken_at=mtime_ns / 1e9, taken_at_source="mtime")


def load_image(
    path: str | os.PathLike[str],
    *,
    min_side: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodedImage:
    """Read and decode one file; the :class:`ImageReadError` names the file."""
    path_s = os.fspath(path)
    try:
        return decode_image(read_bytes(path_s), min_side=min_side, max_pixels=max_pixels)
    except ImageReadError as err:
        raise ImageReadError(err.reason, path_s) from None


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1 to 8), read before reduction drops a TIFF's own tags; a broken
    EXIF block reads as 1 (as stored) rather than rejecting a good photo."""
    try:
        orientation = int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:
        return 1
    return orientation if orientation in _TRANSPOSE else 1


def _upright(img: Image.Image, orientation: int) -> tuple[Image.Image, bool]:
    """Apply the EXIF orientation; also says whether the picture turned by 90 degrees."""
    if orientation not in _TRANSPOSE:
        return img, False
    return img.transpose(_TRANSPOSE[orientation]), orientation >= 5


def _reduced(img: Image.Image, min_side: int) -> Image.Image:
    """``img`` shrunk by the largest integer factor that keeps its short side >= ``min_side``
    (box filter, no copy at full size beyond what the mode needs to be reducible)."""
    factor = min(img.size) // max(1, min_side)
    if factor < 2:
        return img
    mode = img.mode
    if mode == "1":
        img = img.convert("L")
    elif mode == "P" or "transparency" in img.info:
        # Expand the palette (or colour-key transparency) first: averaging indices is meaningless.
        img = img.convert("RGBA")
    elif mode.startswith("I;16"):
        img = img.convert("I")  # _to_rgb scales "I" of at most 65535 as 16-bit
    try:
        return img.reduce(factor)
    except ValueError:  # a mode reduce() does not handle: decode at full size as before
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB as a viewer would show it (transparency over white)."""
    mode = img.mode
    if mode in _DEEP_MODES:
        return Image.fromarray(_deep_to_uint8(np.asarray(img), mode)).convert("RGB")
    if mode in _PREMULTIPLIED_MODES:
        arr = np.asarray(img).astype(np.int32)
        colour, alpha = arr[..., :-1], arr[..., -1:]
        out = np.clip(colour + (255 - alpha), 0, 255).astype(np.uint8)  # premultiplied "over"
        return Image.fromarray(out if out.shape[-1] == 3 else out[..., 0]).convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in img.info:
        if mode == "P" and "transparency" not in img.info and img.palette.mode != "RGBA":
            return img.convert("RGB")
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img if mode == "RGB" else img.convert("RGB")


def _deep_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16/32-bit and float pixels by their real range (plain convert clips to white)."""
    values = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max()) if values.size else 0.0
    if mode.startswith("I;16") or (mode == "I" and top <= 65535):
        scaled = np.clip(values, 0, 65535) / 257.0
    elif mode == "F" and top <= 1.0:
        scaled = np.clip(values, 0, 1) * 255.0
    else:
        scaled = np.clip(values, 0, 255)
    return np.round(scaled).astype(np.uint8)


def _too_many_pixels(width: int, height: int, max_pixels: int) -> str:
    return (
        f"image too large: {width}x{height} pixels exceeds the limit of "
        f"{max_pixels / 1e6:.4g} megapixels (decompression-bomb guard)"
    )


def _over_budget(width: int, height: int, decoded: tuple[int, int], budget: int) -> str:
    at = "" if decoded == (width, height) else f" (decoded at {decoded[0]}x{decoded[1]})"
    return (
        f"image too large: {width}x{height} pixels{at} exceeds the decode budget of "
        f"{budget / 1e6:.4g} megapixels per decoding worker (decompression-bomb guard)"
    )


def _too_thin(width: int, height: int, max_aspect: float) -> str:
    return (
        f"image too thin: {width}x{height} pixels is beyond the 1:{max_aspect:g} aspect-ratio "
        "limit (its short side would be scaled up to the model's input)"
    )


def _too_large_file(size: int, limit: int) -> str:
    return f"file too large: {_mb(size)} MB exceeds the {_mb(limit)} MB limit"


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f}".removesuffix(".0")


def _os_reason(err: OSError) -> str:
    """A short lower-case reason from an OSError ("is a directory", "input/output error")."""
    return (err.strerror or str(err) or type(err).__name__).lower()
