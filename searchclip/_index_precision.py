"""The image precision of one index: what was asked for, what the index records, and ``auto``'s
choice on the first batch it encodes.

An index's vectors must all come from one precision, so the precision is recorded in the
catalog's settings like the model is: a later run without ``--precision`` uses the recorded one,
and asking for another one is refused while the index holds images. ``auto`` on an index that
holds images means "whatever it was built with". Indexes from before precisions were recorded
were encoded in fp32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from searchclip._catalog import Catalog
from searchclip._encoders import Encoder
from searchclip._encoders.precision import (
    AUTO,
    ENCODING_PRECISIONS,
    FP32,
    check_precision,
    choose_precision,
)
from searchclip._errors import PrecisionMismatchError

PRECISION_KEY = "image_precision"
PRECISION_CHOICE_KEY = "image_precision_choice"


class IndexPrecision:
    """Resolves the precision of the index behind ``catalog`` when the engine opens it."""

    def __init__(self, catalog: Catalog, requested: str | None, index_dir: Path) -> None:
        if requested is not None:
            check_precision(requested)
        self._catalog = catalog
        recorded = catalog.get_setting(PRECISION_KEY)
        holds_images = catalog.has_files()
        if recorded is None and holds_images:
            recorded = FP32
        if holds_images and requested not in (None, AUTO, recorded):
            raise PrecisionMismatchError(
                f"the index at {index_dir} holds images encoded in {recorded}, not "
                f"{requested}; omit --precision to use the index's own, "
                "or choose another --index for the new precision"
            )
        if holds_images or requested is None:
            self.current = recorded or AUTO
        else:
            self.current = requested  # an empty index takes what it is asked for
        self._recorded = catalog.get_setting(PRECISION_KEY)
        self.choice = catalog.get_setting(PRECISION_CHOICE_KEY) or ""
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

    def _store(self, precision: str, choice: str) -> None:
        self._catalog.set_setting(PRECISION_KEY, precision)
        self._catalog.set_setting(PRECISION_CHOICE_KEY, choice)
        self.current, self._recorded, self.choice = precision, precision, choice
