#!/usr/bin/env bash
# Fuzzes what Hearth reads from untrusted model files, with cargo-fuzz / libFuzzer: each target
# in turn for the same time, then a summary of executions and crashes per target.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]   # default 300 s each, targets gguf_header gguf_model
#
# Targets (fuzz/fuzz_targets/):
# - gguf_header: arbitrary bytes into the GGUF reader (prefix and complete parses, tensor
#   slicing and decoding, the tokenizer of a file that has one).
# - gguf_model: header bytes into the model checks: ModelConfig::from_gguf, validate_tensors,
#   and the tokenizer and chat template.
#
# - Installs cargo-fuzz if missing (`cargo install cargo-fuzz --locked`).
# - Needs no nightly toolchain: libFuzzer's instrumentation flags are unstable (-Z), so on
#   stable the script sets RUSTC_BOOTSTRAP=1. Set FUZZ_TOOLCHAIN=nightly to use a nightly instead.
# - Builds without a sanitizer by default (`-s none`): the fuzzed code is safe Rust with no
#   `unsafe`, so AddressSanitizer would find nothing the bounds checks don't, at a quarter of
#   the speed (19k against 79k execs/s on the 2-core dev machine). FUZZ_SANITIZER=address turns
#   it on (it works on stable too). Debug assertions and overflow checks are on
#   (fuzz/Cargo.toml), so an arithmetic overflow is a crash.
# - Writes the seed corpora first (fuzz/src/bin/seed_corpus.rs): the hand-made valid and corrupt
#   files and the real-shaped hostile models of src/gguf/corpus/, and the headers of the real
#   models in $HEARTH_MODELS_DIR (default models/), trimmed to a few KB each. libFuzzer adds what
#   it finds to fuzz/corpus/<target>/. A crash is saved under fuzz/artifacts/<target>/ and the
#   script exits non-zero; reproduce it from fuzz/ with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> -s none artifacts/<target>/<file>
# - FUZZ_JOBS=N runs N workers (default 1). CARGO_TARGET_DIR is honoured (default fuzz/target).
set -euo pipefail

secs="${1:-300}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf_header gguf_model)
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
target_dir="${CARGO_TARGET_DIR:-$fuzz/target}"
sanitizer="${FUZZ_SANITIZER:-none}"
jobs="${FUZZ_JOBS:-1}"
models="${HEARTH_MODELS_DIR:-$root/models}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

toolchain=()
if [[ -n "${FUZZ_TOOLCHAIN:-}" ]]; then
    toolchain=("+$FUZZ_TOOLCHAIN")
else
    export RUSTC_BOOTSTRAP=1
fi

echo "seed corpora -> $fuzz/corpus (real models from $models)" >&2
models_arg=()
[ -d "$models" ] && models_arg=("$models")
cargo run --quiet --release --manifest-path "$fuzz/Cargo.toml" --target-dir "$target_dir" \
    --no-default-features --bin seed_corpus -- "$fuzz/corpus" "${models_arg[@]}"

cd "$fuzz"
summary=()
status=0
for target in "${targets[@]}"; do
    corpus="$fuzz/corpus/$target"
    artifacts="$fuzz/artifacts/$target"
    mkdir -p "$artifacts"
    before=$(find "$artifacts" -type f | wc -l)
    log="$(mktemp)"
    set +e
    cargo "${toolchain[@]}" fuzz run "$target" --sanitizer "$sanitizer" --target-dir "$target_dir" \
        --jobs "$jobs" -- -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" = 0 ] || status=$rc
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
    elapsed=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}' | tail -n1)
    crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
    rm -f "$log"
    summary+=("$target: $runs executions${elapsed:+ in ${elapsed}s ($((runs / (elapsed > 0 ? elapsed : 1))) execs/s)}, $crashes new crash(es), corpus $(find "$corpus" -type f | wc -l) inputs (exit $rc)")
done

echo "---"
echo "sanitizer $sanitizer, $jobs job(s), ${secs}s requested per target"
printf '%s\n' "${summary[@]}"
exit "$status"
