#!/usr/bin/env bash
# Fetches llama.cpp's tokenizer test vectors into .cache/vocab/ (git-ignored):
# models/ggml-vocab-*.gguf with their .gguf.inp / .gguf.out files, taken from
# the llama-cpp-python sdist on PyPI, which vendors llama.cpp. Also keeps
# llama.cpp's src/unicode-data.cpp under .cache/llama.cpp/ for
# tools/gen_unicode_tables.py. Idempotent: does nothing when already fetched.
#
# `pip download` of an sdist prepares its metadata, which for this package
# needs scikit-build-core and cmake; they go into a throwaway venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE="$ROOT/.cache"
DEST="$CACHE/vocab"
STAMP="$DEST/.fetched-llama-cpp-python-$VERSION"

if [[ -f "$STAMP" ]]; then
    echo "fetch_vocab: $DEST is up to date (llama-cpp-python $VERSION)"
    exit 0
fi

mkdir -p "$CACHE"
# keep everything fetched out of git without touching the repo's .gitignore
[[ -f "$CACHE/.gitignore" ]] || printf '*\n' > "$CACHE/.gitignore"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

python3 -m venv "$TMP/venv"
"$TMP/venv/bin/pip" install --quiet scikit-build-core cmake ninja
PATH="$TMP/venv/bin:$PATH" "$TMP/venv/bin/pip" download --quiet --no-deps --no-binary :all: \
    --no-build-isolation "llama-cpp-python==$VERSION" -d "$TMP/dl"

SDIST="$TMP/dl/llama_cpp_python-$VERSION.tar.gz"
PREFIX="llama_cpp_python-$VERSION/vendor/llama.cpp"
tar -xzf "$SDIST" -C "$TMP" --wildcards "$PREFIX/models/ggml-vocab-*" "$PREFIX/src/unicode-data.cpp"

rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp" "$CACHE/llama.cpp/src"
cp "$TMP/$PREFIX"/models/ggml-vocab-* "$DEST.tmp/"
cp "$TMP/$PREFIX/src/unicode-data.cpp" "$CACHE/llama.cpp/src/"
touch "$DEST.tmp/$(basename "$STAMP")"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
echo "fetch_vocab: $(ls "$DEST"/*.gguf | wc -l) vocabularies in $DEST"
