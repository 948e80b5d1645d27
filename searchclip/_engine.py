"""SearchEngine: the library's front door. The CLI and other interfaces are thin layers over it.

An index is one directory: ``catalog.sqlite`` (the source of truth), ``vectors-<gen>.faiss``
(the search structure, derived from the catalog's vectors: see :mod:`searchclip._vector_store`)
and the ONNX exports of its model (see :mod:`searchclip._encoder_session`).

Threads: one SearchEngine may be shared by threads for searching (``search``, ``search_image``,
``search_vector``, ``search_similar``, ``images_with_tag``, ``image``, ``image_file``,
``thumbnail``, ``tags``, ``info``), also while one of them runs ``index``, ``tag`` or
``migrate``. Writers are one per index: a second ``index``, ``tag`` or ``migrate`` run, from any
thread or process, raises IndexBusyError while one is going. Thumbnails are the exception that
writes: each is made once, atomically, into the index directory's ``thumbnails/``.

Model switches (``migrate``, here or in another process) are noticed on the next call: the
engine then reads the new state and starts the new model's encoders. A search runs on one state
and its model's encoders from start to end, and is run again on the new state when the model
switched while it ran, so its results are always one model's.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from searchclip._catalog import Catalog, IndexState, ModelRecord
from searchclip._catalog.integrity import raise_if_damaged
from searchclip._encoder_session import EncoderSession, IndexImageEncoding
from searchclip._encoders import DEFAULT_MODEL, Encoder, resolve_model_name
from searchclip._engine_duplicates import DuplicateMethods
from searchclip._engine_images import ImageMethods
from searchclip._engine_search import SearchMethods
from searchclip._engine_xmp import XmpMethods
from searchclip._errors import (
    InvalidArgumentError,
    ModelMismatchError,
    SearchclipError,
)
from searchclip._index_dir import IndexDirectory
from searchclip._index_precision import IndexPrecision
from searchclip._ingest import (
    BatchCommitted,
    IngestListeners,
    IngestOptions,
    index_path,
    index_root,
)
from searchclip._migration_engine import MigrationMethods
from searchclip._results import (
    FailedFile,
    IndexInfo,
    IndexProgress,
    IndexReport,
    VocabularyInfo,
)
from searchclip._search import Searcher
from searchclip._vector_store import VectorStore
from searchclip._volumes import offline_summary

if TYPE_CHECKING:
    from searchclip._tagging import Tag, Tagger, TagReport


_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")  # checked against torch when a model loads
_T = TypeVar("_T")
_SEARCH_TRIES = 3  # a search overtaken by a model switch runs again, on the new model


class SearchEngine(SearchMethods, ImageMethods, XmpMethods, DuplicateMethods, MigrationMethods):
    """One index directory, opened for indexing and searching.

    >>> with SearchEngine("indexes/photos") as engine:           # doctest: +SKIP
    ...     engine.index("~/Pictures")
    ...     hits = engine.search("dog on the beach", k=5)

    ``model`` is needed only to create an index (default: CLIP ViT-B/32); an existing index
    always uses the model it was built with. ``encoder`` injects a ready
    :class:`~searchclip.Encoder` instead of loading one (e.g. :class:`~searchclip.FakeEncoder`
    in tests). ``create=False`` refuses to create a missing index (what queries want).
    ``precision`` is how images are encoded: ``fp32``, ``bf16``, ``int8`` or ``auto`` (the
    default for a new index: the fastest on this machine of those whose vectors of the first
    images agree with fp32's); an index keeps its precision. Derived model files (the text
    tower's ONNX export, the int8 image tower) are kept in the index directory.

    Raises:
        InvalidArgumentError: ``batch_size`` < 1, an unknown ``device`` or ``precision``.
        IndexNotFoundError: no index at ``index_dir`` and ``create=False``.
        CatalogError: the catalog is not a readable searchclip catalog.
        SchemaTooNewError: the index was written by a newer searchclip.
        ModelMismatchError: the index was built with another model than ``model``.
        PrecisionMismatchError: the index holds images encoded at another ``precision``.
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
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidArgumentError(
                f"batch size must be at least 1, got {batch_size!r}", value=batch_size
            )
        if not isinstance(device, str) or not _DEVICE.fullmatch(device):
            raise InvalidArgumentError(
                f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps", value=device
            )
        self._directory = IndexDirectory(index_dir, create=create)
        self.index_dir = self._directory.path
        wanted = encoder.model_id if encoder else model
        self._requested_model = resolve_model_name(wanted or DEFAULT_MODEL)
        self._batch_size = batch_size
        self._device = device
        self._injected = encoder
        self._catalog = Catalog.open(self._directory.catalog)
        try:
            self._state = self._catalog.state()
            self._check_model(wanted)
            self._precision = IndexPrecision(self._catalog, self._state, precision, self.index_dir)
        except BaseException:
            self.close()
            raise
        self._vectors = VectorStore(self.index_dir, self._catalog)
        self._encoders = EncoderSession(
            self.index_dir,
            self.model_name,
            self._precision,
            device=device,
            batch_size=batch_size,
            injected=encoder,
        )
        self._searcher = Searcher(self._catalog, self._vectors, self.tagger)
        self._state_lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the catalog; an index this engine created and never recorded a model in is
        removed again, so a failed first run leaves no blank index behind."""
        blank = bool(self._directory.created) and self._catalog.state().model is None
        self._catalog.close()
        if blank:
            self._directory.remove_created()

    def __enter__(self) -> SearchEngine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- state ---------------------------------------------------------------------------------

    @property
    def _model(self) -> ModelRecord | None:
        return self._state.model

    def _fresh_state(self) -> IndexState:
        """The state as of now: re-read (one transaction) only when another writer changed the
        vectors since it was read, which one small read tells. A switch to another model
        (``migrate``) starts that model's encoders and retires the old ones."""
        state = self._state
        if state.model is None or self._catalog.vectors_generation() != state.generation:
            with self._state_lock:
                before, state = self._state, self._catalog.state()
                if before.model is not None and state.model != before.model:
                    self._use_model(state)
                self._state = state
        return state

    def _use_model(self, state: IndexState) -> None:
        """From now on, encode with ``state``'s model (at its precision)."""
        precision = IndexPrecision(self._catalog, state, None, self.index_dir)
        injected = self._injected
        retired = self._encoders
        self._precision = precision
        self._encoders = EncoderSession(
            self.index_dir,
            state.model.name,
            precision,
            device=self._device,
            batch_size=self._batch_size,
            injected=injected if injected and injected.model_id == state.model.name else None,
        )
        retired.retire()

    def _on_one_model(self, search: Callable[[], _T]) -> _T:
        """``search()``, run again when the index switched models while it ran (its results,
        or its error, could be of the old model's data half gone)."""
        for attempt in range(_SEARCH_TRIES):
            model = self._fresh_state().model
            try:
                found = search()
            except SearchclipError:
                if attempt + 1 == _SEARCH_TRIES or self._fresh_state().model == model:
                    raise
                continue
            if self._fresh_state().model == model:
                break
        return found

    @property
    def model_name(self) -> str:
        """The model this index uses (recorded, or the one it will be created with)."""
        return self._model.name if self._model is not None else self._requested_model

    @property
    def precision(self) -> str:
        """How this index encodes images: fp32, bf16, int8, or auto until its first images."""
        return self._precision.current

    def _check_model(self, wanted: str | None) -> None:
        recorded = self._state.model
        if recorded is not None and wanted and self._requested_model != recorded.name:
            raise ModelMismatchError(
                f"the index at {self.index_dir} was built with model {recorded.name!r}, not "
                f"{self._requested_model!r}",
                model=self._requested_model,
                recorded=recorded.name,
                index_dir=self.index_dir,
            )

    def encoder(self) -> Encoder:
        """The index's image encoder, loaded on first use: for an int8 index with current ONNX
        exports, those (no torch); else the model through torch.

        Raises:
            ModelLoadError: the model cannot be loaded.
            MissingExtraError: the model needs torch, which is not installed.
        """
        return self._encoders.image_encoder(self._model)

    # --- indexing ------------------------------------------------------------------------------

    def index(
        self,
        path: str | os.PathLike,
        *,
        workers: int | None = None,
        max_pixels: int | None = None,
        on_progress: Callable[[IndexProgress], None] | None = None,
        force: bool = False,
        forget_offline: bool = False,
        ray_address: str | None = None,
    ) -> IndexReport:
        """Index the images under ``path`` (a folder, recursively, or one file); incremental.

        Folder symlinks inside ``path`` are not followed. Images whose folder is missing or
        empty (an unmounted drive, or a ``path`` that is gone while the index holds images
        under it: ``report.root_gone``) are kept with their vectors and marked offline
        (``report.offline``, ``report.offline_roots``): left out of results until a run sees
        them again, where they were or moved elsewhere (matched by content). A file whose
        folder is there but the file is not was deleted, and is removed. ``forget_offline``
        removes the images of missing folders too. ``/`` needs ``force=True``.
        ``max_pixels`` replaces the decode budget (a share of a fixed pixel total per decoding
        worker, which bounds a run's memory) with a plain per-image limit.
        ``on_progress`` is called after each file that needed reading (the CLI draws its bar
        from it); the library itself prints nothing.
        ``ray_address`` (the ``ray`` extra) reads, decodes and encodes on a Ray cluster:
        ``"auto"`` (the cluster ``ray start`` runs here, or ``$RAY_ADDRESS``), ``"local"`` (a
        Ray instance started for this run) or its address; every node must read the files at
        the same paths, and load the model by the same name. Scanning, planning and commits
        stay here, so the run resumes and reports as a local one.

        Raises:
            FileError: ``path`` does not exist (and the index holds nothing under it).
            WholeFileSystemError: ``path`` is, or leads to, ``/``, and ``force`` is false.
            InvalidArgumentError: ``workers`` < 1 or ``max_pixels`` < 1, or ``ray_address``
                with an encoder passed in (a cluster loads the model by its name).
            IndexBusyError: another process or thread is writing to this index.
            ModelLoadError, MissingExtraError: the model is needed and cannot be loaded.
            ClusterError: no Ray cluster at ``ray_address``, or a node cannot read the files.
        """
        root = index_root(path, force=force, indexed_under=self._catalog.files_under)
        options = IngestOptions.checked(self._batch_size, workers, max_pixels, forget_offline)
        if ray_address is not None and self._injected is not None:
            raise InvalidArgumentError(
                "a cluster run loads the model by its name on every node: pass model=, not "
                "encoder=",
                value=ray_address,
            )
        with self._directory.write_lock():
            self._directory.remove_leftovers()
            self._fresh_state()  # another process may have switched models since
            model = self._ensure_model_recorded()
            self._precision.record()
            changes = self._vectors.begin_changes(self._catalog.state())  # under the lock: exact

            def committed(batch: BatchCommitted) -> None:
                changes.record(batch.upserted, batch.vectors, batch.removed)

            report = index_path(
                root,
                self._catalog,
                model,
                IndexImageEncoding(self._encoders, self._precision, model),
                options,
                IngestListeners(progress=on_progress, committed=committed),
                self._cluster_run(ray_address, root, model),
            )
            if self._precision.chosen_now:  # said once: in the run that made the choice
                report = dataclasses.replace(report, precision_choice=self._precision.chosen_now)
                self._precision.chosen_now = ""
            state = self._catalog.state()
            built = self._vectors.apply(changes, state, self._shard_runner(ray_address))
            report = dataclasses.replace(report, vector_index=built)
            with self._state_lock:
                self._state = state
            self._encoders.export_text_encoder(model)  # only if torch is loaded anyway
        return report

    def _cluster_run(self, address: str | None, root: Path, model: ModelRecord):
        """How a run with ``ray_address`` prepares its files (None: on this machine)."""
        if address is None:
            return None
        from searchclip._cluster import ClusterRun

        return ClusterRun(
            address,
            str(root),
            model.name,
            self._device,
            self._batch_size,
            precision=lambda: self._precision.current,
        ).prepare

    @staticmethod
    def _shard_runner(address: str | None):
        """Where an on-disk index's rebuild adds its shards (None: here)."""
        if address is None:
            return None
        from searchclip._cluster import ray_shard_runner

        return ray_shard_runner(address)

    def _ensure_model_recorded(self) -> ModelRecord:
        if self._model is None:
            encoder = self.encoder()
            record = self._catalog.set_model(encoder.model_id, encoder.dim)
            with self._state_lock:
                self._state = dataclasses.replace(self._state, model=record)
        return self._model

    # --- tagging -------------------------------------------------------------------------------

    def tagger(self) -> Tagger:
        """Tagging operations on this index (vocabularies, label embeddings, thresholds).

        Raises:
            EmptyIndexError: the index holds no images yet.
        """
        from searchclip._tagging import Tagger

        return Tagger(self._catalog, self._searchable_state(1).model, self.encoder)

    def tag(
        self, vocabulary: str = "coco", *, top_k: int = 3, threshold: float | None = None
    ) -> TagReport:
        """Score every image not yet scored against ``vocabulary`` and store its tags.

        ``vocabulary`` is a built-in name (``coco``, ``imagenet``) or a text file of labels.
        Tags are each image's ``top_k`` labels, or with ``threshold`` every label scoring at
        least that, or with calibrated thresholds (:meth:`calibrate`) those.

        Raises:
            EmptyIndexError: the index holds no images yet.
            IndexBusyError: another process or thread is writing to this index.
            InvalidArgumentError: a bad ``top_k`` or ``threshold``, or an unusable vocabulary.
        """
        self._searchable_state(1)
        with self._directory.write_lock():
            return self.tagger().tag(vocabulary, top_k=top_k, threshold=threshold)

    def tags(self, path: str | os.PathLike) -> list[Tag]:
        """The stored tags of one indexed image, best score first.

        Raises:
            EmptyIndexError: the index holds no images yet.
        """
        return self.tagger().tags_of(os.path.abspath(Path(path).expanduser()))

    # --- inspection ----------------------------------------------------------------------------

    def info(self) -> IndexInfo:
        """What the index holds: model, dimension, file and failure counts, vocabularies.

        Raises CatalogDamagedError when SQLite's quick check of the catalog fails."""
        raise_if_damaged(self._directory.catalog, quick=True)
        state = self._fresh_state()
        model = state.model
        migration, kept = self._migration_info(model)
        return IndexInfo(
            index_dir=str(self.index_dir),
            model=self.model_name,
            dim=model.dim if model else 0,
            files=state.files,
            failures=len(self._catalog.failures()),
            vocabularies=tuple(VocabularyInfo(*row) for row in self._catalog.tags.summary(model.id))
            if model
            else (),
            precision=self._precision.choice or self._precision.current,
            metadata=self._catalog.metadata_summary(),
            offline=offline_summary(self._catalog.offline_folders()),
            migration=migration,
            kept_models=kept,
        )

    def failures(self) -> list[FailedFile]:
        """Files that could not be indexed, with the reason recorded at their last attempt."""
        return self._catalog.failures()
