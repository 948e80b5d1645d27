"""The fake encoder shipped in the package: deterministic vectors from numpy, no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from pictures import COLOURS, picture, tinted_picture
from PIL import Image

from searchclip._encoders.fake import FakeEncoder, is_fake_model, write_fake_model
from searchclip._encoders.precision import choose_precision
from searchclip._errors import InvalidArgumentError, ModelLoadError


@pytest.fixture(scope="module")
def encoder() -> FakeEncoder:
    return FakeEncoder(dim=32, image_size=32)


def test_vectors_are_unit_length_float32_of_the_models_dim(encoder):
    images = encoder.encode_images([picture(seed) for seed in range(5)])
    texts = encoder.encode_texts(["a dog", "a cat", "!!!"])
    for vectors, count in ((images, 5), (texts, 3)):
        assert vectors.shape == (count, 32) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_preprocess_makes_the_square_model_input(encoder):
    for image in (picture(1, size=(64, 48)), picture(2, size=(7, 300)).convert("L")):
        pixels = encoder.preprocess(image)
        assert pixels.shape == (3, 32, 32) and pixels.dtype == np.float32
        assert 0 <= pixels.min() <= pixels.max() <= 1


def test_identical_images_get_identical_vectors_and_a_touched_copy_stays_close(encoder):
    original = picture(3)
    same = Image.fromarray(np.asarray(original).copy())
    touched = np.asarray(original).copy()
    touched[:4, :4] = 255  # a small corner changed
    vectors = encoder.encode_images([original, same, Image.fromarray(touched), picture(4)])
    np.testing.assert_array_equal(vectors[0], vectors[1])
    assert vectors[0] @ vectors[2] > 0.95
    assert vectors[0] @ vectors[3] < vectors[0] @ vectors[2]


def test_distinct_pictures_get_distinct_vectors(encoder):
    vectors = encoder.encode_images([picture(seed) for seed in range(20)])
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1)
    assert similarity.max() < 0.95


def test_texts_are_deterministic_and_distinct(encoder):
    first = encoder.encode_texts(["a dog on the beach", "a cat", "a dog on the beach"])
    again = FakeEncoder(dim=32, image_size=32).encode_texts(["a dog on the beach"])
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(first[0], again[0])
    assert first[0] @ first[1] < 0.9


def test_vectors_are_the_same_in_another_process(encoder, tmp_path):
    picture(5).save(tmp_path / "p.png")
    code = (
        "import json, sys; from PIL import Image; "
        "from searchclip._encoders.fake import FakeEncoder; e = FakeEncoder(32, 32); "
        "image = Image.open(sys.argv[1]).convert('RGB'); "
        "print(json.dumps([e.encode_texts(['a red kite'])[0].tolist(), "
        "e.encode_images([image])[0].tolist()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "p.png")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    text, image = json.loads(out.stdout)
    np.testing.assert_array_equal(np.float32(text), encoder.encode_texts(["a red kite"])[0])
    saved = Image.open(tmp_path / "p.png").convert("RGB")
    np.testing.assert_array_equal(np.float32(image), encoder.encode_images([saved])[0])


def test_a_colour_word_lands_nearest_the_pictures_of_its_colour(encoder):
    names = list(COLOURS)
    images = encoder.encode_images(
        [tinted_picture(COLOURS[name], seed) for seed, name in enumerate(names)]
    )
    for name, text in zip(names, encoder.encode_texts(names), strict=True):
        assert names[int(np.argmax(images @ text))] == name
    scores = images @ encoder.encode_texts(["a red car"])[0]
    assert names[int(np.argmax(scores))] == "red"


def test_batches_give_the_same_vectors_as_one_by_one():
    small_batches = FakeEncoder(batch_size=2)
    pictures = [picture(seed) for seed in range(5)]
    together = small_batches.encode_images(pictures)
    alone = np.concatenate([small_batches.encode_images([p]) for p in pictures])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_every_precision_is_accepted_and_close_to_fp32(encoder):
    pixels = np.stack([encoder.preprocess(picture(seed)) for seed in range(6)])
    reference = encoder.encode_pixels_at(pixels, "fp32")
    for precision in ("bf16", "int8"):
        vectors = encoder.encode_pixels_at(pixels, precision)
        assert not np.array_equal(vectors, reference)  # really another precision
        assert np.sum(vectors * reference, axis=1).min() > 0.999
    assert encoder.low_image_precisions() == ()
    with pytest.raises(InvalidArgumentError, match="fp64"):
        FakeEncoder().set_image_precision("fp64")


def test_auto_may_pick_a_low_precision_the_fake_offers():
    encoder = FakeEncoder(low_precisions=("int8", "bf16"))
    pixels = np.stack([encoder.preprocess(picture(seed)) for seed in range(4)])
    choice, vectors = choose_precision(encoder, pixels)
    # conftest's steady clock makes int8 the fastest; the fake's int8 agrees with fp32
    assert (choice.precision, encoder.image_precision) == ("int8", "int8")
    assert {trial.precision for trial in choice.trials} == {"int8", "bf16"}
    np.testing.assert_array_equal(vectors, encoder.encode_pixels_at(pixels, "int8"))


def test_a_model_directory_round_trips(tmp_path):
    directory = write_fake_model(tmp_path / "models" / "fake", dim=8, image_size=16)
    assert json.loads((directory / "config.json").read_text()) == {
        "model_type": "searchclip-fake",
        "dim": 8,
        "image_size": 16,
    }
    assert is_fake_model(directory) and not is_fake_model(tmp_path)
    loaded = FakeEncoder.load(tmp_path / "models" / ".." / "models" / "fake", batch_size=3)
    assert loaded.model_id == str(directory.resolve())
    assert (loaded.dim, loaded.image_size, loaded.batch_size) == (8, 16, 3)
    vectors = loaded.encode_images([picture(1)])
    np.testing.assert_array_equal(vectors, FakeEncoder(8, 16).encode_images([picture(1)]))


def test_load_encoder_loads_a_fake_model_directory(tmp_path):
    from searchclip._encoders import load_encoder

    directory = write_fake_model(tmp_path / "fake")
    loaded = load_encoder(str(directory), batch_size=5)
    assert isinstance(loaded, FakeEncoder)
    assert (loaded.model_id, loaded.batch_size) == (str(directory.resolve()), 5)


def test_bad_model_directories_are_model_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="no model directory"):
        FakeEncoder.load(tmp_path / "missing")
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        FakeEncoder.load(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "clip", "dim": 4}')
    with pytest.raises(ModelLoadError, match="not a fake model config") as raised:
        FakeEncoder.load(tmp_path)
    assert raised.value.model == str(tmp_path.resolve())
    (tmp_path / "config.json").write_text('{"model_type": "searchclip-fake", "dim": 0}')
    with pytest.raises(ModelLoadError, match="not a valid fake model config"):
        FakeEncoder.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot read"):
        FakeEncoder.load(tmp_path)
    with pytest.raises(InvalidArgumentError, match="dim"):
        write_fake_model(tmp_path / "bad", dim=0)
