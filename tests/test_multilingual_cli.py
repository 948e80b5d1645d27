"""Multilingual queries from the command line (issue 17, part 4), on the tiny random AltCLIP
(XLM-R text tower): a query in German, Chinese or Arabic goes in as UTF-8 and comes back out
as UTF-8, through CliRunner and through a real process under an ASCII locale, with file names
in those scripts in every output format; right-to-left text is passed on exactly as given (no
reordering, no escaping); and the query vector is the library's ``encode_texts`` of the very
same string."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pictures import write_picture
from typer.testing import CliRunner

from searchclip import SearchEngine
from searchclip._cli import app
from searchclip._encoders import load_encoder
from searchclip._encoders.onnx_text import OnnxTextEncoder
from searchclip.training.random_models import build_random_model

QUERIES = {
    "german": "Hund am Strand",
    "chinese": "海滩上的狗",
    "arabic": "كلب على الشاطئ",
}
NAMES = [
    "Hund am Strand – Größe.png",
    "海滩上的狗.png",
    "كلب على الشاطئ.png",
    "mixed שלום abc.png",
    "plain.png",
    "sub/øre.jpg",
]


@pytest.fixture(scope="module")
def altclip(tmp_path_factory) -> Path:
    return build_random_model("altclip", tmp_path_factory.mktemp("altclip") / "model")


@pytest.fixture(scope="module")
def torch_encoder(altclip):
    return load_encoder(str(altclip), device="cpu")


@pytest.fixture(scope="module")
def index(altclip, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("multilingual")
    for seed, name in enumerate(NAMES):
        write_picture(root / "photos" / name, seed)
    args = ["index", str(root / "photos"), "--index", str(root / "index")]
    result = CliRunner().invoke(app, [*args, "--model", str(altclip), "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    assert (root / "index" / "text-encoder.onnx").is_file()  # queries run without torch
    return root / "index"


def run_cli(*args: str, locale: str = "C") -> subprocess.CompletedProcess:
    """``searchclip ARGS`` in a new process whose arguments come through the OS as bytes, under
    ``locale`` (C: ASCII, where Python still reads and writes UTF-8), failing if torch or
    transformers got imported."""
    script = textwrap.dedent(
        """
        import sys
        sys.argv[0] = "searchclip"
        from searchclip._cli import main
        try:
            main()
        except SystemExit as exit:
            code = exit.code
        else:
            code = 0
        heavy = sorted(name for name in ("torch", "transformers") if name in sys.modules)
        assert not heavy, heavy
        sys.exit(code)
        """
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LC_", "LANG"))}
    env |= {"LC_ALL": locale, "LANG": locale}
    env.pop("PYTHONIOENCODING", None)
    env.pop("PYTHONUTF8", None)
    return subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, env=env, timeout=120
    )


def expected_scores(index: Path, text: str) -> dict[str, float]:
    """Each image's score for ``text``, from the library: its stored vector against the
    ``encode_texts`` vector of the index's text export."""
    with SearchEngine(index) as engine:
        paths = [hit.path for hit in engine.search("x", k=100)]
        stored = engine.stored_vectors(paths)
        model, dim = engine.model_name, engine.info().dim
    query = OnnxTextEncoder.load(index, model, dim).encode_texts([text])[0]
    return {path: float(vector @ query) for path, vector in stored.items()}


@pytest.mark.parametrize("language", list(QUERIES))
def test_a_query_in_each_language_scores_with_the_librarys_vector_of_that_string(
    index, torch_encoder, language
):
    text = QUERIES[language]
    result = CliRunner().invoke(app, ["query", text, "--index", str(index), "--json", "-k", "6"])
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    expected = expected_scores(index, text)
    assert {hit["path"] for hit in hits} == set(expected)
    for hit in hits:
        assert hit["score"] == pytest.approx(expected[hit["path"]], abs=2e-6)
    # The export answers as torch does: the same string, the same vector.
    with SearchEngine(index) as engine:
        model, dim = engine.model_name, engine.info().dim
    torch_vector = torch_encoder.encode_texts([text])
    onnx_vector = OnnxTextEncoder.load(index, model, dim).encode_texts([text])
    assert float(np.sum(torch_vector * onnx_vector)) >= 0.999


def test_a_reordered_right_to_left_query_is_another_query(index):
    """What makes the checks above able to fail: the Arabic words in visual (reversed) order,
    as a bidi-unaware layer would pass them on, score otherwise."""
    text = QUERIES["arabic"]
    mangled = " ".join(word[::-1] for word in reversed(text.split()))
    assert expected_scores(index, mangled) != pytest.approx(expected_scores(index, text))


@pytest.mark.parametrize("language", list(QUERIES))
def test_a_real_process_reads_and_writes_utf8_under_an_ascii_locale(index, language):
    text = QUERIES[language]
    out = run_cli("query", text, "--index", str(index), "--json", "-k", "6")
    assert out.returncode == 0, out.stderr.decode("utf-8", "replace")
    hits = [json.loads(line) for line in out.stdout.decode("utf-8").splitlines()]
    expected = expected_scores(index, text)
    assert {hit["path"] for hit in hits} == set(expected)
    for hit in hits:
        assert hit["score"] == pytest.approx(expected[hit["path"]], abs=2e-6)


@pytest.mark.parametrize("output", [[], ["--paths"], ["--json"]])
def test_file_names_in_every_script_come_out_exactly(index, output):
    runner = CliRunner().invoke(app, ["query", QUERIES["chinese"], "--index", str(index), *output])
    process = run_cli("query", QUERIES["chinese"], "--index", str(index), *output)
    assert runner.exit_code == 0 and process.returncode == 0
    for stdout in (runner.stdout_bytes, process.stdout):
        text = stdout.decode("utf-8")  # UTF-8, whatever the locale
        lines = text.splitlines()
        if output == ["--json"]:
            found = [Path(json.loads(line)["path"]).name for line in lines]
        elif output == ["--paths"]:
            found = [Path(line).name for line in lines]
        else:
            found = [Path(line.split("  ", 2)[2]).name for line in lines[1:]]
        assert sorted(found) == sorted(Path(name).name for name in NAMES)
    # A name's characters are written as they are, not \\u-escaped, in the plain formats.
    if output != ["--json"]:
        assert "كلب على الشاطئ.png".encode() in process.stdout


def test_a_right_to_left_term_is_echoed_exactly_in_a_message(index):
    """The CLI's own messages quote the user's text as given: logical order, no escapes."""
    label = "الشاطئ"
    args = ["query", QUERIES["arabic"], "--index", str(index), "--tag", label]
    runner = CliRunner().invoke(app, args)
    process = run_cli(*args)
    assert runner.exit_code != 0 and process.returncode != 0
    for stderr in (runner.stderr, process.stderr.decode("utf-8")):
        assert f"'{label}'" in stderr and "\\u" not in stderr
