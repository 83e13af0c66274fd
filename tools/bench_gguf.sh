#!/usr/bin/env bash
# Benchmarks hearth's GGUF reader (header parse, dequantize per block format) against gguf-py
# 0.19 on the real models, and prints a Markdown table with the ratio and the machine.
#
#   HEARTH_MODELS_DIR=models tools/bench_gguf.sh
#
# Needs the models (tools/fetch_models.sh) and, for the peer columns, `pip install gguf==0.19.0`
# (numpy comes with it). Knobs: HEARTH_BENCH_RUNS (7), HEARTH_BENCH_HEADER_RUNS (20),
# HEARTH_BENCH_MAX_MB (32), HEARTH_PYTHON (python3); see bench/gguf/src/main.rs. Builds in
# bench/gguf/target unless CARGO_TARGET_DIR says otherwise. Numbers on a loaded machine are
# noisy: look at the load average printed with them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export HEARTH_MODELS_DIR="${HEARTH_MODELS_DIR:-$root/models}"
target_dir="${CARGO_TARGET_DIR:-$root/bench/gguf/target}"
cargo build --quiet --release --manifest-path "$root/bench/gguf/Cargo.toml" --target-dir "$target_dir"
exec "$target_dir/release/hearth-bench-gguf"
