"""The CLIP encoder shared by threads, and what loading and exporting leave of the process's
state: lazily built towers are built once, concurrent encoding gives the serial results, and
neither transformers' logging, the root logger nor the warning filters are changed."""

from __future__ import annotations

import logging
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from searchclip._encoders import load_encoder, onnx_export

THREADS = 6
TEXTS = [f"a photo of {count} dogs on a beach" for count in range(24)]


def all_at_once(call, threads: int = THREADS) -> list:
    """``call()`` on ``threads`` threads released together; their results."""
    barrier = threading.Barrier(threads)

    def run(_):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(threads)))


@pytest.fixture
def fresh_encoder(tiny_model_dir, tmp_path):
    """An encoder of its own (no tower built yet), keeping its exports in ``tmp_path``."""
    encoder = load_encoder(str(tiny_model_dir), device="cpu")
    encoder.artifact_dir = tmp_path
    return encoder


def test_the_low_precision_towers_are_built_once(fresh_encoder, monkeypatch):
    exports = []
    real = onnx_export.export_int8_image_tower

    def counted(*args):
        exports.append(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(onnx_export, "export_int8_image_tower", counted)
    assert len({id(tower) for tower in all_at_once(fresh_encoder.int8_tower)}) == 1
    assert len(exports) == 1
    assert len({id(tower) for tower in all_at_once(fresh_encoder.bf16_tower)}) == 1


def test_concurrent_encoding_gives_the_serial_vectors(fresh_encoder):
    serial_texts = fresh_encoder.encode_texts(TEXTS)
    rng = np.random.default_rng(0)
    size = fresh_encoder.image_size
    pixels = rng.standard_normal((5, 3, size, size)).astype(np.float32)
    serial_pixels = fresh_encoder.encode_pixels(pixels)
    for texts in all_at_once(lambda: fresh_encoder.encode_texts(TEXTS)):
        np.testing.assert_allclose(texts, serial_texts, atol=1e-6)
    for vectors in all_at_once(lambda: fresh_encoder.encode_pixels(pixels)):
        np.testing.assert_allclose(vectors, serial_pixels, atol=1e-6)


def test_two_threads_export_the_text_tower_into_one_directory(fresh_encoder, tmp_path):
    infos = all_at_once(lambda: onnx_export.export_text_encoder(fresh_encoder, tmp_path), 2)
    assert infos[0] == infos[1]
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_loading_leaves_transformers_logging_as_it_was(tiny_model_dir, monkeypatch):
    from transformers.utils import logging as hf_logging

    calls = []
    for name in ("set_verbosity", "set_verbosity_error", "disable_progress_bar"):
        monkeypatch.setattr(hf_logging, name, lambda *args, name=name: calls.append(name))
    load_encoder(str(tiny_model_dir), device="cpu")
    assert calls == []


def test_exporting_leaves_the_root_logger_and_warning_filters_alone(
    fresh_encoder, tmp_path, monkeypatch
):
    import onnxruntime.quantization

    root = logging.getLogger()
    before = (root.level, list(root.handlers), list(warnings.filters))
    levels_while_quantising = []
    real = onnxruntime.quantization.quantize_dynamic

    def observed(*args, **kwargs):
        levels_while_quantising.append(root.level)
        return real(*args, **kwargs)

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", observed)
    onnx_export.export_text_encoder(fresh_encoder, tmp_path, int8=True)
    fresh_encoder.int8_tower()
    assert levels_while_quantising == [before[0]] * 2
    assert (root.level, list(root.handlers), list(warnings.filters)) == before
