"""`searchclip serve` as a user runs it: a real uvicorn process over a real index (issue 15)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from pictures import photo_folder

httpx = pytest.importorskip("httpx", reason="httpx is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")


def searchclip(*args, **kwargs) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "searchclip", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture
def index_dir(tmp_path, fake_model):
    photo_folder(tmp_path / "photos", 6)
    built = searchclip(
        "index", tmp_path / "photos", "--index", tmp_path / "index", "--model", fake_model
    )
    assert built.returncode == 0, built.stderr
    return tmp_path / "index"


def test_serving_beyond_loopback_needs_a_token(index_dir):
    refused = searchclip("serve", "--index", index_dir, "--host", "0.0.0.0")
    assert refused.returncode == 1
    assert "warning: listening on 0.0.0.0" in refused.stderr
    assert "error: serving on 0.0.0.0 needs --token TOKEN" in refused.stderr
    assert "Traceback" not in refused.stderr
    bad_port = searchclip("serve", "--index", index_dir, "--port", "70000")
    assert bad_port.returncode == 1 and "--port must be between 1 and 65535" in bad_port.stderr


def test_serve_answers_over_http_until_interrupted(index_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "searchclip", "serve", "--index", str(index_dir)]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"SEARCHCLIP_TOKEN": ""},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "the server did not start within 60 s"
            time.sleep(0.2)
        assert httpx.get(f"{base}/api/info").json()["files"] == 6
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        hits = httpx.get(f"{base}/api/search", params={"q": "a photo"}).json()["hits"]
        assert len(hits) == 6
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    assert f"serving {index_dir} at http://127.0.0.1:{port}/" in stderr
    assert "Traceback" not in stderr
