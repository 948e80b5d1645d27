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
from searchclip._errors import FileError
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
    with pytest.raises(FileError, match="line 2") as raised:
        read_examples(bad, "labels")
    assert raised.value.path == str(bad)
    bad.write_text('{"file": "a.jpg", "labels": "x"}\n')  # a string, not a list of labels
    with pytest.raises(FileError, match="line 1"):
        read_examples(bad, "labels")
    with pytest.raises(FileError, match="does not exist") as raised:
        read_examples(tmp_path / "missing.jsonl", "labels")
    assert raised.value.path == str(tmp_path / "missing.jsonl")


def test_an_image_that_cannot_be_indexed_is_named_with_its_reason(tmp_path, model, labelled):
    broken = labelled / "images" / "p0.png"
    broken.write_bytes(b"not an image")
    with (
        SearchEngine(tmp_path / "index", model=model) as engine,
        pytest.raises(FileError, match="1 evaluation images could not be indexed") as raised,
    ):
        evaluate_tagging(engine, labelled / "labels.jsonl", str(labelled / "classes.txt"))
    assert raised.value.path == str(broken)
    assert str(raised.value).startswith(
        f"1 evaluation images could not be indexed, e.g. {broken}: "
    )


def test_tagging_evaluation_counts_images_and_labels(tmp_path, model, labelled):
    with SearchEngine(tmp_path / "index", model=model) as engine:
        result = evaluate_tagging(engine, labelled / "labels.jsonl", str(labelled / "classes.txt"))
        assert (result.images, result.labels_evaluated, result.unknown_labels) == (8, 3, 0)
        assert set(result.per_label_average_precision) == {"cat", "dog", "bird"}
        assert 0 < result.mean_average_precision <= 1 and 0 <= result.macro_f1 <= 1
        assert engine.info().files == 8  # a temporary-style index holds the evaluation images


def test_calibration_is_stored_and_used_by_the_next_tag_run(tmp_path, model, photos, labelled):
    vocab = str(labelled / "classes.txt")
    with SearchEngine(tmp_path / "index", model=model) as engine:
        engine.index(photos)
        engine.tag(vocab, top_k=1)
        result = calibrate(engine, labelled / "labels.jsonl", vocab, top_k=1)
        assert result.labels_calibrated == 3
        assert result.macro_f1_after >= result.macro_f1_before
        assert engine.info().files == 6  # calibration images were read, not added
        report = engine.tag(vocab, top_k=1)
        assert report.rule == "calibrated per-label thresholds" and report.scored == 6


def test_labels_outside_the_vocabulary_are_an_error(tmp_path, model, labelled):
    other = tmp_path / "other.txt"
    other.write_text("car\nboat\n")
    with (
        SearchEngine(tmp_path / "index", model=model) as engine,
        pytest.raises(InvalidArgumentError, match="no label") as raised,
    ):
        evaluate_tagging(engine, labelled / "labels.jsonl", str(other))
    assert raised.value.value == str(other)


def _single_labelled(labelled: Path) -> Path:
    """The labelled set with each picture's first label only, for zero-shot classification."""
    single = labelled / "single.jsonl"
    records = [json.loads(line) for line in (labelled / "labels.jsonl").read_text().splitlines()]
    single.write_text(
        "\n".join(json.dumps({**r, "labels": r["labels"][:1]}) for r in records) + "\n"
    )
    return single


def _captioned(labelled: Path) -> Path:
    """Two captions for each of the labelled set's pictures."""
    captions = labelled / "captions.jsonl"
    captions.write_text(
        "\n".join(
            json.dumps({"file": f"images/p{i}.png", "captions": [f"picture {i}", f"photo {i}"]})
            for i in range(8)
        )
    )
    return captions


def test_zeroshot_on_a_small_set(tmp_path, model, labelled):
    single = _single_labelled(labelled)
    with SearchEngine(tmp_path / "index", model=model) as engine:
        result = evaluate_zeroshot(engine, single, labelled / "classes.txt")
    assert result.classes == 3 and result.images == 8
    assert 0 <= result.top1_accuracy <= 1
    assert result.top5_accuracy is None  # 3 classes: top-5 is meaningless
    assert "top5" not in result.as_dict()


def test_zeroshot_and_retrieval_name_images_without_a_label_or_caption(tmp_path, model, labelled):
    unlabelled = labelled / "unlabelled.jsonl"
    unlabelled.write_text('{"file": "images/p0.png", "labels": []}\n')
    uncaptioned = labelled / "uncaptioned.jsonl"
    uncaptioned.write_text('{"file": "images/p0.png", "captions": []}\n')
    with SearchEngine(tmp_path / "index", model=model) as engine:
        with pytest.raises(FileError, match="have no label") as raised:
            evaluate_zeroshot(engine, unlabelled, labelled / "classes.txt")
        assert raised.value.path == str(unlabelled)
        with pytest.raises(FileError, match="have no caption") as raised:
            evaluate_retrieval(engine, uncaptioned)
        assert raised.value.path == str(uncaptioned)


def test_retrieval_pairs_each_caption_with_its_own_image(tmp_path, model, labelled):
    captions = _captioned(labelled)
    with SearchEngine(tmp_path / "index", model=model) as engine:
        result = evaluate_retrieval(engine, captions)
    assert (result.images, result.captions) == (8, 16)
    for r in (result.text_to_image, result.image_to_text):
        assert (
            0 <= r.recall_at_1 <= r.recall_at_5 <= r.recall_at_10 == 1.0
        )  # 8 images: all within 10


def test_json_output_of_each_command_keeps_its_keys(tmp_path, model, photos, labelled):
    """Scripts read ``--json``: its keys, nesting and order are what they were as dicts."""
    labels, classes = labelled / "labels.jsonl", labelled / "classes.txt"
    tagging = cli(
        "eval", "tagging", "--labels", labels, "--vocab", classes, "--model", model, "--json"
    )  # fmt: skip
    assert list(tagging) == [
        "mAP", "macro_f1", "micro_f1", "images", "labels_evaluated", "unknown_labels", "per_label"
    ]  # fmt: skip
    assert set(tagging["per_label"]) == {"cat", "dog", "bird"}
    assert (tagging["images"], tagging["labels_evaluated"], tagging["unknown_labels"]) == (8, 3, 0)

    retrieval = cli(
        "eval", "retrieval", "--captions", _captioned(labelled), "--model", model, "--json"
    )
    assert list(retrieval) == ["text_to_image", "image_to_text", "images", "captions"]
    for direction in ("text_to_image", "image_to_text"):
        assert list(retrieval[direction]) == ["R@1", "R@5", "R@10"]
        assert retrieval[direction]["R@10"] == 1.0

    single = _single_labelled(labelled)
    zeroshot = cli(
        "eval", "zeroshot", "--labels", single, "--classes", classes, "--model", model, "--json"
    )  # fmt: skip
    assert list(zeroshot) == ["top1", "images", "classes"]  # 3 classes: no top-5
    six_classes = labelled / "six.txt"
    six_classes.write_text("cat\ndog\nbird\ncar\nboat\ntree\n")
    zeroshot = cli(
        "eval", "zeroshot", "--labels", single, "--classes", six_classes, "--model", model, "--json"
    )  # fmt: skip
    assert list(zeroshot) == ["top1", "top5", "images", "classes"]
    assert zeroshot["top1"] <= zeroshot["top5"]

    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=model) as engine:
        engine.index(photos)
    fitted = cli(
        "calibrate", "--labels", labels, "--vocab", classes, "--index", index_dir, "--json"
    )
    assert list(fitted) == ["vocabulary", "labels_calibrated", "macro_f1_before", "macro_f1_after"]
    assert fitted["labels_calibrated"] == 3


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
