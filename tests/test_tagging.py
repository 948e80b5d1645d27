"""Zero-shot tagging through SearchEngine, on the tiny real CLIP and real catalog files."""

from __future__ import annotations

import numpy as np
import pytest

from searchclip import InvalidArgumentError, SearchEngine
from searchclip._tagging import choose_tags, effective_thresholds, label_embeddings
from searchclip._templates import DEFAULT_TEMPLATES
from searchclip._vocabulary import parse_vocabulary

LABELS = "cat\ndog\nbird\ncar\ntree\n"


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "animals.txt"
    path.write_text(LABELS)
    return path


@pytest.fixture
def engine(tmp_path, model, photos):
    with SearchEngine(tmp_path / "index", model=model) as opened:
        opened.index(photos)
        yield opened


def test_label_embedding_is_the_renormalised_mean_of_its_prompts(tiny_encoder):
    vocabulary = parse_vocabulary("cat\ndog\tcanine; puppy\n", "pets")
    templates = ("a photo of a {}.", "a drawing of a {}.")
    vectors = label_embeddings(tiny_encoder, vocabulary, templates)
    assert vectors.shape == (2, tiny_encoder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    cat = tiny_encoder.encode_texts(["a photo of a cat.", "a drawing of a cat."]).mean(axis=0)
    dog = tiny_encoder.encode_texts(["canine", "puppy"]).mean(axis=0)  # its own prompts
    np.testing.assert_allclose(vectors[0], cat / np.linalg.norm(cat), atol=1e-5)
    np.testing.assert_allclose(vectors[1], dog / np.linalg.norm(dog), atol=1e-5)


def _by_row(chosen) -> list[list[int]]:
    rows, labels, scores = chosen
    out: list[list[tuple[float, int]]] = [[], []]
    for row, label, score in zip(rows.tolist(), labels.tolist(), scores.tolist(), strict=True):
        out[row].append((-score, label))
    return [[label for _, label in sorted(row)] for row in out]  # best first


def test_choose_tags_top_k_threshold_and_calibrated():
    # Label vectors = the identity, so each image vector's entries are its label scores.
    scores = np.array([[0.1, 0.5, 0.3], [0.4, 0.2, 0.6]], np.float32)
    labels = np.eye(3, dtype=np.float32)
    assert _by_row(choose_tags(scores, labels, top_k=2)) == [[1, 2], [2, 0]]
    rows, chosen, values = choose_tags(scores, labels, top_k=2, threshold=0.45)
    assert (rows.tolist(), chosen.tolist()) == ([0, 1], [1, 2])
    np.testing.assert_allclose(values, [0.5, 0.6])
    per_label = np.array([0.05, 0.6, 0.25], np.float32)
    assert _by_row(choose_tags(scores, labels, top_k=1, thresholds=per_label)) == [[2, 0], [2, 0]]


def test_uncalibrated_labels_take_the_median_threshold():
    filled = effective_thresholds(np.array([0.2, np.nan, 0.4], np.float32))
    np.testing.assert_allclose(filled, [0.2, 0.3, 0.4])
    assert effective_thresholds(np.array([np.nan, np.nan], np.float32)) is None


def test_tag_stores_top_k_and_a_rerun_scores_nothing(engine, vocab_file, photos):
    first = engine.tag(str(vocab_file), top_k=2)
    assert (first.scored, first.already, first.tags, first.labels) == (6, 0, 12, 5)
    again = engine.tag(str(vocab_file), top_k=2)
    assert (again.scored, again.already, again.tags) == (0, 6, 0)

    tags = engine.tags(photos / "img000.png")
    assert len(tags) == 2 and tags[0].score >= tags[1].score
    assert {t.label for t in tags} <= set(LABELS.split())
    assert all(t.vocabulary == "animals" for t in tags)


def test_new_images_are_tagged_incrementally(engine, vocab_file, photos):
    from pictures import write_picture

    engine.tag(str(vocab_file))
    write_picture(photos / "extra.png", seed=99)
    engine.index(photos)
    report = engine.tag(str(vocab_file))
    assert (report.scored, report.already) == (1, 6)


def test_changed_content_or_rule_re_tags(engine, vocab_file, photos):
    engine.tag(str(vocab_file), top_k=1)
    vocab_file.write_text(LABELS + "boat\n")  # new content: a new fingerprint
    changed = engine.tag(str(vocab_file), top_k=1)
    assert (changed.scored, changed.labels) == (6, 6)
    rule = engine.tag(str(vocab_file), top_k=2)  # same content, another rule
    assert rule.scored == 6 and rule.tags == 12
    assert len(engine.tags(photos / "img000.png")) == 2  # old tags were replaced, not added


def test_threshold_rule_scores_are_cosine_similarities(engine, vocab_file, photos):
    report = engine.tag(str(vocab_file), threshold=-1.0)  # every label passes
    assert report.tags == 6 * 5
    encoder = engine.encoder()
    path = str(photos / "img000.png")
    image = engine.stored_vectors([path])[path]
    labels = label_embeddings(encoder, parse_vocabulary(LABELS, "animals"), DEFAULT_TEMPLATES)
    expected = dict(zip(LABELS.split(), (labels @ image).tolist(), strict=True))
    for tag in engine.tags(photos / "img000.png"):
        assert tag.score == pytest.approx(expected[tag.label], abs=1e-4)


def test_tag_filters_on_queries(engine, vocab_file, photos):
    engine.tag(str(vocab_file), top_k=1)
    everything = {hit.path for hit in engine.search("anything", k=100)}
    by_label: dict[str, set[str]] = {}
    for path in everything:
        (tag,) = engine.tags(path)
        by_label.setdefault(tag.label, set()).add(path)
    label, carriers = max(by_label.items(), key=lambda item: len(item[1]))

    with_tag = engine.search("anything", k=100, tags=[label])
    assert {hit.path for hit in with_tag} == carriers
    without = engine.search("anything", k=100, not_tags=[label])
    assert {hit.path for hit in without} == everything - carriers
    assert engine.search("anything", k=100, tags=[label], not_tags=[label]) == []

    listed = engine.images_with_tag(label, k=100)
    assert {hit.path for hit in listed} == carriers
    assert [hit.score for hit in listed] == sorted((hit.score for hit in listed), reverse=True)
    assert [hit.rank for hit in listed] == list(range(1, len(listed) + 1))


def test_unknown_tag_and_unknown_image_are_errors(engine, vocab_file, tmp_path):
    engine.tag(str(vocab_file))
    with pytest.raises(InvalidArgumentError, match="label 'unicorn'"):
        engine.search("x", tags=["unicorn"])
    with pytest.raises(InvalidArgumentError, match="not in this index"):
        engine.tags(tmp_path / "elsewhere.png")
    with pytest.raises(InvalidArgumentError, match="top_k"):
        engine.tag(str(vocab_file), top_k=0)


def test_tags_leave_with_their_image(engine, vocab_file, photos):
    engine.tag(str(vocab_file))
    (photos / "img000.png").unlink()
    engine.index(photos)
    assert str(photos / "img000.png") not in {
        hit.path for label in LABELS.split() for hit in _safe_listing(engine, label)
    }


def _safe_listing(engine, label):
    try:
        return engine.images_with_tag(label, k=100)
    except InvalidArgumentError:
        return []


def test_a_changed_image_is_tagged_again(engine, vocab_file, photos):
    from pictures import write_picture

    engine.tag(str(vocab_file), top_k=1)
    write_picture(photos / "img000.png", seed=123)  # new content under the same path
    engine.index(photos)
    report = engine.tag(str(vocab_file), top_k=1)
    assert (report.scored, report.already) == (1, 5)
    assert len(engine.tags(photos / "img000.png")) == 1


def test_info_lists_tagged_vocabularies(engine, vocab_file):
    assert engine.info().vocabularies == ()
    engine.tag(str(vocab_file))
    (summary,) = engine.info().vocabularies
    assert (summary.name, summary.labels, summary.tagged_images) == ("animals", 5, 6)
    assert summary.calibrated_labels == 0


def test_several_tag_filters_combine_as_sets(engine, vocab_file, photos):
    engine.tag(str(vocab_file), top_k=2)
    everything = {hit.path for hit in engine.search("anything", k=100)}
    carrying: dict[str, set[str]] = {}
    for path in everything:
        for tag in engine.tags(path):
            carrying.setdefault(tag.label, set()).add(path)
    first, second, *_ = sorted(carrying, key=lambda label: -len(carrying[label]))

    def found(**filters) -> set[str]:
        return {hit.path for hit in engine.search("anything", k=100, **filters)}

    assert found(tags=[first, second]) == carrying[first] & carrying[second]
    assert found(not_tags=[first, second]) == everything - carrying[first] - carrying[second]
    assert found(tags=[first], not_tags=[second]) == carrying[first] - carrying[second]
