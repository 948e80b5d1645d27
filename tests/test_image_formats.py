"""HEIF/HEIC, AVIF and camera RAW (issue 16): real files written by pillow-heif, Pillow and
PiDNG (tests/format_files.py), decoded under the indexer's guards, their metadata read, their
orientation honoured, and a clear skip reason naming the extra when a package is missing.

RAW formats really tested here: DNG only (with and without an embedded preview). CR2, CR3,
NEF, ARW, RAF, ORF and RW2 go through the same LibRaw path, but no real file of theirs is at
hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from format_files import BLUE, RED, dng_bytes, write_avif, write_dng, write_heic
from typer.testing import CliRunner

from searchclip import SearchEngine
from searchclip import _image_formats as formats
from searchclip._cli import app
from searchclip._errors import ImageReadError
from searchclip._images import decode_image, read_metadata, scan

pytest.importorskip("pillow_heif", reason="HEIF tests need pillow-heif: searchclip[heif]")
pytest.importorskip("rawpy", reason="RAW tests need rawpy: searchclip[raw]")
pytest.importorskip("pidng", reason="the DNG files are written by pidng (the test extra)")
if not formats.avif_ready():
    pytest.skip(
        "AVIF tests need Pillow >= 11.3 with AVIF: searchclip[avif]", allow_module_level=True
    )

TAKEN_AT = 1614834367.0  # 2021-03-04 05:06:07, wall clock taken as UTC
MTIME_NS = 1_700_000_000 * 10**9


def close(pixel, colour, tolerance=60) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def top_and_bottom(image):
    return image.getpixel((image.width // 2, 2)), image.getpixel(
        (image.width // 2, image.height - 3)
    )


@pytest.fixture
def demosaic_calls(monkeypatch) -> list[int | None]:
    """The min_side of every RAW demosaic (none when the preview was used)."""
    calls: list[int | None] = []
    original = formats.RawFile.demosaiced

    def counting(self, min_side):
        calls.append(min_side)
        return original(self, min_side)

    monkeypatch.setattr(formats.RawFile, "demosaiced", counting)
    return calls


# --- telling formats apart by their bytes --------------------------------------------------------


def test_formats_are_told_apart_by_their_bytes(tmp_path):
    heic = write_heic(tmp_path / "a.heic").read_bytes()
    avif = write_avif(tmp_path / "a.avif").read_bytes()
    assert formats.family_of(heic) == "HEIF" and formats.family_of(avif) == "AVIF"
    assert formats.family_of(dng_bytes()) == "RAW" and formats.raw_format_name(dng_bytes()) == "DNG"
    (tmp_path / "plain.tif").parent.mkdir(exist_ok=True)
    from format_files import halves

    halves((32, 32)).save(tmp_path / "plain.tif")
    halves((32, 32)).save(tmp_path / "plain.jpg")
    for plain in ("plain.tif", "plain.jpg"):  # an ordinary TIFF is not a RAW
        assert formats.family_of((tmp_path / plain).read_bytes()) is None
    assert formats.raw_format_name(b"FUJIFILMCCD-RAW 0201FF383501") == "RAF"
    assert formats.raw_format_name(b"IIRO\x08\x00\x00\x00") == "ORF"


# --- HEIF and AVIF -------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", [write_heic, write_avif], ids=["heic", "avif"])
def test_heif_and_avif_decode_upright_with_their_metadata(tmp_path, writer):
    data = writer(tmp_path / "photo", size=(96, 64), orientation=6).read_bytes()
    decoded = decode_image(data, min_side=32, reduce=True)
    assert (decoded.width, decoded.height) == (64, 96)  # orientation 6: portrait
    assert decoded.image.height > decoded.image.width
    top, bottom = top_and_bottom(decoded.image)
    assert close(top, BLUE) and close(bottom, RED)  # the left half turned to the top
    meta = read_metadata(data, MTIME_NS)
    assert meta.format == ("HEIF" if writer is write_heic else "AVIF")
    assert (meta.taken_at, meta.taken_at_source) == (TAKEN_AT, "exif")
    assert (meta.camera_make, meta.camera_model) == ("Apple", "iPhone 15")
    assert (meta.latitude, meta.longitude) == (48.5, 2.25)


@pytest.mark.parametrize("writer", [write_heic, write_avif], ids=["heic", "avif"])
def test_heif_and_avif_keep_the_guards(tmp_path, writer):
    data = writer(tmp_path / "photo", size=(96, 64)).read_bytes()
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        decode_image(data, max_pixels=96 * 64 - 1)
    with pytest.raises(ImageReadError, match="decode budget"):
        decode_image(data, decode_pixels=1000)
    thin = writer(tmp_path / "thin", size=(420, 20)).read_bytes()
    with pytest.raises(ImageReadError, match="too thin"):
        decode_image(thin, max_aspect=20)
    for cut in (len(data) // 2, 40):
        with pytest.raises(ImageReadError, match="truncated or corrupt"):
            decode_image(data[:cut])


# --- RAW -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", [1, 6, 8])
@pytest.mark.parametrize("preview", [None, (128, 96)], ids=["demosaiced", "preview"])
def test_dng_decodes_upright_from_preview_or_demosaic(orientation, preview, demosaic_calls):
    data = dng_bytes((256, 192), preview=preview, orientation=orientation)
    decoded = decode_image(data, min_side=32, reduce=True)
    assert demosaic_calls == ([] if preview else [32])
    turned = orientation != 1
    assert (decoded.width, decoded.height) == ((192, 256) if turned else (256, 192))
    assert (decoded.image.height > decoded.image.width) is turned
    assert min(decoded.image.size) < 2 * 32  # reduced to just cover the model's input
    image = decoded.image
    left, right = image.getpixel((2, image.height // 2)), image.getpixel((image.width - 3, 2))
    top, bottom = top_and_bottom(image)
    # 6 turns the left (blue) half to the top, 8 to the bottom.
    first, second = {1: (left, right), 6: (top, bottom), 8: (bottom, top)}[orientation]
    assert first[2] > first[0] + 80 and second[0] > second[2] + 80  # blue, then red


def test_a_preview_too_small_for_the_model_is_not_used(demosaic_calls):
    data = dng_bytes((256, 192), preview=(64, 48))
    assert min(decode_image(data, min_side=48, reduce=True).image.size) == 48
    assert demosaic_calls == []  # 48 pixels cover 48
    decoded = decode_image(data, min_side=50, reduce=True)
    assert demosaic_calls == [50] and min(decoded.image.size) >= 50
    assert decode_image(data, min_side=100).image.size == (256, 192)  # half size would be 96
    assert decode_image(dng_bytes((256, 192), preview=(128, 64)), min_side=32).image.size != (
        128,
        64,
    )  # a preview of another aspect ratio (cropped) is not the photo


def test_dng_metadata_comes_from_its_own_exif(tmp_path):
    data = dng_bytes(orientation=6, make="Canon", model="EOS R5")
    meta = read_metadata(data, MTIME_NS)
    assert meta.format == "DNG" and (meta.camera_make, meta.camera_model) == ("Canon", "EOS R5")
    assert (meta.taken_at, meta.taken_at_source) == (TAKEN_AT, "exif")


def test_dng_keeps_the_guards_and_reports_corrupt_files():
    data = dng_bytes((256, 192))
    with pytest.raises(ImageReadError, match="exceeds the limit"):
        decode_image(data, max_pixels=256 * 192 - 1)
    with pytest.raises(ImageReadError, match="decode budget"):
        decode_image(data, decode_pixels=10_000)  # demosaicing unpacks the whole mosaic
    with pytest.raises(ImageReadError, match="too thin"):
        decode_image(dng_bytes((882, 42)), max_aspect=20)  # LibRaw wants >= 22 rows
    for broken in (data[:400], data[:2000], b"FUJIFILMCCD-RAW garbage" * 10):
        with pytest.raises(ImageReadError, match="corrupt"):
            decode_image(broken, min_side=32)
        assert read_metadata(broken, MTIME_NS).taken_at is not None  # never raises


# --- a missing package ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ready", "name", "extra"),
    [
        ("heif_ready", "phone.heic", "heif"),
        ("raw_ready", "camera.dng", "raw"),
        ("avif_ready", "web.avif", "avif"),
    ],
)
def test_a_missing_package_skips_with_the_extra_to_install(
    tmp_path, monkeypatch, ready, name, extra
):
    writers = {"heic": write_heic, "avif": write_avif, "dng": write_dng}
    path = writers[name.rsplit(".", 1)[1]](tmp_path / "photos" / name)
    monkeypatch.setattr(formats, ready, lambda: False)
    found = scan(tmp_path / "photos")
    assert found.files == [] and len(found.ignored) == 1
    reason = found.ignored[0][1]
    assert f"install searchclip[{extra}]" in reason
    with pytest.raises(ImageReadError, match=rf"install searchclip\[{extra}\]"):
        decode_image(path.read_bytes())  # e.g. a renamed file, or an upload
    assert scan(path).ignored == [(str(path), reason)]


# --- indexing through the library and the CLI ----------------------------------------------------


def photo_folder_of_formats(root: Path) -> Path:
    write_heic(root / "phone.heic", orientation=6)
    write_avif(root / "web.avif", orientation=6)
    write_dng(root / "camera_preview.dng", preview=(128, 96), orientation=6)
    write_dng(root / "camera_raw.dng")
    for name in ("phone.heic", "web.avif", "camera_preview.dng"):
        data = (root / name).read_bytes()
        (root / f"broken_{name}").write_bytes(data[: len(data) // 3])
    return root


def test_index_reads_heic_avif_and_dng(tmp_path, fake_model):
    photos = photo_folder_of_formats(tmp_path / "photos")
    with SearchEngine(tmp_path / "index", model=fake_model, batch_size=4) as engine:
        report = engine.index(photos)
        hits = {Path(hit.path).name: hit for hit in engine.search("a photo", k=10)}
    assert (report.new, report.failed) == (4, 3)
    assert {Path(f.path).name for f in report.failures} == {
        "broken_phone.heic",
        "broken_web.avif",
        "broken_camera_preview.dng",
    }
    assert all(f.reason for f in report.failures)
    sizes = {name: (hit.width, hit.height) for name, hit in hits.items()}
    assert sizes == {
        "phone.heic": (64, 96),
        "web.avif": (64, 96),
        "camera_preview.dng": (192, 256),
        "camera_raw.dng": (256, 192),
    }
    formats_seen = {name: hit.metadata.format for name, hit in hits.items()}
    assert formats_seen == {
        "phone.heic": "HEIF",
        "web.avif": "AVIF",
        "camera_preview.dng": "DNG",
        "camera_raw.dng": "DNG",
    }
    assert {hit.metadata.taken_at for hit in hits.values()} == {TAKEN_AT}
    assert hits["camera_raw.dng"].metadata.camera_model == "EOS R5"


def test_cli_indexes_formats_and_names_the_missing_extra(tmp_path, fake_model, monkeypatch):
    photos = photo_folder_of_formats(tmp_path / "photos")
    runner = CliRunner()
    index = ["--index", str(tmp_path / "index"), "--model", fake_model]
    result = runner.invoke(app, ["index", str(photos), *index])
    assert result.exit_code == 0, result.stderr
    assert "4 new" in result.stdout and "3 failed" in result.stdout
    query = runner.invoke(app, ["query", "a photo", "--index", str(tmp_path / "index"), "--json"])
    rows = [json.loads(line) for line in query.stdout.splitlines()]
    assert sorted(row["format"] for row in rows) == ["AVIF", "DNG", "DNG", "HEIF"]

    monkeypatch.setattr(formats, "heif_ready", lambda: False)
    other = ["--index", str(tmp_path / "other"), "--model", fake_model]
    result = runner.invoke(app, ["index", str(photos), *other])
    assert result.exit_code == 0, result.stderr
    assert "2 ignored (2 HEIF photo: install searchclip[heif]" in result.stdout
