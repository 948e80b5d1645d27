"""Each transformers family's export paths on a random-weight model (issue 17): int8 image
tower vs fp32, ONNX text export (fp32 and int8) vs torch, torch-free preprocessing vs the
family's processor (figures: docs/benchmarks.md, "Model families").

    python benchmarks/family_exports.py                       # every family, tiny models
    python benchmarks/family_exports.py FAMILY ARCH_JSON      # one family, a given architecture
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from searchclip._encoders import load_encoder, onnx_export
from searchclip._encoders.onnx_image import ImagePreprocess, preprocess_settings
from searchclip._encoders.onnx_text import OnnxTextEncoder
from searchclip.training.random_models import FAMILIES, build_random_model

TEXTS = [*onnx_export.INT8_CHECK_TEXTS, "Hund am Strand", "海滩上的狗", "كلب على الشاطئ"]


def pictures(count, size):
    rng = np.random.default_rng(0)
    for _ in range(count):
        blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        yield Image.fromarray(blocks).resize(size, Image.Resampling.NEAREST)


def measure(family, architecture=None):
    root = Path(tempfile.mkdtemp())
    build_random_model(family, root / "model", architecture)
    encoder = load_encoder(str(root / "model"), device="cpu")
    encoder.artifact_dir = root
    images = list(pictures(32, (97, 61)))
    pixels = np.stack([encoder.preprocess(image) for image in images])
    fp32 = encoder.encode_pixels_at(pixels, "fp32")
    started = time.perf_counter()
    encoder.int8_tower()
    export_s = time.perf_counter() - started
    int8 = encoder.encode_pixels_at(pixels, "int8")
    preprocess = ImagePreprocess(**preprocess_settings(encoder.processor))
    diff = max(
        float(np.abs(preprocess(image) - encoder.preprocess(image)).max()) for image in images
    )
    (root / "text").mkdir()
    info = onnx_export.export_text_encoder(encoder, root / "text", int8=True)
    onnx = OnnxTextEncoder.load(root / "text", encoder.model_id, encoder.dim)
    agreement = np.sum(onnx.encode_texts(TEXTS) * encoder.encode_texts(TEXTS), axis=1)
    text_cos = float(np.min(agreement))
    return {
        "family": family,
        "dim": encoder.dim,
        "image_size": encoder.image_size,
        "int8_image_min_cosine": round(float(np.min(np.sum(fp32 * int8, axis=1))), 5),
        "int8_image_export_s": round(export_s, 1),
        "onnx_text_min_cosine": round(text_cos, 6),
        "int8_text_min_cosine": info.int8_min_cosine,
        "preprocess_max_abs_diff": diff,
    }


if __name__ == "__main__":
    if len(sys.argv) > 1:
        architecture = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
        print(json.dumps(measure(sys.argv[1], architecture)))
    else:
        for family in FAMILIES:
            print(json.dumps(measure(family)))
