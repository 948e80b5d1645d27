"""The library and the CLI with the fake model, in a process where torch and transformers
cannot be imported at all: indexing, text and image queries, tagging, an image's tags and
``info`` need neither (what a service embedding searchclip, or these tests, rely on)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from pictures import COLOURS, colour_folder

# Run first in the child: any later `import torch` / `import transformers` raises ImportError.
_BLOCK_TORCH = """
import sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
"""


def run_without_torch(body: str, *args: str | Path) -> dict:
    """Run ``body`` (which prints one JSON object last) with torch and transformers blocked."""
    script = _BLOCK_TORCH + textwrap.dedent(body)
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_engine_needs_no_torch(tmp_path, fake_model_dir):
    photos = colour_folder(tmp_path / "photos")
    vocab = tmp_path / "colours.txt"
    vocab.write_text("\n".join(COLOURS) + "\n")
    found = run_without_torch(
        """
        import json, sys
        from searchclip import SearchEngine

        index_dir, model, photos, vocab = sys.argv[1:]
        with SearchEngine(index_dir, model=model) as engine:
            report = engine.index(photos)
            text = engine.search("red", k=4)
            image = engine.search_image(photos + "/blue.png", k=1)
            tagging = engine.tag(vocab, top_k=1)
            tags = engine.tags(photos + "/green.png")
            info = engine.info()
        with SearchEngine(index_dir) as engine:  # reopened: the recorded fake model loads
            again = engine.search("yellow", k=1)
        blocked = [sys.modules.get(name) for name in ("torch", "transformers")]
        print(json.dumps({
            "new": report.new,
            "failed": report.failed,
            "text": [hit.path for hit in text],
            "image": image[0].path,
            "image_score": image[0].score,
            "tagged": [tagging.scored, tagging.tags],
            "tags": [tag.label for tag in tags],
            "info": [info.model, info.dim, info.files, info.precision],
            "again": again[0].path,
            "blocked": blocked == [None, None],
        }))
        """,
        tmp_path / "index",
        fake_model_dir,
        tmp_path / "photos",
        vocab,
    )
    assert (found["new"], found["failed"]) == (4, 0)
    assert found["text"][0] == str(photos["red"]) and len(found["text"]) == 4
    assert found["image"] == str(photos["blue"]) and found["image_score"] > 0.999
    assert found["tagged"] == [4, 4]
    assert found["tags"] == ["green"]
    assert found["info"][:3] == [str(fake_model_dir.resolve()), 32, 4]
    assert found["info"][3].startswith("fp32")
    assert found["again"] == str(photos["yellow"])
    assert found["blocked"]


def test_the_cli_needs_no_torch(tmp_path, fake_model_dir):
    photos = colour_folder(tmp_path / "photos")
    vocab = tmp_path / "colours.txt"
    vocab.write_text("\n".join(COLOURS) + "\n")
    found = run_without_torch(
        """
        import json, sys
        from typer.testing import CliRunner
        from searchclip._cli import app

        index_dir, model, photos, vocab = sys.argv[1:]
        outputs = {}

        def run(name, *args):
            result = CliRunner().invoke(app, [*args, "--index", index_dir])
            outputs[name] = [result.exit_code, result.stdout, repr(result.exception)]

        run("index", "index", photos, "--model", model)
        run("text", "query", "blue", "--paths", "-k", "1")
        run("image", "query", "--image", photos + "/red.png", "--json", "-k", "1")
        run("tag", "tag", "--vocab", vocab, "--top-k", "1", "--json")
        run("tags", "tags", photos + "/yellow.png", "--json")
        run("by_tag", "query", "--tag", "green", "--paths")
        run("info", "info")
        outputs["blocked"] = [sys.modules.get(n) for n in ("torch", "transformers")] == [None] * 2
        print(json.dumps(outputs))
        """,
        tmp_path / "index",
        fake_model_dir,
        tmp_path / "photos",
        vocab,
    )
    assert found.pop("blocked")
    for name, (code, _, exception) in found.items():
        assert code == 0, (name, exception)
    assert "4 new" in found["index"][1]
    assert found["text"][1].splitlines() == [str(photos["blue"])]
    assert json.loads(found["image"][1])["path"] == str(photos["red"])
    assert json.loads(found["tag"][1])["tags"] == 4
    assert json.loads(found["tags"][1])["label"] == "yellow"
    assert found["by_tag"][1].splitlines() == [str(photos["green"])]
    info = found["info"][1].splitlines()
    assert info[0].startswith(f"model:    {fake_model_dir.resolve()} (32 dimensions")
    assert "images:   4" in info
