#!/usr/bin/env bash
# Builds the Worker (release wasm, wasm-opt, JS shim) with worker-build, pointing it at the
# toolchain binaries scripts/setup.sh installed so it never tries to download them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "${1:-$root}"
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export ESBUILD_BIN="$root/node_modules/@esbuild/linux-x64/bin/esbuild"
export WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt"
exec worker-build --release
