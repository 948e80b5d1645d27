"""Export a loaded CLIP's text tower to ONNX next to an index (see :mod:`.onnx_text`).

Runs where torch is already loaded (indexing, or a query that had to fall back to torch), so
later text queries can skip torch entirely. The export is checked against torch before it is
kept, and its sidecar is written last: a reader never sees a half-written export as current.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from searchclip.encoders.clip import ClipEncoder, _line
from searchclip.encoders.onnx_text import (
    ONNX_FILE,
    SIDECAR_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    OnnxTextEncoder,
    TextExportInfo,
)
from searchclip.errors import ModelLoadError

OPSET = 17
MIN_AGREEMENT = 0.999  # cosine between the export's and torch's vectors on the check texts
CHECK_TEXTS = [
    "a photo of a dog",
    "A Red Car parked by the old harbour, at dusk; people walking past!",
    "x",
]


class _TextTower(torch.nn.Module):
    """CLIP's text transformer + text projection: token ids in, ``text_embeds`` out."""

    def __init__(self, clip) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        output = self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
        return output if isinstance(output, torch.Tensor) else output.pooler_output


def export_text_encoder(encoder: ClipEncoder, directory: Path) -> TextExportInfo:
    """Write ``encoder``'s text tower, tokenizer and sidecar into ``directory``.

    Raises ModelLoadError if the model cannot be exported or the export disagrees with torch,
    OSError if the directory cannot be written.
    """
    directory = Path(directory)
    backend = getattr(encoder.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelLoadError(f"the tokenizer of {encoder.model_id} has no tokenizer.json form")
    info = TextExportInfo(
        model_id=encoder.model_id,
        dim=encoder.dim,
        max_length=encoder.max_text_length,
        pad_id=int(encoder.tokenizer.pad_token_id),
    )
    staging = directory / f".text-export-{os.getpid()}"
    staging.mkdir(exist_ok=True)
    try:
        backend.save(str(staging / TOKENIZER_FILE))
        _export_onnx(encoder, staging / ONNX_FILE)
        info.write(staging)
        _check_agreement(encoder, staging, info)
        (directory / SIDECAR_FILE).unlink(missing_ok=True)  # the old export stops being current
        for name in (WEIGHTS_FILE, ONNX_FILE, TOKENIZER_FILE, SIDECAR_FILE):  # the sidecar last
            os.replace(staging / name, directory / name)
    finally:
        for leftover in staging.glob("*"):
            leftover.unlink()
        staging.rmdir()
    return info


def _export_onnx(encoder: ClipEncoder, path: Path) -> None:
    # The TorchScript exporter (dynamo=False) needs only the onnx package; eager attention keeps
    # the traced graph free of shape-specialised fast paths. Traced on CPU, run on CPU.
    clip = encoder.model
    previous = clip.config._attn_implementation
    ids, mask = _tokens(encoder, CHECK_TEXTS)
    try:
        clip.to("cpu")
        clip.set_attn_implementation("eager")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python-level branches
            torch.onnx.export(
                _TextTower(clip).eval(),
                (ids, mask),
                str(path),
                dynamo=False,
                opset_version=OPSET,
                input_names=["input_ids", "attention_mask"],
                output_names=["text_embeds"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "text_embeds": {0: "batch"},
                },
            )
        _move_weights_out(path)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot export the text encoder of {encoder.model_id} to ONNX: {_line(exc)}"
        ) from exc
    finally:
        clip.set_attn_implementation(previous)
        clip.to(encoder.device)


def _move_weights_out(path: Path) -> None:
    """Store the weights in WEIGHTS_FILE next to the graph (ONNX external data)."""
    import onnx

    graph = onnx.load(str(path))
    (path.parent / WEIGHTS_FILE).unlink(missing_ok=True)  # onnx appends to an existing file
    onnx.save_model(
        graph,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=WEIGHTS_FILE,
        size_threshold=1024,
    )
    shutil.copymode(path, path.parent / WEIGHTS_FILE)  # onnx writes it 0600; index files are not


def _tokens(encoder: ClipEncoder, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = encoder.tokenizer(
        texts,
        padding=True,
        truncation=True,
        max_length=encoder.max_text_length,
        return_tensors="pt",
    )
    return batch["input_ids"], batch["attention_mask"]


def _check_agreement(encoder: ClipEncoder, directory: Path, info: TextExportInfo) -> None:
    """Refuse an export whose vectors differ from torch's (a tracing bug, an odd tokenizer)."""
    texts = [*CHECK_TEXTS, "a long caption " * 40]  # truncated to the model's length
    exported = OnnxTextEncoder(directory, info).encode_texts(texts)
    with torch.no_grad():
        reference = encoder.encode_texts(texts)
    agreement = float(np.min(np.sum(exported * reference, axis=1)))
    if agreement < MIN_AGREEMENT:
        raise ModelLoadError(
            f"the ONNX export of {encoder.model_id} disagrees with torch "
            f"(cosine {agreement:.5f} < {MIN_AGREEMENT}); text queries keep using torch"
        )
