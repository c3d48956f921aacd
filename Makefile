# Skein: the two commands a fresh machine needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(CURDIR)/target
SKEIN_TOOLS_DIR ?= $(CURDIR)/.tools
export CARGO_TARGET_DIR SKEIN_TOOLS_DIR

.PHONY: run build test unit-tests integration-tests lint deps test-tools fuzz bench clean

## run: build (release) and start a single-node broker on 127.0.0.1:9092, data in ./skein-data
run: deps
	cargo build --release -p skein-broker --bin skein
	$(CARGO_TARGET_DIR)/release/skein --log.dirs=./skein-data $(ARGS)

build: deps
	cargo build --workspace --bins

## test: install what the tests need, then lint, unit tests and real-client integration tests
test: deps test-tools lint
	cargo build --workspace --bins
	SKEIN_BIN=$(CARGO_TARGET_DIR)/debug/skein cargo test --workspace --all-targets -- --test-threads=2

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## deps: Debian packages for the build (libclang for RocksDB's bindings) and tests (kcat)
deps:
	bash scripts/install-system-deps.sh

## test-tools: Kafka's Java CLI tools (Maven Central), Python clients (PyPI), franz-go (Go proxy)
test-tools:
	bash scripts/install-test-tools.sh

## fuzz: run each cargo-fuzz target briefly (needs nightly; installs cargo-fuzz)
fuzz:
	bash scripts/fuzz.sh

clean:
	cargo clean
