"""`searchclip calibrate` and `searchclip eval ...`: thin layers over the evaluation module."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from searchclip._cli._common import DeviceOption, IndexOption, JsonOption, open_engine
from searchclip._engine import SearchEngine
from searchclip._evaluation_results import (
    Calibration,
    RetrievalEvaluation,
    TaggingEvaluation,
    ZeroShotEvaluation,
)

EvaluationResult = Calibration | TaggingEvaluation | RetrievalEvaluation | ZeroShotEvaluation

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Model for the temporary index (ignored with --index) [default: CLIP ViT-B/32].",
        show_default=False,
    ),
]
LabelsOption = Annotated[
    Path, typer.Option("--labels", help='JSON lines: {"file": ..., "labels": [...]}.')
]
VocabOption = Annotated[
    str, typer.Option("--vocab", help="Built-in vocabulary (coco, imagenet) or a labels file.")
]


@contextlib.contextmanager
def _evaluation_engine(
    index: Path | None, model: str | None, device: str
) -> Iterator[tuple[SearchEngine, bool]]:
    """The --index given (read, never added to), or a temporary index the images go into."""
    if index is not None:
        with open_engine(index, create=False, device=device) as engine:
            yield engine, False
        return
    with (
        tempfile.TemporaryDirectory(prefix="searchclip-eval-") as scratch,
        SearchEngine(Path(scratch), model=model, device=device) as engine,
    ):
        typer.echo(f"index: temporary, {scratch}", err=True)
        yield engine, True


def _emit(result: EvaluationResult, as_json: bool, lines: list[str]) -> None:
    """The result's JSON object with ``--json``, else the table ``lines``."""
    typer.echo(json.dumps(result.as_dict()) if as_json else "\n".join(lines))


def calibrate(
    labels: LabelsOption,
    index: IndexOption = None,
    vocab: VocabOption = "coco",
    top_k: Annotated[int, typer.Option("--top-k", help="The rule calibration replaces.")] = 3,
    as_json: JsonOption = False,
    device: DeviceOption = "auto",
) -> None:
    """Fit a threshold per label (best F1) on a labelled set and store it for the index.

    The labelled images are read, not added to the index. The next `searchclip tag` run
    re-tags every image with the calibrated thresholds.
    """
    from searchclip._evaluation import calibrate as fit

    with open_engine(index, create=False, device=device) as engine:
        result = fit(engine, labels, vocab, top_k)
    _emit(
        result,
        as_json,
        [
            f"calibrated {result.labels_calibrated} labels of {result.vocabulary}",
            f"macro-F1 before {result.macro_f1_before:.4f}, "
            f"after {result.macro_f1_after:.4f} (on the calibration set)",
        ],
    )


def eval_tagging(
    labels: LabelsOption,
    vocab: VocabOption = "coco",
    index: IndexOption = None,
    model: ModelOption = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Tags per image without thresholds.")] = 3,
    as_json: JsonOption = False,
    device: DeviceOption = "auto",
) -> None:
    """Mean average precision, and macro/micro F1 of the tags assigned, on a labelled set."""
    from searchclip._evaluation import evaluate_tagging

    with _evaluation_engine(index, model, device) as (engine, temporary):
        result = evaluate_tagging(engine, labels, vocab, top_k, add_to_index=temporary)
    _emit(
        result,
        as_json,
        [
            "mAP     macro-F1  micro-F1  images  labels",
            f"{result.mean_average_precision:.4f}  {result.macro_f1:.4f}    "
            f"{result.micro_f1:.4f}    {result.images:<6}  {result.labels_evaluated}",
        ],
    )


def eval_retrieval(
    captions: Annotated[
        Path, typer.Option("--captions", help='JSON lines: {"file": ..., "captions": [...]}.')
    ],
    index: IndexOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
    device: DeviceOption = "auto",
) -> None:
    """Text→image and image→text recall@1/5/10 on a captioned set."""
    from searchclip._evaluation import evaluate_retrieval

    with _evaluation_engine(index, model, device) as (engine, temporary):
        result = evaluate_retrieval(engine, captions, add_to_index=temporary)
    lines = ["              R@1     R@5     R@10"]
    for name, recall in (
        ("text→image", result.text_to_image),
        ("image→text", result.image_to_text),
    ):
        figures = (recall.recall_at_1, recall.recall_at_5, recall.recall_at_10)
        lines.append(f"{name:<12}  " + "  ".join(f"{figure:.4f}" for figure in figures))
    _emit(result, as_json, lines)


def eval_zeroshot(
    labels: LabelsOption,
    classes: Annotated[
        Path, typer.Option("--classes", help="Class names, one per line (a vocabulary file).")
    ],
    index: IndexOption = None,
    model: ModelOption = None,
    as_json: JsonOption = False,
    device: DeviceOption = "auto",
) -> None:
    """Top-1 and top-5 accuracy of zero-shot classification among the given classes."""
    from searchclip._evaluation import evaluate_zeroshot

    with _evaluation_engine(index, model, device) as (engine, temporary):
        result = evaluate_zeroshot(engine, labels, classes, add_to_index=temporary)
    top5 = "  -   " if result.top5_accuracy is None else f"{result.top5_accuracy:.4f}"
    _emit(
        result,
        as_json,
        [
            "top-1   top-5   images  classes",
            f"{result.top1_accuracy:.4f}  {top5}  {result.images:<6}  {result.classes}",
        ],
    )
