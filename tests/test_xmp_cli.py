"""`searchclip xmp`, `searchclip tag --write-xmp`, and keywords read back at `searchclip index`
becoming `query --tag` filters, through Typer's CliRunner on real files and catalogs.

The colour pictures (see test_cli_tagging.py) each get their own colour as their one tag of the
colour vocabulary; people's keywords come from sidecars written as a photo manager would, and
from a JPEG whose embedded XMP and IPTC exiv2 wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pictures import COLOURS, colour_folder, tinted_picture
from test_cli import fails, invoke, json_hits, ok
from test_xmp import DARKTABLE, needs_exempi

from searchclip import SearchEngine
from searchclip._xmp import read_sidecar

pyexiv2 = pytest.importorskip("pyexiv2", reason="pyexiv2 (the test extra) writes the keywords")


@pytest.fixture
def colours(tmp_path: Path) -> dict[str, Path]:
    paths = colour_folder(tmp_path / "colours")
    paths["orange"] = paths["red"].with_name("orange.jpg")
    tinted_picture((240, 140, 20), 9).save(paths["orange"])
    with pyexiv2.Image(str(paths["orange"])) as opened:
        opened.modify_iptc({"Iptc.Application2.Keywords": ["Beach"]})
        opened.modify_xmp({"Xmp.dc.subject": ["sunset"]})
    paths["red"].with_name("red.png.xmp").write_text(DARKTABLE)  # Grandma, dog
    return paths


@pytest.fixture
def vocab(tmp_path: Path) -> Path:
    path = tmp_path / "colours.txt"
    path.write_text("\n".join(COLOURS) + "\n")
    return path


@pytest.fixture
def index_dir(tmp_path: Path, colours: dict[str, Path], fake_model: str) -> Path:
    index_dir = tmp_path / "index"
    ok("index", colours["red"].parent, "--index", index_dir, "--model", fake_model)
    return index_dir


def tagged_paths(index_dir: Path, *filters: str) -> set[str]:
    result = ok("query", *filters, "--index", index_dir, "--json", "-k", "20")
    return {Path(hit["path"]).name for hit in json_hits(result.stdout)}


def test_keywords_from_sidecars_and_embedded_metadata_filter_like_tags(index_dir, colours):
    assert tagged_paths(index_dir, "--tag", "grandma") == {"red.png"}  # any case
    assert tagged_paths(index_dir, "--tag", "beach") == {"orange.jpg"}  # IPTC
    assert tagged_paths(index_dir, "--tag", "Sunset") == {"orange.jpg"}  # embedded XMP
    assert "red.png" not in tagged_paths(index_dir, "a photo", "--no-tag", "dog")
    with SearchEngine(index_dir, create=False) as engine:
        hits = engine.search("a photo", k=10, tags=["DOG"])
        assert [Path(hit.path).name for hit in hits] == ["red.png"]
        assert [(k.keyword, k.source) for k in engine.keywords(colours["orange"])] == [
            ("Beach", "embedded"),
            ("sunset", "embedded"),
        ]
    fails("query", "--tag", "nobody-typed-this", "--index", index_dir, match="nobody-typed")
    shown = ok("tags", colours["red"], "--index", index_dir).stdout.splitlines()
    assert shown == ["keyword  Grandma  (sidecar)", "keyword  dog  (sidecar)"]


def test_a_sidecar_changed_alone_is_read_again(index_dir, colours):
    sidecar = colours["green"].with_name("green.png.xmp")
    sidecar.write_text(DARKTABLE.replace("Grandma", "Paris"))  # the image itself unchanged
    ok("index", colours["red"].parent, "--index", index_dir)
    assert tagged_paths(index_dir, "--tag", "paris") == {"green.png"}
    sidecar.unlink()
    colours["red"].with_name("red.png.xmp").write_text(DARKTABLE.replace("Grandma", "Grandpa"))
    ok("index", colours["red"].parent, "--index", index_dir)
    fails("query", "--tag", "paris", "--index", index_dir, match="paris")
    assert tagged_paths(index_dir, "--tag", "grandpa") == {"red.png"}
    fails("query", "--tag", "grandma", "--index", index_dir, match="grandma")


@needs_exempi
def test_tag_write_xmp_then_xmp_reruns_and_searchclips_keywords_are_not_read_back(
    index_dir, vocab, colours
):
    before = {name: path.read_bytes() for name, path in colours.items()}
    result = ok("tag", "--index", index_dir, "--vocab", vocab, "--top-k", "1", "--write-xmp")
    lines = result.stdout.splitlines()
    assert f"{colours['blue']}.xmp (new): +blue" in lines
    assert f"{colours['red']}.xmp: +red" in lines
    assert "wrote 5 sidecars (colours, darktable); 0 already up to date; 0 skipped" in (
        result.stderr
    )
    assert {name: path.read_bytes() for name, path in colours.items()} == before
    red = read_sidecar(f"{colours['red']}.xmp")
    assert red.subjects == ("Grandma", "dog", "red") and red.people() == ["Grandma", "dog"]

    again = ok("xmp", "--index", index_dir, "--vocab", vocab, "--json")
    report = json.loads(again.stdout)
    assert (report["written"], report["unchanged"], report["changes"]) == (0, 5, [])

    ok("index", colours["red"].parent, "--index", index_dir)
    with SearchEngine(index_dir, create=False) as engine:
        assert [k.keyword for k in engine.keywords(colours["blue"])] == []  # searchclip's own
        assert [k.keyword for k in engine.keywords(colours["red"])] == ["Grandma", "dog"]

    two = ok("tag", "--index", index_dir, "--vocab", vocab, "--top-k", "2", "--write-xmp")
    gained = [line.split(": ", 1)[1] for line in two.stdout.splitlines() if ".xmp" in line]
    assert len(gained) == 5 and all(g.count("+") == 1 and "-" not in g for g in gained)
    second = read_sidecar(f"{colours['red']}.xmp").subjects[3]  # red's new second label
    one = ok("tag", "--index", index_dir, "--vocab", vocab, "--top-k", "1", "--write-xmp")
    assert f"{colours['red']}.xmp: -{second}" in one.stdout.splitlines()
    assert read_sidecar(f"{colours['red']}.xmp").subjects == ("Grandma", "dog", "red")


@needs_exempi
def test_xmp_dry_run_and_lightroom_names(index_dir, vocab, colours):
    ok("tag", "--index", index_dir, "--vocab", vocab, "--top-k", "1")
    listed = sorted(p.name for p in colours["red"].parent.iterdir())
    result = ok(
        "xmp",
        "--index",
        index_dir,
        "--vocab",
        vocab,
        "--sidecar",
        "lightroom",
        "--root",
        "auto",
        "--dry-run",
    )
    assert f"{colours['green'].with_suffix('.xmp')} (new): +green" in result.stdout
    assert "would write 5 sidecars (colours, lightroom)" in result.stderr
    assert sorted(p.name for p in colours["red"].parent.iterdir()) == listed
    ok("xmp", "--index", index_dir, "--vocab", vocab, "--sidecar", "lightroom", "--root", "auto")
    green = read_sidecar(colours["green"].with_suffix(".xmp"))
    assert green.hierarchical == ("auto|green",)


def test_xmp_errors_are_one_line(index_dir, vocab, colours):
    fails("xmp", "--index", index_dir, "--vocab", vocab, match="never tagged with colours")
    fails("xmp", "--index", index_dir, "--sidecar", "picasa", match="unknown sidecar naming")


def test_a_pass_rereads_only_sidecars_changed_since_the_last(index_dir, colours):
    import os

    from searchclip._catalog import Catalog
    from searchclip._xmp import refresh_keywords

    sidecar = colours["red"].with_name("red.png.xmp")
    an_hour_ago = sidecar.stat().st_mtime - 3600
    os.utime(sidecar, (an_hour_ago, an_hour_ago))
    root = str(colours["red"].parent)
    with Catalog.open(index_dir / "catalog.sqlite") as catalog:
        assert refresh_keywords(catalog, root, []).files == 0
        assert refresh_keywords(catalog, root, [str(colours["orange"])]).files == 1
        sidecar.write_text("<broken")
        broken = refresh_keywords(catalog, root, [])
        assert (broken.files, [path for path, _ in broken.unreadable]) == (1, [str(sidecar)])
    with SearchEngine(index_dir, create=False) as engine:
        assert engine.keywords(colours["red"]) == []  # what the sidecar says now: nothing


def test_xmp_without_the_toolkit_is_one_line_naming_the_extra(index_dir, vocab, monkeypatch):
    import sys

    ok("tag", "--index", index_dir, "--vocab", vocab, "--top-k", "1")
    monkeypatch.setitem(sys.modules, "libxmp", None)
    fails("xmp", "--index", index_dir, "--vocab", vocab, match="pip install 'searchclip[xmp]'")
    dry = ok("xmp", "--index", index_dir, "--vocab", vocab, "--dry-run")  # reads only
    assert "would write 5 sidecars" in dry.stderr


def test_tag_refuses_sidecar_options_without_write_xmp(index_dir, vocab):
    result = invoke("tag", "--index", index_dir, "--vocab", vocab, "--dry-run")
    assert result.exit_code == 2 and "go with --write-xmp" in result.stderr
