#!/usr/bin/env bash
# The real-GPU bench, in one run on a lent GPU machine (x86-64 Linux with an NVIDIA driver, its
# Vulkan ICD and CUDA's toolkit; no network). Run from the repository root with everything it
# needs in $DEVBENCH (default .devbench/), as `tools/bench-gpu-pack.sh` lays it out:
#   gpu_bench.xz         the native bench (examples/gpu_bench), built in release for x86-64
#   gl/*.deb             the Vulkan loader (libvulkan1) and GL dispatch packages
#   headers/<name>.bin.xz  the header prefix of each catalog model (gpu_bench --extract-header)
#   llama.cpp.tar.gz     llama.cpp sources trimmed to llama-bench
#   node.xz, node-llama-cpp.tar.xz   node and node-llama-cpp 3.21.1 with llama.cpp's prebuilt
#                        Vulkan build (for tools/bench-gpu-llamacpp.mjs)
# It synthesizes each model from its header (real shapes and formats, random valid blocks), runs
# Hearth's GPU engine on native wgpu (Vulkan) on each, then llama.cpp's prebuilt Vulkan build on
# the same files and the same run (tools/bench-gpu-llamacpp.mjs), then builds llama.cpp for CUDA
# in the background (during the untimed correctness runs) and runs llama-bench on the same files.
# Everything lands in $OUT:
#   info.txt        nvidia-smi, vulkaninfo, tool versions
#   hearth.jsonl    one JSON object per Hearth run (gpu_bench's output)
#   llama-vulkan.jsonl  llama.cpp Vulkan, one JSON object per model (bench-gpu-llamacpp.mjs)
#   llama.jsonl     llama-bench's JSON per model (CUDA)
#   llama-build.log the CUDA build
#   device.log      everything this script printed
# Every step is time-boxed, so a step that hangs still leaves the others' results.
# DEVBENCH_MODELS="smollm2 gemma3 qwen2" (the default) picks the models.
set -uo pipefail

D="${DEVBENCH:-.devbench}"
OUT="${OUT:-/tmp/device-bench-out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/device.log") 2>&1
T0=$(date +%s)
step() { echo "== [$(($(date +%s) - T0))s] $*"; }
MODELS="${DEVBENCH_MODELS:-smollm2 gemma3 qwen2}"

# xz by Python (whatever the machine has of xz-utils).
unxz() { python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; }
step "unpack"
for f in "$D/gpu_bench.xz" "$D"/headers/*.bin.xz; do [ -f "$f" ] && unxz "$f" "${f%.xz}"; done
chmod +x "$D/gpu_bench"

step "Vulkan loader"
for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1 \
  && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  echo "VK_DRIVER_FILES=$VK_DRIVER_FILES"
fi


step "machine"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
  nvidia-smi
  command -v vulkaninfo >/dev/null && timeout 20 vulkaninfo --summary
  echo "vulkaninfo: $(command -v vulkaninfo || echo absent)"
  echo "glslc: $(command -v glslc || echo absent) (llama.cpp's Vulkan backend needs it)"
  nvcc --version | tail -2
  cmake --version | head -1
  nproc; uname -r
} >"$OUT/info.txt" 2>&1
head -3 "$OUT/info.txt"

step "synthesize"
for m in $MODELS; do
  timeout 60 "$D/gpu_bench" --synthesize "$D/headers/$m.bin" "/tmp/$m.gguf" || echo "synthesize $m failed"
done

step "Hearth native wgpu"
hearth() { # name, seconds, flags...
  local m=$1 s=$2; shift 2
  echo "-- $m $*"
  timeout "$s" "$D/gpu_bench" --model "/tmp/$m.gguf" "$@" | tee -a "$OUT/hearth.jsonl"
  echo "exit: $?"
}
# One submission per token (the bench's default launch cap, TASKS_PER_SUBMISSION), each decode
# step replayed from a recorded graph (the engine's default on a GPU).
for m in $MODELS; do hearth "$m" 60 --reps 3; done
# The same launched op by op (cubecl's launch path for every dispatch).
for m in $MODELS; do hearth "$m" 45 --reps 3 --graphs off; done
# The software adapters' family on this GPU, for comparison.
hearth smollm2 30 --reps 3 --family rows
hearth smollm2 30 --reps 3 --family portable --check 32
# The f16 family (a prompt's weights in f16 tiles): does it pay on this GPU? Prefill against auto's.
for m in $MODELS; do hearth "$m" 45 --reps 3 --family f16 --check 8; done

step "llama.cpp Vulkan (node-llama-cpp's prebuilt build, same prompt ids and steps as gpu_bench)"
if [ -f "$D/node.xz" ] && unxz "$D/node.xz" /tmp/node && chmod +x /tmp/node && mkdir -p /tmp/nlc \
  && unxz "$D/node-llama-cpp.tar.xz" /tmp/nlc.tar && tar xf /tmp/nlc.tar -C /tmp/nlc; then
  for m in $MODELS; do
    n_vocab=$(python3 -c 'import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["file"] == sys.argv[2]: print(r["n_vocab"]); break' "$OUT/hearth.jsonl" "/tmp/$m.gguf")
    echo "-- $m (n_vocab ${n_vocab:-?})"
    NODE_LLAMA_CPP=/tmp/nlc/node_modules/node-llama-cpp timeout 60 /tmp/node tools/bench-gpu-llamacpp.mjs \
      --model "/tmp/$m.gguf" --n-vocab "${n_vocab:-32000}" --gpu vulkan --reps 3 | tee -a "$OUT/llama-vulkan.jsonl"
    echo "exit: $?"
  done
else
  echo "no node / node-llama-cpp in $D"
fi

step "llama.cpp CUDA build (background, after the timed runs: it would take their CPU)"
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
rm -rf /tmp/lc && mkdir -p /tmp/lc && tar xzf "$D/llama.cpp.tar.gz" -C /tmp/lc
(
  cd /tmp/lc || exit 1
  gen=""; command -v ninja >/dev/null && gen="-G Ninja"
  # FlashAttention kernels off: they are most of the build, and llama-bench runs without them
  # (-fa 0) here. Niced, one core left: the Hearth correctness runs go on meanwhile.
  timeout 120 cmake -B build $gen -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DGGML_CUDA_FA=OFF -DGGML_CUDA_FA_ALL_QUANTS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
    && timeout 300 nice -n 19 cmake --build build -j15 --target llama-bench
  echo "llama.cpp build exit: $?"
) >"$OUT/llama-build.log" 2>&1 &
BUILD=$!

# Correctness against the CPU engine, teacher-forced (a few steps: the CPU engine is slow on the
# large vocabularies).
for m in $MODELS; do hearth "$m" 45 --reps 1 --check 4; done

step "llama.cpp: waiting for the build"
wait "$BUILD"
tail -5 "$OUT/llama-build.log"
LB=/tmp/lc/build/bin/llama-bench
if [ -x "$LB" ]; then
  for m in $MODELS; do
    step "llama-bench $m"
    timeout 45 "$LB" -m "/tmp/$m.gguf" -p 100 -n 32 -ngl 99 -r 3 -fa 0 -o json | tee -a "$OUT/llama.jsonl"
    echo "exit: $?"
  done
else
  echo "llama-bench was not built"
fi
step "done"
sleep 1 # let tee flush device.log
