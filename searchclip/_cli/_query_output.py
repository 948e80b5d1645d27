"""How `searchclip query` prints its hits: a table, JSON lines, or paths."""

from __future__ import annotations

import dataclasses
import json

from searchclip._relevance import RelevanceCutoff
from searchclip._results import SearchHit


def missing_note(missing: tuple[str, ...]) -> str:
    count = (
        f"{len(missing)} indexed files that no longer exist were"
        if len(missing) > 1
        else ("1 indexed file that no longer exists was")
    )
    return (
        f"note: {count} left out of the results ({missing[0]}"
        + (", ..." if len(missing) > 1 else "")
        + "); `searchclip index` on their folder, or `searchclip check --repair`, removes them"
    )


def hit_json(hit: SearchHit) -> dict:
    """One hit as JSON: the time taken in ISO 8601, with its UTC offset when the EXIF gave one
    (else the wall-clock time, as the camera showed it), and where it came from."""
    body = {"rank": hit.rank, "score": round(hit.score, 6), "path": hit.path, "id": hit.id}
    body |= {"width": hit.width, "height": hit.height, "size": hit.size}
    if hit.offline:
        body["offline"] = True
    meta = hit.metadata
    if meta is not None:
        body |= dataclasses.asdict(meta) | {"taken_at": meta.taken_at_iso}
    return body


def format_hits(hits: list[SearchHit], *, as_json: bool, paths_only: bool) -> list[str]:
    if paths_only:
        return [hit.path for hit in hits]
    if as_json:
        return [json.dumps(hit_json(hit)) for hit in hits]
    return ["rank  score   path"] + [
        f"{hit.rank:>4}  {hit.score:.4f}  {hit.path}" + ("  (offline)" if hit.offline else "")
        for hit in hits
    ]


def cutoff_note(cutoff: RelevanceCutoff, kept: int) -> str:
    """What --relevant did, for stderr."""
    if cutoff.probability is not None:  # a sigmoid model's own cut-off
        return (
            f"note: --relevant kept the {kept} images the model gives a match probability of at "
            f"least {cutoff.probability:g} (score >= {cutoff.min_score:.4f})"
        )
    if cutoff.stands_out:
        return f"note: --relevant kept the {kept} images scoring at least {cutoff.min_score:.4f}"
    return (
        "note: nothing stands out for this query: no group of images scores apart from the rest "
        f"more than for captions of nothing ({cutoff.separation:.1f} vs "
        f"{cutoff.background_separation:.1f} standard deviations), so --relevant returns no "
        "image; -k N or --min-score S return the closest ones anyway"
    )
