"""`searchclip tag`, `searchclip tags`, `searchclip calibrate` and `searchclip query --tag/--no-tag`
through Typer's CliRunner: real output, exit codes and the one-line errors.

The index holds four mostly-red, -green, -blue and -yellow pictures, encoded by the fake model,
whose colour words land nearest pictures of their colour: each picture's best label of the
colour vocabulary is its own colour, which lets the tests check which tags are stored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pictures import COLOURS, colour_folder
from test_cli import fails, json_hits, ok, table_rows

TAG_REPORT_KEYS = {"vocabulary", "labels", "scored", "already", "tags", "rule", "elapsed_s"}


@pytest.fixture
def colours(tmp_path: Path) -> dict[str, Path]:
    return colour_folder(tmp_path / "colours")


@pytest.fixture
def vocab(tmp_path: Path) -> Path:
    path = tmp_path / "colours.txt"
    path.write_text("# the four colours of the pictures\n" + "\n".join(COLOURS) + "\n")
    return path


@pytest.fixture
def index_dir(tmp_path: Path, colours: dict[str, Path], fake_model: str) -> Path:
    index_dir = tmp_path / "index"
    ok("index", colours["red"].parent, "--index", index_dir, "--model", fake_model)
    return index_dir


def tag_report(*args) -> dict:
    report = json.loads(ok("tag", *args, "--json").stdout)
    assert report.keys() == TAG_REPORT_KEYS
    return report


def stored_tags(index_dir: Path, path: Path) -> list[dict]:
    lines = ok("tags", path, "--index", index_dir, "--json").stdout.splitlines()
    found = [json.loads(line) for line in lines]
    for item in found:
        assert item.keys() == {"label", "score", "vocabulary"}
    return found


# --- tag -------------------------------------------------------------------------------------


def test_tag_gives_each_image_its_top_k_labels(index_dir, vocab, colours):
    result = ok("tag", "--index", index_dir, "--vocab", vocab, "--top-k", "1")
    (line,) = result.stdout.splitlines()
    assert line.startswith(
        "tagged 4 images with colours (4 labels, top 1): 4 tags; 0 already tagged; "
    )
    assert line.endswith(" s")
    assert f"index: {index_dir}" in result.stderr.splitlines()
    for colour, path in colours.items():
        assert [item["label"] for item in stored_tags(index_dir, path)] == [colour]

    again = ok("tag", "--index", index_dir, "--vocab", vocab, "--top-k", "1").stdout
    assert "tagged 0 images" in again and "4 already tagged" in again


def test_tag_json_reports_the_run(index_dir, vocab, colours):
    report = tag_report("--index", index_dir, "--vocab", vocab, "--top-k", "2")
    assert {key: report[key] for key in ("vocabulary", "labels", "scored", "already", "tags")} == {
        "vocabulary": "colours",
        "labels": 4,
        "scored": 4,
        "already": 0,
        "tags": 8,
    }
    assert report["rule"] == "top 2"
    assert isinstance(report["elapsed_s"], float) and report["elapsed_s"] >= 0
    for colour, path in colours.items():
        found = stored_tags(index_dir, path)
        assert len(found) == 2 and found[0]["label"] == colour


def test_tag_threshold_keeps_every_label_that_passes_it(index_dir, vocab, colours):
    everything = tag_report("--index", index_dir, "--vocab", vocab, "--threshold", "-1")
    assert (everything["rule"], everything["scored"], everything["tags"]) == ("score >= -1", 4, 16)

    nothing = tag_report("--index", index_dir, "--vocab", vocab, "--threshold", "1")
    assert (nothing["scored"], nothing["tags"]) == (4, 0)  # another rule: everything re-tagged
    assert all(stored_tags(index_dir, path) == [] for path in colours.values())

    middle = tag_report("--index", index_dir, "--vocab", vocab, "--threshold", "0.2")
    kept = [item for path in colours.values() for item in stored_tags(index_dir, path)]
    assert 0 < middle["tags"] == len(kept) < 16
    assert all(item["score"] >= 0.2 for item in kept)


def test_tag_errors_are_one_line(index_dir, vocab, tmp_path):
    fails("tag", "--index", index_dir, "--vocab", tmp_path / "missing.txt", match="not found")
    duplicated = tmp_path / "twice.txt"
    duplicated.write_text("red\nblue\nRed\n")
    line = fails("tag", "--index", index_dir, "--vocab", duplicated, match="duplicates line 1")
    assert f"{duplicated}: line 3" in line
    blank = tmp_path / "blank.txt"
    blank.write_text("red\n\nblue\n")
    fails("tag", "--index", index_dir, "--vocab", blank, match="line 2 is empty")
    fails("tag", "--index", index_dir, "--vocab", vocab, "--top-k", "0", match="at least 1")
    fails("tag", "--index", tmp_path / "nowhere", "--vocab", vocab, match="no index at")


# --- tags ------------------------------------------------------------------------------------


def test_tags_lists_an_images_tags_best_first(index_dir, vocab, colours):
    ok("tag", "--index", index_dir, "--vocab", vocab, "--top-k", "3")
    result = ok("tags", colours["blue"], "--index", index_dir)
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    parsed = [line.split("  ") for line in lines]
    assert parsed[0][1] == "blue"
    assert all(vocabulary == "(colours)" for _, _, vocabulary in parsed)
    scores = [float(score) for score, _, _ in parsed]
    assert scores == sorted(scores, reverse=True)

    found = stored_tags(index_dir, colours["blue"])
    assert [(item["label"], round(item["score"], 4)) for item in found] == [
        (label, score) for (_, label, _), score in zip(parsed, scores, strict=True)
    ]
    assert {item["vocabulary"] for item in found} == {"colours"}


def test_tags_of_an_untagged_image_prints_nothing(index_dir, colours):
    assert ok("tags", colours["red"], "--index", index_dir).stdout == ""


def test_tags_of_an_image_not_in_the_index_is_an_error(index_dir, tmp_path):
    stranger = tmp_path / "stranger.png"
    line = fails("tags", stranger, "--index", index_dir, match="is not in this index")
    assert str(stranger) in line


# --- query --tag / --no-tag --------------------------------------------------------------------


@pytest.fixture
def tagged(index_dir: Path, vocab: Path) -> Path:
    """The colour index, each image tagged with its own colour only."""
    ok("tag", "--index", index_dir, "--vocab", vocab, "--top-k", "1")
    return index_dir


def test_query_by_tag_alone_lists_the_tagged_images(tagged, colours):
    rows = table_rows(ok("query", "--tag", "red", "--index", tagged).stdout)
    assert [(rank, path) for rank, _, path in rows] == [(1, str(colours["red"]))]
    (only,) = json_hits(ok("query", "--tag", "green", "--index", tagged, "--json").stdout)
    assert only["path"] == str(colours["green"])
    stored = stored_tags(tagged, colours["green"])[0]["score"]
    assert only["score"] == pytest.approx(stored, abs=1e-6)  # --json rounds to 6 places


def test_query_text_filtered_by_tags(tagged, colours):
    kept = ok("query", "a photo", "--tag", "red", "--index", tagged, "--paths").stdout
    assert kept.splitlines() == [str(colours["red"])]
    others = ok("query", "a photo", "--no-tag", "red", "--index", tagged, "--paths").stdout
    assert sorted(others.splitlines()) == sorted(str(p) for c, p in colours.items() if c != "red")
    none = ok("query", "a photo", "--tag", "red", "--tag", "blue", "--index", tagged, "--paths")
    assert none.stdout == ""  # no image carries both


def test_query_image_and_tag_only_queries_filtered_by_tags(tagged, colours):
    probe = colours["blue"]
    hits = json_hits(
        ok("query", "--image", probe, "--no-tag", "blue", "--index", tagged, "--json").stdout
    )
    assert len(hits) == 3 and str(probe) not in {hit["path"] for hit in hits}
    assert ok(
        "query", "--tag", "red", "--no-tag", "red", "--index", tagged
    ).stdout.splitlines() == ["rank  score   path"]


def test_query_by_an_unknown_tag_is_an_error(tagged):
    line = fails("query", "--tag", "purple", "--index", tagged, match="no vocabulary tagged")
    assert "'purple'" in line
    fails("query", "a photo", "--no-tag", "purple", "--index", tagged, match="'purple'")


def test_query_by_tag_before_any_tagging_is_an_error(index_dir):
    fails("query", "--tag", "red", "--index", index_dir, match="has the label 'red'")


# --- calibrate -------------------------------------------------------------------------------


def write_labels(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.fixture
def labels(colours: dict[str, Path]) -> Path:
    """Each colour picture labelled with its colour; ``file`` relative to the labels file."""
    records = [{"file": path.name, "labels": [colour]} for colour, path in colours.items()]
    return write_labels(colours["red"].parent / "labels.jsonl", records)


def test_calibrate_stores_thresholds_that_the_next_tag_run_uses(tagged, vocab, labels):
    result = ok("calibrate", "--labels", labels, "--index", tagged, "--vocab", vocab)
    first, second = result.stdout.splitlines()
    assert first == "calibrated 4 labels of colours"
    before, after = (float(word.rstrip(",")) for word in second.split() if word[0].isdigit())
    assert second == (f"macro-F1 before {before:.4f}, after {after:.4f} (on the calibration set)")
    assert 0 <= before <= after <= 1

    report = tag_report("--index", tagged, "--vocab", vocab)
    assert report["rule"] == "calibrated per-label thresholds"
    assert report["scored"] == 4  # a new rule re-tags every image
    info = ok("info", "--index", tagged).stdout.splitlines()
    assert "tags:     colours: 4 labels, 4 images tagged, 4 calibrated" in info


def test_calibrate_json(tagged, vocab, labels):
    result = json.loads(
        ok("calibrate", "--labels", labels, "--index", tagged, "--vocab", vocab, "--json").stdout
    )
    assert result.keys() == {"vocabulary", "labels_calibrated", "macro_f1_before", "macro_f1_after"}
    assert (result["vocabulary"], result["labels_calibrated"]) == ("colours", 4)
    assert result["macro_f1_before"] <= result["macro_f1_after"] <= 1


def test_calibrate_reads_images_without_adding_them(tagged, vocab, colours, tmp_path):
    from pictures import tinted_picture

    outside = tmp_path / "outside"
    outside.mkdir()
    tinted_picture(COLOURS["red"], seed=40).save(outside / "also-red.png")
    labels = write_labels(
        outside / "labels.jsonl",
        [
            {"file": "also-red.png", "labels": ["red"]},
            {"file": str(colours["blue"]), "labels": ["blue"]},  # an absolute path is kept
        ],
    )
    result = json.loads(
        ok("calibrate", "--labels", labels, "--index", tagged, "--vocab", vocab, "--json").stdout
    )
    assert result["labels_calibrated"] == 2
    assert "images:   4" in ok("info", "--index", tagged).stdout.splitlines()


def test_calibrate_errors_are_one_line(tagged, vocab, colours, tmp_path):
    unknown = write_labels(
        tmp_path / "unknown.jsonl", [{"file": str(colours["red"]), "labels": ["cat"]}]
    )
    line = fails(
        "calibrate", "--labels", unknown, "--index", tagged, "--vocab", vocab, match="no label"
    )
    assert "colours" in line or str(vocab) in line

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"file": str(colours["red"]), "labels": ["red"]}) + "\n{oops\n")
    fails("calibrate", "--labels", broken, "--index", tagged, "--vocab", vocab, match="line 2")
    fails(
        "calibrate",
        "--labels",
        tmp_path / "absent.jsonl",
        "--index",
        tagged,
        "--vocab",
        vocab,
        match="does not exist",
    )
    fails(
        "calibrate",
        "--labels",
        unknown,
        "--index",
        tagged,
        "--vocab",
        tmp_path / "missing.txt",
        match="not found",
    )
