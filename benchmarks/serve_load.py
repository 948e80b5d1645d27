"""Load on `searchclip serve` (issue 15): 8 concurrent clients against a 100,000-image index.

Builds an index of N (default 100,000) images through the catalog's API: 512-d vectors in 50
clusters, every row a hard link to one of the real COCO photos in ../shared/data (or to
generated pictures without it), so that files and thumbnails are real, with the fake model
(no torch: a text query's cost is the server's and the index's, not a transformer's). Runs the
app in uvicorn on 127.0.0.1, then for each scenario C client threads (httpx, keep-alive) send
requests for D seconds: text search (30 hits), image search ("more like this" by id, 30 hits),
thumbnails (of 2,000 images: each made on its first request, then served with its ETag) and
the same text search while `searchclip index` adds M new photos in another process. Prints
requests/s, p50 and p99 latency and the errors of each.

    python benchmarks/serve_load.py [--n 100000] [--clients 8] [--seconds 30] [--add 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
COCO = REPO.parent / "shared" / "data" / "coco128_multilabel" / "images"
DIM, CLUSTERS = 512, 50
WORDS = ["dog", "beach", "a red car", "people at a party", "mountains", "a cat", "food", "sky"]


def sources(scratch: Path) -> list[Path]:
    if COCO.is_dir():
        return sorted(COCO.glob("*.jpg"))
    from PIL import Image

    folder = scratch / "sources"
    folder.mkdir()
    paths = []
    for i in range(64):
        pixels = np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        path = folder / f"src{i:03d}.jpg"
        Image.fromarray(pixels).resize((640, 480)).save(path)
        paths.append(path)
    return paths


def build(index_dir: Path, files: Path, model: Path, n: int, originals: list[Path]) -> None:
    from PIL import Image

    from searchclip import _images as images
    from searchclip._catalog import Catalog, CatalogChanges, FileEntry
    from searchclip._vector_store import VectorStore

    known = []
    for source in originals:
        data = source.read_bytes()
        with Image.open(source) as img:
            known.append((source, images.content_hash(data), img.size))
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
    index_dir.mkdir(parents=True)
    with Catalog.open(index_dir / "catalog.sqlite") as catalog:
        record = catalog.set_model(str(model.resolve()), DIM)
        catalog.set_precision("fp32", "fp32 (requested)")
        for start in range(0, n, 10_000):
            count = min(10_000, n - start)
            vectors = centres[np.arange(start, start + count) % CLUSTERS]
            vectors = vectors + rng.standard_normal((count, DIM)).astype(np.float32) * 0.04
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            upserts = []
            for i, vector in zip(range(start, start + count), vectors, strict=True):
                source, content_hash, (width, height) = known[i % len(known)]
                path = files / f"d{i // 1000:03d}" / f"img-{i:06d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                os.link(source, path)
                found = path.stat()
                entry = FileEntry(
                    str(path), found.st_size, found.st_mtime_ns, content_hash, width, height
                )
                upserts.append((entry, vector))
            catalog.apply(CatalogChanges(upserts=upserts), record)
        VectorStore(index_dir, catalog).refresh(catalog.state())


def serve(index_dir: Path):
    import uvicorn

    from searchclip import SearchEngine
    from searchclip.server import create_app

    engine = SearchEngine(index_dir, create=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def load(base: str, make_url, clients: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        etags: dict[str, str] = {}
        with httpx.Client(base_url=base, timeout=60) as http:
            while time.perf_counter() < stop:
                url = make_url(rng)
                headers = {"If-None-Match": etags[url]} if url in etags else {}
                started = time.perf_counter()
                response = http.get(url, headers=headers)
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
                    if response.status_code not in (200, 304):
                        errors.append(f"{response.status_code} {url}: {response.text[:80]}")
                if "etag" in response.headers:
                    etags[url] = response.headers["etag"]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)
    return {
        "requests/s": len(ordered) / seconds,
        "p50 ms": statistics.median(ordered) * 1000,
        "p99 ms": ordered[int(0.99 * (len(ordered) - 1))] * 1000,
        "errors": len(errors),
        "first error": errors[0] if errors else "",
    }


def new_photos(folder: Path, count: int) -> None:
    from PIL import Image

    folder.mkdir()
    for i in range(count):
        pixels = np.random.default_rng(10_000 + i).integers(0, 256, (12, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).resize((320, 240)).save(folder / f"new-{i:05d}.jpg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--add", type=int, default=1000)
    args = parser.parse_args()

    from searchclip._encoders.fake import write_fake_model

    scratch = Path(tempfile.mkdtemp(prefix="searchclip-serve-load-"))
    try:
        model = write_fake_model(scratch / "model", dim=DIM, image_size=32)
        started = time.perf_counter()
        build(scratch / "index", scratch / "files", model, args.n, sources(scratch))
        print(f"built {args.n} images in {time.perf_counter() - started:.0f} s")
        server, thread, base = serve(scratch / "index")
        some = list(range(1, min(args.n, 2000) + 1))
        scenarios = {
            "text search": lambda rng: f"/api/search?q={rng.choice(WORDS)}&limit=30",
            "image search (similar)": lambda rng: (
                f"/api/images/{rng.randint(1, args.n)}/similar?limit=30"
            ),
            "thumbnails": lambda rng: f"/api/images/{rng.choice(some)}/thumbnail",
        }
        print(f"{args.clients} clients, {args.seconds:.0f} s each")
        print("scenario | requests/s | p50 ms | p99 ms | errors")
        for name, make_url in scenarios.items():
            found = load(base, make_url, args.clients, args.seconds)
            print(_row(name, found))
        new_photos(scratch / "new", args.add)
        command = [sys.executable, "-m", "searchclip", "index", str(scratch / "new")]
        indexer = subprocess.Popen(
            [*command, "--index", str(scratch / "index")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found = load(base, scenarios["text search"], args.clients, args.seconds)
        output, _ = indexer.communicate(timeout=600)
        print(_row("text search while indexing", found))
        print(f"indexer: exit {indexer.returncode}: {output.strip().splitlines()[-1]}")
        import httpx

        files = httpx.get(f"{base}/api/info").json()["files"]
        print(f"the server, never restarted, now serves {files} images ({args.n} + {args.add})")
        server.should_exit = True
        thread.join(timeout=10)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _row(name: str, found: dict) -> str:
    row = f"{name} | {found['requests/s']:.1f} | {found['p50 ms']:.1f} | {found['p99 ms']:.1f}"
    row += f" | {found['errors']}"
    return row + (f" ({found['first error']})" if found["errors"] else "")


if __name__ == "__main__":
    main()
