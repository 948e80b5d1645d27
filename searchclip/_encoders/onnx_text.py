"""A model's text tower through ONNX Runtime: text queries without importing torch or
transformers.

An index directory may hold an export of its model's text tower (written by
:mod:`searchclip._encoders.onnx_export` while torch is loaded anyway):

    text-encoder.onnx    the graph: the sidecar's ``input_names`` (int64, batch x tokens:
                         input_ids and attention_mask, or input_ids alone for a model whose
                         text tower takes no mask, SigLIP) -> text_embeds
    text-encoder.weights its weights as ONNX external data (onnxruntime maps them rather than
                         parsing them out of the graph file: a faster session start)
    tokenizer.json       the model's own tokenizer, for the ``tokenizers`` library
    text-encoder-int8.onnx  the same graph quantised to int8 (8-bit weights: fewer bytes to
                         read per query), for int8 indexes; optional
    text-encoder.json    what it was exported from (model, dim), how to tokenize for it (max
                         length, pad id, input names, whether to pad to the max length), a
                         sigmoid model's match probability, and how far the int8 graph agrees
                         with torch (min cosine on varied prompts); written last

The export is used only when the sidecar names the index's model, so a stale one never answers.
This module imports onnxruntime and tokenizers lazily, and never torch or transformers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from searchclip._encoders.base import MatchProbability, normalize
from searchclip._encoders.onnx_common import Sidecar, open_session
from searchclip._encoders.precision import MIN_COSINE

ONNX_FILE = "text-encoder.onnx"
WEIGHTS_FILE = "text-encoder.weights"
TOKENIZER_FILE = "tokenizer.json"
SIDECAR_FILE = "text-encoder.json"
TEXT_INT8_FILE = "text-encoder-int8.onnx"
# Bump when the files' meaning changes: older exports are then stale. 3: input names, padding
# to the max length and the match probability are recorded.
EXPORT_FORMAT = 3
TEXT_INPUTS = ("input_ids", "attention_mask")  # what a CLIP's text tower takes


@dataclass(frozen=True)
class TextExportInfo(Sidecar):
    """The sidecar: which model an export was made from, and how to tokenize for it."""

    FILE = SIDECAR_FILE

    model_id: str
    dim: int
    max_length: int
    pad_id: int
    format: int = EXPORT_FORMAT
    int8_min_cosine: float | None = None  # None: no int8 graph
    # The graph's inputs, in order: a subset of TEXT_INPUTS with input_ids first.
    input_names: list[str] = field(default_factory=lambda: list(TEXT_INPUTS))
    # Pad every text to max_length (a model trained so, SigLIP); else to the batch's longest.
    pad_to_max_length: bool = False
    match_probability: dict | None = None  # MatchProbability's fields, for a sigmoid model

    @property
    def int8_agrees(self) -> bool:
        return self.int8_min_cosine is not None and self.int8_min_cosine >= MIN_COSINE

    @classmethod
    def of(
        cls,
        model_id: str,
        dim: int,
        tokenizing: TextTokenizing,
        match_probability: MatchProbability | None = None,
    ) -> TextExportInfo:
        """The sidecar of an export of ``model_id`` whose texts are tokenized as described."""
        return cls(
            model_id=model_id,
            dim=dim,
            max_length=tokenizing.max_length,
            pad_id=tokenizing.pad_id,
            input_names=list(tokenizing.input_names),
            pad_to_max_length=tokenizing.pad_to_max_length,
            match_probability=None if match_probability is None else asdict(match_probability),
        )

    def tokenizing(self) -> TextTokenizing:
        return TextTokenizing(
            self.max_length, self.pad_id, tuple(self.input_names), self.pad_to_max_length
        )

    def probability(self) -> MatchProbability | None:
        fields = self.match_probability
        return None if fields is None else MatchProbability(**fields)


@dataclass(frozen=True)
class TextTokenizing:
    """How a model's texts become its text tower's inputs: truncated to ``max_length`` tokens,
    padded with ``pad_id`` to the batch's longest text or, with ``pad_to_max_length``, to
    ``max_length``; the tower takes ``input_names`` (input_ids, and attention_mask unless the
    model was trained without one). The torch encoder and the torch-free tokenizer both follow
    it, so both feed the tower the same tokens."""

    max_length: int
    pad_id: int
    input_names: tuple[str, ...] = TEXT_INPUTS
    pad_to_max_length: bool = False


def current_text_export(directory: Path, model_id: str, dim: int) -> TextExportInfo | None:
    """The export in ``directory`` if it is complete and made from ``model_id``; else None."""
    info = TextExportInfo.read(directory)
    if info is None or (info.model_id, info.dim, info.format) != (model_id, dim, EXPORT_FORMAT):
        return None
    if not all((directory / name).is_file() for name in (ONNX_FILE, WEIGHTS_FILE, TOKENIZER_FILE)):
        return None
    return info


class TextTokenizer:
    """A model's tokenization from its ``tokenizer.json``, as :class:`TextTokenizing` says: the
    tokenizer's own normalizer and post-processor (a CLIP's lower-cases and adds BOS/EOS), then
    truncation to the model's length and padding to the longest text of the batch (padding to
    the full length would make a CLIP work on padding) or, for a model trained so, to the
    full length.

    Threads: its settings are fixed when it is made; ``encode_batch`` only reads them, so it
    may be called from several threads at once."""

    def __init__(
        self, path: Path, max_length: int, pad_id: int, *, pad_to_max_length: bool = False
    ) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length)
        self._pad_id = pad_id
        self._length = max_length if pad_to_max_length else None

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``input_ids`` and ``attention_mask``, int64 arrays of shape (n, length)."""
        encodings = self._tokenizer.encode_batch(list(texts))
        length = self._length or max(len(encoding.ids) for encoding in encodings)
        ids = np.full((len(encodings), length), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), length), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        return ids, mask


ClipTextTokenizer = TextTokenizer  # its name before other families had one


class OnnxTextEncoder:
    """Texts to unit vectors with an exported text tower; same vectors as the torch encoder.

    Threads: everything is built when it is made (no lazy state); the tokenizer and the
    session may be used from several threads at once.
    """

    def __init__(
        self, directory: Path, info: TextExportInfo, batch_size: int = 32, int8: bool = False
    ) -> None:
        self.model_id = info.model_id
        self.dim = info.dim
        self.batch_size = batch_size
        self.int8 = int8
        self.match_probability = info.probability()  # as the torch encoder's attribute
        self._input_names = tuple(info.input_names)
        self._tokenize = TextTokenizer(
            directory / TOKENIZER_FILE,
            info.max_length,
            info.pad_id,
            pad_to_max_length=info.pad_to_max_length,
        )
        self._session = open_session(directory / (TEXT_INT8_FILE if int8 else ONNX_FILE))

    @classmethod
    def load(
        cls, directory: Path, model_id: str, dim: int, *, int8: bool = False
    ) -> OnnxTextEncoder | None:
        """The encoder for the export in ``directory``; None unless it is current for the model.
        ``int8`` asks for the int8 graph, used where its recorded agreement meets the bound."""
        info = current_text_export(directory, model_id, dim)
        if info is None:
            return None
        try:
            if int8 and info.int8_agrees and (directory / TEXT_INT8_FILE).is_file():
                with contextlib.suppress(Exception):  # damaged: the fp32 graph still answers
                    return cls(directory, info, int8=True)
            return cls(directory, info)
        except Exception:  # a damaged file (onnxruntime and tokenizers have no common error)
            return None

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts to unit vectors (n, dim)."""
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), self.batch_size):
            ids, mask = self._tokenize(texts[start : start + self.batch_size])
            inputs = {"input_ids": ids, "attention_mask": mask}
            feed = {name: inputs[name] for name in self._input_names}
            parts.append(self._session.run(["text_embeds"], feed)[0])
        vectors = np.concatenate(parts).astype(np.float32, copy=False)
        return normalize(vectors, self.dim, model=self.model_id)
