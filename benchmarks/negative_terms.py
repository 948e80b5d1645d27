"""How well each rule for negative query terms pushes the negative concept out (issue 14).

Draws held-out scenes (a seed the bundled model never saw) with each renderer, indexes them
with the bundled model (searchclip/models/shapes-clip) through ``SearchEngine``, and asks the
80 queries "<colour>" without "<shape>" and "<shape>" without "<colour>". For each rule
(``Query.negative_rule``, and the positive term alone for reference) it prints, over the 20
hits of each query: the share holding the negative concept (lower is better), the share of
the images wanted (the positive concept without the negative one) that the top 20 holds, of
as many as it could hold (higher is better), and the worst query of each.

    python benchmarks/negative_terms.py [--gallery 1000] [--seed 3000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MODEL = REPO / "searchclip" / "models" / "shapes-clip"
TOP = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=3000)
    args = parser.parse_args()

    from searchclip import Query, SearchEngine, Term
    from searchclip import _scenes as scenes
    from searchclip._quality import RENDERERS, read_labels, renderer_module

    words = [(c, s) for c in scenes.COLOURS for s in scenes.SHAPES]
    queries = words + [(s, c) for c, s in words]
    print(f"{len(queries)} queries, top {TOP}, gallery {args.gallery} (seed {args.seed})")
    print("renderer | rule | negatives in top 20 | wanted kept | worst negatives | worst kept")
    for renderer in RENDERERS:
        with tempfile.TemporaryDirectory(prefix="searchclip-negative-") as scratch:
            draw = renderer_module(renderer)
            gallery = Path(scratch) / "gallery"
            labels = read_labels(draw.write_scenes(gallery, args.gallery, args.seed))
            words_of = {
                path: {w for label in ls for w in label.split()} for path, ls in labels.items()
            }
            with SearchEngine(Path(scratch) / "index", model=str(MODEL)) as engine:
                engine.index(gallery)
                rules = {"positive term alone": None, "penalty": "penalty", "subtract": "subtract"}
                for name, rule in rules.items():
                    negative_shares, kept_shares = [], []
                    for positive, negative in queries:
                        terms = [Term(text=positive)]
                        if rule is not None:
                            terms.append(Term(text=negative, weight=-1))
                        query = Query(tuple(terms), negative_rule=rule or "penalty")
                        hits = engine.search(query, TOP)
                        found = [words_of[hit.path] for hit in hits]
                        wanted = sum(positive in w and negative not in w for w in words_of.values())
                        negative_shares.append(sum(negative in w for w in found) / len(found))
                        kept = sum(positive in w and negative not in w for w in found)
                        kept_shares.append(kept / min(TOP, wanted))
                    print(
                        f"{renderer} | {name} | {statistics.mean(negative_shares):.3f} | "
                        f"{statistics.mean(kept_shares):.3f} | {max(negative_shares):.2f} | "
                        f"{min(kept_shares):.2f}"
                    )


if __name__ == "__main__":
    main()
