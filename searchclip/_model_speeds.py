"""What ``searchclip models --measure`` measured on this machine, kept between runs.

One JSON file in searchclip's cache directory (``$SEARCHCLIP_CACHE`` or
``~/.cache/searchclip``), ``model-speeds.json``: per host (CPU model and core count), the
latest figures of each model. Torch-free; the timing itself is
:mod:`searchclip.training.model_speed`'s.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from searchclip._atomic_files import atomic_write
from searchclip._encoders.export_cache import cache_root

SPEEDS_FILE = "model-speeds.json"


@dataclass(frozen=True)
class ModelSpeed:
    """One model's figures on one host; ``error`` says why there are none."""

    model_id: str
    host: str
    measured_at: float
    fp32_images_per_s: float | None = None
    int8_images_per_s: float | None = None
    int8_min_cosine: float | None = None  # on random weights: a plumbing check, not quality
    int8_note: str = ""  # why int8 has no figure
    text_ms: float | None = None  # one query, median
    text_path: str = ""  # "onnx" (torch-free) or "torch"
    error: str = ""


def host_name() -> str:
    """This machine, as the figures are filed: CPU model and core count."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def speeds_file() -> Path | None:
    root = cache_root()
    return None if root is None else root / SPEEDS_FILE


def load_speeds(host: str | None = None) -> dict[str, ModelSpeed]:
    """The figures kept for ``host`` (default: this machine), by model id; empty when none
    (or the file cannot be read: it is only a cache)."""
    path = speeds_file()
    host = host or host_name()
    try:
        stored = json.loads(path.read_text("utf-8")) if path else {}
        names = {field.name for field in fields(ModelSpeed)}
        return {
            model: ModelSpeed(**{key: value for key, value in row.items() if key in names})
            for model, row in stored.get(host, {}).items()
        }
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def save_speed(speed: ModelSpeed) -> Path | None:
    """Keep ``speed`` (replacing that model's earlier figures on its host); the file written,
    or None when the cache is turned off or cannot be written."""
    path = speeds_file()
    if path is None:
        return None
    try:
        stored = json.loads(path.read_text("utf-8"))
        if not isinstance(stored, dict):
            stored = {}
    except (OSError, ValueError):
        stored = {}
    stored.setdefault(speed.host, {})[speed.model_id] = asdict(speed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        content = json.dumps(stored, indent=1, sort_keys=True).encode("utf-8")
        atomic_write(path, lambda file: file.write(content), sync_folder=False)
    except OSError:
        return None
    return path
