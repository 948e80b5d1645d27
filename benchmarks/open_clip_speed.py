"""An OpenCLIP checkpoint with random weights (issue 17): fp32 and int8 image speed and
agreement, the text export and one query through torch and ONNX (figures: docs/benchmarks.md,
"Model families").

    PYTHONPATH=tests python benchmarks/open_clip_speed.py [OPENCLIP_CONFIG_NAME [IMAGES]]
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pictures import picture

import searchclip._encoders  # noqa: F401  (torchvision import hook)
from searchclip._encoders import load_encoder
from searchclip._encoders.onnx_export import export_text_encoder
from searchclip._encoders.onnx_text import OnnxTextEncoder
from searchclip.training.random_open_clip import build_random_open_clip

name = sys.argv[1] if len(sys.argv) > 1 else None
images = int(sys.argv[2]) if len(sys.argv) > 2 else 64
work = Path(tempfile.mkdtemp(prefix="oc-bench-"))
if name:
    import open_clip

    cfg = open_clip.get_model_config(name)
else:
    cfg = None
started = time.perf_counter()
directory = build_random_open_clip(work / "model", cfg)
print(f"model {name or 'tiny (TINY_MODEL_CFG)'}: built in {time.perf_counter() - started:.1f} s")
encoder = load_encoder(str(directory), device="cpu")
encoder.artifact_dir = work
pixels = np.stack([encoder.preprocess(picture(seed, (640, 480))) for seed in range(images)])


def rate(precision):
    encoder.encode_pixels_at(pixels[:2], precision)  # warm-up (builds the int8 tower)
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        vectors = encoder.encode_pixels_at(pixels, precision)
        best = max(best, len(pixels) / (time.perf_counter() - t))
    return vectors, best


t = time.perf_counter()
encoder.int8_tower()
print(f"int8 image tower exported in {time.perf_counter() - t:.1f} s")
fp32, fp32_rate = rate("fp32")
int8, int8_rate = rate("int8")
cosines = np.sum(fp32 * int8, axis=1)
print(
    f"images: fp32 {fp32_rate:.0f} img/s, int8 {int8_rate:.0f} img/s; "
    f"int8 vs fp32 cosine min {cosines.min():.5f} mean {cosines.mean():.5f} ({images} pictures)"
)
t = time.perf_counter()
info = export_text_encoder(encoder, work, int8=True)
print(
    f"text export in {time.perf_counter() - t:.1f} s; int8 text min cosine {info.int8_min_cosine}"
)
onnx = OnnxTextEncoder.load(work, encoder.model_id, encoder.dim)
onnx8 = OnnxTextEncoder.load(work, encoder.model_id, encoder.dim, int8=True)
query = ["a photo of a dog on the beach"]


def latency(fn):
    fn(query)
    times = []
    for _ in range(20):
        t = time.perf_counter()
        fn(query)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


print(
    f"one text query: torch {latency(encoder.encode_texts):.1f} ms, ONNX fp32 "
    f"{latency(onnx.encode_texts):.1f} ms, ONNX int8 {latency(onnx8.encode_texts):.1f} ms "
    f"(int8 used: {info.int8_agrees}); median of 20"
)
