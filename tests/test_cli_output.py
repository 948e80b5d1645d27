"""What the command line prints for odd file names (issue 13): a name reaches a pipe byte for
byte, whatever it holds, and a terminal sees its control characters escaped, not acted on. Each
run is a real subprocess, so the output goes through a real pipe or a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_files import HOSTILE_NAMES
from pictures import write_picture

ODD_NAMES = [*HOSTILE_NAMES, "plain.png"]


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "searchclip", *map(str, args)],
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def odd_index(tmp_path_factory, fake_model_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("odd") / "photos"
    for seed, name in enumerate(ODD_NAMES):
        write_picture(root / name, seed=seed)
    index_dir = root.parent / "index"
    result = run_cli("index", root, "--index", index_dir, "--model", fake_model_dir)
    assert result.returncode == 0, result.stderr
    return root, index_dir


def expected_names(root: Path) -> list[bytes]:
    return sorted(os.fsencode(root / name) for name in ODD_NAMES)


@pytest.mark.slow
def test_paths_to_a_pipe_are_byte_exact(odd_index):
    root, index_dir = odd_index
    out = run_cli("query", "a photo", "--index", index_dir, "--paths").stdout
    for name in expected_names(root):
        assert name + b"\n" in out  # whole, unaltered (a newline in a name needs -0)
    assert len(out) == sum(len(name) + 1 for name in expected_names(root))
    out = run_cli("query", "a photo", "--index", index_dir, "-0").stdout
    assert out.endswith(b"\0")
    assert sorted(out.split(b"\0")[:-1]) == expected_names(root)
    for name in out.split(b"\0")[:-1]:
        assert Path(os.fsdecode(name)).is_file()  # what xargs -0 would open


@pytest.mark.slow
def test_table_and_json_name_the_real_files(odd_index):
    root, index_dir = odd_index
    table = run_cli("query", "a photo", "--index", index_dir).stdout
    rows = re.findall(rb"^ *\d+  -?\d\.\d{4}  (.*?)\n(?= *\d+  -?\d\.|\Z)", table, re.M | re.S)
    assert sorted(rows) == expected_names(root)
    lines = run_cli("query", "a photo", "--index", index_dir, "--json").stdout.splitlines()
    assert sorted(os.fsencode(json.loads(line)["path"]) for line in lines) == expected_names(root)


@pytest.mark.slow
def test_a_terminal_sees_control_characters_escaped(odd_index):
    _, index_dir = odd_index
    controller, terminal = pty.openpty()
    try:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "searchclip",
                "query",
                "a photo",
                "--index",
                index_dir,
                "--paths",
            ],
            stdout=terminal,
            stderr=subprocess.PIPE,
            timeout=120,
        )
        os.close(terminal)
        terminal = -1
        assert process.returncode == 0, process.stderr
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    text = shown.decode()
    assert "\x1b" not in text and "\x07" not in text
    assert "red\\x1b[31mtext.png" in text
    assert "bell\\x07.png" in text and "tab\\x09here.png" in text and "cr\\x0dback.png" in text
