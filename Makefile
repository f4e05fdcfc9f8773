# Everything installs itself: `make dev` and `make test` run `make setup` first.
.PHONY: setup build dev test lint unit e2e deploy-check bench bench-ab eval

setup:
	@scripts/setup.sh

build: setup
	@scripts/build.sh

dev: setup
	@scripts/dev.sh

lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --workspace --target wasm32-unknown-unknown -- -D warnings

unit: setup
	# --nocapture prints the injection detector's recall and false-positive figures.
	cargo test --workspace -- --nocapture

e2e: build
	node --test --test-concurrency=1 tests/e2e/

# Proves the bundle is deployable (offline) and prints its upload size.
deploy-check: build
	@scripts/deploy-check.sh

test: lint unit e2e deploy-check

bench: build
	@node bench/run.mjs

# This build against another's (OTHER=DIR, a checkout whose build/ holds it), in interleaved
# rounds of streams (BENCH_AB_MODE=json: JSON requests): for changes smaller than single
# runs' noise.
bench-ab: build
	@node bench/ab.mjs $(OTHER)

# Regression evals: eval/cases/sample.jsonl on a local gateway (built-in mock), or
# EVAL_URL / EVAL_API_KEY against a deployed one; EVAL_ARGS passes more options
# (--cases FILE, --model ALIAS, --threshold 0.95, --out FILE).
eval: build
	@node eval/run.mjs $(EVAL_ARGS)

