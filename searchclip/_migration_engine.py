"""SearchEngine's model migration: ``migrate`` to another model without downtime, and
``abandon_migration``.

A mixin of :class:`~searchclip.SearchEngine`, kept apart so that each part stays small; the
work itself is in :mod:`searchclip._migration` and :mod:`searchclip._catalog.migration`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from searchclip._catalog import IndexState
from searchclip._catalog.migration import LackingFile, MigrationIncomplete
from searchclip._encoder_session import EncoderSession, IndexImageEncoding
from searchclip._encoders import load_encoder, resolve_model_name
from searchclip._errors import EmptyIndexError, InvalidArgumentError, MigrationPendingError
from searchclip._index_precision import IndexPrecision
from searchclip._ingest_options import IngestListeners, IngestOptions
from searchclip._migration import MIGRATION_DIR, encode_lacking, move_exports_in, remove_staging
from searchclip._results import (
    IndexProgress,
    KeptModel,
    MigrationInfo,
    MigrationReport,
    OfflineFolder,
)

if TYPE_CHECKING:
    from searchclip._catalog import ModelRecord


class MigrationMethods:
    """The migration half of SearchEngine (see there for threads: a migration is a writer)."""

    def migrate(
        self,
        model: str,
        *,
        precision: str | None = None,
        keep_old: bool = False,
        forget_offline: bool = False,
        workers: int | None = None,
        max_pixels: int | None = None,
        on_progress: Callable[[IndexProgress], None] | None = None,
    ) -> MigrationReport:
        """Re-encode the index's images with ``model`` while every query keeps using the
        current model; once each image has a vector of ``model``, switch to it in one
        transaction (queries from then on use ``model`` alone) and drop the old model's
        vectors, vocabularies and tags (``keep_old=True`` keeps them: switching back to it
        then encodes only what changed since).

        Interrupted, the next ``migrate`` to the same model resumes: every committed batch
        stays. Images on an offline volume cannot be read: the switch waits for them
        (``report.waiting_for``) unless ``forget_offline``, which removes those images (they
        are indexed afresh when their volume is back). ``precision`` is the new model's
        image precision (default ``auto``: chosen on its first batch, recorded with the switch);
        ``workers``, ``max_pixels`` and ``on_progress`` are :meth:`index`'s.

        Raises:
            InvalidArgumentError: no ``model``, the index's own model, a bad option.
            EmptyIndexError: the index holds no images (index with ``model`` directly).
            MigrationPendingError: a migration to another model is pending (abandon it first).
            IndexBusyError: another process or thread is writing to this index.
            ModelLoadError, MissingExtraError: ``model`` is needed and cannot be loaded.
            PrecisionMismatchError: ``model``'s vectors so far were encoded at another precision.
        """
        if not isinstance(model, str) or not model.strip():
            raise InvalidArgumentError(
                "migrating needs the new model: pass --model NEW", value=model
            )
        name = resolve_model_name(model)
        options = IngestOptions.checked(self._batch_size, workers, max_pixels)
        started = time.monotonic()
        with self._directory.write_lock():
            state = self._catalog.state()  # exact under the lock
            migration = self._catalog.migration
            pending = migration.pending()
            self._check_migration(name, state, pending)
            staging = self.index_dir / MIGRATION_DIR
            if pending is None:  # exports of a run killed before it could move them in
                remove_staging(staging)
            known = pending.model if pending else migration.model_named(name)
            encoder = None
            if known is None:  # a model never seen here: load it to learn its size
                encoder = load_encoder(name, device=self._device, batch_size=self._batch_size)
                name = encoder.model_id  # what an index records, as index() does
                self._check_migration(name, state, pending)
            pending = migration.begin(name, known.dim if known else encoder.dim)
            new = pending.model
            already, _ = migration.counts(new)
            copied = migration.copy_same_content(new)
            session, new_precision = self._migration_session(new, pending, already, precision)
            if encoder is not None:
                session.adopt(encoder)
            lacking = _one_per_content(migration.lacking(new))
            counts = None
            if lacking:
                staging.mkdir(exist_ok=True)
                new_precision.record()
                counts = encode_lacking(
                    self._catalog,
                    new,
                    lacking,
                    IndexImageEncoding(session, new_precision, new),
                    options,
                    IngestListeners(progress=on_progress),
                )
                session.export_text_encoder(new)  # into migration/: only if torch is loaded
                copied += migration.copy_same_content(new)  # the other files of each content
            report = MigrationReport(
                model=new.name,
                previous=state.model.name,
                switched=False,
                encoded=counts.encoded if counts else 0,
                copied=copied,
                already=already,
                total=state.files,
                kept_old=keep_old,
                precision=new_precision.current,
                precision_choice=new_precision.chosen_now,
                unreadable=counts.unreadable if counts else (),
            )
            try:
                switched = migration.switch(keep_old=keep_old, forget_offline=forget_offline)
            except MigrationIncomplete:
                waiting = tuple(OfflineFolder(*row) for row in migration.offline_lacking(new))
                return _finished(report, started, waiting_for=waiting)
            move_exports_in(staging, self.index_dir)
            after = self._catalog.state()
            self._vectors.refresh(after)  # the new model's vector file, old ones deleted
            self._fresh_state()  # this engine's queries use the new model from now on
        return _finished(
            report,
            started,
            switched=True,
            total=after.files,
            precision=after.precision or "",
            dropped_vocabularies=switched.dropped_vocabularies,
            forgotten=switched.forgotten,
        )

    def abandon_migration(self, *, keep_vectors: bool = False) -> str | None:
        """Forget a pending migration and delete the vectors it encoded (``keep_vectors``
        keeps them: a later migration to that model resumes from them). Returns the pending
        model, or None when none was pending.

        Raises:
            IndexBusyError: another process or thread is writing to this index.
        """
        with self._directory.write_lock():
            abandoned = self._catalog.migration.abandon(keep_vectors=keep_vectors)
            remove_staging(self.index_dir / MIGRATION_DIR)
        return abandoned.name if abandoned else None

    def _check_migration(self, name: str, state: IndexState, pending) -> None:
        if state.model is None or not state.files:
            raise EmptyIndexError(
                f"the index at {self.index_dir} holds no images to migrate: index them with "
                "the new model directly",
                index_dir=self.index_dir,
            )
        if pending is not None and pending.model.name != name:
            raise MigrationPendingError(
                f"a migration to {pending.model.name} is pending in {self.index_dir}, not to "
                f"{name}",
                pending=pending.model.name,
                index_dir=self.index_dir,
            )
        if pending is None and name == state.model.name:
            raise InvalidArgumentError(f"the index uses {name} already", value=name)

    def _migration_session(
        self, new: ModelRecord, pending, already: int, precision: str | None
    ) -> tuple[EncoderSession, IndexPrecision]:
        """The new model's encoders (exporting into migration/) and its precision rule."""
        seen = IndexState(new, 0, already, pending.precision, pending.precision_choice)
        new_precision = IndexPrecision.for_migration(self._catalog, seen, precision, self.index_dir)
        session = EncoderSession(
            self.index_dir / MIGRATION_DIR,
            new.name,
            new_precision,
            device=self._device,
            batch_size=self._batch_size,
            injected=None,
        )
        return session, new_precision

    def _migration_info(self, current: ModelRecord | None) -> tuple:
        """(MigrationInfo or None, kept models) for :meth:`info`."""
        migration = self._catalog.migration
        kept = tuple(
            KeptModel(model.name, model.dim, vectors)
            for model, vectors in migration.kept_models(current)
        )
        pending = migration.pending()
        if pending is None:
            return None, kept
        encoded, total = migration.counts(pending.model)
        waiting = tuple(OfflineFolder(*row) for row in migration.offline_lacking(pending.model))
        info = MigrationInfo(
            model=pending.model.name,
            dim=pending.model.dim,
            encoded=encoded,
            total=total,
            precision=pending.precision_choice or pending.precision or "",
            started_at=pending.started_at,
            waiting_for=waiting,
        )
        return info, kept


def _one_per_content(files: list[LackingFile]) -> list[LackingFile]:
    """The first file of each content: its copies take its vector, nothing decoded twice."""
    seen: set[str] = set()
    return [f for f in files if not (f.content_hash in seen or seen.add(f.content_hash))]


def _finished(report: MigrationReport, started: float, **changes) -> MigrationReport:
    import dataclasses

    return dataclasses.replace(report, elapsed_s=time.monotonic() - started, **changes)
