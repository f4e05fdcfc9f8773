#!/usr/bin/env bash
# Builds a Worker crate (default: the gateway; or the directory given) with worker-build:
# release wasm, wasm-opt, JS shim into build/. Points worker-build at the toolchain
# binaries scripts/setup.sh installed so it never tries to download them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
crate="${1:-$root}"
cd "$crate"
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export ESBUILD_BIN="$root/node_modules/@esbuild/linux-x64/bin/esbuild"
export WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt"
worker-build --release

# A copy with the names section, for CPU profiles (`BENCH_ONLY=profile make bench`).
mkdir -p target/wasm-with-names
cp build/index_bg.wasm target/wasm-with-names/index_bg.wasm

# worker-build keeps the wasm names section (function names for stack traces, about a
# quarter of the file). Rewriting the module without it leaves the code untouched. The
# feature list is worker-build's own, so no newer encoding slips in.
"$WASM_OPT_BIN" build/index_bg.wasm -o build/index_bg.wasm \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling \
  2> >(grep -v "no passes specified" >&2)
