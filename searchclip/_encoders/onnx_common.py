"""What the ONNX exports next to an index share: their JSON sidecars and how a session opens.

A sidecar says what an export was made from and is written last, so an export whose sidecar
does not name the index's model (stale, or half-written) is never used. Torch-free; onnxruntime
is imported only when a session opens.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # typing.Self is 3.11+; annotations are not evaluated at run time
    from typing import Self


@dataclass(frozen=True)
class Sidecar:
    """Base of an export's sidecar: a dataclass written as ``FILE`` in the index directory."""

    FILE: ClassVar[str]

    def write(self, directory: Path) -> None:
        (directory / self.FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", "utf-8")

    @classmethod
    def read(cls, directory: Path) -> Self | None:
        """The sidecar in ``directory``; None if it is missing or unreadable."""
        try:
            return cls(**json.loads((directory / cls.FILE).read_text("utf-8")))
        except (OSError, ValueError, TypeError):
            return None


def open_session(path: Path, *, spin: bool = True):
    """An onnxruntime CPU session for the graph at ``path``.

    ``spin=False`` stops its worker threads from busy-waiting between operators: right when
    other threads (image decoding) need the same cores, as while indexing.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings about unused initializers
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:  # e.g. a Ray actor given one CPU, as torch is
        options.intra_op_num_threads = int(threads)
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
