"""Combined queries, negative terms, the score cut-offs and result orders (issue 14).

The rules are checked on the bundled, project-trained model over held-out scenes (a random
model knows no concept to push down), through the library and the CLI; the penalised ranking
is checked against a brute-force computation of the same rule over every stored vector.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from searchclip import ImageNotFoundError, InvalidArgumentError, Query, SearchEngine, Term
from searchclip import _scenes as scenes
from searchclip._cli import app
from searchclip._demo import BUNDLED_MODEL
from searchclip._quality import read_labels
from searchclip._query import split_weight
from searchclip._query_scoring import PENALTY_SCALE

HELD_OUT_SEED = 515151  # training uses other seeds; see searchclip/models/shapes-clip/TRAINING.md

needs_model = pytest.mark.skipif(
    not (BUNDLED_MODEL / "model.safetensors").is_file(),
    reason="the bundled shapes model is not in the repository",
)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> tuple[Path, dict[str, set[str]]]:
    """300 held-out scenes indexed with the bundled model; path -> the words of its labels."""
    root = tmp_path_factory.mktemp("terms")
    labels = read_labels(scenes.write_scenes(root / "gallery", 300, HELD_OUT_SEED))
    with SearchEngine(root / "index", model=str(BUNDLED_MODEL)) as engine:
        engine.index(root / "gallery")
    words = {path: {w for label in found for w in label.split()} for path, found in labels.items()}
    return root / "index", words


def cli(*args) -> CliRunner:
    return CliRunner().invoke(app, [str(arg) for arg in args])


# --- the query object ----------------------------------------------------------------------


def test_inline_weights_are_parsed_like_rclip():
    assert split_weight("2:sunset") == (2.0, "sunset")
    assert split_weight("-0.5: people") == (-0.5, "people")
    assert split_weight(".5:x") == (0.5, "x")
    assert split_weight("note: sunset") == (1.0, "note: sunset")  # words, not a weight
    assert split_weight("12:30 at the station")[0] == 12.0  # what rclip does too


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("1.2.3:sunset", "the weight '1.2.3' of '1.2.3:sunset' is not a number"),
        ("2e:sunset", "is not a number"),
        ("0:sunset", "must be a non-zero number"),
        ("2:", "has a weight and nothing to weigh"),
    ],
)
def test_bad_weights_are_named(spec, message):
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(")):
        Query.parse(spec)


def test_a_query_needs_a_positive_term():
    with pytest.raises(InvalidArgumentError, match="at least one positive term"):
        Query.parse(None, not_texts=["people"])
    with pytest.raises(InvalidArgumentError, match="at least one positive term"):
        Query.of([("people", -1.0)])


def test_query_forms_the_library_accepts(tmp_path):
    picture = tmp_path / "ref.jpg"
    by_pairs = Query.of([("dog", 2.0), (picture, -1.0)])
    assert by_pairs.terms == (Term(text="dog", weight=2.0), Term(image=picture, weight=-1.0))
    assert Query.of("dog") == Query((Term(text="dog"),))
    assert Query.of(Term(text="dog")) == Query.of("dog")
    parsed = Query.parse("2:dog", not_texts=["3:cat"], like=[str(picture)], not_like=["x.jpg"])
    assert [t.weight for t in parsed.terms] == [2.0, -3.0, 1.0, -1.0]
    with pytest.raises(InvalidArgumentError, match="a text, an image or an image id"):
        Term()
    with pytest.raises(InvalidArgumentError, match="path or a PIL image"):
        Term(image=42)
    with pytest.raises(InvalidArgumentError, match="unknown negative rule"):
        Query((Term(text="dog"),), negative_rule="qdrant")


# --- negative terms on the trained model ---------------------------------------------------


def _top_words(engine, query, words, k=20):
    return [words[hit.path] for hit in engine.search(query, k)]


@needs_model
@pytest.mark.parametrize("rule", ["penalty", "subtract"])
def test_a_negative_term_pushes_its_concept_out_of_the_top(gallery, rule):
    index_dir, words = gallery
    with SearchEngine(index_dir, create=False) as engine:
        alone = _top_words(engine, "red", words)
        without = _top_words(
            engine, Query((Term(text="red"), Term(text="circle", weight=-1)), rule), words
        )
    assert sum("circle" in w for w in alone) >= 4  # there is something to push out
    assert sum("circle" in w for w in without) <= 1
    assert sum("red" in w and "circle" not in w for w in without) >= 19


@needs_model
def test_the_penalised_ranking_is_exact(gallery):
    """The engine's candidate batches give the ranking a full computation of the rule gives."""
    index_dir, words = gallery
    query = Query((Term(text="a photo of a blue star"), Term(text="yellow", weight=-2)))
    with SearchEngine(index_dir, create=False) as engine:
        paths = sorted(words)
        stored = engine.stored_vectors(paths)
        vectors = np.stack([stored[p] for p in paths])
        encoder = engine._encoders.text_encoder(engine._fresh_state().model)
        positive, negative = encoder.encode_texts(["a photo of a blue star", "yellow"])
        hits = engine.search(query, 30)
        every = engine.search(query, None, min_score=0.0)
    positive_scores, negative_scores = vectors @ positive, vectors @ negative
    z = (negative_scores - negative_scores.mean()) / negative_scores.std()
    expected = positive_scores - PENALTY_SCALE * 2 * positive_scores.std() * np.maximum(z, 0)
    order = np.argsort(-expected, kind="stable")
    assert [hit.path for hit in hits] == [paths[i] for i in order[:30]]
    np.testing.assert_allclose([hit.score for hit in hits], expected[order[:30]], atol=1e-4)
    assert {hit.path for hit in every} == {paths[i] for i in np.flatnonzero(expected >= 0)}


@needs_model
def test_image_terms_positive_and_negative(gallery):
    index_dir, words = gallery
    blue_star = next(p for p, w in words.items() if {"blue", "star"} <= w and len(w) == 2)
    red = next(p for p, w in words.items() if w == {"red", "circle"})
    with SearchEngine(index_dir, create=False) as engine:
        like = engine.search([(Path(blue_star), 1.0)], 10)
        mixed = engine.search([("star", 1.0), (Path(red), -1.0)], 10)
    assert like[0].path == blue_star
    assert sum("star" in words[hit.path] for hit in like) >= 8
    assert all("red" not in words[hit.path] or "star" in words[hit.path] for hit in mixed)


# --- cut-offs and orders -------------------------------------------------------------------


@needs_model
def test_min_score_returns_every_image_above_it(gallery):
    index_dir, _ = gallery
    with SearchEngine(index_dir, create=False) as engine:
        ranked = engine.search("red", 300)
        threshold = ranked[40].score
        every = engine.search("red", None, min_score=threshold)
        capped = engine.search("red", 5, min_score=threshold)
        with pytest.raises(InvalidArgumentError, match="needs a min_score"):
            engine.search("red", None)
        with pytest.raises(InvalidArgumentError, match="between -1 and 1"):
            engine.search("red", min_score=3)
    assert [h.path for h in every] == [h.path for h in ranked if h.score >= threshold]
    assert [h.path for h in capped] == [h.path for h in every[:5]]


@needs_model
def test_relevant_finds_the_matching_images(gallery):
    index_dir, words = gallery
    with SearchEngine(index_dir, create=False) as engine:
        for colour in ("red", "blue", "green"):
            hits = engine.search(colour, None, relevant=True)
            assert hits.cutoff.stands_out
            right = sum(colour in words[hit.path] for hit in hits)
            assert right / len(hits) >= 0.95
            assert right / sum(colour in w for w in words.values()) >= 0.9
        negative = engine.search(Query.parse("red", not_texts=["circle"]), None, relevant=True)
        with pytest.raises(InvalidArgumentError, match="not both"):
            engine.search("red", min_score=0.2, relevant=True)
    assert negative and all("circle" not in words[h.path] for h in negative[:20])


def test_relevant_says_so_when_nothing_stands_out(tmp_path, model):
    """A random-weight model: no score class splits off further than the background's."""
    from pictures import photo_folder

    photo_folder(tmp_path / "photos", 24)
    with SearchEngine(tmp_path / "index", model=model) as engine:
        engine.index(tmp_path / "photos")
        hits = engine.search("a dog on the beach", None, relevant=True)
    assert len(hits) == 0 and not hits.cutoff.stands_out
    assert hits.cutoff.separation <= hits.cutoff.background_separation
    result = cli("query", "a dog on the beach", "--index", tmp_path / "index", "--relevant")
    assert result.exit_code == 0
    assert "nothing stands out for this query" in result.stderr


@needs_model
def test_the_command_line_combines_terms_cut_off_and_order(gallery):
    index_dir, words = gallery
    result = cli("query", "red", "--not", "circle", "--index", index_dir, "-k", 20, "--json")
    assert result.exit_code == 0, result.stderr
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(hits) == 20 and sum("circle" in words[h["path"]] for h in hits) <= 1
    weighted = cli("query", "2:red", "--index", index_dir, "--paths", "-k", 5)
    assert weighted.exit_code == 0 and len(weighted.stdout.splitlines()) == 5
    relevant = cli("query", "blue", "--relevant", "--sort", "path", "--index", index_dir, "--paths")
    paths = relevant.stdout.splitlines()
    assert paths == sorted(paths) and len(paths) > 20
    assert "note: --relevant kept the" in relevant.stderr
    assert sum("blue" in words[p] for p in paths) / len(paths) >= 0.95
    above = cli("query", "blue", "--min-score", 0.2, "--index", index_dir, "--json")
    scores = [json.loads(line)["score"] for line in above.stdout.splitlines()]
    assert scores and min(scores) >= 0.2 and len(scores) != 10


@needs_model
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--not", "people"], "at least one positive term"),
        (["1.2.3:red"], "the weight '1.2.3' of '1.2.3:red' is not a number"),
        (["red", "--sort", "size"], "--sort is one of score, date, -date, path; got 'size'"),
        (["red", "--min-score", "0.2", "--relevant"], "not both"),
        (["--tag", "x", "--relevant"], "--min-score and --relevant need a query"),
        (["red", "--like", "/nonexistent/ref.jpg"], "/nonexistent/ref.jpg"),
    ],
)
def test_bad_query_words_get_one_line(gallery, args, message):
    index_dir, _ = gallery
    result = cli("query", *args, "--index", index_dir)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0]


# --- indexed images by id --------------------------------------------------------------------


@needs_model
def test_indexed_images_by_id_as_terms_and_more_like_this(gallery):
    index_dir, words = gallery
    blue_star = next(p for p, w in words.items() if w == {"blue", "star"})
    with SearchEngine(index_dir, create=False) as engine:
        star_id = engine.search_image(blue_star, 1)[0].id
        image = engine.image(star_id)
        similar = engine.search_similar(star_id, 10)
        by_id = engine.search([(star_id, 1.0), ("circle", -1.0)], 10)
        with pytest.raises(ImageNotFoundError, match="no image with id 999999"):
            engine.image(999999)
        with pytest.raises(ImageNotFoundError, match="no image with id 999999"):
            engine.search_similar(999999)
    assert image.path == blue_star and image.id == star_id and image.width > 0
    assert len(similar) == 10 and star_id not in [hit.id for hit in similar]
    assert [hit.rank for hit in similar] == list(range(1, 11))
    assert sum("star" in words[hit.path] for hit in similar) >= 8
    assert by_id[0].id == star_id
    assert all("circle" not in words[hit.path] for hit in by_id)
