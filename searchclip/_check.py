"""Checking an index (``searchclip check``), and repairing what can be repaired.

What is checked, in order: the catalog (SQLite's integrity check, foreign keys, the schema
revision, the vectors' sizes), the vector file against the catalog's vectors, the ONNX exports
against their sidecars, what killed runs left behind, and the indexed files on disk.

What ``repair`` does, holding the write lock: a damaged catalog is recovered row by row into a
new one (the damaged file is kept beside it); files gone from disk leave the index (except
those whose folder is missing or empty, as a drive not mounted leaves it: marked offline, as
an index run marks them); the vector file is rebuilt from the catalog; broken or stale
exports are deleted (the next run that needs one makes it again); leftovers are removed.
Nothing the user made is touched: only the index directory's own files and the catalog's rows
of vanished files.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from searchclip._catalog import Catalog, CatalogChanges, ModelRecord
from searchclip._catalog import integrity as catalog_integrity
from searchclip._catalog.recovery import recover_catalog
from searchclip._encoders import onnx_image, onnx_text
from searchclip._index_dir import IndexDirectory
from searchclip._vector_store import VectorStore
from searchclip._volumes import VolumeCheck, outermost_missing


@dataclass(frozen=True)
class CheckProblem:
    """One thing found wrong: ``part`` is ``catalog``, ``vectors``, ``exports``,
    ``leftovers`` or ``files``; ``repaired`` says whether ``repair`` put it right."""

    part: str
    message: str
    repaired: bool = False


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_index` found (and, with ``repair``, did). ``ok``: nothing is left
    wrong. ``files``: images the index holds now. ``damaged_copy``: where a damaged catalog
    was kept when it was recovered."""

    index_dir: str
    problems: tuple[CheckProblem, ...]
    files: int
    repair: bool
    damaged_copy: str | None = None
    notes: tuple[str, ...] = ()  # what is not wrong but worth knowing (an unmounted drive)

    @property
    def ok(self) -> bool:
        return all(problem.repaired for problem in self.problems)


# Each export: its sidecar and the files it describes (the sidecar is written last).
_EXPORTS = {
    "text": (
        onnx_text.SIDECAR_FILE,
        (onnx_text.ONNX_FILE, onnx_text.WEIGHTS_FILE, onnx_text.TOKENIZER_FILE),
        (onnx_text.TEXT_INT8_FILE,),  # optional
    ),
    "int8 image": (onnx_image.INT8_SIDECAR_FILE, (onnx_image.INT8_ONNX_FILE,), ()),
}


def check_index(index_dir: str | os.PathLike, *, repair: bool = False) -> CheckReport:
    """Check the index at ``index_dir``; with ``repair``, put right what can be.

    Raises:
        IndexNotFoundError: there is no index at ``index_dir``.
        IndexBusyError: ``repair`` while another process is writing to the index.
    """
    directory = IndexDirectory(index_dir, create=False, allow_damaged=True)
    lock = directory.write_lock(check_after_crash=False) if repair else contextlib.nullcontext()
    with lock:
        return _Check(directory, repair).run()


class _Check:
    def __init__(self, directory: IndexDirectory, repair: bool) -> None:
        self.directory = directory
        self.repair = repair
        self.problems: list[CheckProblem] = []
        self.notes: list[str] = []
        self.damaged_copy: str | None = None

    def found(self, part: str, message: str, repaired: bool = False) -> None:
        self.problems.append(CheckProblem(part, message, repaired and self.repair))

    def run(self) -> CheckReport:
        files, model = 0, None
        if self.catalog_sound():
            with Catalog.open(self.directory.catalog) as catalog:
                model = catalog.model()
                self.indexed_files(catalog, model)
                self.vector_file(catalog)
                files = catalog.count_files()
        self.exports(model)
        self.leftovers()
        return CheckReport(
            index_dir=str(self.directory.path),
            problems=tuple(self.problems),
            files=files,
            repair=self.repair,
            damaged_copy=self.damaged_copy,
            notes=tuple(self.notes),
        )

    def catalog_sound(self) -> bool:
        """Whether the catalog can be used now (sound, or recovered)."""
        path = self.directory.catalog
        problems = catalog_integrity.catalog_problems(path)
        if not problems:
            return True
        if not self.repair:
            for problem in problems:
                self.found("catalog", problem)
            return False
        recovery = recover_catalog(path)
        self.damaged_copy = str(recovery.damaged_copy)
        tables = {table.table: table for table in recovery.tables}
        files = tables["files"]
        lost = sum(table.unreadable_stretches for table in recovery.tables)
        message = (
            f"{problems[0]}; recovered {files.kept - files.orphans} images, "
            f"{recovery.kept('tags')} tags and {recovery.kept('failures')} failures into a new "
            f"catalog ({lost} unreadable stretches of rows skipped"
            + (
                f"; {files.orphans} images whose vector was lost left it, for the next index "
                "run to encode again"
                if files.orphans
                else ""
            )
            + f"); the damaged file is kept as {recovery.damaged_copy.name}"
        )
        self.found("catalog", message, repaired=True)
        return True

    def indexed_files(self, catalog: Catalog, model: ModelRecord | None) -> None:
        """Indexed files that are no longer on disk: gone, or offline where their folder is
        missing or empty (a drive not mounted), by the rule of an index run; repair removes
        the first and marks the others offline, as an index run would."""
        gone: list[tuple[int, str]] = []
        offline: dict[str, list[int]] = {}
        volumes = VolumeCheck()
        for file_id, path in catalog_integrity.indexed_paths(catalog.path):
            if os.path.lexists(path):
                continue
            folder = os.path.dirname(path)
            if volumes.missing(folder):
                offline.setdefault(outermost_missing(folder), []).append(file_id)
            else:
                gone.append((file_id, path))
        for folder, ids in sorted(offline.items()):
            self.notes.append(
                f"{len(ids)} indexed files are under {folder}, which is missing or empty (a "
                "drive not mounted?): kept in the index, offline"
            )
            if self.repair and model is not None:
                catalog.apply(CatalogChanges(offline=ids), model)
        if not gone:
            return
        if self.repair and model is not None:
            ids = [file_id for file_id, _ in gone]
            for start in range(0, len(ids), 1000):
                catalog.apply(CatalogChanges(removed=ids[start : start + 1000]), model)
        examples = ", ".join(path for _, path in gone[:3]) + (", ..." if len(gone) > 3 else "")
        self.found(
            "files",
            f"{len(gone)} indexed files no longer exist ({examples})"
            + ("; removed from the index" if self.repair else ""),
            repaired=model is not None,
        )

    def vector_file(self, catalog: Catalog) -> None:
        state = catalog.state()
        if state.model is None:
            return
        store = VectorStore(self.directory.path, catalog)
        ids = catalog_integrity.vector_ids(catalog.path, state.model.id)
        problem = store.problem(state, ids)
        if self.repair and (problem or not store.file(state.generation).exists()):
            store.rebuild(state)
        if problem:
            self.found(
                "vectors", problem + ("; rebuilt from the catalog" if self.repair else ""), True
            )

    def exports(self, model: ModelRecord | None) -> None:
        """Exports the loaders would not use (stale, half-written): harmless, but dead weight;
        judged by completeness alone when the catalog cannot say which model is the index's."""
        directory = self.directory.path
        for kind, (sidecar, required, optional) in _EXPORTS.items():
            present = [
                name for name in (sidecar, *required, *optional) if (directory / name).exists()
            ]
            if not present:
                continue
            problem = _export_problem(directory, sidecar, required, model)
            if problem is None:
                continue
            if self.repair:
                for name in present:
                    with contextlib.suppress(OSError):
                        (directory / name).unlink()
            self.found(
                "exports",
                f"the {kind} export {problem}"
                + ("; deleted (made again when needed)" if self.repair else ""),
                repaired=True,
            )

    def leftovers(self) -> None:
        if self.repair:
            removed = self.directory.remove_leftovers()
            for path in removed:
                self.found("leftovers", f"{path.name}, left by a killed run: removed", True)
            return
        for path in self.directory.leftovers():
            self.found("leftovers", f"{path.name}, left by a killed run")


def _export_problem(
    directory: Path, sidecar: str, required: tuple[str, ...], model: ModelRecord | None
) -> str | None:
    """What is wrong with one export, or None when it is complete and the index's."""
    try:
        info = json.loads((directory / sidecar).read_text("utf-8"))
    except FileNotFoundError:
        return "has no sidecar (a half-written export)"
    except (OSError, ValueError):
        return f"has an unreadable sidecar {sidecar}"
    if model is not None and (info.get("model_id"), info.get("dim")) != (model.name, model.dim):
        return f"was made from another model ({info.get('model_id')}): stale"
    missing = [name for name in required if not (directory / name).is_file()]
    if missing:
        return f"lacks {', '.join(missing)}"
    return None
