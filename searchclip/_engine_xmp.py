"""SearchEngine's XMP methods: stored tags out to sidecars, people's own keywords back in.

A mixin of :class:`~searchclip.SearchEngine` (see :mod:`searchclip._engine_search`). Keywords
are read at indexing (:func:`searchclip._xmp.refresh_keywords`); these methods export tags and
show what was read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from searchclip._errors import InvalidArgumentError

if TYPE_CHECKING:
    from searchclip._xmp_write import XmpReport


@dataclass(frozen=True)
class Keyword:
    """A keyword of an image, and where it was read: "sidecar" or "embedded" (XMP/IPTC)."""

    keyword: str
    source: str


class XmpMethods:
    """Tags written to XMP sidecars; keywords read from sidecars and embedded XMP/IPTC."""

    def write_xmp(
        self,
        vocabulary: str = "coco",
        *,
        sidecar: str = "darktable",
        root: str = "searchclip",
        dry_run: bool = False,
    ) -> XmpReport:
        """Write each image's stored tags of ``vocabulary`` into its XMP sidecar, as
        dc:subject keywords and lr:hierarchicalSubject ``root|label`` entries.

        ``sidecar`` names the file: ``darktable`` (``IMG_1.jpg.xmp``, also digiKam's) or
        ``lightroom`` (``IMG_1.xmp``). An existing sidecar is merged: every field and keyword
        searchclip did not write stays; its own keywords of an earlier run that are no longer
        tags are removed. Only sidecars whose keywords change are written, each atomically;
        the image file is never touched. A sidecar that is not valid XMP is left as it is and
        listed in ``report.skipped``. ``dry_run`` writes nothing and reports what would change.

        Raises:
            EmptyIndexError: the index holds no images yet.
            InvalidArgumentError: ``vocabulary`` was never tagged in this index, or a bad
                ``sidecar`` or ``root``.
            MissingExtraError: python-xmp-toolkit or the exempi library is missing (not for a
                dry run).
        """
        from searchclip._vocabulary import load_vocabulary
        from searchclip._xmp_write import check_style, export_sidecars

        check_style(sidecar, root)
        model = self._searchable_state(1).model
        name = load_vocabulary(vocabulary).name
        record = self._catalog.tags.vocabulary_named(model.id, name)
        if record is None:
            raise InvalidArgumentError(
                f"this index was never tagged with {name}: run searchclip tag --vocab "
                f"{vocabulary} first",
                value=vocabulary,
            )
        rows = self._catalog.keywords.tag_labels(record.id)
        return export_sidecars(
            ((path, labels) for _, path, offline, labels in rows if offline is None),
            vocabulary=name,
            style=sidecar,
            root=root,
            dry_run=dry_run,
        )

    def keywords(self, path: str | os.PathLike) -> list[Keyword]:
        """The keywords read from one indexed image's sidecar and embedded XMP/IPTC (not those
        searchclip wrote), by keyword.

        Raises:
            InvalidArgumentError: ``path`` is not in this index.
        """
        absolute = os.path.abspath(Path(path).expanduser())
        record = self._catalog.file_by_path(absolute)
        if record is None:
            raise InvalidArgumentError(f"{absolute} is not in this index", value=absolute)
        return [Keyword(*pair) for pair in self._catalog.keywords.of(record.id)]
