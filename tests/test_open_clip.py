"""OpenCLIP checkpoints as a model family: a directory laid out as OpenCLIP's hub repos are
(``open_clip_config.json`` + ``open_clip_model.safetensors``) or an ``hf-hub:`` id loads through
OpenCLIP itself, gives OpenCLIP's own vectors and preprocessing, indexes and queries through the
CLI, and has every seam the CLIP path has: the int8 image tower, the ONNX text export with its
torch-free tokenizer and queries, the torch-free int8 index, the export cache. All on a tiny
random-weight checkpoint (searchclip.training.random_open_clip)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from light_cli import run_without_torch
from pictures import photo_folder, picture
from typer.testing import CliRunner

from searchclip import SearchEngine
from searchclip._cli import app
from searchclip._encoders import load_encoder, onnx_export, resolve_model_name
from searchclip._encoders.onnx_image import ImagePreprocess
from searchclip._encoders.onnx_text import OnnxTextEncoder, TextTokenizer
from searchclip._encoders.open_clip import OpenClipEncoder
from searchclip._encoders.open_clip_files import is_open_clip_model
from searchclip._encoders.open_clip_loading import open_clip_module
from searchclip._encoders.open_clip_preprocess import torch_free_reason
from searchclip._encoders.open_clip_tokenizer import build_clip_bpe_tokenizer
from searchclip._encoders.precision import choose_precision
from searchclip._errors import ModelLoadError
from searchclip.training.random_open_clip import build_random_open_clip

open_clip = open_clip_module()

TEXTS = [
    "a photo of a dog",
    "A Red Car parked by the old harbour, at dusk; people walking past!",
    "x",
    "",
    "Crème brûlée in Zürich",
    "Hund am Strand",
    "海滩上的狗",
    "كلب على الشاطئ",
    "it's  the   dog's\tbone\n",
    "I'M HERE, don't won't can't",
    "emoji 🐶🏖️ and 3.14159 and IMG_2043.JPG",
    "“curly” ‘quotes’ and Tom &amp; Jerry &lt;3",
    "ﬁne ligatures and Ｆｕｌｌｗｉｄｔｈ letters",
    "e\u0301cole and \ufeffa byte order mark",
    "a long caption " * 40,  # truncated: start, 75 tokens, end
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return build_random_open_clip(tmp_path_factory.mktemp("open-clip") / "tiny")


@pytest.fixture(scope="module")
def encoder(checkpoint) -> OpenClipEncoder:
    return load_encoder(str(checkpoint), device="cpu")


@pytest.fixture(scope="module")
def reference(checkpoint):
    """The same checkpoint loaded by OpenCLIP alone: model, eval transform, tokenizer."""
    model, _, transform = open_clip.create_model_and_transforms(f"local-dir:{checkpoint}")
    return model.eval(), transform, open_clip.get_tokenizer(f"local-dir:{checkpoint}")


@pytest.fixture
def exported(monkeypatch) -> list[str]:
    """The towers really exported (not copied from the export cache), in order."""
    calls: list[str] = []
    real = onnx_export._export_onnx

    def counted(encoder, module, inputs, path, input_axes, output):
        calls.append(output)
        return real(encoder, module, inputs, path, input_axes, output)

    monkeypatch.setattr(onnx_export, "_export_onnx", counted)
    return calls


def variant(checkpoint: Path, target: Path, **changes) -> Path:
    """A copy of ``checkpoint`` whose config has ``changes`` merged in (model_cfg={...},
    preprocess_cfg={...}: nested dicts are merged, other values replaced)."""
    shutil.copytree(checkpoint, target)
    config = json.loads((target / "open_clip_config.json").read_text())
    (target / "open_clip_config.json").write_text(json.dumps(merged(config, changes)))
    return target


def merged(base: dict, changes: dict) -> dict:
    result = dict(base)
    for key, value in changes.items():
        both_dicts = isinstance(value, dict) and isinstance(base.get(key), dict)
        result[key] = merged(base[key], value) if both_dicts else value
    return result


def test_the_open_clip_config_decides_the_family(encoder, checkpoint, tmp_path):
    assert isinstance(encoder, OpenClipEncoder)
    assert (encoder.model_id, encoder.dim, encoder.image_size) == (str(checkpoint), 16, 32)
    assert encoder.match_probability is None  # a softmax CLIP: scores only rank
    both = variant(checkpoint, tmp_path / "both")
    (both / "config.json").write_text(json.dumps({"model_type": "clip"}))
    assert not is_open_clip_model(str(both))  # a transformers model too: loads as before
    (both / "config.json").write_text(json.dumps({"architecture": "vit_base_patch16"}))
    assert is_open_clip_model(str(both))  # timm's config.json names no model_type


def test_vectors_are_open_clips_own(encoder, reference):
    model, transform, tokenizer = reference
    images = [picture(seed, size) for seed, size in enumerate([(64, 48), (48, 64), (50, 37)])]
    with torch.no_grad():
        pixels = torch.stack([transform(image) for image in images])
        expected_images = model.encode_image(pixels, normalize=True).numpy()
        expected_texts = model.encode_text(tokenizer(TEXTS), normalize=True).numpy()
    np.testing.assert_allclose(encoder.encode_images(images), expected_images, atol=1e-5)
    np.testing.assert_allclose(encoder.encode_texts(TEXTS), expected_texts, atol=1e-5)


# Landscape, portrait, square; odd margins whose half torchvision rounds up or down.
SIZES = [(64, 48), (48, 64), (50, 37), (37, 50), (35, 32), (39, 32), (32, 32), (300, 31)]


def test_preprocessing_is_open_clips_transform_and_needs_no_torch_to_repeat(encoder, reference):
    _, transform, _ = reference
    torch_free = ImagePreprocess(**encoder.int8_export_info().preprocess)
    for seed, size in enumerate(SIZES):
        image = picture(seed, size)
        expected = transform(image).numpy()
        np.testing.assert_array_equal(encoder.preprocess(image), expected)
        np.testing.assert_allclose(torch_free(image), expected, atol=1e-5, err_msg=str(size))


@pytest.mark.parametrize(
    ("mode", "torch_free"), [("shortest", True), ("squash", True), ("longest", False)]
)
def test_each_resize_mode_preprocesses_as_open_clip_does(checkpoint, tmp_path, mode, torch_free):
    directory = variant(checkpoint, tmp_path / mode, preprocess_cfg={"resize_mode": mode})
    encoder = load_encoder(str(directory), device="cpu")
    _, _, transform = open_clip.create_model_and_transforms(f"local-dir:{directory}")
    settings = encoder.int8_export_info().preprocess
    assert (settings is not None) == torch_free
    assert (torch_free_reason(encoder.preprocess_cfg) is None) == torch_free
    for seed, size in enumerate(SIZES[:4]):
        image = picture(seed, size)
        np.testing.assert_array_equal(encoder.preprocess(image), transform(image).numpy())
        if torch_free:
            actual = ImagePreprocess(**settings)(image)
            np.testing.assert_allclose(actual, transform(image).numpy(), atol=1e-5)


def test_the_torch_free_tokenizer_gives_open_clips_token_ids(tmp_path):
    path = tmp_path / "tokenizer.json"
    build_clip_bpe_tokenizer().save(str(path))
    ids, _ = TextTokenizer(path, 77, 0, pad_to_max_length=True)(TEXTS)
    expected = open_clip.SimpleTokenizer()(TEXTS).numpy()  # context 77, padded with 0
    np.testing.assert_array_equal(ids, expected)
    # The text tower pools at argmax(ids): the end token, also for the truncated caption.
    assert (ids[np.arange(len(TEXTS)), ids.argmax(axis=1)] == 49407).all()


def test_the_onnx_text_export_agrees_with_torch(encoder, tmp_path):
    info = onnx_export.export_text_encoder(encoder, tmp_path, int8=True)
    assert (info.input_names, info.pad_to_max_length, info.max_length) == (["input_ids"], True, 77)
    exported = OnnxTextEncoder.load(tmp_path, encoder.model_id, encoder.dim)
    agreement = np.sum(exported.encode_texts(TEXTS) * encoder.encode_texts(TEXTS), axis=1)
    assert agreement.min() > 0.9999
    assert info.int8_min_cosine is not None and info.int8_min_cosine > 0.99


def test_the_int8_image_tower_agrees_with_fp32_and_auto_weighs_it(encoder, tmp_path):
    encoder.artifact_dir = tmp_path
    pixels = np.stack([encoder.preprocess(picture(seed)) for seed in range(8)])
    fp32 = encoder.encode_pixels_at(pixels, "fp32")
    int8 = encoder.encode_pixels_at(pixels, "int8")
    assert np.min(np.sum(fp32 * int8, axis=1)) > 0.999
    assert (tmp_path / "image-encoder-int8.onnx").is_file()
    choice, vectors = choose_precision(encoder, pixels)
    assert "int8" in [trial.precision for trial in choice.trials]
    assert vectors.shape == (8, 16)
    encoder.set_image_precision("fp32")


def test_index_and_query_through_the_cli_with_a_torch_free_text_query(checkpoint, tmp_path):
    photo_folder(tmp_path / "photos", 6)
    index = tmp_path / "index"
    args = ["index", str(tmp_path / "photos"), "--index", str(index), "--model", str(checkpoint)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert (index / "text-encoder.onnx").is_file()  # exported next to the index
    with SearchEngine(index) as engine:
        assert engine.info().model == str(checkpoint)
        expected = [hit.path for hit in engine.search("a photo of a dog", k=3)]
    out = run_without_torch("query", "a photo of a dog", "--index", str(index), "-k", "3", "--json")
    assert [json.loads(line)["path"] for line in out.stdout.splitlines()] == expected


def test_an_int8_index_is_indexed_into_without_torch_and_its_exports_are_cached(
    checkpoint, tmp_path, exported
):
    photo_folder(tmp_path / "photos", 6)
    for name in ("first", "second"):
        index = tmp_path / name
        args = ["index", str(tmp_path / "photos"), "--index", str(index)]
        result = CliRunner().invoke(app, [*args, "--model", str(checkpoint), "--precision", "int8"])
        assert result.exit_code == 0, result.stderr
    assert exported == ["image_embeds", "text_embeds"]  # the second index copied them
    photo_folder(tmp_path / "more", 4, start_seed=50)
    run_without_torch("index", str(tmp_path / "more"), "--index", str(tmp_path / "second"))
    with SearchEngine(tmp_path / "second") as engine:
        assert engine.info().files == 10


def test_another_tokenizer_keeps_text_queries_on_torch_and_says_why(checkpoint, tmp_path):
    cfg = {"text_cfg": {"tokenizer_kwargs": {"clean": "canonicalize"}}}
    directory = variant(checkpoint, tmp_path / "canonical", model_cfg=cfg)
    encoder = load_encoder(str(directory), device="cpu")
    assert not encoder.save_tokenizer_json(tmp_path / "tokenizer.json")
    with pytest.raises(ModelLoadError) as error:
        onnx_export.export_text_encoder(encoder, tmp_path)
    assert "tokenizer.json" in str(error.value) and "\n" not in str(error.value)
    assert encoder.encode_texts(["Hello, World!"]).shape == (1, 16)  # torch still answers


def test_pytorch_bin_weights_load_the_same_model(checkpoint, encoder, tmp_path):
    from safetensors.torch import load_file

    directory = tmp_path / "bin"
    directory.mkdir()
    shutil.copy(checkpoint / "open_clip_config.json", directory)
    state = load_file(checkpoint / "open_clip_model.safetensors")
    torch.save(state, directory / "open_clip_pytorch_model.bin")
    from_bin = load_encoder(str(directory), device="cpu")
    np.testing.assert_allclose(from_bin.encode_texts(TEXTS), encoder.encode_texts(TEXTS), atol=1e-6)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("unreadable", "cannot read"),
        ("not_open_clip", "not an OpenCLIP config"),
        ("no_weights", "has no OpenCLIP weights"),
        ("bad_architecture", "cannot load the OpenCLIP model"),
        ("not_square", "square"),
    ],
)
def test_an_odd_checkpoint_is_refused_in_one_line(checkpoint, tmp_path, change, expected):
    directory = variant(checkpoint, tmp_path / change)
    config_path = directory / "open_clip_config.json"
    config = json.loads(config_path.read_text())
    if change == "unreadable":
        config_path.write_text("{not json")
    elif change == "not_open_clip":
        config_path.write_text(json.dumps({"model_cfg": {"layers": 2}}))
    elif change == "no_weights":
        (directory / "open_clip_model.safetensors").unlink()
    elif change == "bad_architecture":
        config["model_cfg"]["vision_cfg"]["width"] = 48  # the weights are for 32
        config_path.write_text(json.dumps(config))
    else:
        config["model_cfg"]["vision_cfg"]["image_size"] = [32, 48]
        config_path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as error:
        load_encoder(str(directory), device="cpu")
    message = str(error.value)
    assert expected in message and "\n" not in message, message
    assert error.value.model == str(directory)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache, offline."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no request leaves
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_an_hf_hub_id_offline_and_not_cached_is_one_line(hub_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hf-hub:laion" / "CLIP-ViT-B-32").mkdir(parents=True)  # never taken as a path
    model = "hf-hub:laion/CLIP-ViT-B-32"
    assert resolve_model_name(model) == model
    with pytest.raises(ModelLoadError) as error:
        load_encoder(model, device="cpu")
    message = str(error.value)
    assert "not in the local Hugging Face cache" in message and "cannot be reached" in message
    assert "\n" not in message and error.value.model == model


def test_an_hf_hub_id_not_cached_goes_through_open_clips_hub_route(hub_cache, monkeypatch):
    from searchclip._encoders import loading

    monkeypatch.setattr(loading, "_hub_unreachable", lambda: False)  # as if online
    with pytest.raises(ModelLoadError) as error:
        load_encoder("hf-hub:searchclip-tests/not-cached", device="cpu")
    message = str(error.value)  # OpenCLIP's download was tried (and refused: offline)
    assert "'hf-hub:searchclip-tests/not-cached' from Hugging Face" in message, message
    assert "\n" not in message


def test_an_hf_hub_id_loads_from_the_local_cache(hub_cache, checkpoint, encoder, tmp_path):
    repo = hub_cache / "models--searchclip-tests--tiny-open-clip"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(checkpoint, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    model = "hf-hub:searchclip-tests/tiny-open-clip"
    photo_folder(tmp_path / "photos", 4)
    index = tmp_path / "index"
    args = ["index", str(tmp_path / "photos"), "--index", str(index), "--model", model]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    with SearchEngine(index) as engine:
        assert engine.info().model == model  # the id is recorded as given
    from_hub = load_encoder(model, device="cpu")
    assert from_hub.model_id == model
    np.testing.assert_allclose(from_hub.encode_texts(TEXTS), encoder.encode_texts(TEXTS), atol=1e-6)


_CHILD = """
import json, sys
sys.modules[sys.argv[1]] = None  # any later import of it raises ImportError
from searchclip._encoders import load_encoder
from searchclip._errors import MissingExtraError
try:
    load_encoder(sys.argv[2], device="cpu")
except MissingExtraError as exc:
    print(json.dumps({"extra": exc.extra, "message": str(exc), "model": exc.model}))
"""


@pytest.mark.parametrize("package", ["open_clip", "torch"])
def test_without_the_extra_loading_names_it(checkpoint, package):
    child = [sys.executable, "-c", textwrap.dedent(_CHILD), package, str(checkpoint)]
    result = subprocess.run(child, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["extra"] == "openclip" and found["model"] == str(checkpoint)
    assert "pip install 'searchclip[openclip]'" in found["message"]
    assert f"({package} is not installed)" in found["message"]


def test_the_random_checkpoint_is_seeded(checkpoint, tmp_path):
    again = build_random_open_clip(tmp_path / "again")
    other = build_random_open_clip(tmp_path / "other", seed=1)
    weights = "open_clip_model.safetensors"
    assert (again / weights).read_bytes() == (checkpoint / weights).read_bytes()
    assert (other / weights).read_bytes() != (checkpoint / weights).read_bytes()


def test_a_sigmoid_checkpoint_carries_its_match_probability(tmp_path):
    from searchclip.training.random_open_clip import TINY_MODEL_CFG

    cfg = {**TINY_MODEL_CFG, "init_logit_scale": float(np.log(10)), "init_logit_bias": -10.0}
    encoder = load_encoder(str(build_random_open_clip(tmp_path / "sigmoid", cfg)), device="cpu")
    assert encoder.match_probability.scale == pytest.approx(10.0)
    assert encoder.match_probability.bias == pytest.approx(-10.0)
    info = onnx_export.export_text_encoder(encoder, tmp_path)
    assert info.probability() == encoder.match_probability  # torch-free queries read the same


def test_threads_share_one_encoder_and_its_int8_tower(checkpoint, tmp_path, exported):
    from concurrent.futures import ThreadPoolExecutor

    shared = load_encoder(str(checkpoint), device="cpu")  # no int8 tower built yet
    shared.artifact_dir = tmp_path
    images = [picture(seed, (50 + seed, 37)) for seed in range(6)]
    pixels = np.stack([shared.preprocess(image) for image in images])
    texts = [f"a photo of {count} dogs" for count in range(12)]
    serial = (shared.encode_images(images), shared.encode_texts(texts))

    def work(_):
        return (
            shared.encode_images(images),
            shared.encode_texts(texts),
            shared.encode_pixels_at(pixels, "int8"),
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(4)))
    for image_vectors, text_vectors, int8_vectors in results:
        np.testing.assert_allclose(image_vectors, serial[0], atol=1e-6)
        np.testing.assert_allclose(text_vectors, serial[1], atol=1e-6)
        np.testing.assert_allclose(int8_vectors, results[0][2], atol=1e-6)
    assert exported == ["image_embeds"]  # the int8 tower was built once, for all threads


def test_a_transformers_text_tower_builds_offline_and_queries_through_torch(tmp_path, monkeypatch):
    from searchclip.training import random_open_clip

    tiny_xlmr = {
        "model_type": "xlm-roberta",
        "vocab_size": 2000,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 80,
        "pad_token_id": 1,
    }
    monkeypatch.setitem(random_open_clip.HF_TEXT_CONFIGS, "tiny-xlm-roberta", tiny_xlmr)
    text = {"hf_model_name": "tiny-xlm-roberta", "hf_tokenizer_name": "tiny-xlm-roberta"}
    cfg = {**random_open_clip.TINY_MODEL_CFG, "text_cfg": {**text, "hf_pooler_type": "mean_pooler"}}
    directory = build_random_open_clip(tmp_path / "multilingual", cfg)
    encoder = load_encoder(str(directory), device="cpu")
    reference, _, _ = open_clip.create_model_and_transforms(f"local-dir:{directory}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{directory}")
    queries = ["Hund am Strand", "海滩上的狗", "كلب على الشاطئ"]
    with torch.no_grad():
        expected = reference.eval().encode_text(tokenizer(queries), normalize=True).numpy()
    np.testing.assert_allclose(encoder.encode_texts(queries), expected, atol=1e-5)
    with pytest.raises(ModelLoadError) as error:  # no torch-free form: queries stay on torch
        onnx_export.export_text_encoder(encoder, tmp_path)
    assert "tokenizer.json" in str(error.value) and "\n" not in str(error.value)
