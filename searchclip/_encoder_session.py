"""Which encoder serves one open index, built on first use and shared by threads.

Three kinds can answer: an encoder the caller injected; for an int8 index with current ONNX
exports, those (no torch); else the model through torch, which then writes the text tower's
ONNX export next to the index so that later text queries need no torch either.

A session serves one model. When the index switches to another (``SearchEngine.migrate``) the
engine starts a new session and retires the old one: a search already holding the old model's
encoders finishes with them, one that would have to load them first is told the model switched
(:class:`ModelSwitched`, and the engine runs it again on the new model), and a retired session
exports nothing.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from searchclip._encoders import Encoder, load_encoder
from searchclip._encoders.precision import INT8
from searchclip._errors import SearchclipError

if TYPE_CHECKING:
    from PIL import Image

    from searchclip._catalog import ModelRecord
    from searchclip._encoders.onnx_text import OnnxTextEncoder
    from searchclip._index_precision import IndexPrecision


class ModelSwitched(SearchclipError):
    """Encoders were asked for a model that is not this session's, or of a retired session
    that has not loaded them: the index uses another model now."""


class EncoderSession:
    """The encoders of one index directory. Every method may be called from several threads:
    building an encoder happens under one lock, and a built encoder is never replaced while
    another thread may be using it (only set to None for a reload on the next call)."""

    def __init__(
        self,
        index_dir: Path,
        model_name: str,
        precision: IndexPrecision,
        *,
        device: str,
        batch_size: int,
        injected: Encoder | None,
    ) -> None:
        self._index_dir = index_dir
        self._model_name = model_name
        self._precision = precision
        self._device = device
        self._batch_size = batch_size
        self._encoder = injected
        self._injected = injected is not None
        self._onnx_text: OnnxTextEncoder | None = None
        self._text_export_tried = False
        self._retired = False
        self._lock = threading.RLock()
        if injected is not None:
            precision.apply_to(injected)

    @property
    def loaded(self) -> bool:
        """Whether an image encoder has been built (torch, for a torch model)."""
        return self._encoder is not None

    def adopt(self, encoder: Encoder) -> None:
        """Use ``encoder``, loaded already (for this session's model), as the image encoder."""
        with self._lock:
            encoder.artifact_dir = self._index_dir
            self._precision.apply_to(encoder)
            self._encoder = encoder

    def retire(self) -> None:
        """The index switched to another model: keep serving what is loaded, load nothing."""
        self._retired = True

    def _check_model(self, model: ModelRecord | None) -> None:
        if model is not None and model.name != self._model_name:
            raise ModelSwitched(f"the index uses {self._model_name} now, not {model.name}")

    def image_encoder(self, model: ModelRecord | None) -> Encoder:
        """The encoder for images: the injected one, the index's ONNX exports (int8 index),
        or the model through torch."""
        self._check_model(model)
        with self._lock:
            if self._encoder is None:
                if self._retired:
                    raise ModelSwitched(f"the index no longer uses {self._model_name}")
                encoder = self._onnx_image_encoder(model)
                if encoder is None:
                    encoder = load_encoder(
                        self._model_name, device=self._device, batch_size=self._batch_size
                    )
                    encoder.artifact_dir = self._index_dir
                self._precision.apply_to(encoder)
                self._encoder = encoder
            return self._encoder

    def _onnx_image_encoder(self, model: ModelRecord | None) -> Encoder | None:
        if model is None or self._precision.current != INT8:
            return None
        from searchclip._encoders.onnx_clip import OnnxClipEncoder
        from searchclip._encoders.onnx_image import ImageExportInfo

        encoder = OnnxClipEncoder.load(self._index_dir, model.name, model.dim, text=self._onnx_text)
        info = ImageExportInfo.read(self._index_dir)  # still current once opened (see above)
        if encoder is None or info is None or (info.model_id, info.dim) != (model.name, model.dim):
            return None
        self._onnx_text = encoder.text  # text queries share its text encoder: one session
        return encoder

    def text_encoder(self, model: ModelRecord) -> Encoder | OnnxTextEncoder:
        """What encodes query texts: an injected encoder, else the index's ONNX export of its
        model's text tower (no torch), else the torch encoder, which then writes the export."""
        self._check_model(model)
        if self._injected:
            return self._encoder
        with self._lock:
            if self._onnx_text is None and self._encoder is None and self._retired:
                raise ModelSwitched(f"the index no longer uses {self._model_name}")
            if self._onnx_text is None:
                from searchclip._encoders.onnx_text import OnnxTextEncoder, current_text_export

                loaded = OnnxTextEncoder.load(
                    self._index_dir, model.name, model.dim, int8=self._precision.current == INT8
                )
                # Still current once opened: a model switch moves the new model's export in
                # (its sidecar removed first, written last), and files opened meanwhile may be
                # the new model's.
                if current_text_export(self._index_dir, model.name, model.dim) is not None:
                    self._onnx_text = loaded
            if self._onnx_text is not None:
                return self._onnx_text
        encoder = self.image_encoder(model)
        self.export_text_encoder(model)
        return encoder

    def export_text_encoder(self, model: ModelRecord | None) -> None:
        """Export the loaded torch encoder's text tower next to the index unless a current export
        is there. Best effort, once per engine: a read-only index or a model that cannot be
        exported keeps answering text queries with torch."""
        from searchclip._encoders.onnx_text import current_text_export

        with self._lock:
            encoder = self._encoder
            if (
                self._injected
                or self._retired
                or model is None
                or encoder is None
                or not encoder.onnx_exportable
                or self._text_export_tried
            ):
                return
            self._text_export_tried = True
            if current_text_export(self._index_dir, model.name, model.dim) is not None:
                return
            from searchclip._encoders.onnx_export import export_text_encoder

            try:
                export_text_encoder(encoder, self._index_dir, int8=self._precision.current == INT8)
            except (OSError, SearchclipError) as exc:
                warnings.warn(f"text queries will use torch: {exc}", RuntimeWarning, stacklevel=3)
            self._onnx_text = None  # load the new export on the next text query


class IndexImageEncoding:
    """What an index run encodes with (ingest's ImageEncoding): the session's image encoder,
    loaded on first use, and the index's precision rule (``auto`` chooses on the first batch)."""

    def __init__(
        self, session: EncoderSession, precision: IndexPrecision, model: ModelRecord
    ) -> None:
        self._session = session
        self._precision = precision
        self._model = model

    def image_size(self) -> int:
        return self._session.image_encoder(self._model).image_size

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self._session.image_encoder(self._model).preprocess(image)

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        return self._precision.encode(self._session.image_encoder(self._model), pixels)
