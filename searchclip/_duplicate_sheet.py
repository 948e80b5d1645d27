"""A near-duplicate report as one self-contained HTML page: each group's thumbnails side by
side, the image to keep marked, sizes and paths under each. Thumbnails are inlined as data:
URIs, so the page makes no request and can be mailed or opened anywhere."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Callable
from pathlib import Path

from searchclip._duplicates import DuplicateImage, DuplicateReport
from searchclip._errors import SearchclipError

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; background: #fafafa; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } p.summary { color: #555; margin: 0 0 1.5rem; }
section { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 1rem;
  margin: 0 0 1.2rem; }
section h2 { font-size: 1rem; margin: 0 0 .6rem; color: #444; }
.images { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; width: 200px; padding: .4rem; border: 2px solid transparent;
  border-radius: 6px; }
figure.keep { border-color: #2a8a3e; background: #f1faf3; }
figure img { width: 200px; height: 160px; object-fit: contain; background: #eee;
  border-radius: 4px; display: block; }
figure .missing { width: 200px; height: 160px; display: flex; align-items: center;
  justify-content: center; background: #eee; color: #888; border-radius: 4px; }
figcaption { font-size: 12px; color: #555; word-break: break-all; margin-top: .3rem; }
.badge { display: inline-block; font-size: 11px; padding: 0 .4rem; border-radius: 3px;
  margin-right: .3rem; color: #fff; background: #777; }
.badge.keep { background: #2a8a3e; } .badge.exact { background: #b5542b; }
"""


def write_sheet(
    report: DuplicateReport, path: str | os.PathLike, thumbnail: Callable[[int], object]
) -> str:
    """Write the page for ``report`` at ``path``; ``thumbnail(id)`` gives a Thumbnail."""
    summary = (
        f"{len(report.groups)} groups, {report.duplicates} copies among {report.images} "
        f"images; {rule_summary(report)}"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Near-duplicates</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Near-duplicates</h1>",
        f'<p class="summary">{html.escape(summary)}</p>',
    ]
    for number, group in enumerate(report.groups, start=1):
        linked = ", ".join(group.linked_by)
        parts.append(
            f"<section><h2>Group {number}: {len(group.images)} images "
            f'(linked by {html.escape(linked)})</h2><div class="images">'
        )
        parts += [_figure(image, image is group.keep, thumbnail) for image in group.images]
        parts.append("</div></section>")
    parts.append("</body></html>")
    target = Path(path)
    target.write_text("\n".join(parts), encoding="utf-8")
    return str(target)


def _figure(image: DuplicateImage, keep: bool, thumbnail) -> str:
    try:
        made = thumbnail(image.id)
        data = base64.b64encode(Path(made.path).read_bytes()).decode("ascii")
        picture = f'<img src="data:{made.media_type};base64,{data}" alt="">'
    except (SearchclipError, OSError):  # gone or unreadable: the report still shows it
        picture = '<div class="missing">no preview</div>'
    badges = ('<span class="badge keep">keep</span>' if keep else "") + (
        '<span class="badge exact">exact copy</span>' if image.exact_copy else ""
    )
    detail = f"{image.width}×{image.height}, {image.size / 1024:.0f} KiB"
    if not keep:
        detail += f", similarity {image.similarity:.3f}"
        if image.hash_distance is not None:
            detail += f", hash distance {image.hash_distance}"
    return (
        f'<figure class="{"keep" if keep else ""}">{picture}<figcaption>'
        f"{badges + '<br>' if badges else ''}{html.escape(detail)}<br>{html.escape(image.path)}"
        "</figcaption></figure>"
    )


def rule_summary(report: DuplicateReport) -> str:
    """How the report grouped, in words (the CLI's table says the same)."""
    rules = [f"same bytes, perceptual hash within {report.hash_distance_limit} bits"]
    if report.grouping == "embedding":
        rules = ["same bytes"]
    threshold = report.threshold
    if report.embedding_used:
        rules.append(f"embedding cosine >= {threshold.value:.4f} ({threshold.source})")
    elif report.grouping == "both":
        rules.append("not the embedding: this model does not tell copies from distinct photos")
    return "grouped by " + "; ".join(rules)
