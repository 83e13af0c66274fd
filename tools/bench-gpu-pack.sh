#!/usr/bin/env bash
# Lays out what tools/device-bench.sh needs on a GPU machine with no network, in one folder to
# carry ($1, default .devbench/, which must be ignored by git: add `/.devbench/` to
# .git/info/exclude):
#   gpu_bench.xz, gl/*.deb, headers/<name>.bin.xz, llama.cpp.tar.gz, device-bench.sh, and llama.cpp's
#   prebuilt Vulkan build as node-llama-cpp ships it with the node that runs it (node.xz,
#   node-llama-cpp.tar.xz: the runtime of tools/bench-gpu-llamacpp.mjs)
# Run from the repository root on an x86-64 Linux machine with network, cargo, apt-get, pip and
# `./run setup`'s tools/llamacpp/. The models come from $HEARTH_MODELS_DIR (default models/).
# Everything together must stay under the device tool's 64 MiB; it prints its size.
set -euo pipefail
D="${1:-.devbench}"
MODELS_DIR="${HEARTH_MODELS_DIR:-models}"
LLAMA_CPP_PYTHON="${LLAMA_CPP_PYTHON:-0.3.36}"
mkdir -p "$D/gl" "$D/headers"

# The bench, in release (no LTO, 16 codegen units: a quicker build; the kernels are the same).
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 nice -n 10 cargo build --release --example gpu_bench
cp target/release/examples/gpu_bench "$D/"
strip "$D/gpu_bench" 2>/dev/null || true

# The header of each catalog model.
for pair in smollm2:smollm2-135m-instruct-q4_1.gguf gemma3:gemma-3-270m-q4_k_m.gguf \
  qwen2:qwen2.5-coder-0.5b-instruct.gguf; do
  "$D/gpu_bench" --extract-header "$MODELS_DIR/${pair#*:}" "$D/headers/${pair%%:*}.bin"
done

# The Vulkan loader (the driver brings its own ICD, not the loader).
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
mkdir -p /tmp/amd64/partial
# shellcheck disable=SC2086
apt-get $o update -qq
# shellcheck disable=SC2086
(cd "$D/gl" && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)

# llama.cpp, as vendored by the llama-cpp-python sdist, trimmed to llama-bench and the CPU,
# CUDA and Vulkan backends.
tmp=$(mktemp -d)
python3 -m pip download -q --no-deps --no-binary llama-cpp-python "llama-cpp-python==$LLAMA_CPP_PYTHON" -d "$tmp"
tar xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
src=$(echo "$tmp"/llama_cpp_python-*/vendor/llama.cpp)
lc="$tmp/lc"
mkdir -p "$lc/ggml/src" "$lc/tools"
cp -a "$src"/{CMakeLists.txt,LICENSE,cmake,include,src,common,vendor} "$lc/"
cp -a "$src/tools/llama-bench" "$lc/tools/"
cp -a "$src"/ggml/{CMakeLists.txt,cmake,include} "$lc/ggml/"
(cd "$src/ggml/src" && cp -a ./*.c ./*.cpp ./*.h ./*.in CMakeLists.txt ggml-cpu ggml-cuda ggml-vulkan ggml-rpc ggml-blas "$lc/ggml/src/")
cat >"$lc/tools/CMakeLists.txt" <<'EOF'
# Trimmed for the Hearth device bench: llama-bench only.
find_package(Threads REQUIRED)
llama_add_compile_flags()
add_subdirectory(llama-bench)
EOF
tar czf "$D/llama.cpp.tar.gz" -C "$lc" .
rm -rf "$tmp"

# node-llama-cpp with its Vulkan binaries only (its CPU variants but two, and the llama.cpp
# source bundle it builds from, left out), and this machine's node.
tar cf - -C tools/llamacpp --exclude='node_modules/@node-llama-cpp/linux-x64' \
  --exclude='node_modules/node-llama-cpp/llama/gitRelease.bundle' \
  --exclude='libggml-cpu-[!hx]*' node_modules package.json | xz -T0 -6 >"$D/node-llama-cpp.tar.xz"
xz -T0 -6 -c "$(command -v node)" >"$D/node.xz"

# The bench and the headers travel compressed (device-bench.sh unpacks them).
xz -T0 -6 -f "$D/gpu_bench" "$D"/headers/*.bin
cp tools/device-bench.sh "$D/"
du -sh "$D"
