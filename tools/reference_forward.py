#!/usr/bin/env python3
"""A plain-numpy forward pass of llama, qwen2 and gemma3 GGUF models, as llama.cpp computes it.

This is the independent reference Hearth's burn implementation is checked against. It reads the
GGUF with gguf-py (`gguf.GGUFReader`), decodes weights with `gguf.quants.dequantize`, and runs the
whole prompt at once. Arithmetic is float64 throughout (weights are decoded to f32, then widened),
so the result is the exact math of the quantized weights, free of accumulation-order noise.
llama.cpp itself computes in f32 and, for quantized weights on CPU, rounds activations to 8 bits
before each matmul, so it differs from this by about 1e-6 relative on F32 models and about 1e-2 on
quantized ones (see tools/reference_forward_test.py).

What is followed, and where llama.cpp says so (ggml-org/llama.cpp):
  * RMSNorm: x / sqrt(mean(x^2) + eps) * w; eps from `{arch}.attention.layer_norm_rms_epsilon`
    (ggml_rms_norm, then ggml_mul in llm_graph_context::build_norm).
  * RoPE: llama uses NORM mode (rotates adjacent pairs 2i, 2i+1; the converter permuted Q/K rows
    so this is right on GGUF weights); qwen2 and gemma3 use NEOX mode (rotates i with i + n_rot/2)
    (llama_model_rope_type in src/llama-model.cpp). theta_i = pos * base^(-2i/n_rot) * freq_scale
    / freq_factor_i; `rope_freqs.weight` supplies freq factors (Llama 3.1+), `rope.scaling.type`
    linear gives freq_scale = 1/factor. YaRN/LongRoPE are rejected, not approximated.
  * Attention: causal, softmax(q.k * scale) v, scale 1/sqrt(head_dim); GQA maps query head h to KV
    head h // (n_head / n_head_kv) (ggml_mul_mat broadcasting). head_dim is
    `{arch}.attention.key_length` when present, else n_embd / n_head.
  * llama, qwen2 (src/models/llama.cpp, src/models/qwen2.cpp): pre-norm blocks, SiLU-gated FFN
    down(silu(gate x) * up x); qwen2 adds `attn_{q,k,v}.bias`; `output.weight` falls back to
    `token_embd.weight` when absent (TENSOR_DUPLICATED in load_arch_tensors).
  * gemma3 (src/models/gemma3.cpp, hparams in src/llama-model.cpp case LLM_ARCH_GEMMA3):
      - input embeddings scaled by sqrt(n_embd);
      - per-head RMSNorm of Q and K (`attn_q_norm`, `attn_k_norm`) before RoPE;
      - Q scaled by f_attention_scale = 1/sqrt(head_dim) (1/sqrt(n_embd/n_head) for the 62-layer
        27B only), attention then unscaled;
      - `post_attention_norm` on the attention output and `post_ffw_norm` on the FFN output,
        each before its residual add; FFN is down(gelu_tanh(gate x) * up x) (LLM_FFN_GELU, PAR);
      - sliding window: with `{arch}.attention.sliding_window` = n_swa > 0, layer il is local when
        il % 6 < 5 (set_swa_pattern(6) in src/llama-hparams.cpp), a local query at p sees keys
        at p' with p - p' < n_swa (is_masked_swa, LLAMA_SWA_TYPE_STANDARD); local layers use
        RoPE base 10000 and scale 1 (rope_freq_base_train_swa), global layers
        `rope.freq_base` and the rope scaling;
      - norm weights are used as stored: the converter already wrote 1 + w
        (convert_hf_to_gguf.py, Gemma3Model.norm_shift = 1.0);
      - final logit softcapping only when `{arch}.final_logit_softcapping` is present and > 0
        (llama.cpp applies it on the non-SWA graph only; gemma 3 GGUFs do not carry the key).
      - tied output (`token_embd.weight`) unless `output.weight` exists.

llama.cpp's CPU backend computes GELU through an f16 lookup table; this computes it exactly.

`Model(path, emulate_llamacpp=True)` (`--emulate-llamacpp`) instead rounds each matmul input the way
llama.cpp's CPU backend does before multiplying by a weight of that type (the weight type's
`vec_dot_type` in ggml-cpu): to Q8_0 blocks of 32 with an f16 scale for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0
weights (Q8_1 holds the same values, plus an f16 block sum that Q4_1/Q5_1 dot products use for
the weight's min, also emulated), to Q8_K blocks of 256 with an f32 scale for K-quants, to f16
for F16 weights; and computes GELU through ggml-cpu's f16 table. It exists to show that the remaining difference on quantized models is that
rounding and nothing else; goldens never use it.

Usage:
  tools/reference_forward.py MODEL.gguf --ids 1,2,3 [--out PREFIX]
      prints the top-5 next tokens at the last position; with --out writes PREFIX.logits.f32
      (positions x n_vocab, little-endian f32, row-major) and PREFIX.json (shape, ids, arch)
  tools/reference_forward.py --golden-dir DIR [--fixtures-dir DIR]
      for every fixture from tools/make_fixtures.py and every prompt in PROMPTS writes
      DIR/<fixture>.<prompt>.logits.f32 plus DIR/manifest.tsv and DIR/manifest.json

Needs gguf-py and numpy (`pip install gguf==0.19.0 numpy`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

try:
    import gguf
    from gguf import GGMLQuantizationType as Q
except ImportError:
    sys.exit("reference_forward.py needs gguf-py: pip install gguf==0.19.0 numpy")

ROOT = Path(__file__).resolve().parent.parent
ROPE_NEOX = {"qwen2", "gemma3"}
ARCHS = {"llama", "qwen2", "gemma3"}

# Prompts for --golden-dir, per tokenizer family (the fixture's arch). Text prompts were
# tokenized by llama.cpp (node-llama-cpp 3.21.1, special tokens parsed, BOS added only where the
# GGUF's tokenizer.ggml.add_bos_token says so: gemma3). "random" is 12 ids from a fixed seed, longer
# than the gemma3 fixture's sliding window of 4 so local layers really slide.
TEXTS = {
    "hello": "Hello, world!",
    "fox": "The quick brown fox jumps over the lazy dog.",
}
PROMPTS = {
    "llama": {
        "hello": [19556, 28, 905, 17],
        "fox": [504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30],
    },
    "qwen2": {
        "hello": [9707, 11, 1879, 0],
        "fox": [785, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 13],
    },
    "gemma3": {
        "hello": [2, 9259, 236764, 1902, 236888],
        "fox": [2, 818, 3823, 8864, 37423, 38167, 1024, 506, 31770, 4799, 236761],
    },
}
BOS = {"llama": None, "qwen2": None, "gemma3": 2}


Q8_0_ACT = {Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0}
Q8_K_ACT = {Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K}


def round_activations(x: np.ndarray, wtype: Q) -> np.ndarray:
    """Round matmul inputs as ggml-cpu does for weights of type `wtype` (see module docs)."""
    if wtype in Q8_0_ACT:  # quantize_row_q8_0_ref: d = amax/127, q = roundf(x/d), d stored f16
        b = x.reshape(-1, 32)
        d = np.abs(b).max(axis=-1, keepdims=True) / 127.0
        inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
        q = np.sign(b * inv) * np.floor(np.abs(b * inv) + 0.5)
        return (q * d.astype(np.float16).astype(np.float64)).reshape(x.shape)
    if wtype in Q8_K_ACT:  # quantize_row_q8_K_ref: scale from the signed max-magnitude value
        b = x.reshape(-1, 256).astype(np.float32)
        mx = np.take_along_axis(b, np.abs(b).argmax(axis=-1)[:, None], axis=-1)
        iscale = np.divide(np.float32(-127.0), mx, out=np.zeros_like(mx), where=mx != 0)
        q = np.minimum(127, np.rint(iscale * b))
        d = np.divide(np.float32(1.0), iscale, out=np.zeros_like(iscale), where=iscale != 0)
        return (q * d).astype(np.float64).reshape(x.shape)
    if wtype == Q.F16:
        return x.astype(np.float16).astype(np.float64)
    if wtype == Q.F32:
        return x
    raise ValueError(f"no activation rounding known for {wtype.name}")


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def gelu_f16_table(x: np.ndarray) -> np.ndarray:
    """ggml-cpu's GELU (GGML_GELU_FP16): a table of f16(gelu(h)) indexed by f16(x), for
    -10 < x < 10; 0 below, x above."""
    h = x.astype(np.float16).astype(np.float32)
    y = gelu_tanh(h).astype(np.float16).astype(np.float64)
    return np.where(x <= -10.0, 0.0, np.where(x >= 10.0, x, y))


def random_prompt(arch: str, n_vocab: int) -> list[int]:
    rng = np.random.default_rng([7, sum(map(ord, arch))])
    ids = [int(i) for i in rng.integers(0, n_vocab, size=12)]
    if BOS[arch] is not None:
        ids = [BOS[arch]] + ids[1:]
    return ids


class Model:
    """Hyperparameters and lazily decoded weights of one GGUF model."""

    def __init__(self, path: Path, emulate_llamacpp: bool = False):
        self.path = Path(path)
        self.emulate = emulate_llamacpp
        self.reader = gguf.GGUFReader(self.path)
        self.tensors = {t.name: t for t in self.reader.tensors}
        self.arch = self.str("general.architecture")
        if self.arch not in ARCHS:
            raise ValueError(f"{path}: architecture {self.arch!r} is not one of {sorted(ARCHS)}")
        a = self.arch
        self.n_embd = self.int(f"{a}.embedding_length")
        self.n_layer = self.int(f"{a}.block_count")
        self.n_head = self.int(f"{a}.attention.head_count")
        self.n_head_kv = self.int(f"{a}.attention.head_count_kv", self.n_head)
        self.head_dim = self.int(f"{a}.attention.key_length", self.n_embd // self.n_head)
        head_dim_v = self.int(f"{a}.attention.value_length", self.head_dim)
        if head_dim_v != self.head_dim:
            raise ValueError(f"{path}: key_length {self.head_dim} != value_length {head_dim_v}")
        self.n_rot = self.int(f"{a}.rope.dimension_count", self.head_dim)
        self.eps = self.float(f"{a}.attention.layer_norm_rms_epsilon")
        self.rope_base = self.float(f"{a}.rope.freq_base", 10000.0)
        self.rope_scale = 1.0
        scaling = self.str(f"{a}.rope.scaling.type", "none")
        if scaling == "linear":
            self.rope_scale = 1.0 / self.float(f"{a}.rope.scaling.factor")
        elif scaling != "none":
            raise ValueError(f"{path}: rope scaling {scaling!r} is not implemented here")
        self.neox = a in ROPE_NEOX
        self.n_swa = self.int(f"{a}.attention.sliding_window", 0) if a == "gemma3" else 0
        self.softcap = self.float(f"{a}.final_logit_softcapping", 0.0) if a == "gemma3" else 0.0
        if a == "gemma3":
            self.q_scale = (1.0 / np.sqrt(self.n_embd / self.n_head) if self.n_layer == 62
                            else 1.0 / np.sqrt(self.head_dim))
        self.n_vocab = self.tensors["token_embd.weight"].data.shape[0]
        self._output = None

    # metadata getters: the error names the missing key
    def _field(self, key, default):
        f = self.reader.fields.get(key)
        if f is None:
            if default is None:
                raise KeyError(f"{self.path}: missing metadata key {key}")
            return None
        return f

    def int(self, key, default=None):
        f = self._field(key, default)
        return default if f is None else int(f.contents())

    def float(self, key, default=None):
        f = self._field(key, default)
        return default if f is None else float(f.contents())

    def str(self, key, default=None):
        f = self._field(key, default)
        return default if f is None else str(f.contents())

    def has(self, name: str) -> bool:
        return name in self.tensors

    def weight(self, name: str, rows=None) -> np.ndarray:
        """Decode a tensor to float64 in numpy order: a matrix is (out_features, in_features)."""
        t = self.tensors.get(name)
        if t is None:
            raise KeyError(f"{self.path}: missing tensor {name}")
        data = t.data if rows is None else t.data[rows]
        if t.tensor_type in (Q.F32, Q.F16):
            out = np.asarray(data, dtype=np.float64)
        else:
            out = gguf.quants.dequantize(np.asarray(data), t.tensor_type).astype(np.float64)
        return out

    def output_name(self) -> str:
        return "output.weight" if self.has("output.weight") else "token_embd.weight"

    def output(self) -> np.ndarray:
        if self._output is None:
            self._output = self.weight(self.output_name())
        return self._output

    # --- building blocks -------------------------------------------------------------------

    def rms_norm(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x: np.ndarray, pos: np.ndarray, base: float, scale: float) -> np.ndarray:
        """x: (T, heads, head_dim); rotates the first n_rot dims of each head."""
        half = self.n_rot // 2
        inv = base ** (-2.0 * np.arange(half) / self.n_rot) * scale
        if self.has("rope_freqs.weight"):
            inv = inv / self.weight("rope_freqs.weight")[:half]
        theta = pos[:, None].astype(np.float64) * inv[None, :]  # (T, half)
        cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        out = x.copy()
        if self.neox:
            a, b = x[..., :half], x[..., half:2 * half]
            out[..., :half] = a * cos - b * sin
            out[..., half:2 * half] = a * sin + b * cos
        else:
            a, b = x[..., 0:2 * half:2], x[..., 1:2 * half:2]
            out[..., 0:2 * half:2] = a * cos - b * sin
            out[..., 1:2 * half:2] = a * sin + b * cos
        return out

    def matmul(self, x: np.ndarray, name: str, w: np.ndarray | None = None) -> np.ndarray:
        """x @ W^T for the tensor `name` (decoded unless `w` is given)."""
        if not self.emulate:
            return x @ (self.weight(name) if w is None else w).T
        t = self.tensors[name]
        y = round_activations(x, t.tensor_type) @ (self.weight(name) if w is None else w).T
        if t.tensor_type in (Q.Q4_1, Q.Q5_1):
            # Q8_1 activations carry s = f16(d * sum(q)) per block, and the dot product uses it
            # for the weight block's min: sum(w.x) = sum(d_w q_w . d_x q_x) + m_w * s. Add the
            # difference between that s and the exact f16(d) * sum(q).
            blocks = x.reshape(x.shape[0], -1, 32)
            d = np.abs(blocks).max(axis=-1) / 127.0
            inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
            v = blocks * inv[..., None]
            qsum = (np.sign(v) * np.floor(np.abs(v) + 0.5)).sum(axis=-1)
            s_cpp = (d.astype(np.float32) * qsum).astype(np.float16).astype(np.float64)
            s_exact = d.astype(np.float16).astype(np.float64) * qsum
            raw = np.asarray(t.data)
            nb = s_cpp.shape[1]
            mins = raw.reshape(raw.shape[0], nb, -1)[:, :, 2:4].copy().view(np.float16)[..., 0]
            y = y + (s_cpp - s_exact) @ mins.astype(np.float64).T
        return y

    def linear(self, x: np.ndarray, name: str) -> np.ndarray:
        y = self.matmul(x, name + ".weight")
        if self.has(name + ".bias"):
            y = y + self.weight(name + ".bias")
        return y

    def is_swa(self, il: int) -> bool:
        return self.n_swa > 0 and il % 6 < 5

    def attention(self, x: np.ndarray, il: int, pos: np.ndarray) -> np.ndarray:
        p = f"blk.{il}."
        T, hd = x.shape[0], self.head_dim
        q = self.linear(x, p + "attn_q").reshape(T, self.n_head, hd)
        k = self.linear(x, p + "attn_k").reshape(T, self.n_head_kv, hd)
        v = self.linear(x, p + "attn_v").reshape(T, self.n_head_kv, hd)
        base, scale = self.rope_base, self.rope_scale
        if self.arch == "gemma3":
            q = self.rms_norm(q, self.weight(p + "attn_q_norm.weight"))
            k = self.rms_norm(k, self.weight(p + "attn_k_norm.weight"))
            if self.is_swa(il):
                base, scale = 10000.0, 1.0
        q = self.rope(q, pos, base, scale)
        k = self.rope(k, pos, base, scale)
        if self.arch == "gemma3":
            q, kq_scale = q * self.q_scale, 1.0
        else:
            kq_scale = 1.0 / np.sqrt(hd)

        i, j = pos[:, None], pos[None, :]
        allowed = j <= i
        if self.is_swa(il):
            allowed &= (i - j) < self.n_swa
        group = self.n_head // self.n_head_kv
        out = np.empty((T, self.n_head, hd))
        for h in range(self.n_head):
            kh, vh = k[:, h // group, :], v[:, h // group, :]
            s = (q[:, h, :] @ kh.T) * kq_scale
            s = np.where(allowed, s, -np.inf)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            out[:, h, :] = s @ vh
        return self.linear(out.reshape(T, self.n_head * hd), p + "attn_output")

    def ffn(self, x: np.ndarray, il: int) -> np.ndarray:
        p = f"blk.{il}."
        g = self.linear(x, p + "ffn_gate")
        if self.arch == "gemma3":
            g = gelu_f16_table(g) if self.emulate else gelu_tanh(g)
        else:
            g = g / (1.0 + np.exp(-g))
        return self.linear(g * self.linear(x, p + "ffn_up"), p + "ffn_down")

    def forward(self, ids: list[int]) -> np.ndarray:
        """Logits (float64, positions x n_vocab) for a prompt evaluated from position 0."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.min() < 0 or ids.max() >= self.n_vocab:
            raise ValueError(f"token id out of range 0..{self.n_vocab}")
        pos = np.arange(len(ids))
        x = self.weight("token_embd.weight", rows=ids)
        if self.arch == "gemma3":
            x = x * np.sqrt(self.n_embd)
        for il in range(self.n_layer):
            p = f"blk.{il}."
            h = self.attention(self.rms_norm(x, self.weight(p + "attn_norm.weight")), il, pos)
            if self.arch == "gemma3":
                h = self.rms_norm(h, self.weight(p + "post_attention_norm.weight"))
            x = x + h
            h = self.ffn(self.rms_norm(x, self.weight(p + "ffn_norm.weight")), il)
            if self.arch == "gemma3":
                h = self.rms_norm(h, self.weight(p + "post_ffw_norm.weight"))
            x = x + h
        x = self.rms_norm(x, self.weight("output_norm.weight"))
        logits = self.matmul(x, self.output_name(), self.output())
        if self.has("output.bias"):
            logits = logits + self.weight("output.bias")
        if self.softcap > 0:
            logits = np.tanh(logits / self.softcap) * self.softcap
        return logits

    def greedy(self, ids: list[int], n: int) -> list[int]:
        """n greedy next tokens (recomputes the whole prompt each step; for small models)."""
        ids, out = list(ids), []
        for _ in range(n):
            nxt = int(np.argmax(self.forward(ids)[-1]))
            out.append(nxt)
            ids.append(nxt)
        return out


def write_logits(prefix: Path, model: Model, ids: list[int], logits: np.ndarray) -> None:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    logits.astype("<f4").tofile(str(prefix) + ".logits.f32")
    meta = {"model": model.path.name, "arch": model.arch, "ids": ids,
            "shape": [len(ids), model.n_vocab], "dtype": "f32le", "precision": "float64"}
    Path(str(prefix) + ".json").write_text(json.dumps(meta, indent=1) + "\n")


def golden(out: Path, fixtures: Path) -> None:
    paths = sorted(fixtures.glob("*.gguf"))
    if not paths:
        sys.exit(f"{fixtures}: no *.gguf (run tools/make_fixtures.py first)")
    out.mkdir(parents=True, exist_ok=True)
    rows, entries = [], []
    for path in paths:
        model = Model(path)
        prompts = dict(PROMPTS[model.arch])
        prompts["random"] = random_prompt(model.arch, model.n_vocab)
        for name, ids in prompts.items():
            logits = model.forward(ids)
            file = f"{path.stem}.{name}.logits.f32"
            logits.astype("<f4").tofile(out / file)
            argmax = [int(i) for i in logits.argmax(axis=-1)]
            entries.append({"fixture": path.name, "arch": model.arch, "prompt": name,
                            "text": TEXTS.get(name), "ids": ids, "n_tokens": len(ids),
                            "n_vocab": model.n_vocab, "file": file, "argmax": argmax})
            rows.append("\t".join([path.name, model.arch, name, str(len(ids)), str(model.n_vocab),
                                   ",".join(map(str, ids)), ",".join(map(str, argmax)), file]))
            print(f"{file}\t{len(ids)}x{model.n_vocab}\tlast argmax {argmax[-1]}")
    header = "fixture\tarch\tprompt\tn_tokens\tn_vocab\tids\targmax\tfile"
    (out / "manifest.tsv").write_text(header + "\n" + "\n".join(rows) + "\n")
    (out / "manifest.json").write_text(json.dumps(
        {"format": "logits.f32: n_tokens x n_vocab little-endian f32, row-major, one row per "
                   "position, from tools/reference_forward.py (float64 math)",
         "entries": entries}, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", type=Path)
    ap.add_argument("--ids", help="comma-separated token ids")
    ap.add_argument("--out", type=Path, help="write OUT.logits.f32 and OUT.json")
    ap.add_argument("--golden-dir", type=Path)
    ap.add_argument("--emulate-llamacpp", action="store_true",
                    help="round matmul inputs as llama.cpp's CPU backend does (not for goldens)")
    ap.add_argument("--fixtures-dir", type=Path, default=ROOT / ".cache" / "fixtures")
    args = ap.parse_args()

    if args.golden_dir:
        golden(args.golden_dir, args.fixtures_dir)
        return
    if args.model is None or not args.ids:
        ap.error("give MODEL and --ids, or --golden-dir")
    ids = [int(s) for s in args.ids.split(",")]
    model = Model(args.model, emulate_llamacpp=args.emulate_llamacpp)
    logits = model.forward(ids)
    last = logits[-1]
    for t in np.argsort(-last)[:5]:
        print(f"{t}\t{last[t]:.6f}")
    if args.out:
        write_logits(args.out, model, ids, logits)


if __name__ == "__main__":
    main()
