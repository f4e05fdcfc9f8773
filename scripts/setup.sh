#!/usr/bin/env bash
# Installs everything the build, the tests and the benchmark need, from package registries
# only (crates.io, npm, Debian's packages). Idempotent: what is already installed at the pinned version is
# skipped, so `make dev` / `make test` can run it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
# Must equal the wasm-bindgen crate version pinned in Cargo.toml.
WASM_BINDGEN_VERSION=0.2.130

log() { printf '[setup] %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [[ "$(worker-build --version 2>/dev/null || true)" != *"$WORKER_BUILD_VERSION"* ]]; then
  log "installing worker-build $WORKER_BUILD_VERSION (a few minutes, once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != *"$WASM_BINDGEN_VERSION"* ]]; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes, once)"
  # Not --locked: its lockfile pins a webpki-roots release the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# npm ci is exact (package-lock.json) and fast when nothing changed; skip it entirely when
# node_modules already matches the lockfile.
stamp=node_modules/.package-lock.json
if [[ ! -f "$stamp" || package-lock.json -nt "$stamp" ]]; then
  log "installing npm packages (wrangler, workerd, esbuild, binaryen)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The browser test drives Debian's Chromium through playwright-core (from npm).
if ! command -v chromium >/dev/null 2>&1; then
  log "installing Debian's chromium (for the browser test)"
  sudo_if_needed=()
  [[ "$(id -u)" == 0 ]] || sudo_if_needed=(sudo)
  "${sudo_if_needed[@]}" apt-get update -qq
  "${sudo_if_needed[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
