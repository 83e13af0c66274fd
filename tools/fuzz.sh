#!/usr/bin/env bash
# Fuzzes the GGUF reader (fuzz/fuzz_targets/gguf_header.rs) with cargo-fuzz / libFuzzer.
#
#   tools/fuzz.sh [SECONDS]        # default 300
#
# - Installs cargo-fuzz if missing (`cargo install cargo-fuzz --locked`).
# - Needs no nightly toolchain: libFuzzer's instrumentation flags are unstable (-Z), so on
#   stable the script sets RUSTC_BOOTSTRAP=1. Set FUZZ_TOOLCHAIN=nightly to use a nightly instead.
# - Builds without a sanitizer by default (`-s none`): the fuzzed code is safe Rust with no
#   `unsafe`, so AddressSanitizer would find nothing the bounds checks don't, at a quarter of
#   the speed (19k against 79k execs/s on the 2-core dev machine). FUZZ_SANITIZER=address turns
#   it on (it works on stable too). Debug assertions and overflow checks are on
#   (fuzz/Cargo.toml), so an arithmetic overflow is a crash.
# - Writes the seed corpus (valid and corrupt hand-made files from src/gguf/corpus.rs) into
#   fuzz/corpus/gguf_header/ first; libFuzzer adds what it finds there. A crash is saved under
#   fuzz/artifacts/gguf_header/ and the script exits non-zero; reproduce it from fuzz/ with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run gguf_header -s none artifacts/gguf_header/<file>
# - FUZZ_JOBS=N runs N workers (default 1). CARGO_TARGET_DIR is honoured (default fuzz/target).
set -euo pipefail

secs="${1:-300}"
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
target_dir="${CARGO_TARGET_DIR:-$fuzz/target}"
sanitizer="${FUZZ_SANITIZER:-none}"
jobs="${FUZZ_JOBS:-1}"
corpus="$fuzz/corpus/gguf_header"

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

echo "seed corpus -> $corpus" >&2
cargo run --quiet --release --manifest-path "$fuzz/Cargo.toml" --target-dir "$target_dir" \
    --no-default-features --bin seed_corpus -- "$corpus"

cd "$fuzz"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo "${toolchain[@]}" fuzz run gguf_header --sanitizer "$sanitizer" --target-dir "$target_dir" \
    --jobs "$jobs" -- -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
elapsed=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}' | tail -n1)
echo "---"
echo "target gguf_header, sanitizer $sanitizer, $jobs job(s), ${secs}s requested"
echo "executions: $runs${elapsed:+ in ${elapsed}s ($((runs / (elapsed > 0 ? elapsed : 1))) execs/s)}"
echo "corpus: $(find "$corpus" -type f | wc -l) inputs; crashes: $(find "$fuzz/artifacts/gguf_header" -type f 2>/dev/null | wc -l)"
exit "$status"
