"""The ``searchclip`` command: a thin layer over :class:`searchclip.SearchEngine`.

Each command parses its arguments, opens the engine, makes one library call and formats the
result. Results go to stdout; which index was used, progress and summaries go to stderr.
Library errors become a one-line message and exit code 1 in exactly one place
(:class:`~searchclip._cli._common.ErrorHandlingGroup`). Every command is registered here.
"""

from __future__ import annotations

import warnings

import typer

from searchclip._cli import _eval, _index, _info, _query, _tags
from searchclip._cli._common import ErrorHandlingGroup

app = typer.Typer(
    cls=ErrorHandlingGroup,
    help="Semantic image search: index photo folders with CLIP, search them by text or image.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts say "[default: ...]"; rich would take it for markup
)
app.command()(_index.index)
app.command()(_query.query)
app.command()(_tags.tag)
app.command()(_tags.tags)
app.command()(_info.info)
app.command()(_index.demo)
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
    # The application, not the library, decides which warnings to show: images above Pillow's
    # warning size are checked against searchclip's own pixel limit, so Pillow's
    # DecompressionBombWarning is noise here (matched by text: importing PIL costs a cold query).
    warnings.filterwarnings("ignore", message=r"Image size \(\d+ pixels\) exceeds limit")
    app()


__all__ = ["app", "main"]
