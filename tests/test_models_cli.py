"""`searchclip models`: the recommended models' table, the figures kept per machine, and the
timing itself on a tiny random-weight architecture (the real ones take minutes each: they are
timed by benchmarks/models.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from searchclip._cli import app
from searchclip._model_speeds import ModelSpeed, host_name, load_speeds, save_speed
from searchclip._model_table import RECOMMENDED, RecommendedModel, recommended

runner = CliRunner()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCHCLIP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_table_lists_every_recommended_model_with_its_cited_quality():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for row in RECOMMENDED:
        line = next(line for line in result.stdout.splitlines() if line.startswith(row.model_id))
        assert f"{row.quality.value:.1f} {row.quality.benchmark}" in line
        assert str(row.dim) in line.split()
    assert "[1] OpenCLIP's evaluation" in result.stdout
    assert "time them with `searchclip models --measure`" in result.stdout


def test_every_family_the_issue_names_is_in_the_table():
    families = {row.family for row in RECOMMENDED}
    assert {"clip", "siglip", "open_clip", "altclip", "chinese_clip"} <= families
    assert any("multilingual" in row.languages for row in RECOMMENDED)
    assert recommended("openai/clip-vit-base-patch32").note == "searchclip's default"


def test_json_output_and_filters():
    result = runner.invoke(app, ["models", "--json", "--language", "chinese"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    ids = {row["model_id"] for row in rows}
    assert {"OFA-Sys/chinese-clip-vit-base-patch16", "BAAI/AltCLIP"} <= ids
    assert "openai/clip-vit-base-patch32" not in ids  # English only
    assert all(
        "chinese" in row["languages"].lower() or "multilingual" in row["languages"] for row in rows
    )
    assert all(row["speed"] is None and "build" not in row for row in rows)


def test_an_unknown_model_is_a_one_line_error():
    result = runner.invoke(app, ["models", "--model", "acme/nothing"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: acme/nothing is not one of the recommended models (see `searchclip models`)"
    ]


def test_kept_figures_show_in_the_table_for_this_machine_only(cache):
    model = "google/siglip-base-patch16-224"
    save_speed(
        ModelSpeed(
            model,
            host_name(),
            1.0,
            fp32_images_per_s=12.34,
            int8_images_per_s=45.6,
            int8_min_cosine=0.9999,
            text_ms=7.89,
            text_path="onnx",
        )
    )
    save_speed(ModelSpeed(model, "another machine", 1.0, fp32_images_per_s=999.0))
    assert load_speeds()[model].fp32_images_per_s == 12.34
    result = runner.invoke(app, ["models", "--model", model])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith(model))
    assert "45.6" in line and "12.3" in line and "7.9" in line
    assert "999" not in result.stdout
    assert host_name() in result.stdout


def test_a_damaged_figures_file_is_ignored(cache):
    cache.mkdir(parents=True)
    (cache / "model-speeds.json").write_text("{not json")
    assert load_speeds() == {}
    assert runner.invoke(app, ["models"]).exit_code == 0


TINY_CLIP = {
    "vision_config": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "patch_size": 8,
        "image_size": 32,
    },
    "text_config": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 77,
    },
    "projection_dim": 16,
}


def test_timing_a_tiny_architecture_measures_every_path():
    pytest.importorskip("torch")
    from searchclip.training.model_speed import measure

    row = dataclasses.replace(
        recommended("openai/clip-vit-base-patch32"),
        model_id="tiny/clip",
        build=("transformers", "clip", TINY_CLIP),
    )
    speed = measure(row)
    assert speed.error == ""
    assert speed.fp32_images_per_s > 0 and speed.int8_images_per_s > 0
    assert speed.int8_min_cosine > 0.9
    assert speed.text_path == "onnx" and speed.text_ms > 0


def test_an_architecture_that_cannot_be_built_is_recorded_not_raised():
    pytest.importorskip("torch")
    from searchclip.training.model_speed import measure

    row = RecommendedModel(
        "tiny/broken",
        "clip",
        "English",
        16,
        1.0,
        RECOMMENDED[0].quality,
        ("transformers", "no-such-family", {}),
    )
    speed = measure(row)
    assert speed.error and speed.fp32_images_per_s is None
