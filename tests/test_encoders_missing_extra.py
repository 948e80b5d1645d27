"""Without the ``clip`` extra (torch, transformers, onnx), every way into the torch encoders
raises MissingExtraError naming ``pip install 'searchclip[clip]'``, while the torch-free
parts (the fake model, the ONNX exports' readers) keep working."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from searchclip._errors import MissingExtraError

# Checks run in the child, after ``sys.modules[BLOCKED] = None``: one JSON line per check.
_CHILD = """
import json, sys
sys.modules[sys.argv[1]] = None  # any later import of it raises ImportError
from pathlib import Path

import searchclip
from searchclip import _encoders
from searchclip._errors import MissingExtraError

model, scratch = sys.argv[2], Path(sys.argv[3])


def outcome(call):
    try:
        call()
    except MissingExtraError as exc:
        return {"extra": exc.extra, "message": str(exc), "model": exc.model,
                "import_error": isinstance(exc, ImportError)}
    except BaseException as exc:
        return {"other": f"{type(exc).__name__}: {exc}"}
    return {"other": "no error"}


def export_text():
    from searchclip._encoders.onnx_export import export_text_encoder

    export_text_encoder(Stub(), scratch)


def export_image():
    from searchclip._encoders.onnx_export import export_int8_image_tower
    from searchclip._encoders.onnx_image import ImageExportInfo

    export_int8_image_tower(Stub(), scratch, ImageExportInfo("stub", 4, 8))


class Stub:  # an encoder as the export reads it: the export must fail before touching it
    model_id = "stub"
    export_key = None


from searchclip._encoders.onnx_text import current_text_export  # torch-free readers
from searchclip._encoders.onnx_clip import OnnxClipEncoder

print(json.dumps({
    "load_encoder": outcome(lambda: _encoders.load_encoder(model, device="cpu")),
    "export_text": outcome(export_text),
    "export_image": outcome(export_image),
    "needs_torch": _encoders.needs_torch(model),
    "readers": current_text_export(scratch, model, 16) is None,
    "left_in_scratch": sorted(p.name for p in scratch.iterdir()),
}))
"""


def run_blocked(package: str, model: str, scratch: Path) -> dict:
    scratch.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHILD), package, model, str(scratch)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("package", ["torch", "transformers"])
def test_without_torch_or_transformers_the_torch_paths_name_the_extra(
    package, tiny_model_dir, tmp_path
):
    found = run_blocked(package, str(tiny_model_dir), tmp_path / "scratch")
    for entry in ("load_encoder", "export_text", "export_image"):
        outcome = found[entry]
        assert outcome.get("extra") == "clip", (entry, outcome)
        assert "pip install 'searchclip[clip]'" in outcome["message"]
        assert f"({package} is not installed)" in outcome["message"]
        assert "\n" not in outcome["message"]
        assert outcome["import_error"]  # still an ImportError, for code that catches those
    assert found["load_encoder"]["model"] == str(tiny_model_dir.resolve())
    assert found["needs_torch"] is True
    assert found["readers"] is True
    assert found["left_in_scratch"] == []  # refused before any file was written


def test_the_fake_model_needs_no_torch(tmp_path):
    from searchclip._encoders.fake import write_fake_model

    fake_model_dir = write_fake_model(tmp_path / "fake-model")
    found = run_blocked("torch", str(fake_model_dir), tmp_path / "scratch")
    assert found["needs_torch"] is False
    assert found["load_encoder"] == {"other": "no error"}


def test_without_onnx_the_exports_name_the_extra(tiny_model_dir, tmp_path, monkeypatch):
    from searchclip._encoders import load_encoder
    from searchclip._encoders.onnx_export import export_text_encoder

    encoder = load_encoder(str(tiny_model_dir), device="cpu")
    encoder.artifact_dir = tmp_path
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingExtraError, match=r"searchclip\[clip\]") as caught:
        export_text_encoder(encoder, tmp_path)
    assert (caught.value.extra, caught.value.model) == ("clip", encoder.model_id)
    pixels = np.zeros((1, 3, encoder.image_size, encoder.image_size), dtype=np.float32)
    with pytest.raises(MissingExtraError, match=r"searchclip\[clip\]"):
        encoder.encode_pixels_at(pixels, "int8")
    assert list(tmp_path.iterdir()) == []
    assert encoder.encode_pixels_at(pixels, "fp32").shape == (1, 16)  # torch still works


def test_an_import_error_of_something_else_is_left_alone():
    from searchclip._encoders.failures import clip_extra_required, missing_clip_extra

    too_old = ImportError("cannot import name 'Thing' from 'transformers'", name="transformers")
    assert missing_clip_extra(too_old) is None
    assert missing_clip_extra(ModuleNotFoundError("no", name="torch.nope")) is None
    with pytest.raises(ModuleNotFoundError), clip_extra_required():
        raise ModuleNotFoundError("No module named 'somewhere'", name="somewhere")
