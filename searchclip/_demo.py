"""An offline first run: generate shape scenes, index them with the bundled tiny CLIP, search.

The bundled model (``searchclip/models/shapes-clip``, trained by the project itself, see its
TRAINING.md) knows 8 colours and 5 shapes. It lets a newcomer with no network, or before a
600 MB download, see the whole pipeline work: files → index → text and image queries.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from searchclip import _scenes as scenes
from searchclip._engine import SearchEngine
from searchclip._errors import ModelLoadError
from searchclip._quality import read_labels
from searchclip._results import IndexReport, SearchHit

BUNDLED_MODEL = Path(__file__).resolve().parent / "models" / "shapes-clip"
DEMO_QUERIES = ("a photo of a red circle", "a blue star", "a white cross", "an orange triangle")


@dataclass(frozen=True)
class DemoQuery:
    query: str  # the text, or the query image's path
    wanted: str  # the colour-shape pair a correct hit holds
    hits: tuple[SearchHit, ...]
    captions: tuple[str, ...]  # the caption of each hit's scene

    def correct(self, labels: dict[str, set[str]]) -> list[bool]:
        return [self.wanted in labels[hit.path] for hit in self.hits]


@dataclass(frozen=True)
class DemoResult:
    scenes_dir: Path
    index_dir: Path
    report: IndexReport
    queries: tuple[DemoQuery, ...]
    labels: dict[str, set[str]]


def run_demo(
    directory: str | os.PathLike,
    *,
    index_dir: str | os.PathLike | None = None,
    count: int = 300,
    seed: int = 7,
    k: int = 5,
) -> DemoResult:
    """Write ``count`` scenes under ``directory``, index them, and run the demo queries.

    Running it again regenerates identical scenes, so the index has nothing to encode.
    """
    if not (BUNDLED_MODEL / "config.json").is_file():
        raise ModelLoadError(f"the bundled demo model is missing from {BUNDLED_MODEL}")
    directory = Path(directory)
    labels_file = scenes.write_scenes(directory / "scenes", count, seed)
    labels = read_labels(labels_file)
    captions = {
        os.path.abspath(labels_file.parent / record["file"]): record["captions"][0]
        for record in map(json.loads, labels_file.read_text().splitlines())
    }

    def ask(query: str, wanted: str, hits: list[SearchHit]) -> DemoQuery:
        return DemoQuery(query, wanted, tuple(hits), tuple(captions[h.path] for h in hits))

    index_dir = Path(index_dir) if index_dir is not None else directory / "index"
    with SearchEngine(index_dir, model=str(BUNDLED_MODEL)) as engine:
        report = engine.index(directory / "scenes")
        # The wanted pair is the text's last two words: "a photo of a red circle" → "red circle".
        queries = [ask(t, " ".join(t.split()[-2:]), engine.search(t, k)) for t in DEMO_QUERIES]
        probe, pair = next(
            (path, found & set(scenes.PAIRS)) for path, found in labels.items() if len(found) == 3
        )  # a single-object scene: its colour, its shape and their pair
        queries.append(ask(probe, pair.pop(), engine.search_image(probe, k)))
    return DemoResult(directory / "scenes", Path(engine.index_dir), report, tuple(queries), labels)
