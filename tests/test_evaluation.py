"""Calibration and the eval commands: plumbing on real data sets, semantics on small ones.

The tiny test model is random, so its figures mean nothing; these tests prove that real files
parse, that the right images are compared with the right labels and captions, and that
calibration is stored and used. The bundled shapes model's figures are in test_shapes_model.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pictures import SHARED_DATA, write_picture
from typer.testing import CliRunner

from searchclip import InvalidArgumentError, SearchEngine
from searchclip._cli import app
from searchclip._evaluation import (
    calibrate,
    evaluate_retrieval,
    evaluate_tagging,
    evaluate_zeroshot,
    read_examples,
)

needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason="../shared/data not found: real-data evaluation tests need it"
)


def cli(*args) -> dict:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def labelled(tmp_path) -> Path:
    """Eight pictures with labels from a 3-label vocabulary, and that vocabulary."""
    folder = tmp_path / "set"
    lines = []
    for i in range(8):
        write_picture(folder / "images" / f"p{i}.png", seed=i)
        labels = [["cat"], ["dog"], ["cat", "dog"], ["bird"]][i % 4]
        lines.append(json.dumps({"file": f"images/p{i}.png", "labels": labels}))
    (folder / "labels.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "classes.txt").write_text("cat\ndog\nbird\n")
    return folder


def test_read_examples_resolves_paths_and_names_bad_lines(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text('{"file": "images/a.jpg", "labels": ["x"]}\n\n')
    (example,) = read_examples(good, "labels")
    assert example.path == str(tmp_path / "images" / "a.jpg") and example.values == ("x",)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"file": "a.jpg", "labels": ["x"]}\n{"file": "b.jpg"}\n')
    with pytest.raises(InvalidArgumentError, match="line 2"):
        read_examples(bad, "labels")
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        read_examples(tmp_path / "missing.jsonl", "labels")


def test_tagging_evaluation_counts_images_and_labels(tmp_path, model, labelled):
    with SearchEngine(tmp_path / "index", model=model) as engine:
        result = evaluate_tagging(engine, labelled / "labels.jsonl", str(labelled / "classes.txt"))
        assert (result["images"], result["labels_evaluated"], result["unknown_labels"]) == (8, 3, 0)
        assert set(result["per_label"]) == {"cat", "dog", "bird"}
        assert 0 < result["mAP"] <= 1 and 0 <= result["macro_f1"] <= 1
        assert engine.info().files == 8  # a temporary-style index holds the evaluation images


def test_calibration_is_stored_and_used_by_the_next_tag_run(tmp_path, model, photos, labelled):
    vocab = str(labelled / "classes.txt")
    with SearchEngine(tmp_path / "index", model=model) as engine:
        engine.index(photos)
        engine.tag(vocab, top_k=1)
        result = calibrate(engine, labelled / "labels.jsonl", vocab, top_k=1)
        assert result["labels_calibrated"] == 3
        assert result["macro_f1_after"] >= result["macro_f1_before"]
        assert engine.info().files == 6  # calibration images were read, not added
        report = engine.tag(vocab, top_k=1)
        assert report.rule == "calibrated per-label thresholds" and report.scored == 6


def test_labels_outside_the_vocabulary_are_an_error(tmp_path, model, labelled):
    other = tmp_path / "other.txt"
    other.write_text("car\nboat\n")
    with (
        SearchEngine(tmp_path / "index", model=model) as engine,
        pytest.raises(InvalidArgumentError, match="no label"),
    ):
        evaluate_tagging(engine, labelled / "labels.jsonl", str(other))


def test_zeroshot_on_a_small_set(tmp_path, model, labelled):
    single = labelled / "single.jsonl"
    records = [json.loads(line) for line in (labelled / "labels.jsonl").read_text().splitlines()]
    single.write_text(
        "\n".join(json.dumps({**r, "labels": r["labels"][:1]}) for r in records) + "\n"
    )
    with SearchEngine(tmp_path / "index", model=model) as engine:
        result = evaluate_zeroshot(engine, single, labelled / "classes.txt")
    assert result["classes"] == 3 and result["images"] == 8
    assert result["top1"] <= result.get("top5", 1.0)
    assert "top5" not in result  # 3 classes: top-5 is meaningless


def test_retrieval_pairs_each_caption_with_its_own_image(tmp_path, model, labelled):
    captions = labelled / "captions.jsonl"
    captions.write_text(
        "\n".join(
            json.dumps({"file": f"images/p{i}.png", "captions": [f"picture {i}", f"photo {i}"]})
            for i in range(8)
        )
    )
    with SearchEngine(tmp_path / "index", model=model) as engine:
        result = evaluate_retrieval(engine, captions)
    assert (result["images"], result["captions"]) == (8, 16)
    for direction in ("text_to_image", "image_to_text"):
        r = result[direction]
        assert 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] == 1.0  # 8 images: all within 10


@needs_shared
@pytest.mark.slow
def test_eval_commands_on_the_real_data_sets(model):
    tagging = cli(
        "eval", "tagging", "--labels", SHARED_DATA / "coco128_multilabel" / "labels.jsonl",
        "--model", model, "--json",
    )  # fmt: skip
    assert tagging["images"] == 256 and tagging["labels_evaluated"] == 76
    assert {"mAP", "macro_f1", "micro_f1", "per_label"} <= tagging.keys()
    retrieval = cli(
        "eval", "retrieval", "--captions", SHARED_DATA / "coco_mini_captions" / "captions.jsonl",
        "--model", model, "--json",
    )  # fmt: skip
    assert retrieval["images"] == 159 and retrieval["captions"] == 795
    assert set(retrieval["text_to_image"]) == {"R@1", "R@5", "R@10"}
    imagenette = SHARED_DATA / "imagenette_val"
    zeroshot = cli(
        "eval", "zeroshot", "--labels", imagenette / "labels.jsonl",
        "--classes", imagenette / "classes.txt", "--model", model, "--json",
    )  # fmt: skip
    assert (zeroshot["images"], zeroshot["classes"]) == (1000, 10)
    assert 0 <= zeroshot["top1"] <= zeroshot["top5"] <= 1
