"""Image-encoding precision: bf16 against fp32 on the tiny real CLIP, the precision an index
records and keeps, auto's choice on the first batch, and the CLI's --precision.

Whether this machine's CPU has fast bf16 must not change the outcome, so tests of ``auto``
decide that themselves (``fast_bf16`` / ``no_fast_bf16``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pictures import photo_folder
from typer.testing import CliRunner

from searchclip import InvalidArgumentError, SearchEngine
from searchclip.cli import app
from searchclip.encoders import precision as precision_module
from searchclip.encoders.clip import ClipEncoder
from searchclip.encoders.precision import MIN_COSINE, PrecisionChoice
from searchclip.errors import PrecisionMismatchError


@pytest.fixture
def fast_bf16(monkeypatch):
    monkeypatch.setattr(ClipEncoder, "low_image_precision", lambda self: "bf16")


@pytest.fixture
def no_fast_bf16(monkeypatch):
    monkeypatch.setattr(ClipEncoder, "low_image_precision", lambda self: None)


def random_pixels(encoder, count: int = 8) -> np.ndarray:
    size = encoder.image_size
    return np.random.default_rng(0).standard_normal((count, 3, size, size)).astype(np.float32)


# --- the encoder ------------------------------------------------------------------------------


def test_bf16_vectors_agree_with_fp32_on_the_tiny_model(tiny_encoder):
    pixels = random_pixels(tiny_encoder)
    fp32 = tiny_encoder.encode_pixels_at(pixels, "fp32")
    bf16 = tiny_encoder.encode_pixels_at(pixels, "bf16")
    assert bf16.dtype == np.float32
    assert np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    assert np.sum(fp32 * bf16, axis=1).min() >= MIN_COSINE
    assert not np.array_equal(fp32, bf16)  # really a different computation
    assert tiny_encoder.image_precision == "fp32"  # encode_pixels_at leaves it as it was


def test_set_image_precision_switches_encode_pixels(tiny_model_dir):
    from searchclip.encoders import load_encoder

    encoder = load_encoder(str(tiny_model_dir), device="cpu")
    pixels = random_pixels(encoder, 3)
    encoder.set_image_precision("bf16")
    assert np.array_equal(encoder.encode_pixels(pixels), encoder.encode_pixels_at(pixels, "bf16"))
    with pytest.raises(ValueError, match="unknown image precision"):
        encoder.set_image_precision("fp8")


# --- auto's choice ----------------------------------------------------------------------------


def test_auto_keeps_bf16_when_the_first_batch_agrees(tmp_path, model, photos, fast_bf16):
    with SearchEngine(tmp_path / "index", model=model, batch_size=4) as engine:
        assert engine.precision == "auto"
        report = engine.index(photos)
        assert engine.precision == "bf16"
        assert report.precision_choice.startswith("bf16 (min cosine ")
        assert report.precision_choice.endswith(" on the first 4 images)")
        assert engine.info().precision == report.precision_choice
        assert engine.encoder().image_precision == "bf16"
        probe = photos / "img002.png"
        assert engine.search_image(probe, k=1)[0].score == pytest.approx(1.0, abs=1e-5)
        again = engine.index(photos)
        assert again.precision_choice == ""  # said once, by the run that chose
    with SearchEngine(tmp_path / "index") as reopened:
        assert reopened.precision == "bf16"
        assert reopened.info().precision == report.precision_choice


def test_auto_falls_back_to_fp32_below_the_bound_and_says_why(
    tmp_path, model, photos, fast_bf16, monkeypatch
):
    monkeypatch.setattr(precision_module, "MIN_COSINE", 1.01)  # no cosine can pass
    with SearchEngine(tmp_path / "index", model=model) as engine:
        report = engine.index(photos)
        assert engine.precision == "fp32"
        assert engine.encoder().image_precision == "fp32"
    assert report.precision_choice.startswith("fp32 (min cosine ")
    assert "on the first 6 images, below 1.01)" in report.precision_choice


def test_auto_is_fp32_without_fast_bf16(tmp_path, model, photos, no_fast_bf16):
    with SearchEngine(tmp_path / "index", model=model) as engine:
        report = engine.index(photos)
        assert engine.precision == "fp32"
    assert report.precision_choice == "fp32 (the device has no fast bf16)"


def test_auto_stores_the_vectors_it_chose(tmp_path, model, photos, fast_bf16, tiny_encoder):
    with SearchEngine(tmp_path / "index", model=model) as engine:
        engine.index(photos)
        paths = sorted(str(p) for p in photos.rglob("img*"))
        stored = engine.stored_vectors(paths)
        encoder = engine.encoder()
    from PIL import Image

    pixels = np.stack([encoder.preprocess(Image.open(p).convert("RGB")) for p in paths])
    expected = tiny_encoder.encode_pixels_at(pixels, "bf16")
    got = np.stack([stored[p] for p in paths])
    assert np.allclose(got, expected, atol=1e-6)


def test_describe_a_choice():
    choice = PrecisionChoice("bf16", 0.99951, 32)
    assert choice.describe() == "bf16 (min cosine 0.9995 on the first 32 images)"


# --- recorded and kept ------------------------------------------------------------------------


def test_explicit_precision_is_recorded_and_reused(tmp_path, model, photos):
    with SearchEngine(tmp_path / "index", model=model, precision="bf16") as engine:
        report = engine.index(photos)
        assert report.precision_choice == ""  # nothing was chosen: it was asked for
        assert engine.info().precision == "bf16 (requested)"
    with SearchEngine(tmp_path / "index") as engine:
        assert engine.precision == "bf16"
        assert engine.encoder().image_precision == "bf16"
    with SearchEngine(tmp_path / "index", precision="auto") as engine:
        assert engine.precision == "bf16"  # auto on a built index: what it was built with


def test_a_different_explicit_precision_is_refused(tmp_path, model, photos):
    with SearchEngine(tmp_path / "index", model=model, precision="fp32") as engine:
        engine.index(photos)
    with pytest.raises(PrecisionMismatchError, match="encoded in fp32, not bf16"):
        SearchEngine(tmp_path / "index", precision="bf16")


def test_an_empty_index_takes_a_new_precision(tmp_path, model, photos):
    empty = tmp_path / "nothing"
    empty.mkdir()
    with SearchEngine(tmp_path / "index", model=model, precision="fp32") as engine:
        engine.index(empty)
        assert engine.info().precision == "fp32 (requested)"
    with SearchEngine(tmp_path / "index", precision="bf16") as engine:
        engine.index(photos)
    with SearchEngine(tmp_path / "index") as engine:
        assert engine.precision == "bf16"


def test_an_index_from_before_precisions_counts_as_fp32(tmp_path, model, photos):
    with SearchEngine(tmp_path / "index", model=model, precision="fp32") as engine:
        engine.index(photos)
        for key in ("image_precision", "image_precision_choice"):
            with engine._catalog._engine.begin() as connection:
                connection.exec_driver_sql("DELETE FROM settings WHERE key = ?", (key,))
    with SearchEngine(tmp_path / "index") as engine:
        assert engine.precision == "fp32"
    with pytest.raises(PrecisionMismatchError):
        SearchEngine(tmp_path / "index", precision="bf16")


def test_an_unknown_precision_is_an_argument_error(tmp_path):
    with pytest.raises(InvalidArgumentError, match="unknown precision 'fp16'"):
        SearchEngine(tmp_path / "index", precision="fp16")


# --- the CLI ----------------------------------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(app, [os.fspath(arg) for arg in args])


def test_cli_index_precision_option(tmp_path: Path, model, photos, fast_bf16):
    index_dir = tmp_path / "index"
    first = invoke("index", photos, "--index", index_dir, "--model", model)
    assert first.exit_code == 0, first.stderr
    assert "precision: bf16 (min cosine " in first.stderr
    assert "precision:" not in first.stdout

    more = tmp_path / "more"
    photo_folder(more, 2, start_seed=50)
    again = invoke("index", more, "--index", index_dir)
    assert again.exit_code == 0 and "precision:" not in again.stderr  # said once

    refused = invoke("index", more, "--index", index_dir, "--precision", "fp32")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.splitlines()[-1].startswith("error: the index at ")
    assert "encoded in bf16, not fp32" in refused.stderr

    bad = invoke("index", more, "--index", tmp_path / "other", "--precision", "int8")
    assert bad.exit_code == 1 and "unknown precision 'int8'" in bad.stderr

    info = invoke("info", "--index", index_dir)
    assert "; images in bf16 (min cosine " in info.stdout


def test_cli_explicit_fp32(tmp_path: Path, model, photos):
    index_dir = tmp_path / "index"
    result = invoke("index", photos, "--index", index_dir, "--model", model, "--precision", "fp32")
    assert result.exit_code == 0, result.stderr
    assert "precision:" not in result.stderr
    assert "; images in fp32 (requested))" in invoke("info", "--index", index_dir).stdout
