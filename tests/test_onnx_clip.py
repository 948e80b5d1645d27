"""An int8 index without torch: CLIP's preprocessing reproduced (against transformers' own
processor, on real photos), and the ONNX encoder that indexes into and queries an int8 index
from its exports alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from light_cli import run_without_torch
from pictures import photo_folder
from PIL import Image

from searchclip import SearchEngine
from searchclip._encoders.onnx_clip import OnnxClipEncoder
from searchclip._encoders.onnx_image import INT8_ONNX_FILE, INT8_SIDECAR_FILE

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_PROCESSOR = (
    Path(__file__).resolve().parents[2] / "shared/models/clip-vit-base-patch32-tokenizer"
)


def real_photos(count: int) -> list[Path]:
    sets = ("coco128_multilabel", "imagenet_1k_samples")
    found = [p for name in sets for p in sorted((SHARED_DATA / name / "images").glob("*"))[:count]]
    if not found:
        pytest.skip(f"no photos under {SHARED_DATA} (the shared data folder is absent)")
    return found


@pytest.mark.skipif(not REAL_PROCESSOR.is_dir(), reason=f"no CLIP processor at {REAL_PROCESSOR}")
def test_preprocessing_equals_transformers_clip_processor_on_real_photos():
    from transformers import CLIPImageProcessorPil

    from searchclip._encoders.onnx_image import ClipPreprocess
    from searchclip._encoders.onnx_image import preprocess_settings as _preprocess_settings

    processor = CLIPImageProcessorPil.from_pretrained(REAL_PROCESSOR, local_files_only=True)
    preprocess = ClipPreprocess(**_preprocess_settings(processor))
    odd_sizes = [
        Image.new("RGB", size, (200, 30, 90))
        for size in [(225, 224), (224, 1000), (3001, 401), (7, 5)]
    ]
    images = [Image.open(p).convert("RGB") for p in real_photos(25)] + odd_sizes
    for image in images:
        expected = processor(images=image, return_tensors="np")["pixel_values"][0]
        got = preprocess(image)
        assert got.dtype == np.float32 and got.shape == expected.shape == (3, 224, 224)
        assert np.abs(got - expected).max() < 1e-5


def test_a_processor_it_cannot_reproduce_keeps_no_settings(tiny_encoder):
    from searchclip._encoders.onnx_image import preprocess_settings as _preprocess_settings

    assert _preprocess_settings(tiny_encoder.processor) is not None
    other = type(tiny_encoder.processor)(do_normalize=False, crop_size={"height": 32, "width": 32})
    assert _preprocess_settings(other) is None


@pytest.fixture
def int8_index(tmp_path: Path, model: str, photos: Path) -> Path:
    index_dir = tmp_path / "index"
    with SearchEngine(index_dir, model=model, precision="int8") as engine:
        engine.index(photos)
    return index_dir


def test_an_int8_index_reopens_with_the_onnx_encoder(int8_index, photos, tmp_path):
    with SearchEngine(int8_index) as engine:
        encoder = engine.encoder()
        assert isinstance(encoder, OnnxClipEncoder)
        probe = photos / "img002.png"
        best = engine.search_image(probe, k=1)[0]
        assert best.path == str(probe) and best.score == pytest.approx(1.0, abs=1e-4)
        more = tmp_path / "more"
        photo_folder(more, 3, start_seed=70)
        report = engine.index(more)
        assert (report.new, report.encoded, report.failed) == (3, 3, 0)
        assert engine.search("a photo of a dog", k=20)
        # one text session for both uses
        assert engine._encoders.text_encoder(engine._model) is encoder.text
        stored = engine.stored_vectors([str(p) for p in sorted(more.rglob("img*"))])
    torch_encoder = tmp_path / "torch"
    with SearchEngine(torch_encoder, model=str(Path(encoder.model_id)), precision="int8") as engine:
        engine.index(more)
        again = engine.stored_vectors(list(stored))
        assert not isinstance(engine.encoder(), OnnxClipEncoder)  # a new index needs torch
    for path, vector in stored.items():
        assert float(vector @ again[path]) >= 0.9999


@pytest.mark.parametrize("missing", [INT8_ONNX_FILE, INT8_SIDECAR_FILE, "text-encoder.json"])
def test_without_a_current_export_the_torch_encoder_takes_over(int8_index, photos, missing):
    (int8_index / missing).unlink()
    with SearchEngine(int8_index) as engine:
        assert not isinstance(engine.encoder(), OnnxClipEncoder)
        assert engine.encoder().image_precision == "int8"
        probe = photos / "img002.png"
        assert engine.search_image(probe, k=1)[0].path == str(probe)  # writes the int8 export
        engine.search("a dog", k=1)  # writes the text export
    with SearchEngine(int8_index) as engine:
        assert isinstance(engine.encoder(), OnnxClipEncoder)


def test_a_damaged_int8_graph_falls_back_to_torch(int8_index, photos):
    (int8_index / INT8_ONNX_FILE).write_bytes(b"not a graph")
    with SearchEngine(int8_index) as engine:
        assert not isinstance(engine.encoder(), OnnxClipEncoder)
        assert engine.search_image(photos / "img000.png", k=1)[0].path == str(photos / "img000.png")


@pytest.mark.slow
def test_indexing_into_an_int8_index_imports_neither_torch_nor_transformers(int8_index, tmp_path):
    more = tmp_path / "more"
    photo_folder(more, 2, start_seed=80)
    result = run_without_torch("index", str(more), "--index", str(int8_index))
    assert "2 new" in result.stdout and "encoded 2 images" in result.stdout


def test_an_int8_index_queries_text_with_the_int8_tower_where_it_agrees(int8_index):
    from searchclip._encoders.onnx_text import TEXT_INT8_FILE, TextExportInfo

    info = TextExportInfo.read(int8_index)
    assert (int8_index / TEXT_INT8_FILE).is_file() and info.int8_min_cosine is not None
    for recorded, expected in ((0.9995, True), (0.99, False)):
        dataclasses.replace(info, int8_min_cosine=recorded).write(int8_index)
        with SearchEngine(int8_index) as engine:
            assert engine.search("a photo of a dog", k=2)
            assert engine._encoders.text_encoder(engine._model).int8 is expected
