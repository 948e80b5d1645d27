"""SearchEngine: the library's front door. The CLI is a thin layer over it.

An index is one directory: ``catalog.sqlite`` (the source of truth), ``vectors-<gen>.faiss``
(the search structure, derived from the catalog's vectors: see :mod:`searchclip._vector_store`)
and the ONNX exports of its model (:mod:`searchclip._encoders`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from searchclip import _images as images
from searchclip._catalog import Catalog, ModelRecord
from searchclip._encoders import DEFAULT_MODEL, Encoder, load_encoder, resolve_model_name
from searchclip._encoders.precision import INT8
from searchclip._errors import (
    EmptyIndexError,
    IndexBusyError,
    IndexNotFoundError,
    InvalidArgumentError,
    ModelMismatchError,
    SearchclipError,
)
from searchclip._index_precision import IndexPrecision
from searchclip._ingest import IngestOptions, index_path
from searchclip._results import FailedFile, IndexInfo, IndexReport, SearchHit, VocabularyInfo
from searchclip._vector_store import VectorStore

if TYPE_CHECKING:
    from PIL import Image

    from searchclip._encoders.onnx_text import OnnxTextEncoder
    from searchclip._tagging import Tag, Tagger, TagReport
    from searchclip._vector_index import VectorIndex

CATALOG_FILE = "catalog.sqlite"
LOCK_FILE = "write.lock"
INDEX_ENV_VAR = "SEARCHCLIP_INDEX"
DEFAULT_INDEX_DIR = Path("indexes") / "default"


def default_index_dir() -> Path:
    """``$SEARCHCLIP_INDEX`` if set, else ``./indexes/default``."""
    return Path(os.environ.get(INDEX_ENV_VAR) or DEFAULT_INDEX_DIR)


class SearchEngine:
    """One index directory, opened for indexing and searching.

    >>> with SearchEngine("indexes/photos") as engine:           # doctest: +SKIP
    ...     engine.index("~/Pictures")
    ...     hits = engine.search("dog on the beach", k=5)

    ``model`` is needed only to create an index (default: CLIP ViT-B/32); an existing index
    always uses the model it was built with, and naming another one raises ModelMismatchError.
    ``encoder`` injects a ready :class:`~searchclip._encoders.Encoder` instead of loading one.
    ``create=False`` refuses to create a missing index (what queries want).
    ``precision`` is how images are encoded: ``fp32``, ``bf16``, ``int8`` or ``auto`` (the
    default for a new index: the fastest on this machine of those whose vectors of the first
    images agree with fp32's, cosine >= 0.999); an index keeps its precision, and naming another
    one raises PrecisionMismatchError. Derived model files (the text tower's ONNX export, the
    int8 image tower) are kept in the index directory.
    """

    def __init__(
        self,
        index_dir: str | os.PathLike | None = None,
        *,
        model: str | None = None,
        device: str = "auto",
        batch_size: int = 32,
        create: bool = True,
        encoder: Encoder | None = None,
        precision: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise InvalidArgumentError(f"batch size must be at least 1, got {batch_size}")
        self.index_dir = Path(index_dir if index_dir is not None else default_index_dir())
        self.index_dir = self.index_dir.expanduser().absolute()
        catalog_path = self.index_dir / CATALOG_FILE
        # What this engine creates, so that closing it before anything was indexed (the model
        # would not load, say) leaves no blank index behind.
        self._created: list[Path] = []
        if not catalog_path.is_file():
            if not create:
                raise IndexNotFoundError(
                    f"no index at {self.index_dir}; create one with "
                    f"`searchclip index PATH --index {self.index_dir}`"
                )
            missing = [d for d in (self.index_dir, *self.index_dir.parents) if not d.exists()]
            self.index_dir.mkdir(parents=True, exist_ok=True)
            self._created = [catalog_path, *missing]
        wanted = encoder.model_id if encoder else model
        self._requested_model = resolve_model_name(wanted or DEFAULT_MODEL)
        self._device = device
        self._batch_size = batch_size
        self._encoder = encoder
        self._encoder_injected = encoder is not None
        self._onnx_text_encoder: OnnxTextEncoder | None = None
        self._text_export_tried = False
        self._catalog = Catalog.open(catalog_path)
        self._vectors = VectorStore(self.index_dir, self._catalog)
        try:
            self._model = self._check_model(wanted)
            self._precision = IndexPrecision(self._catalog, precision, self.index_dir)
            if encoder is not None:
                self._precision.apply_to(encoder)
        except BaseException:
            self.close()
            raise

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        blank = bool(self._created) and self._catalog.model() is None
        self._catalog.close()
        if blank:
            self._remove_blank_index()

    def _remove_blank_index(self) -> None:
        """Remove the index this engine created if nothing was ever recorded in it: its catalog
        and lock file, then the directories it made, each only while empty."""
        catalog, *directories = self._created
        names = [catalog.name + suffix for suffix in ("", "-wal", "-shm", "-journal")]
        for name in [*names, LOCK_FILE]:
            with contextlib.suppress(OSError):
                (self.index_dir / name).unlink(missing_ok=True)
        for directory in directories:  # deepest first
            try:
                directory.rmdir()
            except OSError:  # not empty (someone else's files), or not ours to remove
                break
        self._created = []

    def __enter__(self) -> SearchEngine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- model ---------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The model this index uses (recorded, or the one it will be created with)."""
        return self._model.name if self._model is not None else self._requested_model

    def _check_model(self, wanted: str | None) -> ModelRecord | None:
        """The recorded model; asking for another one by name is an error."""
        recorded = self._catalog.model()
        if recorded is not None and wanted and self._requested_model != recorded.name:
            raise ModelMismatchError(
                f"the index at {self.index_dir} was built with model {recorded.name!r}, not "
                f"{self._requested_model!r}; omit --model to use the index's own model, "
                "or choose another --index for the new model"
            )
        return recorded

    def encoder(self) -> Encoder:
        """The index's encoder, loaded on first use: for an int8 index with current ONNX
        exports, those (a fraction of a second); else CLIP through torch (seconds)."""
        if self._encoder is None:
            encoder = self._onnx_encoder()
            if encoder is None:
                encoder = load_encoder(
                    self.model_name, device=self._device, batch_size=self._batch_size
                )
                encoder.artifact_dir = self.index_dir
            self._precision.apply_to(encoder)
            self._encoder = encoder
        return self._encoder

    def _onnx_encoder(self) -> Encoder | None:
        if self._model is None or self.precision != INT8:
            return None
        from searchclip._encoders.onnx_clip import OnnxClipEncoder

        encoder = OnnxClipEncoder.load(
            self.index_dir, self._model.name, self._model.dim, text=self._onnx_text_encoder
        )
        if encoder is not None:  # text queries share its text encoder: one session, not two
            self._onnx_text_encoder = encoder.text
        return encoder

    @property
    def precision(self) -> str:
        """How this index encodes images: fp32, bf16, int8, or auto until its first images."""
        return self._precision.current

    def _ensure_model_recorded(self) -> ModelRecord:
        if self._model is None:
            encoder = self.encoder()
            self._model = self._catalog.set_model(encoder.model_id, encoder.dim)
        return self._model

    # --- indexing ------------------------------------------------------------------------------

    def index(
        self,
        path: str | os.PathLike,
        *,
        progress: bool = False,
        workers: int | None = None,
        max_pixels: int = images.DEFAULT_MAX_PIXELS,
    ) -> IndexReport:
        """Index the images under ``path`` (a folder, recursively, or one file); incremental."""
        options = IngestOptions(
            batch_size=self._batch_size,
            progress=progress,
            max_pixels=max_pixels,
            **({"workers": workers} if workers else {}),
        )
        with self._write_lock():
            model = self._ensure_model_recorded()
            self._precision.record()
            root = Path(path).expanduser()
            changes = self._vectors.begin_changes()
            report = index_path(
                root,
                self._catalog,
                model,
                self.encoder,
                options,
                self._precision.encode,
                changes.record,
            )
            if self._precision.chosen_now:  # said once: in the run that made the choice
                report = dataclasses.replace(report, precision_choice=self._precision.chosen_now)
                self._precision.chosen_now = ""
            self._vectors.apply(changes, model)
            if self._encoder is not None:  # only when torch is loaded anyway: never load it here
                self._export_text_encoder()
        return report

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        """One writer per index: a second ``index`` run fails fast instead of interleaving."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; SQLite still serialises the writes
            yield
            return
        with open(self.index_dir / LOCK_FILE, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexBusyError(
                    f"another searchclip process is indexing into {self.index_dir}; "
                    "wait for it to finish"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- the text encoder for queries ----------------------------------------------------------

    def _text_encoder(self) -> Encoder | OnnxTextEncoder:
        """What encodes query texts: an injected encoder, else the index's ONNX export of its
        model's text tower (no torch: a cold query takes a fraction of a second), else the torch
        encoder, which then writes the export for the next queries."""
        if self._encoder_injected:
            return self.encoder()
        if self._onnx_text_encoder is None:
            from searchclip._encoders.onnx_text import OnnxTextEncoder

            self._onnx_text_encoder = OnnxTextEncoder.load(
                self.index_dir, self.model_name, self._model.dim, int8=self.precision == INT8
            )
        if self._onnx_text_encoder is not None:
            return self._onnx_text_encoder
        encoder = self.encoder()
        self._export_text_encoder()
        return encoder

    def _export_text_encoder(self) -> None:
        """Export the loaded torch encoder's text tower next to the index unless a current export
        is there. Best effort: a read-only index or a model that cannot be exported keeps
        answering text queries with torch."""
        from searchclip._encoders.onnx_text import current_text_export

        if self._encoder_injected or self._model is None or self._text_export_tried:
            return
        self._text_export_tried = True  # once per engine: a failing export is not retried
        if current_text_export(self.index_dir, self._model.name, self._model.dim) is not None:
            return
        from searchclip._encoders.onnx_export import export_text_encoder

        try:
            export_text_encoder(self.encoder(), self.index_dir, int8=self.precision == INT8)
        except (OSError, SearchclipError) as exc:
            warnings.warn(f"text queries will use torch: {exc}", RuntimeWarning, stacklevel=3)
        self._onnx_text_encoder = None  # load the new export on the next text query

    # --- searching -----------------------------------------------------------------------------

    def search(
        self, text: str, k: int = 10, *, tags: Sequence[str] = (), not_tags: Sequence[str] = ()
    ) -> list[SearchHit]:
        """The ``k`` images that best match ``text``, best first.

        ``tags`` keeps only images carrying every one of those stored tags; ``not_tags`` drops
        images carrying any of them (see :meth:`tag`).
        """
        if not text or not text.strip():
            raise InvalidArgumentError("the query text is empty")
        self._check_searchable(k)
        vector = self._text_encoder().encode_texts([text])[0]
        return self._nearest(vector, k, tags, not_tags, far=True)  # text lies apart from images

    def search_image(
        self,
        image: str | os.PathLike | Image.Image,
        k: int = 10,
        *,
        tags: Sequence[str] = (),
        not_tags: Sequence[str] = (),
    ) -> list[SearchHit]:
        """The ``k`` images most similar to ``image`` (a path or a PIL image), best first."""
        self._check_searchable(k)
        if not hasattr(image, "mode"):
            image = images.load_image(Path(image).expanduser()).image
        elif image.mode != "RGB":
            image = image.convert("RGB")
        vector = self.encoder().encode_images([image])[0]
        return self._nearest(vector, k, tags, not_tags)

    def search_vector(
        self,
        vector: np.ndarray,
        k: int = 10,
        *,
        tags: Sequence[str] = (),
        not_tags: Sequence[str] = (),
        far: bool = False,
    ) -> list[SearchHit]:
        """The ``k`` images nearest to a query vector of the index's model. ``far=True`` for a
        text vector: it lies apart from every image vector, and a large index searches wider."""
        self._check_searchable(k)
        return self._nearest(vector, k, tags, not_tags, far=far)

    def _nearest(
        self,
        vector: np.ndarray,
        k: int,
        tags: Sequence[str],
        not_tags: Sequence[str],
        *,
        far: bool = False,
    ) -> list[SearchHit]:
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self._model.dim:
            raise InvalidArgumentError(
                f"a query vector has {query.shape[1]} values; this index's model has "
                f"{self._model.dim}"
            )
        index = self._vectors.current(self._model)
        allowed = self._allowed_ids(index, tags, not_tags)
        if allowed is not None and not len(allowed):
            return []
        scores, ids = index.search(query, k, allowed=allowed, far=far)
        return self._hits(ids[0], scores[0])

    def _allowed_ids(
        self, index: VectorIndex, tags: Sequence[str], not_tags: Sequence[str]
    ) -> np.ndarray | None:
        """The ids a tag filter keeps (numpy set operations: a filter over a million images
        stays in milliseconds once the tags are read)."""
        if not tags and not not_tags:
            return None
        tagger = self.tagger()

        def ids_with(label: str) -> np.ndarray:
            found = tagger.files_with(label)
            return np.fromiter(found, dtype=np.int64, count=len(found))

        allowed = index.ids() if not tags else ids_with(tags[0])
        for label in tags[1:]:
            allowed = np.intersect1d(allowed, ids_with(label), assume_unique=True)
        for label in not_tags:
            allowed = np.setdiff1d(allowed, ids_with(label), assume_unique=True)
        return allowed

    def _hits(self, ids: Sequence[int], scores: Sequence[float]) -> list[SearchHit]:
        records = self._catalog.files_by_id(int(i) for i in ids)
        hits = [
            (float(score), records[int(file_id)])
            for score, file_id in zip(scores, ids, strict=True)
            if int(file_id) in records
        ]
        return [
            SearchHit(rank, score, record.path, record.width, record.height)
            for rank, (score, record) in enumerate(hits, start=1)
        ]

    def _check_searchable(self, k: int) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidArgumentError(f"k must be a positive number of results, got {k!r}")
        if self._model is None or not self._catalog.has_files():
            raise EmptyIndexError(
                f"the index at {self.index_dir} holds no images yet; "
                f"index some with `searchclip index PATH --index {self.index_dir}`"
            )

    # --- tagging -------------------------------------------------------------------------------

    def tagger(self) -> Tagger:
        """Tagging operations on this index (vocabularies, label embeddings, thresholds)."""
        from searchclip._tagging import Tagger

        if self._model is None:
            raise EmptyIndexError(f"the index at {self.index_dir} holds no images yet")
        return Tagger(self._catalog, self._model, self.encoder)

    def tag(
        self, vocabulary: str = "coco", *, top_k: int = 3, threshold: float | None = None
    ) -> TagReport:
        """Score every image not yet scored against ``vocabulary`` and store its tags.

        ``vocabulary`` is a built-in name (``coco``, ``imagenet``) or a text file of labels.
        Tags are each image's ``top_k`` labels, or with ``threshold`` every label scoring at
        least that, or with calibrated thresholds (:meth:`calibrate`) those.
        """
        self._check_searchable(1)
        with self._write_lock():
            return self.tagger().tag(vocabulary, top_k=top_k, threshold=threshold)

    def tags(self, path: str | os.PathLike) -> list[Tag]:
        """The stored tags of one indexed image, best score first."""
        return self.tagger().tags_of(os.path.abspath(Path(path).expanduser()))

    def images_with_tag(
        self,
        label: str,
        k: int = 10,
        *,
        tags: Sequence[str] = (),
        not_tags: Sequence[str] = (),
    ) -> list[SearchHit]:
        """The ``k`` images tagged ``label`` (and every one of ``tags``, and none of
        ``not_tags``), by their score for ``label``, best first."""
        self._check_searchable(k)
        tagger = self.tagger()
        scored = tagger.files_with(label)
        for other in tags:
            keep = tagger.files_with(other)
            scored = {file_id: s for file_id, s in scored.items() if file_id in keep}
        for other in not_tags:
            for file_id in tagger.files_with(other):
                scored.pop(file_id, None)
        best = sorted(scored.items(), key=lambda item: (-item[1], item[0]))[:k]
        return self._hits([file_id for file_id, _ in best], [score for _, score in best])

    def stored_vectors(self, paths: Sequence[str]) -> dict[str, np.ndarray]:
        """path → stored vector, for those of ``paths`` that are indexed."""
        model = self._ensure_model_recorded()
        return self._catalog.vectors_by_path([os.path.abspath(p) for p in paths], model)

    # --- inspection ----------------------------------------------------------------------------

    def info(self) -> IndexInfo:
        model = self._model
        return IndexInfo(
            index_dir=str(self.index_dir),
            model=self.model_name,
            dim=model.dim if model else 0,
            files=self._catalog.count_files(),
            failures=len(self._catalog.failures()),
            vocabularies=tuple(VocabularyInfo(*row) for row in self._catalog.tags.summary(model.id))
            if model
            else (),
            precision=self._precision.choice or self._precision.current,
        )

    def failures(self) -> list[FailedFile]:
        """Files that could not be indexed, with the reason recorded at their last attempt."""
        return self._catalog.failures()
