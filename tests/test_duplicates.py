"""Near-duplicate reports: real pictures and real copies of them (Pillow), a real index built
through SearchEngine with the fake model, the library call and `searchclip duplicates`."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from pictures import COCO_IMAGES, picture
from PIL import Image
from test_cli import fails, ok

from searchclip import InvalidArgumentError, SearchEngine
from searchclip._duplicate_fit import near_copies, threshold_between
from searchclip._duplicates import duplicate_components
from searchclip._perceptual_hash import hash_codes, hash_distance, perceptual_hash
from searchclip._vector_index import hamming_pairs, similar_pairs


def photo(seed: int) -> Image.Image:
    """A photo-like picture: smooth structure, so that copies keep its look (blocky random
    pictures have no low frequencies to keep)."""
    return (
        picture(seed, (240, 180))
        .resize((30, 22), Image.Resampling.BOX)
        .resize((240, 180), Image.Resampling.BICUBIC)
    )


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """Three originals with a resized copy, a re-compressed copy and an exact copy of the
    first, a brightened copy of the second, and four distinct pictures."""
    root = tmp_path / "library"
    (root / "copies").mkdir(parents=True)
    for seed in range(7):
        photo(seed).save(root / f"photo{seed}.png")
    first = photo(0)
    first.resize((120, 90), Image.Resampling.LANCZOS).save(root / "copies" / "small.png")
    first.save(root / "copies" / "resaved.jpg", quality=60)
    shutil.copy(root / "photo0.png", root / "copies" / "exact.png")
    near_copies(photo(1))[3].save(root / "copies" / "brighter.png")
    return root


@pytest.fixture
def index_dir(tmp_path: Path, library: Path, fake_model: str) -> Path:
    with SearchEngine(tmp_path / "index", model=fake_model) as engine:
        engine.index(library)
    return tmp_path / "index"


def names(group) -> set[str]:
    return {Path(image.path).name for image in group.images}


def test_copies_are_grouped_and_distinct_pictures_are_not(index_dir: Path):
    with SearchEngine(index_dir, create=False) as engine:
        report = engine.duplicates()
    groups = sorted((names(group) for group in report.groups), key=len, reverse=True)
    assert groups == [
        {"photo0.png", "small.png", "resaved.jpg", "exact.png"},
        {"photo1.png", "brighter.png"},
    ]
    first = report.groups[0]
    assert first.keep.width == 240  # the full-size picture, not the half-size copy
    exact = {Path(image.path).name for image in first.images if image.exact_copy}
    assert exact == {"photo0.png", "exact.png"}
    assert not first.exact and "content" in first.linked_by
    assert report.images == 11 and report.duplicates == 4 and report.hashes_filled == 0
    assert report.threshold.source == "fitted" and 0 < report.threshold.value < 1


def test_the_fitted_threshold_is_stored_and_reused_and_can_be_overridden(index_dir: Path):
    with SearchEngine(index_dir, create=False) as engine:
        fitted = engine.duplicates().threshold
        again = engine.duplicates().threshold
        given = engine.duplicates(threshold=0.9999, by="embedding")
        hash_only = engine.duplicates(by="hash")
        with pytest.raises(InvalidArgumentError, match="grouping"):
            engine.duplicates(by="colour")
        with pytest.raises(InvalidArgumentError, match="cosine"):
            engine.duplicates(threshold=1.5)
    assert again.source == "stored" and again.value == fitted.value
    assert fitted.sample == 11 and fitted.copies > fitted.distinct and fitted.separates
    assert given.threshold.source == "given"
    # at a cosine of nearly 1 the brightened copy no longer links; the exact copy always does
    assert {"photo0.png", "exact.png"} in [names(group) for group in given.groups]
    assert not any("photo1.png" in names(group) for group in given.groups)
    assert hash_only.threshold.value is None and len(hash_only.groups) == 2


def test_an_index_from_before_hashes_gets_them_filled_once(index_dir: Path, library: Path):
    catalog = index_dir / "catalog.sqlite"
    with sqlite3.connect(catalog) as db:
        before = dict(db.execute("SELECT path, perceptual_hash FROM files"))
        db.execute("UPDATE files SET perceptual_hash = NULL")
    assert all(value is not None for value in before.values())  # indexing computed them
    (library / "photo6.png").unlink()  # gone since: reported, never an error
    with SearchEngine(index_dir, create=False) as engine:
        report = engine.duplicates()
        again = engine.duplicates()
    assert report.hashes_filled == 10 and again.hashes_filled == 0
    assert [Path(f.path).name for f in report.hash_failures] == ["photo6.png"]
    with sqlite3.connect(catalog) as db:
        after = dict(db.execute("SELECT path, perceptual_hash FROM files"))
    # the hash of the backfill's decode (short side >= 64) is that of the indexer's (>= the
    # model's input, 32 for the fake model) or within half the distance limit
    for path, value in after.items():
        if value is not None:
            assert hash_distance(value, before[path]) <= 4, path
    assert len(report.groups) == 2


def test_a_moved_file_keeps_its_hash(index_dir: Path, library: Path):
    catalog = index_dir / "catalog.sqlite"
    (library / "photo2.png").rename(library / "moved.png")
    with SearchEngine(index_dir, create=False) as engine:
        assert engine.index(library).moved == 1
    with sqlite3.connect(catalog) as db:
        (value,) = db.execute("SELECT perceptual_hash FROM files WHERE path LIKE '%moved.png'")
    assert hash_distance(value[0], perceptual_hash(photo(2))) <= 4


def test_cli_table_json_and_contact_sheet(index_dir: Path, tmp_path: Path):
    table = ok("duplicates", "--index", index_dir)
    assert table.stdout.count("group ") == 2
    assert "exact copy" in table.stdout and "keep " in table.stdout
    assert "2 groups, 4 copies among 11 images" in table.stderr
    report = json.loads(ok("duplicates", "--index", index_dir, "--json").stdout)
    assert [len(group["images"]) for group in report["groups"]] == [4, 2]
    assert report["threshold"]["source"] == "stored"
    sheet = tmp_path / "sheet.html"
    ok("duplicates", "--index", index_dir, "--html", sheet)
    page = sheet.read_text()
    assert page.count("<section>") == 2 and page.count("data:image/") == 6
    assert "resaved.jpg" in page and "exact copy" in page and "http" not in page
    fails("duplicates", "--index", index_dir, "--threshold", "2", match="cosine")


def test_perceptual_hash_is_imagehash_phash_bit_for_bit():
    imagehash = pytest.importorskip("imagehash")
    for seed in range(5):
        image = photo(seed)
        assert perceptual_hash(image) & (2**64 - 1) == int(str(imagehash.phash(image)), 16)


@pytest.mark.skipif(not COCO_IMAGES.is_dir(), reason="needs ../shared/data (COCO photos)")
def test_real_photos_copies_stay_close_and_others_far():
    paths = sorted(COCO_IMAGES.glob("*.jpg"))[:12]
    hashes = [perceptual_hash(Image.open(path).convert("RGB")) for path in paths]
    for path, value in zip(paths, hashes, strict=True):
        for copy in near_copies(Image.open(path))[:2]:  # resized, re-compressed
            assert hash_distance(value, perceptual_hash(copy)) <= 4, path
    distances = [hash_distance(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distances) > 8


def test_self_joins_find_close_pairs_exactly_and_approximately(monkeypatch):
    from searchclip._vector_index import neighbours

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    vectors[1500:1600] = vectors[:100] + 0.05 * rng.standard_normal((100, 32))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    a, b, scores = similar_pairs(vectors, 0.95)
    assert {(int(x), int(y)) for x, y in zip(a, b, strict=True)} == {
        (i, 1500 + i) for i in range(100)
    }
    assert (scores >= 0.95).all()
    monkeypatch.setattr(neighbours, "EXACT_SELF_JOIN_MAX", 100)  # the IVF path
    a, b, _ = similar_pairs(vectors, 0.95)
    assert (
        len(set(zip(a.tolist(), b.tolist(), strict=True)) - {(i, 1500 + i) for i in range(100)})
        == 0
    )
    assert len(a) >= 95
    codes = rng.integers(-(2**63), 2**63 - 1, 500, dtype=np.int64)
    codes[7] = codes[3] ^ 0b10110001  # 4 bits
    codes[9] = codes[3] ^ (0x1FF << 20)  # 9 bits: over a limit of 8
    a, b, distances = hamming_pairs(hash_codes(codes), 8)
    assert list(zip(a.tolist(), b.tolist(), distances.tolist(), strict=True)) == [(3, 7, 4)]


def test_components_join_chains_and_say_which_rule_linked_them():
    vectors = np.eye(6, dtype=np.float32)
    vectors[1] = vectors[0]
    hashes = np.array([0, 1 << 40, 3, -1, -2, 7], np.int64)
    known = np.array([True, True, True, True, True, False])
    content = ["a", "b", "c", "d", "e", "c"]
    found = duplicate_components(vectors, content, hashes, known, threshold=0.99)
    pairs = {
        tuple(rows.tolist()): rules for rows, rules in zip(found.rows, found.linked_by, strict=True)
    }
    assert pairs == {(0, 1, 2, 5): ("content", "hash", "embedding"), (3, 4): ("hash",)}


def test_threshold_lies_between_copies_and_distinct_or_at_distinct():
    copies, distinct = np.linspace(0.95, 1.0, 50), np.linspace(0.5, 0.8, 50)
    value, low, high = threshold_between(copies, distinct)
    assert high < value < low
    value, low, high = threshold_between(np.full(10, 0.9), np.full(10, 0.95))
    assert value == pytest.approx(0.95)  # no gap: different photos are never merged


def test_a_model_that_does_not_separate_copies_groups_by_hash_only(index_dir: Path):
    with SearchEngine(index_dir, create=False) as engine:
        fitted = engine.duplicates().threshold
        stored = {**vars(fitted), "value": 0.1, "separates": False}
        engine._catalog.duplicate_rows.set_threshold(fitted.model, stored)
        default = engine.duplicates()
        forced = engine.duplicates(by="embedding")
    assert not default.embedding_used and len(default.groups) == 2  # cosine 0.1 would merge all
    assert forced.embedding_used  # and at cosine 0.1 it merges distinct pictures
    assert sum(len(group.images) for group in forced.groups) > 6
