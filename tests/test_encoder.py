"""The CLIP encoder on a tiny random model: shapes, determinism, batching, and load failures."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_clip import build_tiny_clip

from searchclip._encoders import load_encoder
from searchclip._encoders.clip import ClipEncoder
from searchclip._encoders.towers import features as _features
from searchclip._errors import ModelLoadError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_TOKENIZER = SHARED / "models" / "clip-vit-base-patch32-tokenizer"
TEXTS = ["a", "a photo of a dog", "the cat sat on the mat next to another cat, twice over", ""]


def make_image(seed: int, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def assert_unit_rows(vectors: np.ndarray, count: int) -> None:
    assert vectors.dtype == np.float32
    assert vectors.shape == (count, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def load_error(*args, **kwargs) -> str:
    """The message of the ModelLoadError that loading raises; it must be one line."""
    with pytest.raises(ModelLoadError) as caught:
        load_encoder(*args, **kwargs)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


def copy_model(source: Path, target: Path, *drop: str) -> Path:
    shutil.copytree(source, target)
    for name in drop:
        (target / name).unlink(missing_ok=True)
    return target


def test_attributes(tiny_encoder, tiny_model_dir):
    assert isinstance(tiny_encoder, ClipEncoder)
    assert tiny_encoder.model_id == str(tiny_model_dir.resolve())
    assert (tiny_encoder.dim, tiny_encoder.image_size) == (16, 32)
    assert (tiny_encoder.device, tiny_encoder.batch_size) == ("cpu", 32)
    assert not tiny_encoder.model.training


def test_image_vectors(tiny_encoder):
    images = [make_image(1), make_image(1), make_image(2)]
    first = tiny_encoder.encode_images(images)
    assert_unit_rows(first, 3)
    np.testing.assert_array_equal(first, tiny_encoder.encode_images(images))
    np.testing.assert_allclose(first[0], first[1], atol=1e-6)
    assert float(first[0] @ first[2]) < 0.9999
    assert tiny_encoder.encode_images([]).shape == (0, 16)


def test_image_batches_match_single_images(tiny_model_dir):
    encoder = load_encoder(str(tiny_model_dir), device="cpu", batch_size=4)
    images = [make_image(seed, (30 + 7 * seed, 50)) for seed in range(10)]
    batched = encoder.encode_images(images)
    assert_unit_rows(batched, 10)
    single = np.concatenate([encoder.encode_images([image]) for image in images])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_text_vectors(tiny_encoder):
    vectors = tiny_encoder.encode_texts(TEXTS)
    assert_unit_rows(vectors, len(TEXTS))
    np.testing.assert_array_equal(vectors, tiny_encoder.encode_texts(TEXTS))
    assert float(vectors[0] @ vectors[1]) < 0.9999


def test_padding_does_not_change_text_vectors(tiny_encoder):
    batched = tiny_encoder.encode_texts(TEXTS)
    single = np.concatenate([tiny_encoder.encode_texts([text]) for text in TEXTS])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_long_text_is_truncated(tiny_encoder):
    assert_unit_rows(tiny_encoder.encode_texts(["a photo of a dog " * 60, "a dog"]), 2)


@pytest.mark.parametrize(
    ("size", "mode"),
    [((32, 32), "RGB"), ((640, 480), "RGB"), ((20, 300), "RGB"), ((5, 3), "L"), ((64, 33), "RGBA")],
)
def test_preprocess_shape(tiny_encoder, size, mode):
    pixels = tiny_encoder.preprocess(make_image(3, size, mode))
    assert pixels.dtype == np.float32
    assert pixels.shape == (3, 32, 32)


def test_preprocess_is_thread_safe(tiny_encoder):
    images = [make_image(seed, (40 + seed, 64)) for seed in range(16)]
    expected = [tiny_encoder.preprocess(image) for image in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(tiny_encoder.preprocess, images))
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_features_accepts_tensor_or_output_object():
    tensor = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    for output in (tensor, SimpleNamespace(pooler_output=tensor)):
        features = _features(output)
        assert features.dtype == np.float32
        np.testing.assert_array_equal(features, tensor.numpy())


def test_real_clip_tokenizer(tmp_path):
    if not SHARED_TOKENIZER.is_dir():
        pytest.skip("../shared not found")
    directory = build_tiny_clip(tmp_path / "real-tokenizer", tokenizer_dir=SHARED_TOKENIZER)
    encoder = load_encoder(str(directory), device="cpu")
    assert encoder.model.config.text_config.vocab_size == 49408
    ids = encoder.tokenizer("a photo of a cat")["input_ids"]
    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert_unit_rows(encoder.encode_texts(["a photo of a cat", "a dog"]), 2)


def test_missing_directory(tmp_path):
    missing = tmp_path / "no-such-model"
    assert str(missing) in load_error(str(missing))
    assert "no model directory" in load_error("./no-such-model/here")


def test_pytorch_bin_weights_are_refused(tiny_model_dir, tmp_path):
    directory = copy_model(tiny_model_dir, tmp_path / "bin-only", "model.safetensors")
    state = load_encoder(str(tiny_model_dir), device="cpu").model.state_dict()
    torch.save(state, directory / "pytorch_model.bin")
    assert "safetensors" in load_error(str(directory))


def test_corrupt_weights(tiny_model_dir, tmp_path):
    directory = copy_model(tiny_model_dir, tmp_path / "corrupt")
    (directory / "model.safetensors").write_bytes(b"not safetensors\n" * 4)
    assert str(directory) in load_error(str(directory))


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        (("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"), "tokenizer"),
        (("preprocessor_config.json",), "preprocessor_config.json"),
        (("config.json",), "config.json"),
    ],
)
def test_missing_files(tiny_model_dir, tmp_path, drop, named):
    directory = copy_model(tiny_model_dir, tmp_path / "incomplete", *drop)
    assert named in load_error(str(directory))


def test_unknown_hub_id_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    started = time.monotonic()
    message = load_error("nobody/not-a-model", device="cpu")
    # library-neutral: the CLI adds its own "--model PATH" hint
    assert "--model" not in message and "load it from" in message
    assert time.monotonic() - started < 10


def test_offline_mode_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    assert "cannot be reached" in load_error("nobody/not-a-model", device="cpu")
    assert time.monotonic() - started < 10


def test_cuda_without_gpu(tiny_model_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert "CUDA" in load_error(str(tiny_model_dir), device="cuda")


def test_unknown_device(tiny_model_dir):
    assert "unknown device" in load_error(str(tiny_model_dir), device="tpu")
