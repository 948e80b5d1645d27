"""The speed columns of `searchclip models` (issue 17): every recommended model's architecture,
built with random weights (offline), timed on this machine at fp32 and int8 (16-image batches,
median of 3) and on one text query (median of 15, through the torch-free text export where the
family has one). Prints the table `searchclip models` prints and keeps the figures where it
reads them (searchclip's cache directory). Models above --max-params (millions) are skipped:
the largest take tens of minutes each on two cores.

    python benchmarks/models.py [--max-params 400] [--model ID ...]
"""

from __future__ import annotations

import argparse
import time

from searchclip._cli._models import table_lines
from searchclip._model_speeds import load_speeds, save_speed
from searchclip._model_table import RECOMMENDED
from searchclip.training.model_speed import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-params", type=float, default=400.0)
    parser.add_argument("--model", action="append", default=[])
    args = parser.parse_args()
    rows = [row for row in RECOMMENDED if not args.model or row.model_id in args.model]
    speeds = load_speeds()
    for row in rows:
        if row.params_millions > args.max_params:
            print(f"skipped {row.model_id}: {row.params_millions:.0f} M parameters", flush=True)
            continue
        started = time.perf_counter()
        speeds[row.model_id] = measure(row)
        save_speed(speeds[row.model_id])
        print(f"timed {row.model_id} in {time.perf_counter() - started:.0f} s", flush=True)
    print("\n".join(table_lines(rows, speeds)))


if __name__ == "__main__":
    main()
