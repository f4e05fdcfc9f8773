#!/usr/bin/env bash
# Bundles the Worker exactly as `wrangler deploy` would, without uploading, and prints the
# upload size wrangler reports. Fails if the bundle cannot be produced.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
log="$out/deploy.log"
if ! npx wrangler deploy --dry-run --outdir "$out/bundle" >"$log" 2>&1; then
  cat "$log"
  exit 1
fi
grep -E "Total Upload|--dry-run" "$log" || true
echo "[deploy-check] bundle: $(ls "$out/bundle" | tr '\n' ' ')"
