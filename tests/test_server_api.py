"""The HTTP API through the ASGI test client, over a real index of real photos (issue 15):
search, images by id, thumbnails, files, uploads, the token, and what never reaches the disk.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from pictures import SHARED_DATA, photo_folder, picture

from searchclip import SearchEngine

fastapi = pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from searchclip.server import create_app  # noqa: E402

COCO = SHARED_DATA / "coco128_multilabel" / "images"


@pytest.fixture(scope="module")
def served(tmp_path_factory, fake_model_dir) -> tuple[SearchEngine, Path]:
    """40 COCO photos (or generated pictures without ../shared) indexed with the fake model."""
    root = tmp_path_factory.mktemp("served")
    photos = root / "photos"
    if COCO.is_dir():
        photos.mkdir()
        for source in sorted(COCO.glob("*.jpg"))[:40]:
            shutil.copy(source, photos / source.name)
    else:
        photo_folder(photos, 40)
    engine = SearchEngine(root / "index", model=str(fake_model_dir))
    engine.index(photos)
    yield engine, photos
    engine.close()


@pytest.fixture
def client(served) -> TestClient:
    return TestClient(create_app(served[0]))


def test_search_pages_and_shapes(client):
    first = client.get("/api/search", params={"q": "a dog", "limit": 10})
    assert first.status_code == 200
    body = first.json()
    assert len(body["hits"]) == 10 and body["more"] and body["offset"] == 0
    hit = body["hits"][0]
    assert hit["thumbnail"] == f"/api/images/{hit['id']}/thumbnail"
    assert hit["rank"] == 1 and hit["metadata"]["format"] in ("JPEG", "PNG")
    second = client.get("/api/search", params={"q": "a dog", "limit": 10, "offset": 10}).json()
    assert [h["rank"] for h in second["hits"]] == list(range(11, 21))
    ids = {h["id"] for h in body["hits"]} | {h["id"] for h in second["hits"]}
    assert len(ids) == 20
    posted = client.post("/api/search", json={"q": "a dog", "limit": 10}).json()
    assert [h["id"] for h in posted["hits"]] == [h["id"] for h in body["hits"]]


def test_combined_terms_filters_cut_off_and_order(client, served):
    _, photos = served
    some = client.get("/api/search", params={"q": "x", "limit": 1}).json()["hits"][0]["id"]
    query = {"q": "2:a dog", "not": ["a cat"], "like": [some], "min_score": -1, "sort": "path"}
    hits = client.get("/api/search", params=query | {"limit": 100}).json()["hits"]
    assert len(hits) == 40 and [h["path"] for h in hits] == sorted(h["path"] for h in hits)
    by_format = client.get("/api/search", params={"q": "x", "format": "png"}).json()["hits"]
    assert all(h["metadata"]["format"] == "PNG" for h in by_format)
    inside = client.get("/api/search", params={"q": "x", "in": str(photos), "limit": 50})
    assert len(inside.json()["hits"]) == 40
    elsewhere = client.get("/api/search", params={"q": "x", "in": "/nowhere"}).json()
    assert elsewhere["hits"] == [] and not elsewhere["more"]
    relevant = client.get("/api/search", params={"q": "a dog", "relevant": "true"}).json()
    assert relevant["cutoff"] is not None and "stands_out" in relevant["cutoff"]


def test_images_by_id_similar_thumbnail_and_file(client, served):
    hit = client.get("/api/search", params={"q": "x", "limit": 1}).json()["hits"][0]
    details = client.get(f"/api/images/{hit['id']}").json()
    assert details["path"] == hit["path"] and details["tags"] == []
    similar = client.get(f"/api/images/{hit['id']}/similar", params={"limit": 5}).json()
    assert len(similar["hits"]) == 5 and hit["id"] not in [h["id"] for h in similar["hits"]]
    thumb = client.get(hit["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    from PIL import Image

    small = Image.open(io.BytesIO(thumb.content))
    assert max(small.size) <= 320
    etag = thumb.headers["etag"]
    again = client.get(hit["thumbnail"], headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    served_file = client.get(hit["file"])
    assert served_file.status_code == 200
    assert served_file.content == Path(hit["path"]).read_bytes()


def test_bad_input_is_a_4xx_with_one_line(client):
    cases = [
        ("/api/search?limit=0", 422, "limit"),
        ("/api/search?limit=5000", 422, "less than or equal to 1000"),
        ("/api/search?q=x&after=2023-13", 400, "after takes a date such as 2023"),
        ("/api/search?q=x&sort=size", 422, "sort"),
        ("/api/search?q=x&format=bogus", 400, "unknown image format 'bogus'"),
        ("/api/search?q=x&near=1,2", 400, "near needs within KM"),
        ("/api/search?not=people", 400, "at least one positive term"),
        ("/api/search?q=1.2.3:x", 400, "is not a number"),
        ("/api/search", 400, "give q, like, an image, or a tag"),
        ("/api/search?like=999999", 404, "no image with id 999999"),
        ("/api/search?q=x&bogus=1", 422, "bogus"),
        ("/api/images/999999", 404, "no image with id 999999"),
        ("/api/images/abc", 422, "image_id"),
        ("/api/images/999999/thumbnail", 404, "no image with id"),
        ("/api/nothing", 404, "Not Found"),
    ]
    for url, status, words in cases:
        response = client.get(url)
        assert response.status_code == status, (url, response.text)
        message = response.json()["error"]
        assert words in message and "\n" not in message, (url, message)
    bad_json = client.post(
        "/api/search", content=b"{", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["error"]
    text = client.post("/api/search", content=b"q=x", headers={"content-type": "text/plain"})
    assert text.status_code == 400


def test_search_by_uploaded_image_with_the_indexing_guards(client, served, tmp_path):
    _, photos = served
    before = sorted(p.name for p in photos.rglob("*"))
    source = sorted(photos.rglob("*.jpg"))[0] if any(photos.rglob("*.jpg")) else None
    data = source.read_bytes() if source else _png(picture(1))
    found = client.post(
        "/api/search",
        files={"image": ("me.jpg", data, "image/jpeg")},
        data={"query": '{"limit": 3}'},
    )
    assert found.status_code == 200, found.text
    if source:
        assert found.json()["hits"][0]["path"] == str(source)  # itself, nearest
    truncated = client.post(
        "/api/search", files={"image": ("t.jpg", data[: len(data) // 3], "image/jpeg")}
    )
    assert truncated.status_code == 400 and "uploaded image" in truncated.json()["error"]
    from hostile_files import png

    bomb = png(20000, 20000, rows=1)
    refused = client.post("/api/search", files={"image": ("b.png", bomb, "image/png")})
    assert refused.status_code == 400 and "uploaded image" in refused.json()["error"]
    small = TestClient(create_app(served[0], max_upload_bytes=1000))
    over = small.post("/api/search", files={"image": ("big.jpg", b"x" * 5000, "image/jpeg")})
    assert over.status_code == 413 and "over the limit" in over.json()["error"]
    missing = client.post("/api/search", files={"other": ("x", b"1", "text/plain")})
    assert missing.status_code == 400 and "'image' field" in missing.json()["error"]
    assert sorted(p.name for p in photos.rglob("*")) == before  # nothing written there


def test_no_request_path_reaches_the_file_system(client, tmp_path):
    for url in [
        "/api/images/..%2F..%2Fetc%2Fpasswd/file",
        "/api/images/%2Fetc%2Fpasswd/file",
        "/api/images/../../etc/passwd",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/api/images/-1/file",
    ]:
        response = client.get(url)
        assert response.status_code in (404, 422), url
        assert b"root:" not in response.content, url
    # A file swapped for a symbolic link to something else after indexing is not served, nor
    # a file changed in place: only what was indexed is.
    hit = client.get("/api/search", params={"q": "x", "limit": 2}).json()["hits"]
    linked, changed = Path(hit[0]["path"]), Path(hit[1]["path"])
    outside = tmp_path / "passwd"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    saved, saved_stat = linked.read_bytes(), linked.stat()
    linked.unlink()
    os.symlink(outside, linked)
    try:
        refused = client.get(hit[0]["file"])
        assert b"root:" not in refused.content
        assert (
            refused.status_code == 404 and "changed since it was indexed" in refused.json()["error"]
        )
        assert client.get(hit[0]["thumbnail"]).status_code == 404
    finally:
        linked.unlink()
        linked.write_bytes(saved)
        os.utime(linked, ns=(saved_stat.st_atime_ns, saved_stat.st_mtime_ns))
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        moved = client.get(hit[1]["file"])
        assert moved.status_code == 404 and "changed since it was indexed" in moved.json()["error"]
    finally:
        os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_the_token_guards_every_call_but_health(served):
    client = TestClient(create_app(served[0], token="s3cret"))
    assert client.get("/healthz").status_code == 200
    for url in ["/", "/api/info", "/api/search?q=x", "/static/index.html", "/api/images/1/file"]:
        response = client.get(url)
        assert response.status_code == 401 and "token" in response.json()["error"], url
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert "needs its token" in page.text  # a person sees a page saying what to do
    wrong = client.get("/api/info", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert client.get("/api/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    opened = client.get("/?token=s3cret")
    assert opened.status_code == 200 and "searchclip_token=s3cret" in opened.headers["set-cookie"]
    assert client.get("/api/info").status_code == 200  # the cookie now carries it


def test_the_schema_documents_every_route(client):
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) >= {
        "/api/search",
        "/api/images/{image_id}",
        "/api/images/{image_id}/similar",
        "/api/images/{image_id}/thumbnail",
        "/api/images/{image_id}/file",
        "/api/tags",
        "/api/info",
        "/healthz",
    }
    post = schema["paths"]["/api/search"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= post.keys()
    assert client.get("/docs").status_code == 404  # its scripts would come from a CDN


def test_the_library_app_mounts_under_a_prefix(served):
    from fastapi import FastAPI

    parent = FastAPI()
    parent.mount("/photos", create_app(served[0]))
    client = TestClient(parent)
    hit = client.get("/photos/api/search", params={"q": "x", "limit": 1}).json()["hits"][0]
    assert hit["thumbnail"].startswith("/photos/api/images/")
    assert client.get(hit["thumbnail"]).status_code == 200


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_the_server_answers_while_another_process_indexes(tmp_path, fake_model):
    """Live index: searches keep answering during an index run in another process, and the
    new images are served afterwards without a restart."""
    import subprocess
    import sys

    photo_folder(tmp_path / "photos", 6)
    photo_folder(tmp_path / "more", 40, start_seed=100)
    with SearchEngine(tmp_path / "index", model=fake_model) as engine:
        engine.index(tmp_path / "photos")
        client = TestClient(create_app(engine))
        assert client.get("/api/info").json()["files"] == 6
        command = [sys.executable, "-m", "searchclip", "index", str(tmp_path / "more")]
        indexer = subprocess.Popen(
            [*command, "--index", str(tmp_path / "index"), "--batch-size", "4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        answered = 0
        while indexer.poll() is None:
            response = client.get("/api/search", params={"q": "a photo", "limit": 50})
            assert response.status_code == 200, response.text
            answered += 1
        output, _ = indexer.communicate()
        assert indexer.returncode == 0, output
        assert answered >= 1
        hits = client.get("/api/search", params={"q": "a photo", "limit": 100}).json()["hits"]
        assert client.get("/api/info").json()["files"] == 46 and len(hits) == 46
        new = next(h for h in hits if "/more/" in h["path"])
        assert client.get(new["thumbnail"]).status_code == 200
        assert client.get(new["file"]).content == Path(new["path"]).read_bytes()
