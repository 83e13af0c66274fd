#!/usr/bin/env bash
# `./run bench gpu`: Hearth's GPU engine on native wgpu (examples/gpu_bench) on the three catalog
# models, next to llama.cpp (node-llama-cpp 3.21.1, tools/bench-gpu-llamacpp.mjs) on the same
# files, the same prompt ids and the same number of greedy decode steps.
#
# The wgpu adapter is whatever this machine has (Mesa's lavapipe, a CPU Vulkan, where there is no
# GPU). llama.cpp runs twice: its Vulkan build on the first Vulkan device (lavapipe here: the same
# adapter as Hearth) and its CPU build at the machine's core count (at most 8).
# Each model also prints (stderr) where a decoded token's GPU time goes, kernel by kernel (timestamp
# queries where the adapter has them, see `Gpu::profile_kernels`).
# Options (environment): HEARTH_MODELS_DIR (default models/), BENCH_REPS (default 2),
# BENCH_BACKEND (wgpu or cpu, default wgpu), BENCH_FAMILY (the kernel family: auto, subgroup,
# portable or rows; default auto), BENCH_LLAMA (llama.cpp's builds to run: "vulkan,cpu" by
# default, "none" for none), BENCH_OUT (JSON lines, default target/bench-gpu.jsonl).
set -euo pipefail
MODELS_DIR="${HEARTH_MODELS_DIR:-models}"
REPS="${BENCH_REPS:-2}"
OUT="${BENCH_OUT:-target/bench-gpu.jsonl}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/hearth-xdg}"
mkdir -p "$XDG_RUNTIME_DIR" "$(dirname "$OUT")"
: >"$OUT"

CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 nice -n 10 cargo build --release --example gpu_bench
BIN=target/release/examples/gpu_bench
LLAMA="${BENCH_LLAMA:-vulkan,cpu}"
for f in smollm2-135m-instruct-q4_1.gguf gemma-3-270m-q4_k_m.gguf qwen2.5-coder-0.5b-instruct.gguf; do
  echo "== hearth ${BENCH_BACKEND:-wgpu}: $f" >&2
  "$BIN" --model "$MODELS_DIR/$f" --backend "${BENCH_BACKEND:-wgpu}" --family "${BENCH_FAMILY:-auto}" --reps "$REPS" | tee -a "$OUT"
  n_vocab=$(tail -n 1 "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["n_vocab"])')
  for gpu in ${LLAMA//,/ }; do
    [ "$gpu" = none ] && continue
    echo "== llama.cpp $gpu: $f" >&2
    node tools/bench-gpu-llamacpp.mjs --model "$MODELS_DIR/$f" --n-vocab "$n_vocab" --gpu "$gpu" --reps "$REPS" | tee -a "$OUT"
  done
done

python3 - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
name = lambda r: r["file"].split("/")[-1]
llama = {(name(r), r["gpu"]): r for r in rows if r.get("engine") == "llama.cpp"}
gpus = sorted({g for _, g in llama}, reverse=True)
def gpu_ms(r):
    # Kernel time per decoded token, each kernel at its fastest dispatch (see the per-kernel tables above).
    k = r.get("kernel_times") or {}
    return f'{k["best_ms_per_token"]:.1f}' if "best_ms_per_token" in k else "-"
def agree(a, b):
    # Greedy ids in common from the start (the same prompt ids; a near tie can part them).
    n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"{n}/{min(len(a), len(b))}"
head = f'{"model":36} {"family":9} {"load ms":>7} {"prefill":>7} {"decode":>6} {"disp/tok":>8} {"disp/layer":>10} {"subm/tok":>8} {"MB/tok":>6} {"GPU ms/tok":>10}'
for g in gpus:
    head += f' | llama.cpp {g:6} {"prefill":>7} {"decode":>6} {"ratio p":>7} {"ratio d":>7} {"ids":>5}'
print(head)
for r in (r for r in rows if "dispatches_per_token" in r):
    line = (f'{name(r):36} {r["family"]:9} {r["load_ms"]:7.0f} {r["prefill_tok_s"]:7.1f} {r["decode_tok_s"]:6.2f} '
            f'{r["dispatches_per_token"]:8.0f} {r["dispatches_per_layer"]:10.2f} {r["submissions_per_token"]:8.2f} '
            f'{r["weight_bytes_per_token"] / 1e6:6.1f} {gpu_ms(r):>10}')
    for g in gpus:
        l = llama.get((name(r), g))
        if l is None:
            line += f' | {"":16} {"-":>7} {"-":>6} {"-":>7} {"-":>7} {"-":>5}'
            continue
        line += (f' | {"":16} {l["prefill_tok_s"]:7.1f} {l["decode_tok_s"]:6.2f} '
                 f'{r["prefill_tok_s"] / l["prefill_tok_s"]:7.2f} {r["decode_tok_s"] / l["decode_tok_s"]:7.2f} '
                 f'{agree(r["greedy_ids"], l["greedy_ids"]):>5}')
    print(line)
for (f, g), l in sorted(llama.items()):
    print(f'llama.cpp {g} on {f}: {l["device"]}, {l["threads"]} threads, load {l["load_ms"]:.0f} ms', file=sys.stderr)
print("prefill, decode: tok/s; ratio: Hearth / llama.cpp; ids: Hearth's greedy ids equal to llama.cpp's from the start", file=sys.stderr)
EOF
