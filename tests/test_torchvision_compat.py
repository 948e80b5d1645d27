"""A torchvision whose C extension cannot load (PyPI's CUDA wheel beside the CPU torch, as the
openclip extra installs it here) must not break transformers' image processors or OpenCLIP
once searchclip is imported: each case runs in a fresh interpreter, as the import order is the
point."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed"
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=False
    )


def test_transformers_image_processors_import_after_searchclip():
    result = _run(
        "import searchclip, sys\n"
        "assert 'torch' not in sys.modules  # the hook itself imports nothing heavy\n"
        "from transformers import CLIPImageProcessorPil\n"
        "import torchvision.transforms as T\n"
        "print(T.Resize(4)(__import__('PIL.Image').Image.new('RGB', (8, 8))).size)\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(4, 4)"


def test_calling_the_fix_directly_before_the_first_import_does_not_hang():
    result = _run(
        "from searchclip._encoders.torchvision_compat import make_torchvision_importable\n"
        "make_torchvision_importable(); make_torchvision_importable()\n"
        "import open_clip\n"
        "print('ok')\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
