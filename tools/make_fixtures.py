#!/usr/bin/env python3
"""Write tiny random-weight GGUF models with real tokenizers, for tests that need a whole model.

For each architecture Hearth runs (llama, qwen2, gemma3) and each weight format (F32, Q8_0, Q4_0,
Q4_1) this writes `<out>/<arch>-<format>.gguf`: a model small enough to run anywhere (hidden size
64) whose tokenizer is the complete, real one of a matching released model. Every `tokenizer.*`
key is copied byte for byte from that model's GGUF:

  llama  <- models/smollm2-135m-instruct-q4_1.gguf   (gpt2 BPE, 49,152 tokens)
  qwen2  <- models/qwen2.5-coder-0.5b-instruct.gguf  (gpt2 BPE, 151,936 tokens)
  gemma3 <- models/gemma-3-270m-q4_k_m.gguf          (SentencePiece, 262,144 tokens)

The vocabulary is kept whole, so the token embedding (vocab x 64) is most of each file.

What each fixture exercises, beyond the shared llama-style block:
  llama   separate `output.weight` (not tied), NORM RoPE, GQA 4 query heads over 2 KV heads
  qwen2   `attn_{q,k,v}.bias`, NEOX RoPE, output tied to `token_embd` (no `output.weight`)
  llama3  the llama architecture with `rope_freqs.weight` (Llama 3.1+ RoPE frequency factors,
          computed as convert_hf_to_gguf.py does), Q8_0 only
  gemma3  6 layers so layer 5 is global and 0-4 use a sliding window of 4 tokens (local RoPE base
          10,000, global 1e6); head_dim 32 != n_embd / n_head; one KV head; QK-norm;
          post-attention and post-FFN norms; embeddings scaled by sqrt(n_embd); tied output.

Norm weights and biases stay F32 in every format, as llama.cpp's quantizer leaves them; every
matrix, the token embedding and `output.weight` included, takes the file's format. Gemma norm
weights are stored as llama.cpp's converter stores them, already shifted by +1
(convert_hf_to_gguf.py, Gemma3Model.norm_shift), so the graph multiplies by them directly.

Weights are drawn from a fixed seed (numpy PCG64), so the same command writes the same bytes.
Scales are chosen so activations stay near unit size and logits spread over a few units, which
keeps a comparison against a reference meaningful (neither all-zero nor saturated).

Needs gguf-py and numpy (`pip install gguf==0.19.0 numpy`).

Usage: tools/make_fixtures.py [--out DIR] [--models-dir DIR] [--arch A ...] [--format F ...]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf import GGUFValueType as V
    from gguf.constants import LlamaFileType
except ImportError:
    sys.exit("make_fixtures.py needs gguf-py: pip install gguf==0.19.0 numpy")

ROOT = Path(__file__).resolve().parent.parent
SEED = 20250101

FORMATS = {
    "f32": (Q.F32, LlamaFileType.ALL_F32),
    "q8_0": (Q.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "q4_0": (Q.Q4_0, LlamaFileType.MOSTLY_Q4_0),
    "q4_1": (Q.Q4_1, LlamaFileType.MOSTLY_Q4_1),
}


@dataclass(frozen=True)
class Arch:
    name: str
    source: str  # real model whose tokenizer is copied
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    rms_eps: float
    rope_base: float
    tied: bool
    qkv_bias: bool = False
    gemma: bool = False
    sliding_window: int = 0
    # Llama 3.1+ RoPE frequency factors (`rope_freqs.weight`); `gguf_arch` names the GGUF
    # architecture when the fixture's name differs from it.
    rope_freqs: bool = False
    gguf_arch: str = ""
    formats: tuple = ()


ARCHS = {
    "llama": Arch("llama", "smollm2-135m-instruct-q4_1.gguf", n_layer=2, n_embd=64, n_ff=128,
                  n_head=4, n_head_kv=2, head_dim=16, rms_eps=1e-5, rope_base=10000.0,
                  tied=False),
    "qwen2": Arch("qwen2", "qwen2.5-coder-0.5b-instruct.gguf", n_layer=2, n_embd=64, n_ff=128,
                  n_head=4, n_head_kv=2, head_dim=16, rms_eps=1e-6, rope_base=1000000.0,
                  tied=True, qkv_bias=True),
    "gemma3": Arch("gemma3", "gemma-3-270m-q4_k_m.gguf", n_layer=6, n_embd=64, n_ff=128,
                   n_head=4, n_head_kv=1, head_dim=32, rms_eps=1e-6, rope_base=1000000.0,
                   tied=True, gemma=True, sliding_window=4),
    # Llama 3.x: the llama architecture with rope_freqs.weight, in one format.
    "llama3": Arch("llama3", "smollm2-135m-instruct-q4_1.gguf", n_layer=2, n_embd=64, n_ff=128,
                   n_head=4, n_head_kv=2, head_dim=16, rms_eps=1e-5, rope_base=500000.0,
                   tied=False, rope_freqs=True, gguf_arch="llama", formats=("q8_0",)),
}
CONTEXT_LENGTH = 128


def copy_tokenizer(writer: gguf.GGUFWriter, source: Path) -> int:
    """Copy every `tokenizer.*` key of `source` into `writer` with its exact type and bytes."""
    reader = gguf.GGUFReader(source)
    copied = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        if vtype == V.ARRAY:
            sub = field.types[-1]
            if sub == V.STRING:
                val = [bytes(field.parts[i]) for i in field.data]
            else:
                val = [field.parts[i].tolist()[0] for i in field.data]
            writer.add_key_value(key, val, V.ARRAY, sub_type=sub)
        elif vtype == V.STRING:
            writer.add_key_value(key, bytes(field.parts[field.data[0]]), V.STRING)
        else:
            writer.add_key_value(key, field.parts[field.data[0]].tolist()[0], vtype)
        copied += 1
    if copied == 0:
        sys.exit(f"{source}: no tokenizer.* keys")
    return copied


def vocab_size(source: Path) -> int:
    reader = gguf.GGUFReader(source)
    field = reader.fields.get("tokenizer.ggml.tokens")
    if field is None:
        sys.exit(f"{source}: no tokenizer.ggml.tokens")
    return len(field.data)


def make_weights(a: Arch, n_vocab: int) -> dict[str, np.ndarray]:
    """Float32 weights in numpy (row-major) shape: a matrix is (out_features, in_features)."""
    rng = np.random.default_rng([SEED, sum(map(ord, a.name))])

    def normal(shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def linear(n_out, n_in):
        return normal((n_out, n_in), 1.0 / np.sqrt(n_in))

    def norm(n):
        # Gemma stores 1 + w (converter's norm_shift); either way the stored value is ~1.
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    q_dim, kv_dim = a.n_head * a.head_dim, a.n_head_kv * a.head_dim
    w: dict[str, np.ndarray] = {}
    # Gemma scales embeddings by sqrt(n_embd) on input; keep the scaled input near 2.
    embd_std = 2.0 / np.sqrt(a.n_embd) if a.gemma else 1.0
    w["token_embd.weight"] = normal((n_vocab, a.n_embd), embd_std)
    for i in range(a.n_layer):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = norm(a.n_embd)
        w[p + "attn_q.weight"] = linear(q_dim, a.n_embd)
        w[p + "attn_k.weight"] = linear(kv_dim, a.n_embd)
        w[p + "attn_v.weight"] = linear(kv_dim, a.n_embd)
        if a.qkv_bias:
            w[p + "attn_q.bias"] = normal(q_dim, 0.5)
            w[p + "attn_k.bias"] = normal(kv_dim, 0.5)
            w[p + "attn_v.bias"] = normal(kv_dim, 0.5)
        if a.gemma:
            w[p + "attn_q_norm.weight"] = norm(a.head_dim)
            w[p + "attn_k_norm.weight"] = norm(a.head_dim)
        w[p + "attn_output.weight"] = linear(a.n_embd, q_dim)
        if a.gemma:
            w[p + "post_attention_norm.weight"] = norm(a.n_embd)
        w[p + "ffn_norm.weight"] = norm(a.n_embd)
        w[p + "ffn_gate.weight"] = linear(a.n_ff, a.n_embd)
        w[p + "ffn_up.weight"] = linear(a.n_ff, a.n_embd)
        w[p + "ffn_down.weight"] = linear(a.n_embd, a.n_ff)
        if a.gemma:
            w[p + "post_ffw_norm.weight"] = norm(a.n_embd)
    if a.rope_freqs:
        w["rope_freqs.weight"] = llama3_rope_factors(a.head_dim, a.rope_base)
    w["output_norm.weight"] = norm(a.n_embd)
    if not a.tied:
        w["output.weight"] = normal((n_vocab, a.n_embd), 2.0 / np.sqrt(a.n_embd))
    return w


def llama3_rope_factors(head_dim: int, base: float, factor: float = 32.0, low: float = 1.0,
                        high: float = 4.0, original_context: int = 8192) -> np.ndarray:
    """`rope_freqs.weight` as convert_hf_to_gguf.py writes it for Llama 3.1+ (rope_type "llama3"):
    one divisor per rotated pair; long wavelengths are slowed by `factor`, short ones kept, and
    those between blended. With head_dim 16 and base 5e5 every kind occurs."""
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    low_wavelen, high_wavelen = original_context / low, original_context / high
    out = []
    for f in freqs:
        wavelen = 2 * np.pi / f
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (original_context / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_fixture(a: Arch, fmt: str, weights: dict[str, np.ndarray], source: Path,
                  out: Path) -> Path:
    qtype, ftype = FORMATS[fmt]
    path = out / f"{a.name}-{fmt}.gguf"
    tmp = path.with_suffix(".gguf.tmp")
    writer = gguf.GGUFWriter(tmp, a.gguf_arch or a.name)
    writer.add_name(f"hearth-fixture-{a.name}-{fmt}")
    writer.add_description(f"Random weights (seed {SEED}) for tests; tokenizer copied from "
                           f"{source.name}. Written by tools/make_fixtures.py.")
    writer.add_file_type(int(ftype))
    if qtype != Q.F32:
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(a.n_embd)
    writer.add_feed_forward_length(a.n_ff)
    writer.add_block_count(a.n_layer)
    writer.add_head_count(a.n_head)
    writer.add_head_count_kv(a.n_head_kv)
    writer.add_layer_norm_rms_eps(a.rms_eps)
    writer.add_rope_freq_base(a.rope_base)
    if a.gemma:
        writer.add_key_length(a.head_dim)
        writer.add_value_length(a.head_dim)
        writer.add_sliding_window(a.sliding_window)
    else:
        writer.add_rope_dimension_count(a.head_dim)
    n_vocab = weights["token_embd.weight"].shape[0]
    writer.add_vocab_size(n_vocab)
    copy_tokenizer(writer, source)

    for name, data in weights.items():
        if data.ndim == 2 and qtype != Q.F32:
            writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, data)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / ".cache" / "fixtures")
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--arch", nargs="+", choices=list(ARCHS), default=list(ARCHS))
    ap.add_argument("--format", nargs="+", choices=list(FORMATS), default=list(FORMATS))
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in args.arch:
        a = ARCHS[name]
        source = args.models_dir / a.source
        if not source.is_file():
            sys.exit(f"{source}: missing (tools/fetch_models.sh fetches it)")
        weights = make_weights(a, vocab_size(source))
        for fmt in args.format:
            if a.formats and fmt not in a.formats:
                continue
            path = write_fixture(a, fmt, weights, source, args.out)
            size = path.stat().st_size
            total += size
            print(f"{path}\t{size}")
    print(f"total\t{total}")


if __name__ == "__main__":
    main()
