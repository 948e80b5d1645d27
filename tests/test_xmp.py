"""XMP sidecars: searchclip's writer (Adobe's toolkit through exempi) checked by another real
parser (exiv2, through pyexiv2), merges with sidecars as photo managers write them, and the
keyword reader against files that exiv2 wrote."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from PIL import Image

from searchclip._errors import InvalidArgumentError, MissingExtraError
from searchclip._xmp import (
    InvalidSidecarError,
    embedded_keywords,
    parse_xmp,
    read_sidecar,
    sidecar_path,
)

pyexiv2 = pytest.importorskip("pyexiv2", reason="pyexiv2 (the test extra) checks what is written")


def _exempi_missing() -> str | None:
    try:
        import libxmp  # noqa: F401
    except Exception as exc:  # libxmp raises its own error when libexempi is not installed
        return f"writing needs python-xmp-toolkit and libexempi8: {exc}"
    return None


needs_exempi = pytest.mark.skipif(_exempi_missing() is not None, reason=str(_exempi_missing()))

DARKTABLE = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
   xmp:Rating="3"
   xmpMM:DerivedFrom="IMG_1.jpg"
   darktable:import_timestamp="63839462400000000"
   darktable:xmp_version="5"
   darktable:history_end="2">
   <dc:subject>
    <rdf:Bag>
     <rdf:li>Grandma</rdf:li>
     <rdf:li>dog</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <lr:hierarchicalSubject>
    <rdf:Bag>
     <rdf:li>people|Grandma</rdf:li>
    </rdf:Bag>
   </lr:hierarchicalSubject>
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:num="0" darktable:operation="exposure" darktable:enabled="1"
      darktable:modversion="6" darktable:params="00000000" darktable:multi_name=""/>
     <rdf:li darktable:num="1" darktable:operation="colorin" darktable:enabled="1"
      darktable:modversion="7" darktable:params="gz48eJxjYBgF" darktable:multi_name=""/>
    </rdf:Seq>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""

DIGIKAM = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
   xmp:Rating="5"
   photoshop:City="Lyon">
   <digiKam:TagsList>
    <rdf:Seq>
     <rdf:li>Family/Grandma</rdf:li>
     <rdf:li>Places/Lyon</rdf:li>
    </rdf:Seq>
   </digiKam:TagsList>
   <dc:title>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">Sunday lunch</rdf:li>
    </rdf:Alt>
   </dc:title>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>Grandma</rdf:li>
     <rdf:li>Lyon</rdf:li>
    </rdf:Bag>
   </dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""

LIGHTROOM = """<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0-c000 1.000000">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
   crs:Version="15.0"
   crs:Exposure2012="+0.35"
   crs:WhiteBalance="As Shot"
   xmp:Label="Red">
   <crs:ToneCurvePV2012>
    <rdf:Seq>
     <rdf:li>0, 0</rdf:li>
     <rdf:li>255, 255</rdf:li>
    </rdf:Seq>
   </crs:ToneCurvePV2012>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>Holiday 2024</rdf:li>
     <rdf:li>Doe, John</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <lr:hierarchicalSubject>
    <rdf:Bag>
     <rdf:li>Trips|Holiday 2024</rdf:li>
    </rdf:Bag>
   </lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""

OURS = {"Xmp.dc.subject", "Xmp.lr.hierarchicalSubject"}


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "IMG_1.jpg"
    Image.new("RGB", (16, 12), (200, 40, 40)).save(path)
    return path


def export(image: Path, labels: list[str], **options):
    from searchclip._xmp_write import export_sidecars

    settings = {"vocabulary": "test", "style": "darktable", "root": "searchclip", "dry_run": False}
    return export_sidecars([(str(image), labels)], **{**settings, **options})


def exiv2_reads(path: Path) -> dict:
    with pyexiv2.Image(str(path)) as opened:
        return opened.read_xmp()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sidecar_names():
    assert sidecar_path("/p/IMG_1.jpg") == Path("/p/IMG_1.jpg.xmp")
    assert sidecar_path("/p/IMG_1.jpg", "lightroom") == Path("/p/IMG_1.xmp")


@needs_exempi
def test_a_new_sidecar_is_what_exiv2_reads_and_the_image_is_untouched(image):
    before = digest(image)
    report = export(image, ["dog", "beach"])
    sidecar = image.with_name("IMG_1.jpg.xmp")
    assert [(c.sidecar, c.added, c.removed, c.created) for c in report.changes] == [
        (str(sidecar), ("dog", "beach"), (), True)
    ]
    found = exiv2_reads(sidecar)
    assert found["Xmp.dc.subject"] == ["dog", "beach"]
    assert found["Xmp.lr.hierarchicalSubject"] == ["searchclip|dog", "searchclip|beach"]
    text = sidecar.read_text()
    assert "<rdf:Bag>" in text and "<rdf:Seq>" not in text  # dc:subject is a Bag by its schema
    assert digest(image) == before
    assert read_sidecar(sidecar).people() == []  # all of it is searchclip's


@needs_exempi
@pytest.mark.parametrize("made_by", [DARKTABLE, DIGIKAM, LIGHTROOM], ids=["dt", "dk", "lr"])
def test_a_photo_managers_sidecar_keeps_everything_it_had(image, made_by):
    sidecar = image.with_name("IMG_1.jpg.xmp")
    sidecar.write_text(made_by, encoding="utf-8")
    before = exiv2_reads(sidecar)
    export(image, ["cat", "sofa"])
    after = exiv2_reads(sidecar)
    others = {k: v for k, v in before.items() if k not in OURS}
    assert {k: v for k, v in after.items() if k in others} == others  # every field kept
    assert after["Xmp.dc.subject"] == before["Xmp.dc.subject"] + ["cat", "sofa"]
    theirs = before.get("Xmp.lr.hierarchicalSubject", [])
    assert after["Xmp.lr.hierarchicalSubject"] == [*theirs, "searchclip|cat", "searchclip|sofa"]
    assert read_sidecar(sidecar).people() == before["Xmp.dc.subject"]


@needs_exempi
def test_a_rerun_after_retagging_removes_only_searchclips_stale_keywords(image):
    sidecar = image.with_name("IMG_1.jpg.xmp")
    sidecar.write_text(DARKTABLE, encoding="utf-8")  # the user's Grandma and dog
    export(image, ["beach", "umbrella"])
    report = export(image, ["surfboard"])
    assert [(c.added, c.removed) for c in report.changes] == [
        (("surfboard",), ("beach", "umbrella"))
    ]
    found = exiv2_reads(sidecar)
    assert found["Xmp.dc.subject"] == ["Grandma", "dog", "surfboard"]
    assert found["Xmp.lr.hierarchicalSubject"] == ["people|Grandma", "searchclip|surfboard"]
    assert found["Xmp.darktable.history_end"] == "2"


@needs_exempi
def test_a_user_keyword_equal_to_a_label_survives_its_label_going(image):
    sidecar = image.with_name("IMG_1.jpg.xmp")
    sidecar.write_text(DARKTABLE, encoding="utf-8")  # the user typed "dog"
    report = export(image, ["dog"])
    assert report.changes[0].added == ()  # only the hierarchical entry was new
    assert read_sidecar(sidecar).people() == ["Grandma", "dog"]  # still the user's
    export(image, [])  # dog is no longer a tag
    assert exiv2_reads(sidecar)["Xmp.dc.subject"] == ["Grandma", "dog"]
    assert "Xmp.lr.hierarchicalSubject" in exiv2_reads(sidecar)


@needs_exempi
def test_an_unchanged_sidecar_is_not_rewritten(image):
    export(image, ["dog"])
    sidecar = image.with_name("IMG_1.jpg.xmp")
    stamp = sidecar.stat().st_mtime_ns, sidecar.read_bytes()
    report = export(image, ["dog"])
    assert (report.changes, report.unchanged) == ((), 1)
    assert (sidecar.stat().st_mtime_ns, sidecar.read_bytes()) == stamp
    assert export(image.with_name("none.jpg"), []).skipped == (
        (str(image.parent / "none.jpg"), "image not found"),
    )


@needs_exempi
@pytest.mark.parametrize(
    "text", ["not xml at all <<<", "<html><body>a web page</body></html>", ""], ids=str
)
def test_an_invalid_sidecar_is_left_untouched_and_reported(image, text):
    sidecar = image.with_name("IMG_1.jpg.xmp")
    sidecar.write_text(text)
    report = export(image, ["dog"])
    assert report.changes == ()
    ((skipped, why),) = report.skipped
    assert skipped == str(image) and "left untouched" in why and "\n" not in why
    assert sidecar.read_text() == text
    assert sorted(p.name for p in image.parent.iterdir()) == ["IMG_1.jpg", "IMG_1.jpg.xmp"]


def test_a_dry_run_writes_nothing(image):
    lightroom = image.with_name("IMG_1.xmp")
    lightroom.write_text(LIGHTROOM)
    before = {p.name: p.read_bytes() for p in image.parent.iterdir()}
    report = export(image, ["dog"], style="lightroom", dry_run=True)
    assert report.dry_run and report.written == 0
    assert [(c.sidecar, c.added, c.created) for c in report.changes] == [
        (str(lightroom), ("dog",), False)
    ]
    assert {p.name: p.read_bytes() for p in image.parent.iterdir()} == before


def test_writing_without_the_toolkit_names_the_extra(image, monkeypatch):
    monkeypatch.setitem(sys.modules, "libxmp", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'searchclip\[xmp\]'") as caught:
        export(image, ["dog"])
    assert caught.value.extra == "xmp"


def test_bad_sidecar_options_are_refused():
    from searchclip._xmp_write import check_style

    with pytest.raises(InvalidArgumentError, match="darktable"):
        check_style("picasa", "searchclip")
    with pytest.raises(InvalidArgumentError, match="root"):
        check_style("darktable", "a|b")


# --- reading ---------------------------------------------------------------------------------


def test_the_reader_agrees_with_exiv2_on_sidecars_exiv2_wrote(tmp_path):
    sidecar = tmp_path / "a.jpg.xmp"
    sidecar.write_text(DIGIKAM)
    with pyexiv2.Image(str(sidecar)) as opened:  # exiv2 rewrites it, with new keywords
        opened.modify_xmp({"Xmp.dc.subject": ["Grandma", "Lyon", "Doe, John", "été"]})
    assert read_sidecar(sidecar).people() == exiv2_reads(sidecar)["Xmp.dc.subject"]
    assert read_sidecar(sidecar).people() == ["Grandma", "Lyon", "Doe, John", "été"]


def test_the_reader_refuses_what_is_not_xmp():
    for text in ("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", "<html/>", "{"):
        with pytest.raises(InvalidSidecarError):
            parse_xmp(text)


def test_embedded_xmp_and_iptc_keywords_are_read(image):
    with pyexiv2.Image(str(image)) as opened:
        opened.modify_iptc({"Iptc.Application2.Keywords": ["beach", "Grandma"]})
        opened.modify_xmp({"Xmp.dc.subject": ["sunset", "beach"]})
    assert embedded_keywords(image) == ["sunset", "beach", "Grandma"]
    plain = image.with_name("plain.png")
    Image.new("RGB", (4, 4)).save(plain)
    assert embedded_keywords(plain) == []
    assert embedded_keywords(image.with_name("missing.jpg")) == []


@pytest.mark.parametrize("suffix", [".tif", ".png", ".webp"])
def test_embedded_xmp_is_read_from_other_formats(tmp_path, suffix):
    path = tmp_path / f"picture{suffix}"
    Image.new("RGB", (8, 8), (10, 200, 10)).save(path)
    with pyexiv2.Image(str(path)) as opened:
        opened.modify_xmp({"Xmp.dc.subject": ["meadow", "Été"]})
    assert embedded_keywords(path) == ["meadow", "Été"]
