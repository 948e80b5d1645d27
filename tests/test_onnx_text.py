"""Text queries through the ONNX export of the text tower: same vectors as torch, no torch."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from light_cli import run_without_torch

from searchclip import SearchEngine
from searchclip._encoders.onnx_text import (
    SIDECAR_FILE,
    TEXT_INT8_FILE,
    TOKENIZER_FILE,
    ClipTextTokenizer,
    OnnxTextEncoder,
    TextExportInfo,
    current_text_export,
)

REAL_TOKENIZER = (
    Path(__file__).resolve().parents[2] / "shared/models/clip-vit-base-patch32-tokenizer"
)
TEXTS = [
    "a photo of a dog",
    "x",
    "The Quick brown fox, jumping over the lazy dog's back!",
    "a photo of " + "a very long caption that goes on and on " * 20,  # past 77 tokens
    "café crème brûlée at the Château",
]


@pytest.fixture(scope="module")
def export_dir(tiny_encoder, tmp_path_factory) -> Path:
    from searchclip._encoders.onnx_export import export_text_encoder

    directory = tmp_path_factory.mktemp("export")
    export_text_encoder(tiny_encoder, directory)
    return directory


@pytest.fixture(scope="module")
def onnx_encoder(export_dir, tiny_encoder) -> OnnxTextEncoder:
    loaded = OnnxTextEncoder.load(export_dir, tiny_encoder.model_id, tiny_encoder.dim)
    assert loaded is not None
    return loaded


@pytest.fixture
def indexed(tmp_path, model, photos) -> Path:
    """An index of the photos, built with the tiny model loaded by the engine itself (in fp32:
    an int8 index would answer image-side calls without torch, see test_onnx_clip.py)."""
    with SearchEngine(tmp_path / "index", model=model, batch_size=4, precision="fp32") as engine:
        engine.index(photos)
    return tmp_path / "index"


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_onnx_vectors_match_torch_in_one_batch_of_different_lengths(onnx_encoder, tiny_encoder):
    exported = onnx_encoder.encode_texts(TEXTS)
    reference = tiny_encoder.encode_texts(TEXTS)
    assert exported.shape == reference.shape and exported.dtype == np.float32
    assert _cosines(exported, reference).min() >= 0.999
    assert np.allclose(np.linalg.norm(exported, axis=1), 1.0, atol=1e-5)


def test_onnx_vectors_do_not_depend_on_batch_neighbours(onnx_encoder, tiny_encoder):
    one_by_one = np.concatenate([onnx_encoder.encode_texts([text]) for text in TEXTS])
    assert _cosines(one_by_one, tiny_encoder.encode_texts(TEXTS)).min() >= 0.999
    assert onnx_encoder.encode_texts([]).shape == (0, tiny_encoder.dim)


def test_queries_are_padded_to_the_longest_text_not_the_model_length(export_dir, tiny_encoder):
    info = current_text_export(export_dir, tiny_encoder.model_id, tiny_encoder.dim)
    tokenize = ClipTextTokenizer(export_dir / TOKENIZER_FILE, info.max_length, info.pad_id)
    ids, mask = tokenize(["a dog", "a photo of a dog"])
    assert ids.shape == mask.shape and ids.shape[1] < info.max_length
    assert mask[1].all() and not mask[0].all()
    long_ids, _ = tokenize([TEXTS[3]])
    assert long_ids.shape[1] == info.max_length  # truncated, still ending with end-of-text
    assert long_ids[0, -1] == tiny_encoder.tokenizer.eos_token_id


def test_the_int8_text_tower_is_written_only_for_int8_and_its_agreement_recorded(
    export_dir, tiny_encoder, tmp_path
):
    from searchclip._encoders.onnx_export import export_text_encoder

    assert not (export_dir / TEXT_INT8_FILE).exists()
    assert TextExportInfo.read(export_dir).int8_min_cosine is None
    info = export_text_encoder(tiny_encoder, tmp_path, int8=True)
    assert (tmp_path / TEXT_INT8_FILE).is_file()
    assert 0.99 < info.int8_min_cosine <= 1.0  # measured against torch
    assert TextExportInfo.read(tmp_path) == info


def test_the_int8_text_tower_is_used_only_where_it_agrees(tiny_encoder, tmp_path):
    from searchclip._encoders.onnx_export import export_text_encoder

    info = export_text_encoder(tiny_encoder, tmp_path, int8=True)
    model, dim = tiny_encoder.model_id, tiny_encoder.dim
    for recorded, expected in ((0.9995, True), (0.998, False), (None, False)):
        dataclasses.replace(info, int8_min_cosine=recorded).write(tmp_path)
        assert OnnxTextEncoder.load(tmp_path, model, dim, int8=True).int8 is expected
        assert OnnxTextEncoder.load(tmp_path, model, dim).int8 is False
    dataclasses.replace(info, int8_min_cosine=0.9995).write(tmp_path)
    int8 = OnnxTextEncoder.load(tmp_path, model, dim, int8=True)
    assert _cosines(int8.encode_texts(TEXTS), tiny_encoder.encode_texts(TEXTS)).min() > 0.99
    (tmp_path / TEXT_INT8_FILE).write_bytes(b"damaged")
    assert OnnxTextEncoder.load(tmp_path, model, dim, int8=True).int8 is False  # fp32 answers


def test_an_export_of_another_model_is_stale(export_dir, tiny_encoder):
    assert OnnxTextEncoder.load(export_dir, "/some/other/model", tiny_encoder.dim) is None
    assert OnnxTextEncoder.load(export_dir, tiny_encoder.model_id, tiny_encoder.dim + 1) is None


def test_indexing_exports_and_text_search_uses_it_with_torchs_results(indexed, photos):
    sidecar = json.loads((indexed / SIDECAR_FILE).read_text())
    with SearchEngine(indexed, create=False) as engine:
        assert sidecar["model_id"] == engine.model_name
        for text in ("a photo of a dog", "The red thing, on a table!"):
            hits = engine.search(text, k=6)
            assert not engine._encoders.loaded  # answered without loading torch
            reference = engine.search_vector(engine.encoder().encode_texts([text])[0], k=6)
            assert [hit.path for hit in hits] == [hit.path for hit in reference]
            for hit, ref in zip(hits, reference, strict=True):
                assert hit.score == pytest.approx(ref.score, abs=1e-4)
            engine._encoders._encoder = None  # unloaded: the next query uses ONNX


def test_a_stale_export_is_not_used_and_is_replaced(indexed):
    sidecar = indexed / SIDECAR_FILE
    info = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps(dict(info, model_id="/another/model")))
    with SearchEngine(indexed, create=False) as engine:
        engine.search("a photo of a dog", k=3)
        assert engine._encoders.loaded  # fell back to torch
        text_encoder = engine._encoders.text_encoder(engine._model)
        assert isinstance(text_encoder, OnnxTextEncoder)  # and wrote a fresh export
    assert json.loads(sidecar.read_text())["model_id"] == info["model_id"]


def test_a_damaged_export_falls_back_to_torch(indexed):
    (indexed / "text-encoder.onnx").write_bytes(b"not a model")
    with SearchEngine(indexed, create=False) as engine:
        assert engine.search("a photo of a dog", k=3)
        assert engine._encoders.loaded


@pytest.mark.slow
def test_a_cli_text_query_imports_neither_torch_nor_transformers(indexed):
    result = run_without_torch("query", "a photo of a dog", "--index", str(indexed))
    assert result.stdout.splitlines()[0].split() == ["rank", "score", "path"]
    assert len(result.stdout.splitlines()) == 7  # the header and all six photos


@pytest.mark.skipif(
    not REAL_TOKENIZER.is_dir(), reason=f"no real CLIP tokenizer at {REAL_TOKENIZER}"
)
def test_token_ids_equal_transformers_clip_tokenizer(tmp_path):
    from transformers import CLIPTokenizer

    reference = CLIPTokenizer.from_pretrained(REAL_TOKENIZER, local_files_only=True)
    reference.backend_tokenizer.save(str(tmp_path / TOKENIZER_FILE))  # as the export writes it
    tokenize = ClipTextTokenizer(tmp_path / TOKENIZER_FILE, 77, reference.pad_token_id)
    sentences = [
        "A photo of a DOG on the beach.",
        "Hello, world!!! It's 5 o'clock -- isn't it?",
        "Crème brûlée in Zürich, São Paulo & Ångström",
        "tabs\tand   multiple\n spaces",
        "words " * 100,
    ]
    ids, mask = tokenize(sentences)
    expected = reference(sentences, padding=True, truncation=True, max_length=77)
    assert ids.tolist() == expected["input_ids"]
    assert mask.tolist() == expected["attention_mask"]
