"""Training a CLIP from scratch: the loss, the tokenizer, the batch sources and a short run of
``python -m searchclip.training`` whose saved model loads through ``load_encoder``."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModel, AutoTokenizer, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

from searchclip import _scenes as scenes
from searchclip._encoders import load_encoder
from searchclip._encoders.conv_clip import ConvClipModel
from searchclip.training.__main__ import main
from searchclip.training.loss import MAX_LOGIT_SCALE, clip_loss
from searchclip.training.shapes_data import LABELS, SceneBatches, ScenePool, _swap_colours
from searchclip.training.tiny_model import caption_vocabulary, shapes_processor
from searchclip.training.tokenizer import build_tokenizer, save_tokenizer
from searchclip.training.trainer import train_clip


@pytest.fixture(scope="module")
def vocabulary() -> list[str]:
    return caption_vocabulary(samples=500)


@pytest.fixture(scope="module")
def tokenizer(vocabulary):
    return build_tokenizer(vocabulary)


# --- the loss -------------------------------------------------------------------------------


def test_loss_matches_a_hand_computed_3x3_case():
    # Unnormalised on purpose: the loss normalises. Unit directions:
    # images (1,0), (0,1), (1,1)/√2; texts (1,0), (0,1), (-1,1)/√2.
    images = torch.tensor([[2.0, 0.0], [0.0, 0.5], [3.0, 3.0]])
    texts = torch.tensor([[1.0, 0.0], [0.0, 4.0], [-2.0, 2.0]])
    r = 1 / math.sqrt(2)
    cosine = [[1, 0, -r], [0, 1, r], [r, r, 0]]
    logits = [[2.0 * c for c in row] for row in cosine]  # logit_scale = ln 2: scale 2

    def cross_entropy(rows):
        return sum(
            math.log(sum(math.exp(x) for x in row)) - row[i] for i, row in enumerate(rows)
        ) / len(rows)

    columns = [list(column) for column in zip(*logits, strict=True)]
    expected = (cross_entropy(logits) + cross_entropy(columns)) / 2
    loss = clip_loss(images, texts, torch.tensor(math.log(2.0)))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.9389, abs=1e-4)  # written out, as a sanity anchor


def test_loss_is_symmetric_in_images_and_texts():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    scale = torch.tensor(2.3)
    assert clip_loss(a, b, scale).item() == pytest.approx(clip_loss(b, a, scale).item(), abs=1e-6)


def test_perfect_alignment_at_a_large_scale_gives_almost_zero_loss():
    aligned = torch.eye(8) * torch.arange(1.0, 9.0)[:, None]  # orthogonal, any lengths
    assert clip_loss(aligned, aligned.clone(), MAX_LOGIT_SCALE).item() < 1e-6
    # The same at CLIP's initial temperature is far from zero: the scale matters.
    assert clip_loss(aligned, aligned.clone(), 0.0).item() > 0.01  # scale 1: soft


def test_logit_scale_is_capped_at_100():
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    capped = clip_loss(a, b, torch.tensor(math.log(100.0))).item()
    assert clip_loss(a, b, torch.tensor(math.log(5000.0))).item() == pytest.approx(capped)
    assert clip_loss(a, b, torch.tensor(math.log(50.0))).item() != pytest.approx(capped)


def test_duplicate_captions_are_not_negatives():
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    texts = images.clone()  # images 0 and 1 are the same picture with the same caption
    diagonal = clip_loss(images, texts, MAX_LOGIT_SCALE).item()
    # Rows and columns 0 and 1 are coin tosses between twins, row/column 2 is certain.
    assert diagonal == pytest.approx(2 * math.log(2) / 3, abs=1e-4)
    # Marking the twins as each other's positives costs nothing extra: cross-entropy is linear
    # in its targets, so for identical captions the two objectives coincide. What `positives`
    # changes is which texts count as negatives (see the next test).
    same = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    merged = clip_loss(images, texts, MAX_LOGIT_SCALE, positives=same).item()
    assert merged == pytest.approx(diagonal, abs=1e-6)


def test_extra_texts_without_an_image_are_negatives_only():
    images = torch.eye(2)
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.2]])  # the third: a hard negative
    positives = torch.tensor([[1, 0, 0], [0, 1, 0]], dtype=torch.bool)
    with_negative = clip_loss(images, texts, 1.0, positives=positives).item()
    without = clip_loss(images, texts[:2], 1.0).item()
    assert with_negative > without
    with pytest.raises(ValueError, match="at least one positive"):
        clip_loss(images, texts, 1.0, positives=torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="as many texts"):
        clip_loss(images, texts, 1.0)


# --- the tokenizer --------------------------------------------------------------------------


def test_every_caption_word_is_one_token(tokenizer, vocabulary):
    assert {"red", "circle", "photo", "orange", "triangle", "beside"} <= set(vocabulary)
    for word in vocabulary:
        assert tokenizer.tokenize(word) == [word + "</w>"], word
    ids = tokenizer("a photo of a red circle")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert len(ids) == 2 + 6


def test_unknown_words_fall_back_to_bytes(tokenizer):
    for text in ("a zebra", "café au lait", "x-ray 42!", "🙂"):
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        assert tokenizer.eos_token_id not in ids[1:-1]  # the unknown token is end-of-text
        assert len(ids) > 2
        assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == text.replace(
            " ", ""
        )


def test_tokenizer_round_trips_through_auto_tokenizer(tokenizer, tmp_path):
    save_tokenizer(tokenizer, tmp_path)
    assert {"vocab.json", "merges.txt", "tokenizer.json"} <= {p.name for p in tmp_path.iterdir()}
    texts = ["a photo of a red circle and a blue star", "purple cross, white square", "zebra"]
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert [loaded(t)["input_ids"] for t in texts] == [tokenizer(t)["input_ids"] for t in texts]
    # CLIP's own two files alone give the same tokenizer.
    (tmp_path / "tokenizer.json").unlink()
    from_files = CLIPTokenizer.from_pretrained(tmp_path)
    assert [from_files(t)["input_ids"] for t in texts] == [tokenizer(t)["input_ids"] for t in texts]
    first = (tmp_path / "merges.txt").read_text().splitlines()[0]
    assert first == "#version: 0.2"


# --- batches --------------------------------------------------------------------------------


def test_scene_batches_reproduce_the_processor_exactly(tokenizer):
    processor = shapes_processor(32)
    drawn = list(scenes.scenes(5, 3))
    images = [scene.image for scene in drawn]
    labels = tuple(tuple(o.name for o in scene.objects) for scene in drawn)
    raw = processor(images=images, return_tensors="np", do_rescale=False, do_normalize=False)
    pool = ScenePool(raw["pixel_values"], labels, tuple(scene.caption for scene in drawn))
    batches = SceneBatches(
        pool, processor=processor, tokenizer=tokenizer, batch_size=3, augment=False
    )
    batch = batches.next_batch()
    expected = processor(images=images, return_tensors="pt")["pixel_values"]
    # Rows come shuffled: find each one's scene; its pixels are the processor's, exactly.
    order = [
        next(i for i, other in enumerate(expected) if torch.allclose(row, other, atol=1e-6))
        for row in batch.pixel_values
    ]
    assert sorted(order) == [0, 1, 2]
    # Texts: 3 captions, the 40 prompts, a colour-swapped caption per multi-object scene.
    swaps = sum(_swap_colours(x, random.Random(0)) is not None for x in labels)
    assert batch.positives.shape == (3, 3 + len(scenes.PAIRS) + swaps) == (3, len(batch.input_ids))
    assert batch.positives[:, :3].diagonal().all()  # each image matches its own caption
    prompts = batch.positives[:, 3 : 3 + len(scenes.PAIRS)]
    assert prompts.sum(dim=1).tolist() == [len(labels[i]) for i in order]
    assert not batch.positives[:, 3 + len(scenes.PAIRS) :].any()  # swaps match nothing
    # Label targets: each scene's pairs, colours and shapes, in LABELS's order.
    assert batch.labels.shape == (3, len(LABELS)) == (3, 40 + 8 + 5)
    for row, scene_index in enumerate(order):
        names = {LABELS[i] for i in torch.nonzero(batch.labels[row]).flatten().tolist()}
        assert names == set(drawn[scene_index].labels)


def test_colour_swaps_bind_colours_to_the_wrong_shapes():
    swapped = _swap_colours(("red circle", "blue star"), random.Random(0))
    assert swapped == ("blue circle", "red star")
    assert _swap_colours(("red circle", "red star"), random.Random(0)) is None
    assert _swap_colours(("red circle",), random.Random(0)) is None


def test_train_clip_on_captioned_images_clamps_the_logit_scale(tiny_model_dir):
    model = CLIPModel.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    processor = CLIPImageProcessorPil.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(1000.0))
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]
    pairs = [(Image.new("RGB", (40, 30), c), f"a photo of {c}") for c in colours] * 2
    result = train_clip(
        model, pairs, tokenizer=tokenizer, processor=processor, steps=3, batch_size=4, seed=0
    )
    assert result.steps == 3 and all(math.isfinite(x) for x in result.losses)
    assert model.logit_scale.item() <= MAX_LOGIT_SCALE + 1e-6
    assert not model.training


def test_the_label_loss_trains_a_head_that_is_not_part_of_the_model(tiny_model_dir):
    model = CLIPModel.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    names = set(model.state_dict())
    processor = shapes_processor(32)
    drawn = list(scenes.scenes(8, 16))
    raw = processor(
        images=[s.image for s in drawn], return_tensors="np", do_rescale=False, do_normalize=False
    )
    labels = tuple(tuple(o.name for o in s.objects) for s in drawn)
    pool = ScenePool(raw["pixel_values"], labels, tuple(s.caption for s in drawn))

    def batches():
        return SceneBatches(pool, processor=processor, tokenizer=tokenizer, batch_size=8)

    with_labels = train_clip(model, batches(), steps=4, seed=0, label_loss_weight=5.0)
    without = train_clip(CLIPModel.from_pretrained(tiny_model_dir), batches(), steps=4, seed=0)
    assert all(math.isfinite(x) for x in with_labels.losses)
    assert with_labels.losses[0] > without.losses[0]  # the label loss is added to CLIP's
    assert set(model.state_dict()) == names  # the head stays out of the saved model


# --- the entry point ------------------------------------------------------------------------

TINY = ["vision_width=8", "vision_stages=2", "text_width=32", "text_layers=1", "heads=2"]


def test_training_entry_point_saves_a_loadable_model_whose_loss_fell(tmp_path, capsys):
    out = tmp_path / "model"
    args = ["--out", str(out), "--steps", "40", "--batch-size", "32", "--pool-size", "400"]
    args += ["--workers", "1", "--eval-scenes", "60", "--eval-single", "20", "--quiet"]
    args += ["--eval-tagging", "60"]
    for item in [*TINY, "image_size=32", "projection_dim=16"]:
        args += ["--arch", item]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["final_loss"] < report["first_loss"]
    for key in ("metrics", "metrics_other"):
        assert set(report[key]) >= {"precision@10", "zero_shot_top1", "image_to_image@5"}
    for key in ("tagging", "tagging_other"):
        assert set(report[key]) >= {"mAP", "macro_f1_uncalibrated", "macro_f1_calibrated"}
    names = {p.name for p in out.iterdir()}
    expected = {"config.json", "model.safetensors", "vocab.json", "merges.txt"}
    assert expected | {"tokenizer.json", "preprocessor_config.json", "TRAINING.md"} <= names
    notes = (out / "TRAINING.md").read_text()
    assert "python -m searchclip.training --out" in notes and "--steps 40" in notes
    encoder = load_encoder(str(out), device="cpu")
    assert encoder.model.dtype == torch.float32  # stored as float16, upcast on load
    assert (encoder.dim, encoder.image_size) == (16, 32)
    vectors = encoder.encode_texts(["a photo of a red circle", "a zebra"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert isinstance(encoder.model, ConvClipModel)
    assert AutoModel.from_pretrained(out).dtype == torch.float32


def test_retraining_is_deterministic_per_seed(tmp_path):
    from safetensors.torch import load_file

    from searchclip.training.tiny_model import train_shapes_model

    tiny = {"vision_width": 8, "vision_stages": 2, "text_width": 32, "text_layers": 1}
    tiny |= {"heads": 2, "image_size": 32, "projection_dim": 16}
    runs = [
        train_shapes_model(
            tmp_path / name,
            steps=6,
            batch_size=16,
            pool_size=64,
            workers=workers,
            progress=False,
            seed=seed,
            **tiny,
        )[0]
        for name, workers, seed in (("a", 1, 3), ("b", 2, 3), ("c", 1, 4))
    ]
    weights = [load_file(tmp_path / name / "model.safetensors") for name in "abc"]
    assert runs[0].losses == runs[1].losses  # the same seed, rendered by 1 or 2 processes
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    assert runs[2].losses != runs[0].losses  # another seed


def test_importing_searchclip_does_not_import_training():
    code = (
        "import sys, searchclip; "
        "print('searchclip.training' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_bundled_model_says_how_it_was_trained():
    """Its size is tested with its quality, in test_shapes_model.py."""
    bundled = Path(__file__).resolve().parents[1] / "searchclip" / "models" / "shapes-clip"
    assert "python -m searchclip.training" in (bundled / "TRAINING.md").read_text()
    assert json.loads((bundled / "config.json").read_text())["model_type"] == "searchclip-conv-clip"
    assert json.loads((bundled / "metrics.json").read_text())["wall_seconds"] <= 3600
