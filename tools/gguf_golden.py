#!/usr/bin/env python3
"""Write golden f32 decodings of real GGUF tensors for tests/gguf_real.rs.

The reference decoder is gguf-py (`pip install gguf==0.19.0 numpy`), the package llama.cpp's
converters use. For every GGUF model given (default: every *.gguf in the models directory) this
writes, under `<models>/golden/<model stem>/`:

  model.tsv    facts from gguf.GGUFReader: version, alignment, data offset, kv count, ...
               (string values hex-encoded UTF-8)
  tensors.tsv  every tensor: name, type id, type name, dims (ggml order), absolute data
               offset, byte count
  <tensor>.f32 raw little-endian f32 from gguf.quants.dequantize of the first rows of a few
               tensors of each type (at most ~64 Ki elements, cut on a row boundary)
  <tensor>.json the same slice described for humans: type, dims, byte range, element count
  goldens.tsv  one line per golden: name, type name, absolute byte start, byte length,
               element count, row length

and under `<models>/golden/synthetic/` pseudo-random blocks (fixed seed) for every format the
Rust decoder supports, so formats absent from the real models are checked too (f16 and bf16 over
all 65536 bit patterns). The TSV files are what the Rust test reads (it has no JSON parser).

Usage: tools/gguf_golden.py [--models-dir DIR] [MODEL.gguf ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf.constants import GGML_QUANT_SIZES
except ImportError:
    sys.exit("gguf_golden.py needs gguf-py: pip install gguf==0.19.0 numpy")

MAX_ELEMENTS = 64 * 1024
PER_TYPE = 3

# The formats tests/gguf_real.rs expects the Rust decoder to handle.
DECODABLE = [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0,
             Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]

# Byte offsets of the f16 scale fields inside one block, kept finite in synthetic data
# (NaN payload propagation through arithmetic is not something to pin down bit-exactly).
F16_FIELDS = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}


def dequantize(raw: np.ndarray, qtype: Q, row_len: int) -> np.ndarray:
    """Decode uint8 `raw` holding whole rows of `row_len` elements, as gguf-py does."""
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    row_bytes = row_len // block_size * type_size
    rows = raw.reshape((-1, row_bytes))
    out = gguf.quants.dequantize(rows, qtype)
    return np.ascontiguousarray(out, dtype=np.float32).reshape(-1)


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def write_model(path: Path, out_dir: Path) -> None:
    reader = gguf.GGUFReader(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = reader.fields

    def field(key):
        f = fields.get(key)
        return None if f is None else f.contents()

    # GGUFReader adds three pseudo-fields for the fixed header.
    pseudo = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"}
    tokens = field("tokenizer.ggml.tokens")
    facts = {
        "file_len": path.stat().st_size,
        "version": field("GGUF.version"),
        "alignment": reader.alignment,
        "data_offset": reader.data_offset,
        "kv_count": len([k for k in fields if k not in pseudo]),
        "tensor_count": len(reader.tensors),
        "architecture": field("general.architecture"),
        "vocab_size": len(tokens) if tokens is not None else 0,
        "first_token": tokens[0] if tokens else "",
        "last_token": tokens[-1] if tokens else "",
    }
    with open(out_dir / "model.tsv", "w", encoding="utf-8") as f:
        for k, v in facts.items():
            # Strings as hex of their UTF-8 bytes: tokens may hold tabs, newlines, anything.
            f.write(f"{k}\t{v.encode().hex() if isinstance(v, str) else v}\n")

    with open(out_dir / "tensors.tsv", "w", encoding="utf-8") as f:
        for t in reader.tensors:
            dims = ",".join(str(int(d)) for d in t.shape)
            f.write(f"{t.name}\t{int(t.tensor_type)}\t{t.tensor_type.name}\t{dims}\t"
                    f"{int(t.data_offset)}\t{int(t.n_bytes)}\n")

    by_type: dict[Q, list] = {}
    for t in reader.tensors:
        by_type.setdefault(Q(int(t.tensor_type)), []).append(t)

    lines = []
    for qtype, tensors in sorted(by_type.items(), key=lambda kv: int(kv[0])):
        # First, middle and last of this type: different layers, shapes and roles.
        picks = sorted({0, len(tensors) // 2, len(tensors) - 1})[:PER_TYPE]
        for t in (tensors[i] for i in picks):
            block_size, type_size = GGML_QUANT_SIZES[qtype]
            row_len = int(t.shape[0])
            n_rows_total = int(t.n_elements) // row_len
            n_rows = max(1, min(n_rows_total, MAX_ELEMENTS // row_len))
            n_elements = n_rows * row_len
            n_bytes = n_elements // block_size * type_size
            start = int(t.data_offset)
            raw = np.asarray(reader.data[start:start + n_bytes], dtype=np.uint8)
            values = dequantize(raw, qtype, row_len)
            assert values.size == n_elements
            stem = safe_name(t.name)
            values.astype("<f4").tofile(out_dir / f"{stem}.f32")
            meta = {
                "tensor": t.name, "type": qtype.name, "type_id": int(qtype),
                "dims": [int(d) for d in t.shape], "tensor_range": [start, start + int(t.n_bytes)],
                "golden_range": [start, start + n_bytes], "golden_elements": n_elements,
                "row_len": row_len, "gguf_py": getattr(gguf, "__version__", "0.19.0"),
            }
            (out_dir / f"{stem}.json").write_text(json.dumps(meta, indent=1) + "\n")
            lines.append(f"{t.name}\t{qtype.name}\t{start}\t{n_bytes}\t{n_elements}\t{row_len}\t{stem}.f32\n")
    with open(out_dir / "goldens.tsv", "w", encoding="utf-8") as f:
        f.writelines(lines)
    types = ", ".join(f"{q.name} x{len(ts)}" for q, ts in sorted(by_type.items(), key=lambda kv: int(kv[0])))
    print(f"{path.name}: {facts['architecture']}, {len(reader.tensors)} tensors ({types}); "
          f"{len(lines)} goldens -> {out_dir}")


def write_synthetic(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240601)
    lines = []
    for qtype in DECODABLE:
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        if qtype in (Q.F16, Q.BF16):
            raw = np.arange(65536, dtype="<u2").view(np.uint8)
            row_len = 256
        elif qtype == Q.F32:
            raw = rng.standard_normal(4096).astype("<f4").view(np.uint8)
            row_len = 256
        else:
            n_blocks = 128
            blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
            for off in F16_FIELDS[qtype]:
                h = blocks[:, off:off + 2].copy().view("<u2")
                h &= np.uint16(0xFBFF)  # exponent <= 30: finite, subnormals included
                blocks[:, off:off + 2] = h.view(np.uint8)
            raw = blocks.reshape(-1)
            row_len = block_size * 4
        values = dequantize(raw, qtype, row_len)
        raw.tofile(out_dir / f"{qtype.name}.bin")
        values.astype("<f4").tofile(out_dir / f"{qtype.name}.f32")
        lines.append(f"{qtype.name}\t{values.size}\t{qtype.name}.bin\t{qtype.name}.f32\n")
    with open(out_dir / "synthetic.tsv", "w", encoding="utf-8") as f:
        f.writelines(lines)
    print(f"synthetic: {len(lines)} formats -> {out_dir}")


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", type=Path,
                    default=Path(os.environ.get("HEARTH_MODELS_DIR", repo / "models")))
    ap.add_argument("models", nargs="*", type=Path)
    args = ap.parse_args()
    models = args.models or sorted(args.models_dir.glob("*.gguf"))
    if not models:
        sys.exit(f"no .gguf files in {args.models_dir}; run tools/fetch_models.sh first")
    golden = args.models_dir / "golden"
    for path in models:
        write_model(path, golden / path.stem)
    write_synthetic(golden / "synthetic")


if __name__ == "__main__":
    main()
