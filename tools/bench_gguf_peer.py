#!/usr/bin/env python3
"""The peer half of bench/gguf: times gguf-py on the plan the Rust bench writes.

    python3 tools/bench_gguf_peer.py PLAN.json   # prints JSON on stdout

PLAN.json (written by bench/gguf/src/main.rs):
    {"header_runs": 20, "runs": 7,
     "headers": ["model.gguf", ...],
     "cases": [{"label", "type", "path", "offset", "n_bytes", "row_len"}, ...]}

Headers: median seconds to construct gguf.GGUFReader(path) (it mmaps the file and parses the
whole header: metadata, tensor infos). Cases: the bytes are read into a numpy uint8 array first
(not timed), reshaped into rows as llama.cpp's tools do, and gguf.quants.dequantize(rows, type)
is timed: median of `runs` after one warm-up. Output: {"python", "numpy", "gguf", "headers":
[{"path", "median_s"}], "cases": [{"label", "median_s", "view"}]} where `view` says the
result shares memory with the input (F32: nothing decoded).
"""

import gc
import json
import platform
import statistics
import sys
import time
from importlib.metadata import version

import numpy as np

import gguf
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType


def median_time(runs, fn):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        plan = json.load(f)
    out = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gguf": version("gguf"),
        "headers": [],
        "cases": [],
    }
    for path in plan["headers"]:
        secs = median_time(plan["header_runs"], lambda: gguf.GGUFReader(path))
        gc.collect()
        out["headers"].append({"path": path, "median_s": secs})
    for case in plan["cases"]:
        qtype = GGMLQuantizationType[case["type"]]
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        raw = np.fromfile(case["path"], dtype=np.uint8, count=case["n_bytes"], offset=case["offset"])
        rows = raw.reshape((-1, case["row_len"] // block_size * type_size))
        secs = median_time(plan["runs"], lambda: gguf.quants.dequantize(rows, qtype))
        # F32 comes back as a view of the input: no work was done.
        view = bool(np.shares_memory(gguf.quants.dequantize(rows, qtype), rows))
        out["cases"].append({"label": case["label"], "median_s": secs, "view": view})
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
