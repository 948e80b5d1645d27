"""Image-encoding precision: bf16 and int8 against fp32 on the tiny real CLIP, the int8
export kept next to an index, the precision an index records and keeps, auto's choice on the
first batch, and the CLI's --precision.

Which low precisions this machine offers must not change the outcome, so tests of ``auto``
decide that themselves (``only_bf16`` / ``only_int8`` / ``no_low_precision``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from pictures import photo_folder
from typer.testing import CliRunner

from searchclip import InvalidArgumentError, SearchEngine
from searchclip._cli import app
from searchclip._encoders import precision as precision_module
from searchclip._encoders.clip import ClipEncoder
from searchclip._encoders.precision import MIN_COSINE, PrecisionChoice, Trial
from searchclip._errors import PrecisionMismatchError

RATES = {"fp32": 10.0, "bf16": 20.0, "int8": 30.0}  # images/s, for a deterministic choice


def offer(monkeypatch, *precisions: str, rates: dict[str, float] = RATES) -> None:
    """Make the encoder offer ``precisions`` and auto's timing read ``rates``: the vectors are
    still really encoded at each precision; only the clock is fixed (as conftest does)."""
    monkeypatch.setattr(ClipEncoder, "low_image_precisions", lambda self: precisions)

    def timed(encoder, pixels, precision, extra_rounds=2):
        return encoder.encode_pixels_at(pixels, precision), rates[precision]

    monkeypatch.setattr(precision_module, "_timed", timed)


@pytest.fixture
def only_bf16(monkeypatch):
    offer(monkeypatch, "bf16")


@pytest.fixture
def only_int8(monkeypatch):
    offer(monkeypatch, "int8")


@pytest.fixture
def no_low_precision(monkeypatch):
    offer(monkeypatch)


def random_pixels(encoder, count: int = 8) -> np.ndarray:
    size = encoder.image_size
    return np.random.default_rng(0).standard_normal((count, 3, size, size)).astype(np.float32)


# --- the encoder ------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_low_precision_vectors_agree_with_fp32_on_the_tiny_model(
    tiny_model_dir, tmp_path, precision
):
    from searchclip._encoders import load_encoder

    encoder = load_encoder(str(tiny_model_dir), device="cpu")
    encoder.artifact_dir = tmp_path
    pixels = random_pixels(encoder)
    fp32 = encoder.encode_pixels_at(pixels, "fp32")
    low = encoder.encode_pixels_at(pixels, precision)
    assert low.dtype == np.float32
    assert np.allclose(np.linalg.norm(low, axis=1), 1.0, atol=1e-5)
    assert np.sum(fp32 * low, axis=1).min() >= MIN_COSINE
    assert not np.array_equal(fp32, low)  # really a different computation
    assert encoder.image_precision == "fp32"  # encode_pixels_at leaves it as it was
    int8_files = ["image-encoder-int8.json", "image-encoder-int8.onnx"]
    # the int8 export, and no staging directory left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == (int8_files if precision == "int8" else [])


def test_the_int8_export_is_reused_and_a_stale_one_replaced(tiny_model_dir, tmp_path, monkeypatch):
    from searchclip._encoders import load_encoder, onnx_export

    first = load_encoder(str(tiny_model_dir), device="cpu")
    first.artifact_dir = tmp_path
    pixels = random_pixels(first, 3)
    expected = first.encode_pixels_at(pixels, "int8")

    def no_export(*args):
        raise AssertionError("a current export must be reused")

    with monkeypatch.context() as patched:
        patched.setattr(onnx_export, "export_int8_image_tower", no_export)
        second = load_encoder(str(tiny_model_dir), device="cpu")
        second.artifact_dir = tmp_path
        assert np.array_equal(second.encode_pixels_at(pixels, "int8"), expected)

    sidecar = tmp_path / "image-encoder-int8.json"
    sidecar.write_text(sidecar.read_text().replace(str(tiny_model_dir), "/another/model"))
    (tmp_path / "image-encoder-int8.onnx").write_bytes(b"damaged")
    third = load_encoder(str(tiny_model_dir), device="cpu")
    third.artifact_dir = tmp_path
    assert np.allclose(third.encode_pixels_at(pixels, "int8"), expected, atol=1e-6)
    assert str(tiny_model_dir) in sidecar.read_text()


def test_int8_without_a_writable_artifact_dir(tiny_model_dir, tmp_path):
    from searchclip._encoders import load_encoder

    encoder = load_encoder(str(tiny_model_dir), device="cpu")
    encoder.artifact_dir = tmp_path / "missing"  # cannot be written: export for this process
    pixels = random_pixels(encoder, 2)
    fp32 = encoder.encode_pixels_at(pixels, "fp32")
    assert np.sum(fp32 * encoder.encode_pixels_at(pixels, "int8"), axis=1).min() >= MIN_COSINE
    assert not (tmp_path / "missing").exists()


def test_set_image_precision_switches_encode_pixels(tiny_model_dir):
    from searchclip._encoders import load_encoder

    encoder = load_encoder(str(tiny_model_dir), device="cpu")
    pixels = random_pixels(encoder, 3)
    for precision in ("bf16", "int8"):
        encoder.set_image_precision(precision)
        expected = encoder.encode_pixels_at(pixels, precision)
        assert np.array_equal(encoder.encode_pixels(pixels), expected)
    with pytest.raises(ValueError, match="unknown image precision"):
        encoder.set_image_precision("fp8")


# --- auto's choice ----------------------------------------------------------------------------


def test_auto_times_each_precision_for_real(tiny_encoder, monkeypatch):
    monkeypatch.undo()  # conftest's steady clock
    pixels = random_pixels(tiny_encoder, 4)
    vectors, rate = precision_module._timed(tiny_encoder, pixels, "bf16")
    assert np.array_equal(vectors, tiny_encoder.encode_pixels_at(pixels, "bf16"))
    assert 0 < rate < float("inf")

    calls = []
    monkeypatch.setattr(
        type(tiny_encoder),
        "encode_pixels_at",
        lambda self, p, _: calls.append(len(p)) or np.zeros((len(p), self.dim), np.float32),
    )
    precision_module._timed(tiny_encoder, pixels, "fp32", extra_rounds=0)
    assert calls == [1, 4]  # the warm-up and the batch: fp32's timing has no extra rounds
    calls.clear()
    precision_module._timed(tiny_encoder, pixels, "int8")
    assert calls == [1, 4, 4, 4]  # then two rounds of up to TIMING_SAMPLE images


def test_auto_keeps_bf16_when_the_first_batch_agrees(tmp_path, model, photos, only_bf16):
    with SearchEngine(tmp_path / "index", model=model, batch_size=4) as engine:
        assert engine.precision == "auto"
        report = engine.index(photos)
        assert engine.precision == "bf16"
        assert report.precision_choice.startswith("bf16 (first 4 images: bf16 min cosine ")
        assert report.precision_choice.endswith(", 20 img/s; fp32 10 img/s)")
        assert engine.info().precision == report.precision_choice
        assert engine.encoder().image_precision == "bf16"
        probe = photos / "img002.png"
        assert engine.search_image(probe, k=1)[0].score == pytest.approx(1.0, abs=1e-5)
        again = engine.index(photos)
        assert again.precision_choice == ""  # said once, by the run that chose
    with SearchEngine(tmp_path / "index") as reopened:
        assert reopened.precision == "bf16"
        assert reopened.info().precision == report.precision_choice


def test_auto_picks_the_fastest_precision_that_agrees(tmp_path, model, photos, monkeypatch):
    offer(monkeypatch, "int8", "bf16")
    with SearchEngine(tmp_path / "index", model=model) as engine:
        report = engine.index(photos)
        assert engine.precision == "int8"
        assert engine.encoder().image_precision == "int8"
        assert (tmp_path / "index" / "image-encoder-int8.onnx").is_file()
        probe = photos / "img002.png"
        best = engine.search_image(probe, k=1)[0]
        # int8 quantises activations per batch: one image alone differs a little from in a batch
        assert best.path == str(probe) and best.score == pytest.approx(1.0, abs=1e-4)
    assert report.precision_choice.startswith("int8 (first 6 images: int8 min cosine ")
    assert ", 30 img/s; bf16 min cosine " in report.precision_choice

    offer(monkeypatch, "int8", "bf16", rates={"fp32": 10.0, "bf16": 25.0, "int8": 5.0})
    with SearchEngine(tmp_path / "slow-int8", model=model) as engine:
        engine.index(photos)
        assert engine.precision == "bf16"


def test_auto_keeps_fp32_when_it_is_fastest(tmp_path, model, photos, monkeypatch):
    offer(monkeypatch, "int8", "bf16", rates={"fp32": 40.0, "bf16": 25.0, "int8": 30.0})
    with SearchEngine(tmp_path / "index", model=model) as engine:
        report = engine.index(photos)
        assert engine.precision == "fp32"
    assert report.precision_choice.endswith("; fp32 40 img/s)")


def test_auto_falls_back_to_fp32_below_the_bound_and_says_why(tmp_path, model, photos, monkeypatch):
    offer(monkeypatch, "int8", "bf16")
    monkeypatch.setattr(precision_module, "MIN_COSINE", 1.01)  # no cosine can pass
    with SearchEngine(tmp_path / "index", model=model) as engine:
        report = engine.index(photos)
        assert engine.precision == "fp32"
        assert engine.encoder().image_precision == "fp32"
    choice = report.precision_choice
    assert choice.startswith("fp32 (first 6 images: int8 min cosine ")
    assert choice.count(" < 1.01") == 2 and choice.endswith("; fp32 10 img/s)")


def test_auto_skips_a_precision_whose_model_will_not_export(tmp_path, model, photos, monkeypatch):
    from searchclip._encoders import onnx_export
    from searchclip._errors import ModelLoadError

    def fails(*args):
        raise ModelLoadError("cannot quantise the image encoder of this model: no")

    monkeypatch.setattr(onnx_export, "export_int8_image_tower", fails)
    offer(monkeypatch, "int8", "bf16")
    with SearchEngine(tmp_path / "index", model=model) as engine:
        report = engine.index(photos)
        assert engine.precision == "bf16" and report.encoded == 6
    assert "int8 unavailable: cannot quantise the image encoder" in report.precision_choice


def test_auto_is_fp32_without_a_low_precision(tmp_path, model, photos, no_low_precision):
    with SearchEngine(tmp_path / "index", model=model) as engine:
        report = engine.index(photos)
        assert engine.precision == "fp32"
    assert report.precision_choice == "fp32 (the device has no faster precision)"


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_auto_stores_the_vectors_it_chose(tmp_path, model, photos, monkeypatch, precision):
    offer(monkeypatch, precision)
    with SearchEngine(tmp_path / "index", model=model) as engine:
        engine.index(photos)
        assert engine.precision == precision
        paths = sorted(str(p) for p in photos.rglob("img*"))
        stored = engine.stored_vectors(paths)
        encoder = engine.encoder()
    from PIL import Image

    pixels = np.stack([encoder.preprocess(Image.open(p).convert("RGB")) for p in paths])
    expected = encoder.encode_pixels_at(pixels, precision)
    got = np.stack([stored[p] for p in paths])
    assert np.allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, encoder.encode_pixels_at(pixels, "fp32"), atol=1e-6)


def test_describe_a_choice():
    trials = (Trial("int8", 0.99951, 52.4), Trial("bf16", 0.99851, 35.0))
    choice = PrecisionChoice("int8", trials, 32, 17.2)
    assert choice.describe() == (
        "int8 (first 32 images: int8 min cosine 0.9995, 52 img/s; "
        "bf16 min cosine 0.9985 < 0.999; fp32 17 img/s)"
    )


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


def test_cli_index_precision_option(tmp_path: Path, model, photos, only_bf16):
    index_dir = tmp_path / "index"
    first = invoke("index", photos, "--index", index_dir, "--model", model)
    assert first.exit_code == 0, first.stderr
    assert "precision: bf16 (first 6 images: bf16 min cosine " in first.stderr
    assert "precision:" not in first.stdout

    more = tmp_path / "more"
    photo_folder(more, 2, start_seed=50)
    again = invoke("index", more, "--index", index_dir)
    assert again.exit_code == 0 and "precision:" not in again.stderr  # said once

    refused = invoke("index", more, "--index", index_dir, "--precision", "fp32")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.splitlines()[-1].startswith("error: the index at ")
    assert "encoded in bf16, not fp32" in refused.stderr

    bad = invoke("index", more, "--index", tmp_path / "other", "--precision", "int4")
    assert bad.exit_code == 1 and "unknown precision 'int4'" in bad.stderr

    info = invoke("info", "--index", index_dir)
    assert "; images in bf16 (first 6 images: bf16 min cosine " in info.stdout


def test_cli_explicit_fp32(tmp_path: Path, model, photos):
    index_dir = tmp_path / "index"
    result = invoke("index", photos, "--index", index_dir, "--model", model, "--precision", "fp32")
    assert result.exit_code == 0, result.stderr
    assert "precision:" not in result.stderr
    assert "; images in fp32 (requested))" in invoke("info", "--index", index_dir).stdout


def test_cli_explicit_int8_is_kept_and_used_for_image_queries(tmp_path: Path, model, photos):
    index_dir = tmp_path / "index"
    result = invoke("index", photos, "--index", index_dir, "--model", model, "--precision", "int8")
    assert result.exit_code == 0, result.stderr
    assert "; images in int8 (requested))" in invoke("info", "--index", index_dir).stdout
    probe = photos / "img004.png"
    query = invoke("query", "--image", probe, "--index", index_dir, "-k", "1", "--json")
    assert query.exit_code == 0, query.stderr
    hit = json.loads(query.stdout)
    assert hit["path"] == str(probe) and hit["score"] == pytest.approx(1.0, abs=1e-4)
