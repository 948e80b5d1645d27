"""The per-model export cache: a second index of the same model copies the first one's ONNX
exports instead of exporting again; a changed model, a damaged entry, a cache turned off or
one that cannot be written all end in a fresh export, never in a failed run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from searchclip import SearchEngine
from searchclip._encoders import export_cache, onnx_export

EXPORTS = [
    "image-encoder-int8.json",
    "image-encoder-int8.onnx",
    "text-encoder-int8.onnx",
    "text-encoder.json",
    "text-encoder.onnx",
    "text-encoder.weights",
    "tokenizer.json",
]


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


def index_int8(index_dir: Path, model: str, photos: Path) -> list[tuple[str, float]]:
    """Index ``photos`` in int8 (both exports) and return a text and an image query's hits."""
    with SearchEngine(index_dir, model=model, precision="int8") as engine:
        engine.index(photos)
        hits = engine.search("a photo of a dog", k=3)
        hits += engine.search_image(next(photos.glob("*.png")), k=3)
        return [(Path(hit.path).name, round(hit.score, 5)) for hit in hits]


def export_files(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.iterdir() if p.name in EXPORTS)


def test_a_second_index_of_a_model_copies_its_exports(tmp_path, model, photos, export_calls):
    first = index_int8(tmp_path / "first", model, photos)
    assert export_calls == ["image_embeds", "text_embeds"]
    second = index_int8(tmp_path / "second", model, photos)
    assert export_calls == ["image_embeds", "text_embeds"]  # nothing exported again
    assert second == first
    assert export_files(tmp_path / "second") == EXPORTS
    for name in EXPORTS:  # copies, not links: damage to one cannot reach the other
        a, b = tmp_path / "first" / name, tmp_path / "second" / name
        assert a.read_bytes() == b.read_bytes()
        assert a.stat().st_ino != b.stat().st_ino


def test_an_fp32_index_caches_its_text_export_apart_from_int8s(tmp_path, model, photos):
    with SearchEngine(tmp_path / "fp32", model=model, precision="fp32") as engine:
        engine.index(photos)
    index_int8(tmp_path / "int8", model, photos)
    assert "text-encoder-int8.onnx" not in os.listdir(tmp_path / "fp32")
    assert export_files(tmp_path / "int8") == EXPORTS


def test_a_re_saved_model_is_exported_again(tmp_path, tiny_model_dir, photos, export_calls):
    copy = tmp_path / "model"
    copy.mkdir()
    for path in tiny_model_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    index_int8(tmp_path / "first", str(copy), photos)
    config = copy / "config.json"
    os.utime(config, ns=(config.stat().st_atime_ns, config.stat().st_mtime_ns + 10**9))
    index_int8(tmp_path / "second", str(copy), photos)
    assert export_calls == ["image_embeds", "text_embeds"] * 2


def test_a_damaged_cache_entry_is_exported_again_and_repaired(
    tmp_path, model, photos, export_calls, private_export_cache
):
    first = index_int8(tmp_path / "first", model, photos)
    entries = list(private_export_cache.glob("exports/*/*"))
    assert sorted(p.name for p in entries) == ["image-int8", "text-int8"]
    for entry in entries:
        next(p for p in entry.iterdir() if p.suffix == ".onnx").unlink()
    assert index_int8(tmp_path / "second", model, photos) == first
    assert export_calls == ["image_embeds", "text_embeds"] * 2
    assert all(len(list(entry.iterdir())) > 1 for entry in entries)  # whole again


@pytest.mark.parametrize("setting", ["off", "file"])
def test_without_a_usable_cache_indexing_exports_as_before(
    tmp_path, model, photos, export_calls, monkeypatch, setting
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache should go")
    monkeypatch.setenv("SEARCHCLIP_CACHE", "off" if setting == "off" else str(blocker))
    first = index_int8(tmp_path / "first", model, photos)
    assert index_int8(tmp_path / "second", model, photos) == first
    assert export_calls == ["image_embeds", "text_embeds"] * 2
    assert export_files(tmp_path / "second") == EXPORTS
    assert blocker.read_text() == "a file where the cache should go"


def test_the_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SEARCHCLIP_CACHE", str(tmp_path / "mine"))
    assert export_cache.cache_root() == tmp_path / "mine"
    monkeypatch.setenv("SEARCHCLIP_CACHE", "OFF")
    assert export_cache.cache_root() is None
    monkeypatch.delenv("SEARCHCLIP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert export_cache.cache_root() == tmp_path / "xdg" / "searchclip"


def test_the_model_key_names_the_files_of_one_model(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    key = export_cache.model_key("m", model)
    assert key == export_cache.model_key("m", model)
    assert key != export_cache.model_key("another id", model)
    (model / "model.safetensors").write_bytes(b"weights")
    assert export_cache.model_key("m", model) != key
    assert export_cache.model_key("m", None) is None
    assert export_cache.model_key("m", tmp_path / "missing") is None


def test_the_cached_vectors_are_the_exported_ones(tmp_path, tiny_encoder, private_export_cache):
    from searchclip._encoders import load_encoder

    encoder = load_encoder(tiny_encoder.model_id, device="cpu")
    encoder.artifact_dir = tmp_path / "a"
    encoder.artifact_dir.mkdir()
    size = encoder.image_size
    pixels = np.random.default_rng(0).standard_normal((3, 3, size, size)).astype(np.float32)
    exported = encoder.encode_pixels_at(pixels, "int8")
    again = load_encoder(tiny_encoder.model_id, device="cpu")
    again.artifact_dir = tmp_path / "b"
    again.artifact_dir.mkdir()
    assert np.array_equal(again.encode_pixels_at(pixels, "int8"), exported)
