"""Label vocabularies: the built-in lists, the file format, its errors, and the cache key."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from searchclip._errors import InvalidArgumentError
from searchclip._templates import DEFAULT_TEMPLATES, IMAGENET_TEMPLATES
from searchclip._vocabulary import (
    BUILTIN,
    Label,
    Vocabulary,
    load_vocabulary,
    parse_vocabulary,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO_CLASSES = SHARED_DATA / "coco128_multilabel" / "classes.txt"
IMAGENET_TSV = SHARED_DATA / "imagenet_1k_samples" / "classes.tsv"


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


# --- built-in vocabularies -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "size"), [("coco", 80), ("imagenet", 1000)])
def test_builtins_load_with_unique_labels(name, size):
    vocabulary = load_vocabulary(name)
    assert vocabulary.name == name
    assert len(vocabulary.labels) == size
    assert len({_key(n) for n in vocabulary.names}) == size
    assert all(not label.prompts for label in vocabulary.labels)


def test_builtin_names_are_the_shipped_files():
    shipped = Path(__file__).resolve().parents[1] / "searchclip" / "vocabularies"
    assert BUILTIN == ("coco", "imagenet", "shapes")
    for name in BUILTIN:
        assert (shipped / f"{name}.txt").is_file()
    assert (shipped / "README.md").is_file()


def test_coco_matches_the_evaluation_classes():
    if not COCO_CLASSES.is_file():
        pytest.skip(f"evaluation data not present: {COCO_CLASSES}")
    expected = COCO_CLASSES.read_text(encoding="utf-8").splitlines()
    assert len(expected) == 80
    assert load_vocabulary("coco").names == expected


def test_imagenet_line_i_is_class_index_i():
    if not IMAGENET_TSV.is_file():
        pytest.skip(f"evaluation data not present: {IMAGENET_TSV}")
    with IMAGENET_TSV.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    names = load_vocabulary("imagenet").names
    assert [int(row["class_index"]) for row in rows] == list(range(1000))
    assert len(names) == len(rows) == 1000
    # Spot checks across the whole list: a shifted line would break these.
    by_index = {int(row["class_index"]): row for row in rows}
    for index, wnid, curated in [
        (0, "n01440764", "tench"),
        (134, "n02012849", "crane bird"),
        (517, "n03126707", "construction crane"),
        (638, "n03710637", "tights"),
        (639, "n03710721", "one-piece bathing suit"),
        (657, "n03773504", "missile"),
        (744, "n04008634", "projectile"),
        (999, "n15075141", "toilet paper"),
    ]:
        assert by_index[index]["wnid"] == wnid
        assert names[index] == curated
    differ = [(i, names[i], row["name"]) for i, row in enumerate(rows) if names[i] != row["name"]]
    # The curated names are spelled differently from WordNet's first synonyms (expected; the
    # evaluation maps by class index). Pin the count so that an edit to the file shows up here.
    print(f"{len(differ)} of 1000 ImageNet names differ from classes.tsv, e.g. {differ[:3]}")
    assert len(differ) == 362


def test_imagenette_classes_map_by_wnid():
    labels = SHARED_DATA / "imagenette_val" / "labels.jsonl"
    if not (labels.is_file() and IMAGENET_TSV.is_file()):
        pytest.skip(f"evaluation data not present: {labels}")
    with IMAGENET_TSV.open(encoding="utf-8", newline="") as f:
        index_of = {
            row["wnid"]: int(row["class_index"]) for row in csv.DictReader(f, delimiter="\t")
        }
    records = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines()]
    classes = {record["wnid"]: record["labels"][0] for record in records}
    assert len(classes) == 10
    names = load_vocabulary("imagenet").names
    for wnid, name in classes.items():
        # "English springer spaniel" / "English Springer Spaniel", "chain saw" / "chainsaw"
        assert _squashed(names[index_of[wnid]]) == _squashed(name)


def _squashed(name: str) -> str:
    return name.casefold().replace(" ", "")


def test_templates():
    assert len(IMAGENET_TEMPLATES) == len(set(IMAGENET_TEMPLATES)) == 80
    assert len(DEFAULT_TEMPLATES) == 7
    assert set(DEFAULT_TEMPLATES) <= set(IMAGENET_TEMPLATES)
    assert all(t.count("{}") == 1 for t in IMAGENET_TEMPLATES)


# --- the file format -----------------------------------------------------------------------------


def test_prompts_comments_bom_and_crlf(tmp_path):
    text = (
        "\ufeff# my labels\r\n"
        "dog\r\n"
        "  # an indented comment\r\n"
        "crane bird\ta photo of a crane, a type of bird. ; a crane in water.  \r\n"
        "red  panda   \r\n"
    )
    path = tmp_path / "animals.txt"
    path.write_bytes(text.encode("utf-8"))
    vocabulary = load_vocabulary(path)
    assert vocabulary == Vocabulary(
        "animals",
        (
            Label("dog"),
            Label("crane bird", ("a photo of a crane, a type of bird.", "a crane in water.")),
            Label("red  panda"),
        ),
    )
    assert load_vocabulary(str(path)) == vocabulary
    assert parse_vocabulary(text.replace("\r\n", "\n"), "animals") == vocabulary


def test_label_texts():
    assert Label("cat").texts(["a photo of a {}.", "art of the {}."]) == [
        "a photo of a cat.",
        "art of the cat.",
    ]
    own = Label("cat", ("my cat Tom", "a kitten"))
    assert own.texts(DEFAULT_TEMPLATES) == ["my cat Tom", "a kitten"]
    assert len(Label("cat").texts(IMAGENET_TEMPLATES)) == 80


@pytest.mark.parametrize(
    "templates", ["a photo of a {}.", [], ["a photo"]], ids=["string", "none", "no-slot"]
)
def test_bad_templates(templates):
    with pytest.raises(InvalidArgumentError):
        Label("cat").texts(templates)
    with pytest.raises(InvalidArgumentError):
        parse_vocabulary("cat\n", "x").fingerprint(templates)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dog\ncat\n\nbird\n", "line 3 is empty"),
        ("dog\ncat\n   \n", "line 3 is empty"),
        ("dog\n\n", "line 2 is empty"),
        ("# c\ndog\ncat\nbird\nfish\nant\nbee\nowl\nDog\n", "line 9: 'Dog' duplicates line 2"),
        ("red panda\nRed   Panda\n", "line 2: 'Red   Panda' duplicates line 1"),
        ("dog\ncat\ta cat;;a kitten\n", "line 2: prompt 2 of 'cat' is empty"),
        ("dog\ncat\ta cat;\n", "line 2: prompt 2 of 'cat' is empty"),
        ("dog\ncat\t\n", "line 2: nothing after the tab"),
        ("dog\ncat\t  \r\n", "line 2: nothing after the tab"),
        ("\ta photo\n", "line 1 has prompts but no label"),
        ("# only a comment\n", "has no labels"),
        ("", "has no labels"),
        ("\ufeff", "has no labels"),
    ],
)
def test_format_errors_name_the_source_and_line(text, message):
    with pytest.raises(InvalidArgumentError) as caught:
        parse_vocabulary(text, "mine", "mine.txt")
    assert message in str(caught.value)
    assert str(caught.value).startswith("mine.txt")
    assert "\n" not in str(caught.value)


def test_file_errors(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"not found; built-in vocabularies: coco, "):
        load_vocabulary(tmp_path / "missing.txt")
    with pytest.raises(InvalidArgumentError, match="not found"):
        load_vocabulary("cocoa")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("dog\ncafé\n".encode("latin-1"))
    with pytest.raises(InvalidArgumentError, match=r"latin1.txt: line 2 is not UTF-8"):
        load_vocabulary(latin1)
    with pytest.raises(InvalidArgumentError, match="cannot read"):
        load_vocabulary(tmp_path)
    broken = tmp_path / "broken.txt"
    broken.write_text("dog\n\ncat\n", encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match=r"broken.txt: line 2 is empty"):
        load_vocabulary(broken)


# --- the cache key -------------------------------------------------------------------------------


def test_fingerprint_follows_the_embedding_inputs():
    def fingerprint(text: str, templates=DEFAULT_TEMPLATES) -> str:
        return parse_vocabulary(text, "v").fingerprint(templates)

    base = fingerprint("dog\ncat\ta cat; a kitten\n")
    assert len(base) == 64 and int(base, 16) >= 0
    # Same content, other presentation: same key.
    assert fingerprint("dog\ncat\ta cat; a kitten") == base
    assert fingerprint("# pets\r\ndog\r\n# more\ncat\ta cat;a kitten  \n") == base
    assert (
        parse_vocabulary("dog\ncat\ta cat; a kitten\n", "other").fingerprint(
            list(DEFAULT_TEMPLATES)
        )
        == base
    )
    # Anything that changes an embedding, or the order of the rows: another key.
    changed = [
        fingerprint("dog\ncats\ta cat; a kitten\n"),
        fingerprint("Dog\ncat\ta cat; a kitten\n"),
        fingerprint("dog\ncat\ta cat; a kitty\n"),
        fingerprint("dog\ncat\ta cat\n"),
        fingerprint("dog\ncat\n"),
        fingerprint("cat\ta cat; a kitten\ndog\n"),
        fingerprint("dog\ncat\ta cat; a kitten\nbird\n"),
        fingerprint("dog\ncat\ta cat; a kitten\n", IMAGENET_TEMPLATES),
        fingerprint("dog\ncat\ta cat; a kitten\n", DEFAULT_TEMPLATES[:-1]),
        fingerprint("dog\ncat\ta cat; a kitten\n", DEFAULT_TEMPLATES[::-1]),
    ]
    assert base not in changed
    assert len(set(changed)) == len(changed)


def test_builtin_fingerprints_are_stable():
    coco = load_vocabulary("coco")
    assert coco.fingerprint(DEFAULT_TEMPLATES) == load_vocabulary("coco").fingerprint(
        DEFAULT_TEMPLATES
    )
    assert coco.fingerprint(DEFAULT_TEMPLATES) != coco.fingerprint(IMAGENET_TEMPLATES)


def test_shapes_vocabulary_is_the_scene_generators_pairs():
    from searchclip import _scenes as scenes

    assert load_vocabulary("shapes").names == list(scenes.PAIRS)
