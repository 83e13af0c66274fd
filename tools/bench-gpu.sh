#!/usr/bin/env bash
# `./run bench gpu`: Hearth's GPU engine on native wgpu (examples/gpu_bench) on the three catalog
# models, next to llama.cpp's llama-bench on the same files when one is at $LLAMA_BENCH.
#
# The wgpu adapter is whatever this machine has (Mesa's lavapipe, a CPU Vulkan, where there is no
# GPU). llama-bench: build the trimmed llama.cpp that tools/bench-gpu-pack.sh packs (CPU:
# `cmake -B build -DGGML_CUDA=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF
# -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF && cmake --build build
# --target llama-bench`) and point LLAMA_BENCH at build/bin/llama-bench.
# Each model also prints (stderr) where a decoded token's GPU time goes, kernel by kernel (timestamp
# queries where the adapter has them, see `Gpu::profile_kernels`).
# Options (environment): HEARTH_MODELS_DIR (default models/), BENCH_REPS (default 2),
# BENCH_BACKEND (wgpu or cpu, default wgpu), BENCH_FAMILY (the kernel family: auto, subgroup,
# portable or rows; default auto), BENCH_OUT (JSON lines, default target/bench-gpu.jsonl).
set -euo pipefail
MODELS_DIR="${HEARTH_MODELS_DIR:-models}"
REPS="${BENCH_REPS:-2}"
OUT="${BENCH_OUT:-target/bench-gpu.jsonl}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/hearth-xdg}"
mkdir -p "$XDG_RUNTIME_DIR" "$(dirname "$OUT")"
: >"$OUT"

CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 nice -n 10 cargo build --release --example gpu_bench
BIN=target/release/examples/gpu_bench
for f in smollm2-135m-instruct-q4_1.gguf gemma-3-270m-q4_k_m.gguf qwen2.5-coder-0.5b-instruct.gguf; do
  echo "== hearth ${BENCH_BACKEND:-wgpu}: $f" >&2
  "$BIN" --model "$MODELS_DIR/$f" --backend "${BENCH_BACKEND:-wgpu}" --family "${BENCH_FAMILY:-auto}" --reps "$REPS" | tee -a "$OUT"
  if [ -n "${LLAMA_BENCH:-}" ]; then
    echo "== llama-bench: $f" >&2
    "$LLAMA_BENCH" -m "$MODELS_DIR/$f" -p 100 -n 32 -r "$REPS" -o json |
      python3 -c 'import json,sys; [print(json.dumps(dict(r, llama_bench=True))) for r in json.load(sys.stdin)]' | tee -a "$OUT"
  fi
done
[ -n "${LLAMA_BENCH:-}" ] || echo "(no llama.cpp column: set LLAMA_BENCH to a llama-bench binary)" >&2

python3 - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
hearth = [r for r in rows if "decode_tok_s" in r]
llama = {}
def gpu_ms(r):
    # Kernel time per decoded token, each kernel at its fastest dispatch (see the per-kernel tables above).
    k = r.get("kernel_times") or {}
    return f'{k["best_ms_per_token"]:.1f}' if "best_ms_per_token" in k else "-"
for r in rows:
    if r.get("llama_bench"):
        kind = "prefill" if r["n_prompt"] > 0 else "decode"
        llama[(r["model_filename"].split("/")[-1], kind)] = r["avg_ts"]
print(f'{"model":36} {"family":13} {"load ms":>8} {"prefill t/s":>11} {"decode t/s":>10} {"disp/tok":>8} {"disp/layer":>10} {"subm/tok":>8} {"MB/tok":>7} {"GPU ms/tok":>10} | {"llama.cpp pp":>12} {"tg":>7} {"ratio tg":>8}')
for r in hearth:
    name = r["file"].split("/")[-1]
    lp, lt = llama.get((name, "prefill")), llama.get((name, "decode"))
    ratio = f'{r["decode_tok_s"] / lt:.2f}' if lt else "-"
    print(f'{name:36} {r["family"]:13} {r["load_ms"]:8.0f} {r["prefill_tok_s"]:11.1f} {r["decode_tok_s"]:10.2f} '
          f'{r["dispatches_per_token"]:8.0f} {r["dispatches_per_layer"]:10.2f} {r["submissions_per_token"]:8.2f} '
          f'{r["weight_bytes_per_token"] / 1e6:7.1f} {gpu_ms(r):>10} | '
          f'{lp if lp is None else round(lp, 1)!s:>12} {lt if lt is None else round(lt, 2)!s:>7} {ratio:>8}')
EOF
