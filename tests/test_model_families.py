"""Models are loaded by the model type their config names: a ``ConvClipModel`` (searchclip's
convolutional CLIP, the bundled model's family) goes through every path a ``CLIPModel`` does:
``--model PATH``, indexing and queries through the CLI, the ONNX text export and torch-free
text queries, bf16 and the int8 image tower with its torch-free index, and any other model
type is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from light_cli import run_without_torch
from pictures import photo_folder
from tiny_clip import build_tiny_conv_clip
from transformers import AutoModel
from typer.testing import CliRunner

from searchclip import SearchEngine
from searchclip._cli import app
from searchclip._encoders import load_encoder
from searchclip._encoders.conv_clip import ConvClipModel
from searchclip._errors import ModelLoadError


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory) -> Path:
    return build_tiny_conv_clip(tmp_path_factory.mktemp("conv-clip"))


@pytest.fixture(scope="module")
def conv_encoder(conv_model):
    return load_encoder(str(conv_model), device="cpu")


def test_the_config_decides_the_class(conv_encoder, conv_model):
    assert isinstance(conv_encoder.model, ConvClipModel)
    assert (conv_encoder.dim, conv_encoder.image_size) == (16, 32)
    # Plain transformers loads it too, once searchclip has registered the type: no remote code.
    assert type(AutoModel.from_pretrained(conv_model)).__name__ == "ConvClipModel"


def test_image_vectors_are_the_max_pooled_resnet_projected(conv_encoder):
    pixels = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    model = conv_encoder.model
    with torch.no_grad():
        features = model.vision_model.resnet(torch.from_numpy(pixels)).last_hidden_state
        expected = model.visual_projection(features.amax(dim=(2, 3))).numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(conv_encoder.encode_pixels(pixels), expected, atol=1e-5)
    # BatchNorm runs on its stored statistics: a batch's neighbours change nothing.
    np.testing.assert_allclose(
        conv_encoder.encode_pixels(pixels[:1]), conv_encoder.encode_pixels(pixels)[:1], atol=1e-5
    )


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_low_precision_image_towers_agree_with_fp32(conv_encoder, tmp_path, precision):
    conv_encoder.artifact_dir = tmp_path
    pixels = np.random.default_rng(1).standard_normal((8, 3, 32, 32)).astype(np.float32)
    fp32 = conv_encoder.encode_pixels_at(pixels, "fp32")
    low = conv_encoder.encode_pixels_at(pixels, precision)
    assert np.min(np.sum(fp32 * low, axis=1)) > 0.98


def test_index_and_query_through_the_cli_with_a_torch_free_text_query(conv_model, tmp_path):
    photo_folder(tmp_path / "photos", 6)
    index = tmp_path / "index"
    args = ["index", str(tmp_path / "photos"), "--index", str(index), "--model", str(conv_model)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert (index / "text-encoder.onnx").is_file()  # the text tower exported next to it
    with SearchEngine(index) as engine:
        expected = [hit.path for hit in engine.search("a photo of a dog", k=3)]
    out = run_without_torch("query", "a photo of a dog", "--index", str(index), "-k", "3", "--json")
    assert [json.loads(line)["path"] for line in out.stdout.splitlines()] == expected


def test_an_int8_index_of_the_family_is_indexed_into_without_torch(conv_model, tmp_path):
    photo_folder(tmp_path / "photos", 6)
    index = tmp_path / "index"
    args = ["index", str(tmp_path / "photos"), "--index", str(index), "--model", str(conv_model)]
    result = CliRunner().invoke(app, [*args, "--precision", "int8"])
    assert result.exit_code == 0, result.stderr
    photo_folder(tmp_path / "more", 4, start_seed=50)
    run_without_torch("index", str(tmp_path / "more"), "--index", str(index))
    with SearchEngine(index) as engine:
        assert engine.info().files == 10


def test_another_model_type_is_refused_in_one_line(conv_model, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for path in conv_model.iterdir():
        (other / path.name).write_bytes(path.read_bytes())
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "bert"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as error:
        load_encoder(str(other), device="cpu")
    message = str(error.value)
    assert "'bert'" in message and "'clip'" in message and "\n" not in message
