"""Precision and recall of the relevance cut-off (``relevant=True``, issue 14).

Draws held-out scenes with each renderer, indexes them with the bundled model through
``SearchEngine`` and asks, with ``relevant=True`` and no k: the 40 "a photo of a <colour>
<shape>" prompts (about 1 in 14 scenes holds a given pair), the 8 colours and the 5 shapes
(about 1 in 3), and the same queries with a negative term ("<colour>" without "<shape>").
A hit is relevant when its scene holds what was asked. Prints, per group, the mean and worst
precision and recall over its queries, and how many queries found nothing standing out.
Then does the same with a random-weight CLIP (tests/tiny_clip.py) to show what the cut-off
does with a model that knows nothing.

    python benchmarks/relevance_cutoff.py [--gallery 1000] [--seed 3000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
MODEL = REPO / "searchclip" / "models" / "shapes-clip"


def groups():
    from searchclip import _scenes as scenes

    pairs = [(f"a photo of a {pair}", [pair], []) for pair in scenes.PAIRS]
    colours = [(colour, [colour], []) for colour in scenes.COLOURS]
    shapes = [(shape, [shape], []) for shape in scenes.SHAPES]
    without = [(c, [c], [s]) for c in scenes.COLOURS for s in scenes.SHAPES]
    return {"pairs": pairs, "colours": colours, "shapes": shapes, "colour without shape": without}


def measure(engine, words_of: dict[str, set[str]], name: str, label: str) -> None:
    from searchclip import Query, Term

    for group, queries in groups().items():
        precisions, recalls, silent = [], [], 0
        for text, wanted, unwanted in queries:
            terms = (Term(text=text), *(Term(text=w, weight=-1) for w in unwanted))
            hits = engine.search(Query(terms), None, relevant=True)
            silent += not hits.cutoff.stands_out
            right = sum(_holds(words_of[hit.path], wanted, unwanted) for hit in hits)
            total = sum(_holds(words, wanted, unwanted) for words in words_of.values())
            precisions.append(right / len(hits) if hits else 0.0)
            recalls.append(right / total if total else 1.0)
        print(
            f"{name} | {label} | {group} | {statistics.mean(precisions):.3f} | "
            f"{min(precisions):.2f} | {statistics.mean(recalls):.3f} | {min(recalls):.2f} | "
            f"{silent}/{len(queries)}"
        )


def _holds(words: set[str], wanted: list[str], unwanted: list[str]) -> bool:
    return all(w in words for w in wanted) and not any(w in words for w in unwanted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=3000)
    args = parser.parse_args()

    from tiny_clip import build_tiny_clip

    from searchclip import SearchEngine
    from searchclip._quality import RENDERERS, read_labels, renderer_module

    print("model | renderer | queries | precision | worst | recall | worst | nothing stood out")
    with tempfile.TemporaryDirectory(prefix="searchclip-relevance-") as scratch:
        random_model = build_tiny_clip(Path(scratch) / "random-clip")
        for renderer in RENDERERS:
            gallery = Path(scratch) / renderer
            draw = renderer_module(renderer)
            labels = read_labels(draw.write_scenes(gallery, args.gallery, args.seed))
            words_of = {
                path: {word for label in found for word in label.split()} | found
                for path, found in labels.items()
            }
            for name, model in (("shapes-clip", MODEL), ("random CLIP", random_model)):
                if name == "random CLIP" and renderer != RENDERERS[0]:
                    continue
                with SearchEngine(
                    Path(scratch) / f"index-{name}-{renderer}", model=str(model)
                ) as engine:
                    engine.index(gallery)
                    measure(engine, words_of, name, renderer)


if __name__ == "__main__":
    main()
