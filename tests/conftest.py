"""Session-wide fixtures: the fake model (no torch), a tiny CLIP model built once, and the
encoder loaded from it.

Tests that only need deterministic vectors use the fake model (``fake_model``); those about the
real CLIP path use the tiny CLIP (``model``). torch and transformers are imported inside the
CLIP fixtures, so test modules that never ask for them run without paying for, or seeing, them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

import searchclip  # noqa: F401  (its torchvision import hook, before any test imports transformers)

FAKE_DIM = 32  # the fake model's vector length: not the tiny CLIP's, so a mix-up shows

_SESSION_CACHE = tempfile.mkdtemp(prefix="searchclip-test-cache-")


def pytest_configure(config):
    # Fixtures wider than one test are set up before the per-test cache below: they get this
    # one. Never the user's own cache.
    os.environ["SEARCHCLIP_CACHE"] = _SESSION_CACHE


def pytest_unconfigure(config):
    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


# What `auto` sees as each precision's speed in tests: the order this project's CPU measures for
# ViT-B/32 (docs/benchmarks.md). The tiny model's own timings are noise, and a choice that
# changed from run to run would make the suite flaky; tests of the timing itself undo this.
TEST_RATES = {"fp32": 17.0, "bf16": 35.0, "int8": 52.0}


@pytest.fixture(autouse=True)
def steady_precision_clock(monkeypatch):
    from searchclip._encoders import precision

    def timed(encoder, pixels, precision_name, extra_rounds=2):
        return encoder.encode_pixels_at(pixels, precision_name), TEST_RATES[precision_name]

    monkeypatch.setattr(precision, "_timed", timed)


@pytest.fixture(autouse=True)
def private_export_cache(tmp_path_factory, monkeypatch) -> Path:
    """Each test its own export cache (``$SEARCHCLIP_CACHE``), so none finds another's exports
    and nothing is written to the user's own cache."""
    cache = tmp_path_factory.mktemp("export-cache")
    monkeypatch.setenv("SEARCHCLIP_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random CLIP (safetensors weights, tokenizer, image processor) in a temp dir."""
    from tiny_clip import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_dir: Path):
    """The ``ClipEncoder`` for ``tiny_model_dir`` on CPU, loaded the way ``--model PATH`` is."""
    from searchclip._encoders import load_encoder

    return load_encoder(str(tiny_model_dir), device="cpu")


@pytest.fixture
def model(tiny_model_dir: Path) -> str:
    """The tiny model as a user passes it: ``--model PATH``."""
    return str(tiny_model_dir)


@pytest.fixture(scope="session")
def fake_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake model directory (searchclip._encoders.fake): deterministic vectors, no torch."""
    from searchclip._encoders.fake import write_fake_model

    return write_fake_model(tmp_path_factory.mktemp("fake-model"), dim=FAKE_DIM, image_size=32)


@pytest.fixture
def fake_model(fake_model_dir: Path) -> str:
    """The fake model as a user passes it: ``--model PATH``."""
    return str(fake_model_dir)


@pytest.fixture(params=["fake", "clip"])
def each_model(request) -> str:
    """The fake model, then the tiny CLIP: for the flows the real CLIP path must pass too."""
    return request.getfixturevalue("fake_model" if request.param == "fake" else "model")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Six distinct generated pictures: PNGs at the top, JPEGs in ``sub/``."""
    from pictures import photo_folder

    root = tmp_path / "photos"
    photo_folder(root, 6)
    return root
