"""Finding and decoding images: every format and mode, and every way a file can be bad."""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from searchclip import _images as images
from searchclip._errors import ImageReadError, InvalidArgumentError
from searchclip._images import (
    DEFAULT_MAX_PIXELS,
    content_hash,
    decode_image,
    is_image_name,
    load_image,
    read_bytes,
    scan,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO_IMAGES = SHARED_DATA / "coco128_multilabel" / "images"
RED, GREEN, BLUE, WHITE = (220, 20, 30), (20, 200, 40), (30, 40, 210), (255, 255, 255)


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def write(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def close(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 0) -> bool:
    return all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True))


def reason_of(call, *args, **kwargs) -> str:
    with pytest.raises(ImageReadError) as info:
        call(*args, **kwargs)
    return info.value.reason


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@contextlib.contextmanager
def access_denied(path: Path, monkeypatch, *, call: str) -> Iterator[None]:
    """Make ``path`` unreadable for the block: by its mode bits for a normal user; as root,
    who reads anything, by making ``call`` (``open`` or ``os.scandir``) refuse just that path
    with the PermissionError the kernel would raise for a normal user."""
    if not running_as_root():
        path.chmod(0)
        try:
            yield
        finally:
            path.chmod(0o755 if path.is_dir() else 0o644)
        return
    target = os.fspath(path)
    module, name = (os, "scandir") if call == "os.scandir" else (builtins, "open")
    real = getattr(module, name)

    def refusing(file, *args, **kwargs):
        if not isinstance(file, int) and os.fspath(file) == target:
            raise PermissionError(13, "Permission denied", target)
        return real(file, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(module, name, refusing)
        yield


# --- names and scanning ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jpg", True),
        ("A.JPEG", True),
        ("b.Tiff", True),
        ("c.jfif", True),
        ("d.webp", True),
        ("notes.txt", False),
        ("jpg", False),
        (".hidden.jpg", False),
        ("._a.jpg", False),
        ("a.jpg.bak", False),
    ],
)
def test_is_image_name(name: str, expected: bool) -> None:
    assert is_image_name(name) is expected


def test_scan_finds_images_recursively_and_skips_hidden(tmp_path: Path) -> None:
    for rel in ["a.jpg", "B.JPG", "sub/c.png", "sub/deeper/d.webp", "e.TIFF"]:
        write(tmp_path / rel)
    for rel in [".hidden.jpg", "._a.jpg", ".hidden_dir/f.jpg", "sub/.cache/g.png", "notes.txt"]:
        write(tmp_path / rel)
    write(tmp_path / "h.jpg.bak")

    result = scan(tmp_path)

    expected = sorted(
        str(tmp_path / rel)
        for rel in ["a.jpg", "B.JPG", "sub/c.png", "sub/deeper/d.webp", "e.TIFF"]
    )
    assert [f.path for f in result.files] == expected
    assert result.failures == []
    first = result.files[0]
    assert first.size == 1
    assert first.mtime_ns == os.stat(first.path).st_mtime_ns


def test_scan_paths_are_absolute_and_normalised(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "sub" / "a.png")
    monkeypatch.chdir(tmp_path)
    result = scan(os.path.join(".", "sub", "..", "sub"))
    assert [f.path for f in result.files] == [str(tmp_path / "sub" / "a.png")]


def test_scan_reports_broken_symlink_and_keeps_file_symlinks(tmp_path: Path) -> None:
    target = write(tmp_path / "outside" / "real.jpg")
    root = tmp_path / "root"
    root.mkdir()
    (root / "broken.jpg").symlink_to(tmp_path / "missing.jpg")
    (root / "link.jpg").symlink_to(target)
    (root / "linked_dir").symlink_to(tmp_path / "outside", target_is_directory=True)

    result = scan(root)

    assert [f.path for f in result.files] == [str(root / "link.jpg")]  # not resolved
    assert result.failures == [(str(root / "broken.jpg"), "broken symbolic link")]


def test_scan_reports_unreadable_directory(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "ok.jpg")
    locked = tmp_path / "locked"
    write(locked / "inside.jpg")
    with access_denied(locked, monkeypatch, call="os.scandir"):
        result = scan(tmp_path)
    assert [f.path for f in result.files] == [str(tmp_path / "ok.jpg")]
    assert result.failures == [(str(locked), "permission denied: cannot list directory")]


def test_scan_reports_unlistable_directory_simulated(tmp_path: Path, monkeypatch) -> None:
    """The same as above without needing a non-root user: listing ``locked`` is refused."""
    write(tmp_path / "ok.jpg")
    locked = write(tmp_path / "locked" / "inside.jpg").parent
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = scan(tmp_path)
    assert [f.path for f in result.files] == [str(tmp_path / "ok.jpg")]
    assert result.failures == [(str(locked), "permission denied: cannot list directory")]


def test_scan_single_file_root(tmp_path: Path) -> None:
    photo = write(tmp_path / "photo.PNG")
    assert [f.path for f in scan(photo).files] == [str(photo)]
    assert scan(write(tmp_path / "notes.txt")) == images.ScanResult(files=[], failures=[])


def test_scan_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        scan(tmp_path / "nope")


def test_scan_reports_non_regular_file(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(tmp_path / "pipe.jpg")
    result = scan(tmp_path)
    assert result.files == []
    assert result.failures == [(str(tmp_path / "pipe.jpg"), "not a regular file")]


# --- decoding: formats and modes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "tol"),
    [("JPEG", 6), ("PNG", 0), ("WEBP", 6), ("GIF", 0), ("BMP", 0), ("TIFF", 0)],
)
def test_decode_every_format(fmt: str, tol: int) -> None:
    data = encode(Image.new("RGB", (32, 24), RED), fmt)
    decoded = decode_image(data)
    assert decoded.image.mode == "RGB"
    assert (decoded.width, decoded.height) == (32, 24)
    assert decoded.image.size == (32, 24)
    assert close(decoded.image.getpixel((16, 12)), RED, tol)


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, GREEN, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    assert decode_image(data).image.getpixel((8, 8)) == RED


def test_multipage_tiff_uses_first_page() -> None:
    pages = [Image.new("RGB", (16, 16), c) for c in (BLUE, RED)]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert decode_image(data).image.getpixel((8, 8)) == BLUE


def test_palette_transparency_becomes_white() -> None:
    img = Image.new("P", (20, 10), 0)
    img.putpalette([0, 0, 0, *RED] + [0] * (256 - 2) * 3)
    img.paste(1, (10, 0, 20, 10))
    decoded = decode_image(encode(img, "PNG", transparency=0)).image
    assert decoded.mode == "RGB"
    assert decoded.getpixel((2, 5)) == WHITE
    assert decoded.getpixel((15, 5)) == RED


def test_palette_without_transparency() -> None:
    img = Image.new("RGB", (8, 8), GREEN).convert("P", palette=Image.Palette.ADAPTIVE)
    assert decode_image(encode(img, "PNG")).image.getpixel((4, 4)) == GREEN


def test_la_composites_onto_white() -> None:
    arr = np.zeros((10, 20, 2), np.uint8)
    arr[:, 10:] = (100, 255)  # right half opaque grey, left half transparent black
    decoded = decode_image(encode(Image.fromarray(arr, "LA"), "PNG")).image
    assert decoded.getpixel((2, 5)) == WHITE
    assert decoded.getpixel((15, 5)) == (100, 100, 100)


def test_rgba_half_transparent_composites_onto_white() -> None:
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 128))
    pixel = decode_image(encode(img, "PNG")).image.getpixel((4, 4))
    assert close(pixel, (255, 127, 127), tol=1)


def test_rgb_with_colour_key_transparency() -> None:
    img = Image.new("RGB", (8, 8), (0, 0, 0))
    assert decode_image(encode(img, "PNG", transparency=(0, 0, 0))).image.getpixel((1, 1)) == WHITE


def test_cmyk_converts_to_rgb() -> None:
    img = Image.new("CMYK", (8, 8), (0, 255, 255, 0))
    assert decode_image(encode(img, "TIFF")).image.getpixel((4, 4)) == (255, 0, 0)


def test_cmyk_jpeg() -> None:
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    decoded = decode_image(encode(img, "JPEG", quality=95)).image
    assert decoded.mode == "RGB"
    assert close(decoded.getpixel((8, 8)), (255, 0, 0), tol=8)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_grey_scales_to_8_bit(fmt: str) -> None:
    arr = np.full((8, 8), 128 * 257, np.uint16)
    arr[:, 4:] = 65535
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    decoded = decode_image(encode(img, fmt)).image
    assert decoded.getpixel((1, 1)) == (128, 128, 128)  # plain convert would give white
    assert decoded.getpixel((6, 1)) == WHITE


def test_32_bit_integer_mode() -> None:
    img = Image.fromarray(np.full((4, 4), 64 * 257, np.int32))
    assert img.mode == "I"
    assert decode_image(encode(img, "TIFF")).image.getpixel((1, 1)) == (64, 64, 64)


def test_bilevel_mode() -> None:
    img = Image.new("1", (8, 8), 0)
    img.paste(1, (4, 0, 8, 8))
    decoded = decode_image(encode(img, "PNG")).image
    assert decoded.getpixel((1, 1)) == (0, 0, 0)
    assert decoded.getpixel((6, 1)) == WHITE


@pytest.mark.parametrize(("value", "grey"), [(0.25, 64), (1.0, 255), (200.0, 200)])
def test_float_mode(value: float, grey: int) -> None:
    arr = np.zeros((4, 4), np.float32)
    arr[0, 0] = value
    decoded = decode_image(encode(Image.fromarray(arr), "TIFF")).image
    assert decoded.getpixel((0, 0)) == (grey, grey, grey)
    assert decoded.getpixel((2, 2)) == (0, 0, 0)


def test_exif_orientation_6_rotates_and_swaps_size() -> None:
    img = Image.new("RGB", (40, 20), RED)
    img.paste(BLUE, (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    decoded = decode_image(encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert (decoded.width, decoded.height) == (20, 40)
    assert decoded.image.size == (20, 40)
    assert close(decoded.image.getpixel((10, 5)), RED, tol=8)  # left is now the top
    assert close(decoded.image.getpixel((10, 35)), BLUE, tol=8)


def test_jpeg_draft_decodes_at_reduced_scale() -> None:
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (1500, 2000, 3), np.uint8))
    data = encode(big, "JPEG", quality=80)
    decoded = decode_image(data, min_side=224)
    assert (decoded.width, decoded.height) == (2000, 1500)
    assert decoded.image.mode == "RGB"
    assert 224 <= min(decoded.image.size) < 1500
    assert decode_image(data).image.size == (2000, 1500)


def test_draft_with_orientation_reports_full_size() -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    data = encode(Image.new("RGB", (1600, 1200), RED), "JPEG", exif=exif.tobytes())
    decoded = decode_image(data, min_side=224)
    assert (decoded.width, decoded.height) == (1200, 1600)
    assert decoded.image.size[0] < decoded.image.size[1]
    assert min(decoded.image.size) >= 224


def _photo_12mp(seed: int) -> Image.Image:
    """A 4032x3024 phone-sized photo: a COCO picture upscaled when ../shared is here, else a
    generated one with photo-like detail (smooth regions, edges and sensor noise)."""
    photos = sorted(COCO_IMAGES.glob("*.jpg")) if COCO_IMAGES.is_dir() else []
    if photos:
        with Image.open(photos[seed % len(photos)]) as photo:
            return photo.convert("RGB").resize((4032, 3024), Image.Resampling.BICUBIC)
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), np.uint8))
    smooth = np.asarray(coarse.resize((4032, 3024), Image.Resampling.BICUBIC), np.float32)
    blocks = Image.fromarray(rng.integers(0, 256, (48, 64, 3), np.uint8))
    edges = np.asarray(blocks.resize((4032, 3024), Image.Resampling.NEAREST), np.float32)
    noisy = 0.6 * smooth + 0.4 * edges + rng.normal(0, 4, smooth.shape).astype(np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_draft_decoding_matches_the_full_decode_after_preprocessing(seed: int) -> None:
    """The model's 224x224 input from a draft decode (libjpeg at 1/8 scale for a 12 MP photo)
    stays within 40 dB PSNR of the input from the full decode: the speed costs no accuracy."""
    from transformers import CLIPImageProcessorPil

    processor = CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size=224)
    data = encode(_photo_12mp(seed), "JPEG", quality=90)
    draft = decode_image(data, min_side=224).image
    assert max(draft.size) <= 4032 // 4  # really decoded at reduced scale

    def model_input(image: Image.Image) -> np.ndarray:
        crop = processor(images=image, do_rescale=False, do_normalize=False)
        return np.asarray(crop["pixel_values"][0], dtype=np.float64)

    full, reduced = model_input(decode_image(data).image), model_input(draft)
    mse = float(np.mean((full - reduced) ** 2))
    psnr = 10 * np.log10(255.0**2 / max(mse, 1e-12))
    assert psnr >= 40.0, psnr


def test_min_side_ignored_for_non_jpeg() -> None:
    data = encode(Image.new("RGB", (1000, 800), RED), "PNG")
    assert decode_image(data, min_side=224).image.size == (1000, 800)


# --- bad files --------------------------------------------------------------------------------


def fake_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but carries almost no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_truncated_jpeg() -> None:
    rng = np.random.default_rng(1)
    data = encode(Image.fromarray(rng.integers(0, 255, (200, 200, 3), np.uint8)), "JPEG")
    assert reason_of(decode_image, data[: len(data) // 2]) == "truncated or corrupt image data"


def test_truncated_png() -> None:
    rng = np.random.default_rng(2)
    data = encode(Image.fromarray(rng.integers(0, 255, (200, 200, 3), np.uint8)), "PNG")
    assert reason_of(decode_image, data[: len(data) // 2]) == "truncated or corrupt image data"


def test_zero_byte_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.jpg", b"")
    with pytest.raises(ImageReadError) as info:
        load_image(path)
    assert info.value.reason == "empty file"
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_text_file_with_image_name(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.jpg", b"just some text, not a picture\n")
    assert reason_of(load_image, path) == "not an image (unrecognised format)"


def test_header_claiming_a_huge_canvas_is_refused_before_decoding() -> None:
    reason = reason_of(decode_image, fake_png_header(5000, 5000), max_pixels=1_000_000)
    assert reason == (
        "image too large: 5000x5000 pixels exceeds the limit of 1 megapixels "
        "(decompression-bomb guard)"
    )


def test_decompression_bomb_above_pillows_own_limit() -> None:
    reason = reason_of(decode_image, fake_png_header(30000, 30000))
    assert reason.startswith("image too large")
    assert "decompression-bomb guard" in reason


def test_small_max_pixels_on_a_real_image() -> None:
    data = encode(Image.new("RGB", (100, 100), RED), "PNG")
    assert "100x100 pixels" in reason_of(decode_image, data, max_pixels=5000)
    assert decode_image(data, max_pixels=10_000).width == 100


def test_file_larger_than_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "big.jpg", b"\0" * (2 * 2**20))
    reason = reason_of(read_bytes, str(path), max_file_bytes=2**20)
    assert reason == "file too large: 2 MB exceeds the 1 MB limit"


def test_read_bytes_missing_directory_and_broken_link(tmp_path: Path) -> None:
    assert reason_of(read_bytes, str(tmp_path / "nope.jpg")) == "file not found"
    (tmp_path / "broken.jpg").symlink_to(tmp_path / "gone.jpg")
    assert reason_of(read_bytes, str(tmp_path / "broken.jpg")) == "file not found"
    assert reason_of(read_bytes, str(tmp_path)) == "is a directory"


def test_permission_denied(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path / "secret.png", encode(Image.new("RGB", (4, 4)), "PNG"))
    with access_denied(path, monkeypatch, call="open"), pytest.raises(ImageReadError) as info:
        load_image(path)
    assert (info.value.reason, info.value.path) == ("permission denied", str(path))
    assert str(info.value) == f"cannot read image {path}: permission denied"


def test_permission_denied_simulated(tmp_path: Path, monkeypatch) -> None:
    """The same as above without needing a non-root user: opening the file is refused."""
    path = write(tmp_path / "secret.png", encode(Image.new("RGB", (4, 4)), "PNG"))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(images, "open", refuse, raising=False)
    with pytest.raises(ImageReadError) as info:
        load_image(path)
    assert (info.value.reason, info.value.path) == ("permission denied", str(path))


def test_corrupted_bytes_only_ever_raise_image_read_error() -> None:
    rng = np.random.default_rng(3)
    picture = Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8))
    for fmt in ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"]:
        original = bytearray(encode(picture, fmt))
        for _ in range(20):
            data = bytearray(original)
            for pos in rng.integers(0, len(data), 8):
                data[pos] = int(rng.integers(0, 256))
            try:
                assert decode_image(bytes(data)).image.mode == "RGB"
            except ImageReadError as err:
                assert err.reason


def test_content_hash() -> None:
    assert content_hash(b"abc") == content_hash(b"abc")
    assert content_hash(b"abc") != content_hash(b"abd")
    assert len(content_hash(b"")) == 32


def test_module_leaves_pillow_globals_alone() -> None:
    assert DEFAULT_MAX_PIXELS == 2 * Image.MAX_IMAGE_PIXELS
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_pillow_bomb_is_refused_by_our_limit_and_its_warning_left_to_the_application(
    tmp_path: Path,
) -> None:
    # In a fresh interpreter, with no filters but Python's: the library installs none (the CLI
    # silences Pillow's warning for itself), so Pillow's own warning reaches the caller.
    huge = write(tmp_path / "huge.png", fake_png_header(10000, 10000))  # > MAX_IMAGE_PIXELS
    code = (
        "import sys, warnings\n"
        "from searchclip._images import load_image\n"
        "from searchclip._errors import ImageReadError\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    try:\n"
        "        load_image(sys.argv[1], max_pixels=1000)\n"
        "    except ImageReadError as err:\n"
        "        print(err.reason)\n"
        "print([type(w.message).__name__ for w in caught],\n"
        "      sorted(m for m in sys.modules if m in ('faiss', 'torch')))\n"
    )
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code, str(huge)],
        capture_output=True,
        text=True,
        check=True,
        cwd=repo,
    ).stdout.splitlines()
    assert "10000x10000" in out[0]
    assert out[1] == "['DecompressionBombWarning'] []"  # only Pillow's, and no heavy imports


# --- real photos ------------------------------------------------------------------------------


def test_real_photos_decode_to_rgb() -> None:
    if not COCO_IMAGES.is_dir():
        pytest.skip("../shared/data not found: real-photo tests need it")
    paths = sorted(p for p in COCO_IMAGES.iterdir() if is_image_name(p.name))[:10]
    assert paths
    for path in paths:
        decoded = load_image(path, min_side=224)
        assert decoded.image.mode == "RGB"
        assert min(decoded.image.size) >= min(224, decoded.width, decoded.height)
        with Image.open(path) as original:
            assert {decoded.width, decoded.height} == set(original.size)
