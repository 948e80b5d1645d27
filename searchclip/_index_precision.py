"""The image precision of one index: what was asked for, what the index records, and ``auto``'s
choice on the first batch it encodes.

An index's vectors must all come from one precision, so the precision is recorded in the
catalog's settings like the model is: a later run without ``--precision`` uses the recorded one,
and asking for another one is refused while the index holds images. ``auto`` on an index that
holds images means "whatever it was built with". Indexes from before precisions were recorded
were encoded in fp32.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from searchclip._catalog import Catalog, IndexState
from searchclip._encoders import Encoder
from searchclip._encoders.precision import (
    AUTO,
    ENCODING_PRECISIONS,
    FP32,
    check_precision,
    choose_precision,
)
from searchclip._errors import PrecisionMismatchError


class IndexPrecision:
    """Resolves the precision of an index from its state when the engine opens it."""

    def __init__(
        self,
        catalog: Catalog,
        state: IndexState,
        requested: str | None,
        index_dir: Path,
        *,
        store: Callable[[str, str], None] | None = None,
    ) -> None:
        if requested is not None:
            check_precision(requested)
        self._set = store or catalog.set_precision  # where a decided precision is recorded
        self._recorded = state.precision
        holds_images = state.files > 0
        recorded = state.precision or (FP32 if holds_images else None)
        if holds_images and requested not in (None, AUTO, recorded):
            raise PrecisionMismatchError(
                f"the index at {index_dir} holds images encoded in {recorded}, not {requested}",
                requested=requested,
                recorded=recorded,
                index_dir=index_dir,
            )
        if holds_images or requested is None:
            self.current = recorded or AUTO
        else:
            self.current = requested  # an empty index takes what it is asked for
        self.choice = state.precision_choice
        self.chosen_now = ""  # auto's choice, when this engine made it

    def apply_to(self, encoder: Encoder) -> None:
        """Set a decided precision on a freshly loaded encoder (auto starts in fp32)."""
        encoder.set_image_precision(FP32 if self.current == AUTO else self.current)

    def record(self) -> None:
        """Write a decided precision to the catalog before the first vectors are."""
        if self.current in ENCODING_PRECISIONS and self._recorded != self.current:
            self._store(self.current, f"{self.current} (requested)")

    def encode(self, encoder: Encoder, pixels: np.ndarray) -> np.ndarray:
        """Vectors for one batch; under ``auto`` the first batch also makes the choice."""
        if self.current != AUTO:
            return encoder.encode_pixels(pixels)
        choice, vectors = choose_precision(encoder, pixels)
        self.chosen_now = choice.describe()
        self._store(choice.precision, self.chosen_now)
        return vectors

    @classmethod
    def for_migration(
        cls, catalog: Catalog, state: IndexState, requested: str | None, index_dir: Path
    ) -> IndexPrecision:
        """The precision of a pending migration's model: ``state`` holds its recorded precision
        and, as ``files``, how many vectors of it exist; decisions go to the migration's keys
        and become the index's at the switch."""
        return cls(catalog, state, requested, index_dir, store=catalog.migration.set_precision)

    def _store(self, precision: str, choice: str) -> None:
        self._set(precision, choice)
        self.current, self._recorded, self.choice = precision, precision, choice
