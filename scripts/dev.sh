#!/usr/bin/env bash
# Serves the built Worker locally in workerd (wrangler dev) and prints a curl to try.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
port="${PORT:-8787}"
cat <<EOT

  Gateway starting on http://127.0.0.1:$port (model "mock" needs no keys). Try:

  curl -N http://127.0.0.1:$port/v1/chat/completions \\
    -H 'content-type: application/json' \\
    -d '{"model":"mock","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello, edge!"}]}'

  or open http://127.0.0.1:$port/ in a browser for the demo chat page.

EOT
# wrangler dev runs the [build] command of wrangler.toml, then serves build/ in workerd.
# ANONYMOUS_MODELS=mock lets the curl above work without an API key, locally only.
exec npx wrangler dev --ip 127.0.0.1 --port "$port" --show-interactive-dev-session=false \
  --var ANONYMOUS_MODELS:mock
