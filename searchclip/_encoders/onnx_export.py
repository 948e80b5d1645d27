"""Export parts of a loaded dual encoder to ONNX next to an index.

- the text tower (:mod:`.onnx_text`), so later text queries can skip torch entirely; checked
  against torch before it is kept;
- the image tower quantised to int8 (:mod:`.onnx_image`), for the ``int8`` image precision;
  how far it agrees with fp32 is measured on the user's images when ``auto`` considers it.

Runs where torch is already loaded (indexing, or a query that had to fall back to torch). Files
are written in a staging directory and moved in with the sidecar last: a reader never sees a
half-written export as current. Importing this module needs no torch; each export needs the
``clip`` extra (torch, transformers, onnx) and raises MissingExtraError without it.

What is traced comes from the encoder (:class:`ExportableEncoder`): its towers as torch
modules, its text inputs, and the mode its model is traced in; so any encoder with those parts
(a transformers family, an OpenCLIP model) exports through here.

Threads: exports run one at a time (``_EXPORT_LOCK``). While one runs, the exported model is in
its ``export_mode`` (for a transformers model: eager attention, on the CPU): the encoder must
not encode on another device meanwhile. ONNX Runtime's quantiser logs advice about
pre-processing the graph to the root logger; that line is let through, as the root logger is
the application's to configure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from searchclip._encoders import export_cache
from searchclip._encoders.failures import clip_extra_required, first_line, missing_clip_extra
from searchclip._encoders.onnx_image import (
    INT8_ONNX_FILE,
    ImageExportInfo,
    OnnxImageTower,
    current_int8_export,
)
from searchclip._encoders.onnx_text import (
    ONNX_FILE,
    SIDECAR_FILE,
    TEXT_INT8_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    OnnxTextEncoder,
    TextExportInfo,
    current_text_export,
)
from searchclip._errors import ModelLoadError


class ExportableEncoder(Protocol):
    """What an export reads of an encoder (:class:`~searchclip._encoders.clip.ClipEncoder`
    has it all): its towers as torch modules, how its texts are tokenized, and how it encodes
    texts, to check the export against."""

    model_id: str
    dim: int
    image_size: int
    export_key: str | None  # names the model's exports in the shared cache; None: not cached

    def text_tower_module(self) -> Any:
        """A torch module: the text inputs (``text_export_info().input_names``, in order,
        int64 (n, tokens)) to raw text embeddings (n, dim); it may share the model's weights."""

    def image_tower_module(self) -> Any:
        """A torch module: ``pixel_values`` (n, 3, s, s) float32 to raw image embeddings."""

    def export_mode(self) -> AbstractContextManager:
        """Around each trace: the model ready to be traced (e.g. eager attention, on the CPU),
        and back as it was afterwards. A no-op where nothing needs switching."""

    def text_export_info(self) -> TextExportInfo:
        """The text export's sidecar (format, tokenizing, match probability); int8 fields
        unset."""

    def tokenize(self, texts: list[str]) -> dict[str, Any]:
        """The torch tensors the text tower takes for ``texts``, by input name."""

    def save_tokenizer_json(self, path: Path) -> bool:
        """Write the tokenizer as a ``tokenizer.json``; False if it has no such form."""

    def encode_texts(self, texts: list[str]) -> np.ndarray: ...


OPSET = 17
MIN_AGREEMENT = 0.999  # cosine between the export's and torch's vectors on the check texts
CHECK_TEXTS = [
    "a photo of a dog",
    "A Red Car parked by the old harbour, at dusk; people walking past!",
    "x",
]
# Queries and tagging prompts of every shape, for the int8 text tower's agreement with torch.
INT8_CHECK_TEXTS = [
    *CHECK_TEXTS,
    "a long caption " * 40,  # truncated to the model's length
    "dog on beach",
    "a bad photo of a bicycle.",
    "a photo of the large traffic light.",
    "an origami cat",
    "a sculpture of a person",
    "birthday party with a chocolate cake and candles",
    "sunset over the mountains, Lake Tahoe 2019",
    "Crème brûlée in Zürich",
    "IMG_2043",
    "a blurry photo of my grandmother's kitchen",
    "two children playing football in the snow",
    "a screenshot of a spreadsheet",
    "a close-up photo of a red apple on a wooden table",
    "night",
    "a black and white photo of the Eiffel Tower",
]
# One export at a time in this process: it switches the model's attention and device, and the
# tracer's warnings are silenced in the process-wide filters (see _export_onnx).
_EXPORT_LOCK = threading.Lock()


def export_text_encoder(
    encoder: ExportableEncoder, directory: Path, *, int8: bool = False
) -> TextExportInfo:
    """Write ``encoder``'s text tower, tokenizer and sidecar into ``directory``; with ``int8``
    (for int8 indexes) also the tower quantised to int8 and its measured agreement.

    Raises ModelLoadError if the model cannot be exported or the export disagrees with torch,
    MissingExtraError without the ``clip`` extra, OSError if the directory cannot be written.
    """
    _require_export_packages(encoder.model_id)
    directory = Path(directory)
    cache = export_cache.entry_dir(encoder.export_key, "text-int8" if int8 else "text")
    with _staging(directory, "text") as staging:
        info = _cached_text_export(encoder, cache, staging)
        if info is None:
            info = _export_text(encoder, staging, int8=int8)
            export_cache.store(staging, _text_files(info), cache)
        (directory / SIDECAR_FILE).unlink(missing_ok=True)  # the old export stops being current
        for name in _text_files(info):  # the sidecar last
            os.replace(staging / name, directory / name)
    return info


def _export_text(encoder: ExportableEncoder, staging: Path, *, int8: bool) -> TextExportInfo:
    if not encoder.save_tokenizer_json(staging / TOKENIZER_FILE):
        raise ModelLoadError(
            f"the tokenizer of {encoder.model_id} has no tokenizer.json form",
            model=encoder.model_id,
        )
    info = encoder.text_export_info()
    _export_onnx(
        encoder,
        encoder.text_tower_module(),
        _tokens(encoder, CHECK_TEXTS, info),
        staging / ONNX_FILE,
        {name: {0: "batch", 1: "tokens"} for name in info.input_names},
        "text_embeds",
    )
    _move_weights_out(staging / ONNX_FILE)
    _check_agreement(encoder, staging, info)
    if int8:
        info = _add_int8_text_tower(encoder, staging, info)
    info.write(staging)
    return info


def _text_files(info: TextExportInfo) -> list[str]:
    """The files of a text export, its sidecar last."""
    names = [WEIGHTS_FILE, ONNX_FILE, TOKENIZER_FILE]
    names += [TEXT_INT8_FILE] if info.int8_min_cosine is not None else []
    return [*names, SIDECAR_FILE]


def _cached_text_export(encoder: ExportableEncoder, cache: Path | None, staging: Path):
    """The cached text export of ``encoder``'s model, copied into ``staging``; None if none."""
    info = current_text_export(cache, encoder.model_id, encoder.dim) if cache else None
    if info is None or not export_cache.fetch(cache, _text_files(info), staging):
        return None
    return info


def _add_int8_text_tower(encoder: ExportableEncoder, staging: Path, info: TextExportInfo):
    """Quantise the exported text tower to int8 and record how far it agrees with torch on
    varied prompts; int8 indexes use it for text only where that agreement meets the bound.
    Best effort: without it, text queries run the fp32 export."""
    try:
        # Per output channel: closer to torch for the text tower than one scale per tensor
        # (docs/benchmarks.md, "Image encoding precision", its last paragraphs).
        _quantize(staging / ONNX_FILE, staging / TEXT_INT8_FILE, per_channel=True)
        exported = OnnxTextEncoder(staging, info, int8=True).encode_texts(INT8_CHECK_TEXTS)
    except Exception:
        (staging / TEXT_INT8_FILE).unlink(missing_ok=True)
        return info
    reference = encoder.encode_texts(INT8_CHECK_TEXTS)
    agreement = float(np.min(np.sum(exported * reference, axis=1)))
    return dataclasses.replace(info, int8_min_cosine=round(agreement, 6))


def int8_image_tower(encoder, info: ImageExportInfo) -> OnnxImageTower:
    """``encoder``'s int8 image tower: loaded from its ``artifact_dir`` when a current export
    (sidecar equal to ``info``) is there, else exported into ``artifact_dir`` (or, where that
    is unset or read-only, a temporary directory: for this process only) and loaded. The
    encoder caches the result (under its own lock): this exports every time it is called."""
    directory = encoder.artifact_dir
    found = current_int8_export(directory, info) if directory is not None else None
    if found is not None:
        with contextlib.suppress(Exception):  # a damaged file is exported again
            return OnnxImageTower(found)
    if directory is not None:
        with contextlib.suppress(OSError):  # a read-only index: export for this process only
            return OnnxImageTower(export_int8_image_tower(encoder, directory, info))
    with tempfile.TemporaryDirectory(prefix="searchclip-int8-") as scratch:
        # the session holds the whole graph in memory: the file may go
        return OnnxImageTower(export_int8_image_tower(encoder, Path(scratch), info))


def export_int8_image_tower(
    encoder: ExportableEncoder, directory: Path, info: ImageExportInfo
) -> Path:
    """Write ``encoder``'s image tower, quantised to int8, and its sidecar into ``directory``.

    Raises ModelLoadError if the model cannot be exported, MissingExtraError without the
    ``clip`` extra, OSError if the directory cannot be written.
    """
    _require_export_packages(encoder.model_id)
    directory = Path(directory)
    cache = export_cache.entry_dir(encoder.export_key, "image-int8")
    names = (INT8_ONNX_FILE, info.FILE)  # the sidecar last
    with _staging(directory, "image") as staging:
        cached = cache is not None and current_int8_export(cache, info) is not None
        if not (cached and export_cache.fetch(cache, names, staging)):
            _export_int8_image(encoder, staging)
            info.write(staging)
            export_cache.store(staging, names, cache)
        (directory / info.FILE).unlink(missing_ok=True)
        for name in names:
            os.replace(staging / name, directory / name)
    return directory / INT8_ONNX_FILE


def _export_int8_image(encoder: ExportableEncoder, staging: Path) -> None:
    import torch

    fp32_path = staging / "image-encoder-fp32.onnx"
    _export_onnx(
        encoder,
        encoder.image_tower_module(),
        (torch.zeros(2, 3, encoder.image_size, encoder.image_size),),  # two blank images
        fp32_path,
        {"pixel_values": {0: "batch"}},
        "image_embeds",
    )
    try:
        # One weight scale per tensor: as fast as per channel, quantised much sooner, and
        # closer to fp32 at the tail on a trained model (docs/benchmarks.md, "Image encoding
        # precision": "A trained model quantises worse than random weights").
        _quantize(fp32_path, staging / INT8_ONNX_FILE, per_channel=False)
    except Exception as exc:
        missing = missing_clip_extra(exc, encoder.model_id)
        if missing is not None:
            raise missing from exc
        raise ModelLoadError(
            f"cannot quantise the image encoder of {encoder.model_id}: {first_line(exc)}",
            model=encoder.model_id,
        ) from exc


def _require_export_packages(model_id: str) -> None:
    """MissingExtraError unless torch, transformers and onnx (for the tracer and the
    quantiser) can be imported: before any file is written."""
    with clip_extra_required(model_id):
        import onnx  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401


@contextlib.contextmanager
def _staging(directory: Path, kind: str) -> Iterator[Path]:
    """A private directory inside ``directory`` for files being written; removed afterwards."""
    # Named by process and thread: two exports into one directory never share it.
    staging = directory / f".{kind}-export-{os.getpid()}-{threading.get_ident()}"
    staging.mkdir(exist_ok=True)
    try:
        yield staging
    finally:
        for leftover in staging.glob("*"):
            leftover.unlink()
        staging.rmdir()


def _quantize(source: Path, target: Path, *, per_channel: bool) -> None:
    """ONNX Runtime dynamic quantisation: int8 weights (one scale per tensor, or per output
    channel), activations quantised on the fly."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, per_channel=per_channel, weight_type=QuantType.QInt8)


def _export_onnx(encoder, module, inputs: tuple, path: Path, input_axes: dict, output: str) -> None:
    """Trace ``module`` (a tower of ``encoder``'s model) on ``inputs``, in the encoder's export
    mode, into an ONNX graph whose inputs vary along ``input_axes`` and whose one output,
    ``output``, has a batch axis."""
    from searchclip._encoders.towers import trace_to_onnx

    with _EXPORT_LOCK:
        try:
            # The tracer warns about every Python-level branch of the model (TracerWarning) and
            # about its own deprecation: noise to a user. Python's warning filters are
            # process-wide and torch.onnx.export has no switch for these, so there is no
            # per-call way to silence them; catch_warnings restores the filters afterwards.
            # Safe enough here: exports run one at a time (_EXPORT_LOCK), and the only effect
            # on other threads is that a warning they raise during an export is not shown.
            with encoder.export_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trace_to_onnx(module, inputs, path, input_axes, output, OPSET)
        except Exception as exc:
            missing = missing_clip_extra(exc, encoder.model_id)
            if missing is not None:
                raise missing from exc
            part = "text" if output == "text_embeds" else "image"
            raise ModelLoadError(
                f"cannot export the {part} encoder of {encoder.model_id} to ONNX: "
                f"{first_line(exc)}",
                model=encoder.model_id,
            ) from exc


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


def _tokens(encoder: ExportableEncoder, texts: list[str], info: TextExportInfo) -> tuple:
    batch = encoder.tokenize(texts)
    return tuple(batch[name] for name in info.input_names)


def _check_agreement(encoder: ExportableEncoder, directory: Path, info: TextExportInfo) -> None:
    """Refuse an export whose vectors differ from torch's (a tracing bug, an odd tokenizer)."""
    texts = [*CHECK_TEXTS, "a long caption " * 40]  # truncated to the model's length
    exported = OnnxTextEncoder(directory, info).encode_texts(texts)
    reference = encoder.encode_texts(texts)
    agreement = float(np.min(np.sum(exported * reference, axis=1)))
    if agreement < MIN_AGREEMENT:
        raise ModelLoadError(
            f"the ONNX export of {encoder.model_id} disagrees with torch "
            f"(cosine {agreement:.5f} < {MIN_AGREEMENT}); text queries keep using torch",
            model=encoder.model_id,
        )
