# kiln — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build test deps lint crds demo bench images fmt fuzz

all: build

build:
	$(CARGO) build --workspace --all-targets

## Install what the tests and the demo use: Debian packages, and helm and kubectl pinned by checksum
## (needs root; skipped when present).
deps:
	scripts/install-deps.sh

## The whole test suite: lint, formatting, unit, sandbox, builder and end-to-end tests.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --lib --bins --tests --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate the CRD YAML from the Rust types.
crds:
	$(CARGO) run --quiet -- crd > crds/kiln.yaml
	cp crds/kiln.yaml charts/kiln/crds/kiln.yaml

## The seed's example end to end.
demo: deps
	scripts/demo.sh

## Every benchmark row, printed as one table.
bench: deps
	scripts/bench.sh

## kiln's controller and builder images built from the Dockerfile (release kiln, local Debian
## bases): their sizes and cold and warm build times (also a part of `make bench`).
images: deps
	scripts/bench.sh images

## Hostile-input property runs with a fixed budget (seeded random inputs, not coverage-guided).
fuzz:
	scripts/fuzz.sh
