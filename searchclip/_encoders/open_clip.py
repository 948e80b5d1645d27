"""The OpenCLIP encoder: an OpenCLIP checkpoint through torch, at fp32, bf16 or int8.

Loading is :mod:`.open_clip_loading`'s job. Images are preprocessed with OpenCLIP's own eval
transform and encoded with ``encode_image``; texts are tokenized with OpenCLIP's tokenizer and
encoded with ``encode_text``. Imports torch and open_clip.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from searchclip._encoders import export_cache
from searchclip._encoders.base import Encoder, MatchProbability
from searchclip._encoders.onnx_image import ImageExportInfo, OnnxImageTower
from searchclip._encoders.onnx_text import TextExportInfo, TextTokenizing
from searchclip._encoders.open_clip_loading import LoadedOpenClip, load_open_clip
from searchclip._encoders.open_clip_preprocess import preprocess_settings
from searchclip._encoders.open_clip_tokenizer import MERGE_COUNT, save_clip_bpe_tokenizer
from searchclip._errors import InvalidArgumentError, ModelLoadError

IMAGE_PRECISIONS = ("fp32", "bf16", "int8")
PAD_ID = 0  # OpenCLIP's tokenizers pad with 0 (the model pools at the end token, not a mask)


class OpenClipEncoder(Encoder):
    """An OpenCLIP model (``open_clip.CLIP`` or ``CustomTextCLIP``: OpenAI-style, LAION,
    DataComp, DFN and MobileCLIP checkpoints among others).

    Threads: encoding may run on several threads at once. The low-precision towers are built
    once, under a lock; tokenizing holds a lock (OpenCLIP's tokenizers keep a cache, or a
    transformers tokenizer, that are not meant for concurrent calls). OpenCLIP's eval transform
    is made of stateless torchvision transforms, so preprocessing needs none.
    """

    onnx_exportable = True

    def __init__(self, loaded: LoadedOpenClip, batch_size: int) -> None:
        self.model_id = loaded.model_id
        self.model = loaded.model
        self.transform = loaded.transform
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.batch_size = batch_size
        self._towers_lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()
        self.preprocess_cfg = loaded.preprocess_cfg
        self.image_size = _square_size(loaded.preprocess_cfg.get("size"), loaded.model_id)
        self.dim = _embedding_dim(loaded, self.tokenize([""])["input_ids"])
        self.max_text_length = int(getattr(self.tokenizer, "context_length", 0) or 77)
        self.export_key = export_cache.model_key(self.model_id, loaded.source_dir)
        self.match_probability = _match_probability(loaded.model)
        self._bf16_visual: torch.nn.Module | None = None
        self._int8_tower: OnnxImageTower | None = None

    @classmethod
    def load(cls, model: str, device: str = "auto", batch_size: int = 32) -> OpenClipEncoder:
        """Load ``model`` (a checkpoint directory or an ``hf-hub:`` id) onto ``device``."""
        return cls(load_open_clip(model, device), batch_size)

    def low_image_precisions(self) -> tuple[str, ...]:
        from searchclip._encoders.clip import has_fast_bf16

        candidates = ("int8",) if self.device == "cpu" else ()
        return candidates + (("bf16",) if has_fast_bf16(self.device) else ())

    def set_image_precision(self, precision: str) -> None:
        # As for CLIP: every precision is accepted everywhere (an index recorded as bf16 or int8
        # must open on any machine); where one is not fast, auto never picks it.
        self.image_precision = _checked_precision(precision)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.transform(image).numpy().astype(np.float32, copy=False)

    def _embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return self._embed_pixels_at(pixels, self.image_precision)

    def _embed_pixels_at(self, pixels: np.ndarray, precision: str) -> np.ndarray:
        if _checked_precision(precision) == "int8":
            return self.int8_tower()(pixels)
        batch = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).to(self.device)
        with torch.inference_mode():
            if precision == "bf16":
                return _numpy(self.bf16_visual()(batch.to(torch.bfloat16)))
            return _numpy(self.model.encode_image(batch))

    def bf16_visual(self) -> torch.nn.Module:
        """A bfloat16 copy of the image tower (see ClipEncoder.bf16_tower for why a copy)."""
        with self._towers_lock:
            if self._bf16_visual is None:
                self._bf16_visual = copy.deepcopy(self.model.visual).to(torch.bfloat16).eval()
            return self._bf16_visual

    def int8_tower(self) -> OnnxImageTower:
        """The image tower quantised to int8, run by onnxruntime: loaded from ``artifact_dir``
        when a current export is there, else exported (into ``artifact_dir`` when writable)."""
        from searchclip._encoders import onnx_export

        with self._towers_lock:
            if self._int8_tower is None:
                self._int8_tower = onnx_export.int8_image_tower(self, self.int8_export_info())
            return self._int8_tower

    def int8_export_info(self) -> ImageExportInfo:
        """The sidecar a current int8 export of this model has; its preprocessing settings are
        None where OpenCLIP's transform is not one the torch-free preprocessing reproduces."""
        settings = preprocess_settings(self.preprocess_cfg, self.image_size)
        return ImageExportInfo(self.model_id, self.dim, self.image_size, settings)

    # What onnx_export traces and records (its ExportableEncoder).

    def image_tower_module(self) -> torch.nn.Module:
        return _Tower(self.model.encode_image)

    def text_tower_module(self) -> torch.nn.Module:
        return _Tower(self.model.encode_text)

    @contextmanager
    def export_mode(self) -> Iterator[None]:
        """Traced on the CPU, with the fused attention kernel off: the model moves to the CPU
        for the trace and back afterwards. ``nn.MultiheadAttention`` (OpenCLIP's attention)
        runs a fused kernel at inference that ONNX cannot express; the switch is process-wide,
        and only makes attention elsewhere take its plain path (same results) meanwhile."""
        fastpath = torch.backends.mha.get_fastpath_enabled()
        self.model.to("cpu")
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            yield
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
            self.model.to(self.device)

    def text_export_info(self) -> TextExportInfo:
        # OpenCLIP's tokenizers pad every text to the context length, and its text towers take
        # no mask (a causal one, or none: MobileCLIP), pooling at the end token.
        tokenizing = TextTokenizing(
            self.max_text_length, PAD_ID, input_names=("input_ids",), pad_to_max_length=True
        )
        return TextExportInfo.of(self.model_id, self.dim, tokenizing, self.match_probability)

    def save_tokenizer_json(self, path: Path) -> bool:
        """Write OpenCLIP's default tokenizer (CLIP's BPE) as a tokenizer.json; False for any
        other (a transformers tokenizer, other text cleaning), whose padding and cleaning the
        torch-free tokenizer does not reproduce: text queries then keep using torch."""
        reason = torch_free_text_reason(self.tokenizer)
        if reason is not None:
            return False
        save_clip_bpe_tokenizer(path)
        return True

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """``input_ids``: OpenCLIP's token ids for ``texts``, (n, context length) int64."""
        with self._tokenizer_lock:
            return {"input_ids": self.tokenizer(list(texts))}

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenize(texts)["input_ids"].to(self.device)
        with torch.inference_mode():
            return _numpy(self.model.encode_text(tokens))


class _Tower(torch.nn.Module):
    """One of the model's ``encode_*`` methods as a module to trace (sharing its weights)."""

    def __init__(self, encode) -> None:
        super().__init__()
        self.owner = encode.__self__  # registered, so the trace sees its parameters
        self._encode = encode

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._encode(inputs)


def torch_free_text_reason(tokenizer) -> str | None:
    """Why ``tokenizer`` has no tokenizer.json form here; None for OpenCLIP's default one."""
    from searchclip._encoders.open_clip_loading import open_clip_module

    simple = open_clip_module().SimpleTokenizer
    if type(tokenizer) is not simple:
        return f"its tokenizer is {type(tokenizer).__name__}, not OpenCLIP's SimpleTokenizer"
    if getattr(tokenizer.clean_fn, "__name__", "") != "_clean_lower" or tokenizer.reduction_fn:
        return "its tokenizer cleans or reduces texts in a non-default way"
    if len(tokenizer.encoder) != MERGE_COUNT + 512 + 2:
        return "its tokenizer has another vocabulary or extra special tokens"
    return None


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).numpy()


def _checked_precision(precision: str) -> str:
    if precision not in IMAGE_PRECISIONS:
        raise InvalidArgumentError(
            f"unknown image precision {precision!r}: use fp32, bf16 or int8", value=precision
        )
    return precision


def _match_probability(model: torch.nn.Module) -> MatchProbability | None:
    """A sigmoid-trained model's (OpenCLIP's SigLIP ViTs': those with a ``logit_bias``) reading
    of cosines as match probabilities; None for a softmax CLIP."""
    bias = getattr(model, "logit_bias", None)
    if bias is None:
        return None
    scale = float(model.logit_scale.detach().float().reshape(-1)[0])
    return MatchProbability(scale=math.exp(scale), bias=float(bias.detach().float().reshape(-1)[0]))


def _square_size(size, model_id: str) -> int:
    """The side of the model's square input; ModelLoadError for other inputs."""
    sides = (size, size) if isinstance(size, int) else tuple(size or ())
    if len(sides) != 2 or sides[0] != sides[1] or not isinstance(sides[0], int):
        raise ModelLoadError(
            f"the OpenCLIP model {model_id} takes {size} images; searchclip encodes square ones",
            model=model_id,
        )
    return sides[0]


def _embedding_dim(loaded: LoadedOpenClip, tokens: torch.Tensor) -> int:
    """The length of the model's embeddings, from one empty text through its text tower: what
    the model makes, whichever of its settings decides it."""
    with torch.inference_mode():
        try:
            vector = loaded.model.encode_text(tokens.to(loaded.device))
        except Exception as exc:
            from searchclip._encoders.failures import first_line

            raise ModelLoadError(
                f"the OpenCLIP model {loaded.model_id} cannot encode text: {first_line(exc)}",
                model=loaded.model_id,
            ) from exc
    return int(vector.shape[-1])
