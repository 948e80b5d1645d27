"""The ``searchclip`` command: a thin layer over :class:`searchclip.SearchEngine`.

Each command parses its arguments, opens the engine, makes one library call and formats the
result. Results go to stdout; which index was used, progress and summaries go to stderr.
Library errors become a one-line message and exit code 1 in exactly one place
(:class:`~searchclip._cli._common.ErrorHandlingGroup`). Every command is registered here.
"""

from __future__ import annotations

import logging
import os
import warnings

import typer

from searchclip._cli import (
    _check,
    _duplicates,
    _eval,
    _index,
    _info,
    _models,
    _query,
    _serve,
    _tags,
    _xmp,
)
from searchclip._cli._common import DEBUG_ENV_VAR, ErrorHandlingGroup

app = typer.Typer(
    cls=ErrorHandlingGroup,
    help="Semantic image search: index photo folders with CLIP, search them by text or image.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts say "[default: ...]"; rich would take it for markup
)


@app.callback()
def _options(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help=f"Show the traceback of a failure (also: ${DEBUG_ENV_VAR}=1)."
    ),
) -> None:
    """Semantic image search: index photo folders with CLIP, search them by text or image."""
    ctx.meta["debug"] = debug


app.command()(_index.index)
app.command()(_query.query)
app.command()(_tags.tag)
app.command()(_tags.tags)
app.command()(_xmp.xmp)
app.command()(_duplicates.duplicates)
app.command()(_info.info)
app.command()(_models.models)
app.command()(_check.check)
app.command()(_index.demo)
app.command()(_serve.serve)
app.command()(_eval.calibrate)

eval_app = typer.Typer(
    help="Measure an index's model on labelled image sets (../shared/data's formats).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
eval_app.command("tagging")(_eval.eval_tagging)
eval_app.command("retrieval")(_eval.eval_retrieval)
eval_app.command("zeroshot")(_eval.eval_zeroshot)
app.add_typer(eval_app, name="eval")


def main() -> None:
    quiet_third_party_output()
    app()


def quiet_third_party_output() -> None:
    """What the command line shows is the application's choice, made here and not in the
    library: no weight-loading bars from huggingface_hub, no warning from Pillow for images that
    searchclip's own pixel limit admits (matched by text: importing PIL costs a cold query), and
    no advice from ONNX Runtime's quantiser, which logs to the root logger."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.addFilter(lambda record: not record.getMessage().startswith(_QUANTISER_ADVICE))
    logging.getLogger().addHandler(handler)


_QUANTISER_ADVICE = "Please consider to run pre-processing"


__all__ = ["app", "main"]
