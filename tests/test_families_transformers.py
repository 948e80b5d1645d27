"""The transformers families besides CLIP (SigLIP, AltCLIP, ChineseCLIP, a vision-text dual
encoder), each on its tiny random-weight model built by ``searchclip.training.random_models``:
loaded by its config through ``--model PATH``, indexed and queried through the CLI, its ONNX
text export equal to torch and queried without torch, its int8 image tower and torch-free int8
index, the export cache. Then SigLIP's own rules: texts padded to 64 tokens without a mask,
mean and std 0.5 with a plain resize, and ``--relevant`` as its match probability."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from light_cli import run_without_torch
from pictures import photo_folder, picture
from PIL import Image
from typer.testing import CliRunner

from searchclip import SearchEngine
from searchclip._cli import app
from searchclip._encoders import load_encoder, onnx_export
from searchclip._encoders.onnx_image import INT8_SIDECAR_FILE, ImagePreprocess, preprocess_settings
from searchclip._encoders.onnx_text import (
    SIDECAR_FILE,
    TOKENIZER_FILE,
    OnnxTextEncoder,
    TextExportInfo,
    TextTokenizer,
)
from searchclip._errors import ModelLoadError
from searchclip.training.random_models import build_random_model

FAMILIES = {
    # model_type: (transformers class, tokenizer class, image processor class)
    "siglip": ("SiglipModel", "GemmaTokenizer", "SiglipImageProcessorPil"),
    "altclip": ("AltCLIPModel", "XLMRobertaTokenizer", "CLIPImageProcessorPil"),
    "chinese_clip": ("ChineseCLIPModel", "BertTokenizer", "ChineseCLIPImageProcessorPil"),
    "vision-text-dual-encoder": (
        "VisionTextDualEncoderModel",
        "BertTokenizer",
        "ViTImageProcessorPil",
    ),
}
TEXTS = [
    "a photo of a dog",
    "x",
    "Hund am Strand",
    "海滩上的狗",
    "كلب على الشاطئ",
    "a photo of " + "a very long caption that goes on and on " * 20,  # past every max length
]


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {family: build_random_model(family, root / family) for family in FAMILIES}


@pytest.fixture(scope="module")
def encoders(family_dirs):
    return {family: load_encoder(str(path), device="cpu") for family, path in family_dirs.items()}


@pytest.fixture(params=list(FAMILIES))
def family(request) -> str:
    return request.param


@pytest.fixture
def export_calls(monkeypatch) -> list[str]:
    """The towers really exported (not copied from the cache), in order."""
    calls: list[str] = []
    real = onnx_export._export_onnx

    def counted(encoder, module, inputs, path, input_axes, output):
        calls.append(output)
        return real(encoder, module, inputs, path, input_axes, output)

    monkeypatch.setattr(onnx_export, "_export_onnx", counted)
    return calls


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def _index(photos: Path, index: Path, model: Path | None, *extra: str):
    args = ["index", str(photos), "--index", str(index), "--batch-size", "4"]
    args += ["--model", str(model)] if model is not None else []
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 0, result.output
    return result


def test_each_family_loads_by_its_config_with_its_own_tokenizer_and_processor(family, encoders):
    encoder = encoders[family]
    model_class, tokenizer_class, processor_class = FAMILIES[family]
    assert type(encoder.model).__name__ == model_class
    assert type(encoder.tokenizer).__name__ == tokenizer_class
    assert type(encoder.processor).__name__ == processor_class
    assert encoder.image_size == 32
    # SigLIP does not project: its embedding is the vision model's attention-pooled output
    assert encoder.dim == (32 if family == "siglip" else 16)
    assert (encoder.match_probability is not None) == (family == "siglip")


def test_vectors_are_the_models_own_features(family, encoders):
    encoder = encoders[family]
    pixels = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        images = encoder.model.get_image_features(pixel_values=torch.from_numpy(pixels))
        tokens = encoder.tokenize(TEXTS[:3])
        texts = encoder.model.get_text_features(**tokens)
    expected_images = images.pooler_output.numpy()
    expected_texts = texts.pooler_output.numpy()
    expected_images /= np.linalg.norm(expected_images, axis=1, keepdims=True)
    expected_texts /= np.linalg.norm(expected_texts, axis=1, keepdims=True)
    np.testing.assert_allclose(encoder.encode_pixels(pixels), expected_images, atol=1e-5)
    np.testing.assert_allclose(encoder.encode_texts(TEXTS[:3]), expected_texts, atol=1e-5)


def test_the_onnx_text_export_agrees_with_torch_and_tokenizes_the_same(family, encoders, tmp_path):
    encoder = encoders[family]
    info = onnx_export.export_text_encoder(encoder, tmp_path)
    assert info == TextExportInfo.read(tmp_path)
    assert info.input_names == list(encoder.tokenizing.input_names)
    exported = OnnxTextEncoder.load(tmp_path, encoder.model_id, encoder.dim)
    assert exported is not None
    one_batch = exported.encode_texts(TEXTS)
    one_by_one = np.concatenate([exported.encode_texts([text]) for text in TEXTS])
    reference = encoder.encode_texts(TEXTS)
    assert _cosines(one_batch, reference).min() >= 0.999
    assert _cosines(one_by_one, reference).min() >= 0.999
    tokenize = TextTokenizer(
        tmp_path / TOKENIZER_FILE,
        info.max_length,
        info.pad_id,
        pad_to_max_length=info.pad_to_max_length,
    )
    ids, mask = tokenize(TEXTS)
    torch_tokens = encoder.tokenize(TEXTS)
    np.testing.assert_array_equal(ids, torch_tokens["input_ids"].numpy())
    if "attention_mask" in torch_tokens:
        np.testing.assert_array_equal(mask, torch_tokens["attention_mask"].numpy())


def test_index_and_query_through_the_cli_then_a_torch_free_text_query(
    family, family_dirs, tmp_path
):
    photo_folder(tmp_path / "photos", 6)
    index = tmp_path / "index"
    _index(tmp_path / "photos", index, family_dirs[family], "--precision", "fp32")
    assert (index / "text-encoder.onnx").is_file()  # the text tower exported next to it
    with SearchEngine(index) as engine:
        assert engine.info().files == 6
        expected = [hit.path for hit in engine.search("a photo of a dog", k=3)]
    out = run_without_torch("query", "a photo of a dog", "--index", str(index), "-k", "3", "--json")
    assert [json.loads(line)["path"] for line in out.stdout.splitlines()] == expected


def test_int8_tower_export_cache_and_a_torch_free_int8_index(
    family, family_dirs, tmp_path, export_calls
):
    photo_folder(tmp_path / "photos", 6)
    first = tmp_path / "first"
    _index(tmp_path / "photos", first, family_dirs[family], "--precision", "int8")
    with SearchEngine(first) as engine:
        hits = [(hit.path, round(hit.score, 5)) for hit in engine.search("Hund am Strand", k=3)]
    assert export_calls == ["image_embeds", "text_embeds"]
    assert json.loads((first / INT8_SIDECAR_FILE).read_text())["preprocess"] is not None
    second = tmp_path / "second"
    _index(tmp_path / "photos", second, family_dirs[family], "--precision", "int8")
    with SearchEngine(second) as engine:
        again = [(hit.path, round(hit.score, 5)) for hit in engine.search("Hund am Strand", k=3)]
    assert export_calls == ["image_embeds", "text_embeds"]  # copied from the cache
    assert again == hits
    photo_folder(tmp_path / "more", 3, start_seed=50)
    run_without_torch("index", str(tmp_path / "more"), "--index", str(second))
    out = run_without_torch("query", "海滩上的狗", "--index", str(second), "--json", "-k", "9")
    assert len(out.stdout.splitlines()) == 9


def test_the_int8_image_tower_agrees_with_fp32(family, encoders, tmp_path):
    encoder = encoders[family]
    encoder.artifact_dir = tmp_path
    pixels = np.stack([encoder.preprocess(picture(seed, (70, 50))) for seed in range(8)])
    fp32 = encoder.encode_pixels_at(pixels, "fp32")
    int8 = encoder.encode_pixels_at(pixels, "int8")
    assert _cosines(fp32, int8).min() > 0.98


def test_torch_free_preprocessing_equals_the_family_processor(family, encoders):
    processor = encoders[family].processor
    preprocess = ImagePreprocess(**preprocess_settings(processor))
    for size in [(64, 48), (33, 90), (32, 32), (7, 5)]:
        image = picture(sum(size), size)
        expected = processor(images=image, return_tensors="np")["pixel_values"][0]
        got = preprocess(image)
        assert got.shape == expected.shape == (3, 32, 32)
        assert np.abs(got - expected).max() < 1e-5


# SigLIP


def test_siglip_pads_every_text_to_its_length_and_feeds_no_mask(encoders, tmp_path):
    encoder = encoders["siglip"]
    tokens = encoder.tokenize(["a dog", "a photo of a dog on the beach at sunset"])
    assert list(tokens) == ["input_ids"]
    assert tokens["input_ids"].shape == (2, 64)
    onnx_export.export_text_encoder(encoder, tmp_path)
    info = TextExportInfo.read(tmp_path)
    assert (info.input_names, info.pad_to_max_length, info.max_length) == (["input_ids"], True, 64)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "text-encoder.onnx"))
    assert [node.name for node in session.get_inputs()] == ["input_ids"]
    # The padding is part of the text: padded to the longest only, the vector would differ.
    short = encoder.tokenizer(["a dog"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        unpadded = encoder.model.get_text_features(input_ids=short).pooler_output.numpy()
    unpadded /= np.linalg.norm(unpadded)
    assert _cosines(unpadded, encoder.encode_texts(["a dog"]))[0] < 0.999


def test_siglip_images_are_resized_plainly_with_mean_and_std_one_half(encoders):
    settings = preprocess_settings(encoders["siglip"].processor)
    assert settings["crop"] is None and settings["shortest_edge"] is None
    assert (settings["height"], settings["width"]) == (32, 32)
    assert settings["mean"] == settings["std"] == [0.5, 0.5, 0.5]
    wide = Image.new("RGB", (90, 30), (255, 0, 0))
    wide.paste((0, 0, 255), (0, 0, 30, 30))  # a blue left third: a crop would cut it off
    pixels = ImagePreprocess(**settings)(wide)
    assert pixels[2, 16, 0] == pytest.approx(1.0) and pixels[0, 16, 31] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def siglip_with_hits(family_dirs, tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """A SigLIP whose logit bias puts a match probability of one half between the second and
    third best photos for "a photo of a dog"; the photos; the two it should keep."""
    root = tmp_path_factory.mktemp("siglip-bias")
    photos = root / "photos"
    paths = photo_folder(photos, 8)
    encoder = load_encoder(str(family_dirs["siglip"]), device="cpu")
    scores = (
        encoder.encode_images([Image.open(p).convert("RGB") for p in paths])
        @ (encoder.encode_texts(["a photo of a dog"])[0])
    )
    order = np.argsort(-scores)
    threshold = float(scores[order[1]] + scores[order[2]]) / 2
    model = encoder.model
    with torch.no_grad():
        model.logit_bias.fill_(-float(model.logit_scale.exp()) * threshold)
    directory = root / "model"
    shutil.copytree(family_dirs["siglip"], directory)
    model.save_pretrained(directory)
    return directory, photos, sorted(str(paths[i].resolve()) for i in order[:2])


def test_siglip_relevant_keeps_the_images_of_match_probability_one_half(siglip_with_hits, tmp_path):
    model, photos, expected = siglip_with_hits
    index = tmp_path / "index"
    _index(photos, index, model, "--precision", "fp32")
    query = ["query", "a photo of a dog", "--index", str(index), "--relevant", "--json"]
    result = CliRunner().invoke(app, query)
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["path"] for line in result.stdout.splitlines()) == expected
    assert "match probability of at least 0.5" in result.stderr
    with SearchEngine(index) as engine:
        found = engine.search("a photo of a dog", k=None, relevant=True)
        assert found.cutoff.probability == 0.5
        assert found.cutoff.min_score == pytest.approx(
            engine.search("a photo of a dog", k=3)[1].score / 2
            + engine.search("a photo of a dog", k=3)[2].score / 2,
            abs=1e-4,
        )
        # The HTTP API says which rule decided, with the same images.
        pytest.importorskip("fastapi")
        from fastapi.testclient import TestClient

        from searchclip.server import create_app

        served = TestClient(create_app(engine)).get(
            "/api/search", params={"q": "a photo of a dog", "relevant": "true", "limit": 10}
        )
        assert served.status_code == 200, served.text
        assert served.json()["cutoff"]["probability"] == 0.5
        assert sorted(hit["path"] for hit in served.json()["hits"]) == expected
        # An image query has no match probability: the split of the scores decides.
        assert (
            engine.search_image(next(photos.glob("*.png")), relevant=True).cutoff.probability
            is None
        )
    # Torch-free, the sidecar carries the scale and bias: the same images.
    sidecar = json.loads((index / SIDECAR_FILE).read_text())
    assert sidecar["match_probability"]["bias"] < 0
    out = run_without_torch(*query)
    assert sorted(json.loads(line)["path"] for line in out.stdout.splitlines()) == expected


def test_siglip2_naflex_checkpoints_are_refused_in_one_line(family_dirs, tmp_path):
    other = shutil.copytree(family_dirs["siglip"], tmp_path / "naflex")
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "siglip2"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as error:
        load_encoder(str(other), device="cpu")
    message = str(error.value)
    assert "NaFlex" in message and "'siglip'" in message and "\n" not in message


def test_a_processor_that_makes_no_square_image_is_refused(family_dirs, tmp_path):
    other = shutil.copytree(family_dirs["siglip"], tmp_path / "oblong")
    settings = json.loads((other / "preprocessor_config.json").read_text())
    settings["size"] = {"height": 32, "width": 48}
    (other / "preprocessor_config.json").write_text(json.dumps(settings))
    with pytest.raises(ModelLoadError, match="makes no square images"):
        load_encoder(str(other), device="cpu")


def test_a_real_size_architecture_is_built_from_the_config_keywords(tmp_path):
    architecture = {
        "text_config": {"hidden_size": 48, "num_hidden_layers": 1, "num_attention_heads": 2},
        "vision_config": {
            "hidden_size": 48,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 48,
            "patch_size": 16,
        },
    }
    architecture["text_config"]["vocab_size"] = 1000  # larger than the tokenizer's: kept
    directory = build_random_model("siglip", tmp_path / "model", architecture)
    config = json.loads((directory / "config.json").read_text())
    assert config["vision_config"]["image_size"] == 48
    assert config["text_config"]["vocab_size"] == 1000
    encoder = load_encoder(str(directory), device="cpu")
    assert (encoder.dim, encoder.image_size) == (48, 48)
    with pytest.raises(ValueError, match="vocab_size"):
        build_random_model("siglip", tmp_path / "small", {"text_config": {"vocab_size": 10}})
    with pytest.raises(ValueError, match="unknown family"):
        build_random_model("bert", tmp_path / "bert")


@pytest.fixture(scope="module")
def siglip_sentencepiece(family_dirs, tmp_path_factory) -> Path:
    """The tiny SigLIP with a SigLIP (1) checkpoint's tokenizer: spiece.model, no
    tokenizer.json (transformers' Python SiglipTokenizer)."""
    from searchclip.training.random_tokenizers import siglip_sentencepiece_tokenizer

    directory = shutil.copytree(family_dirs["siglip"], tmp_path_factory.mktemp("spm") / "model")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (directory / name).unlink()
    siglip_sentencepiece_tokenizer(directory).save_pretrained(directory)
    assert not (directory / "tokenizer.json").exists()
    return directory


def test_siglips_sentencepiece_tokenizer_is_rebuilt_for_torch_free_queries(
    siglip_sentencepiece, tmp_path
):
    encoder = load_encoder(str(siglip_sentencepiece), device="cpu")
    assert type(encoder.tokenizer).__name__ == "SiglipTokenizer"
    info = onnx_export.export_text_encoder(encoder, tmp_path)
    texts = [*TEXTS, "  A  Photo,  of the DOG!! ", "Crème brûlée in Zürich", "IMG_2043", "a\tb"]
    ids, _ = TextTokenizer(
        tmp_path / TOKENIZER_FILE, info.max_length, info.pad_id, pad_to_max_length=True
    )(texts)
    np.testing.assert_array_equal(ids, encoder.tokenize(texts)["input_ids"].numpy())
    exported = OnnxTextEncoder.load(tmp_path, encoder.model_id, encoder.dim)
    assert _cosines(exported.encode_texts(texts), encoder.encode_texts(texts)).min() >= 0.999


def test_a_tokenizer_without_a_json_form_keeps_text_queries_on_torch(
    family_dirs, tmp_path, monkeypatch
):
    from searchclip._encoders.clip import ClipEncoder

    monkeypatch.setattr(ClipEncoder, "save_tokenizer_json", lambda self, path: False)
    photo_folder(tmp_path / "photos", 4)
    model = family_dirs["chinese_clip"]
    reason = "text queries will use torch: .*has no tokenizer.json form"
    with SearchEngine(tmp_path / "index", model=str(model), precision="fp32") as engine:
        with pytest.warns(RuntimeWarning, match=reason):  # the export is tried once
            engine.index(tmp_path / "photos")
        hits = engine.search("海滩上的狗", k=2)
    assert len(hits) == 2
    assert not (tmp_path / "index" / SIDECAR_FILE).exists()
