"""What negative terms, --min-score and --relevant cost at 100,000 images (issue 14).

Fills a catalog through its own API with N (default 100,000) 512-d vectors in 50 clusters
(so that a query has a group of matches to find: a cluster holds 2 % of the collection),
with one empty file per row so that every hit exists, and writes the vector file as an index
run does. A small Encoder maps the text "cluster C" to a point near cluster C's centre; every
other text to a random direction. Then times warm ``SearchEngine.search`` calls, median of R:
the plain query (k=10), with one and with two negative terms, with ``min_score`` keeping about
one cluster (k=None), and with ``relevant=True`` (k=None), and prints how many hits each gave.

    python benchmarks/query_terms_speed.py [--n 100000] [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DIM, CLUSTERS = 512, 50


def cluster_encoder(centres: np.ndarray):
    """An Encoder whose text "cluster C" lies near cluster C's centre (as a text vector lies
    off its images); any other text is a random direction."""
    from searchclip import Encoder

    class ClusterEncoder(Encoder):
        model_id, dim = "cluster-encoder", DIM

        def preprocess(self, image):
            raise NotImplementedError("texts only")

        def _embed_pixels(self, pixels):
            raise NotImplementedError("texts only")

        def _embed_texts(self, texts):
            rows = []
            for text in texts:
                noise = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(DIM)
                noise /= np.linalg.norm(noise)
                words = text.split()
                if len(words) == 2 and words[0] == "cluster":
                    rows.append(centres[int(words[1])] + 0.8 * noise)
                else:
                    rows.append(noise)
            return np.asarray(rows, np.float32)

    return ClusterEncoder()


def fill(index_dir: Path, files: Path, n: int, rng: np.random.Generator) -> np.ndarray:
    from searchclip._catalog import Catalog, CatalogChanges, FileEntry
    from searchclip._vector_store import VectorStore

    centres = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    index_dir.mkdir(parents=True)
    with Catalog.open(index_dir / "catalog.sqlite") as catalog:
        record = catalog.set_model("cluster-encoder", DIM)
        catalog.set_precision("fp32", "fp32 (requested)")
        for start in range(0, n, 10_000):
            count = min(10_000, n - start)
            members = centres[np.arange(start, start + count) % CLUSTERS]
            vectors = members + 0.9 * rng.standard_normal((count, DIM)).astype(np.float32) / 22
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            upserts = []
            for i, vector in zip(range(start, start + count), vectors, strict=True):
                path = files / f"d{i // 1000:03d}" / f"img-{i:06d}.jpg"
                path.parent.mkdir(exist_ok=True)
                path.touch()
                upserts.append((FileEntry(str(path), 0, 0, f"{i:064x}", 640, 480), vector))
            catalog.apply(CatalogChanges(upserts=upserts), record)
        VectorStore(index_dir, catalog).refresh(catalog.state())
    return centres


def timed(call, runs: int) -> tuple[float, int]:
    found = len(call())  # warm: the sample, the background, the vector file
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    from searchclip import Query, SearchEngine, Term

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="searchclip-terms-speed-") as scratch:
        centres = fill(Path(scratch) / "index", Path(scratch), args.n, rng)
        encoder = cluster_encoder(centres)
        one_negative = Query((Term(text="cluster 7"), Term(text="cluster 8", weight=-1)))
        two_negatives = Query((*one_negative.terms, Term(text="cluster 9", weight=-1)))
        with SearchEngine(Path(scratch) / "index", encoder=encoder, create=False) as engine:
            cluster = engine.search("cluster 7", args.n // CLUSTERS)
            threshold = cluster[-1].score
            cases = {
                "plain text query, k=10": lambda: engine.search("cluster 7", 10),
                "one negative term, k=10": lambda: engine.search(one_negative, 10),
                "two negative terms, k=10": lambda: engine.search(two_negatives, 10),
                "min_score (about one cluster), k=None": lambda: engine.search(
                    "cluster 7", None, min_score=threshold
                ),
                "relevant=True, k=None": lambda: engine.search("cluster 7", None, relevant=True),
                "relevant=True, one negative, k=None": lambda: engine.search(
                    one_negative, None, relevant=True
                ),
            }
            print(f"{args.n} vectors, {CLUSTERS} clusters; median of {args.runs} warm calls")
            print("query | median ms | hits")
            for name, call in cases.items():
                ms, found = timed(call, args.runs)
                print(f"{name} | {ms:.1f} | {found}")


if __name__ == "__main__":
    main()
