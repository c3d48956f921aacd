# Skein: the two commands a fresh machine needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO_TARGET_DIR ?= $(CURDIR)/target
SKEIN_TOOLS_DIR ?= $(CURDIR)/.tools
export CARGO_TARGET_DIR SKEIN_TOOLS_DIR

.PHONY: run build test unit-tests integration-tests lint deps test-tools fuzz bench bench-scale bench-micro clean

## run: build (release) and start a single-node broker on 127.0.0.1:9092, data in ./skein-data
run: deps
	cargo build --release -p skein-broker --bin skein
	$(CARGO_TARGET_DIR)/release/skein --log.dirs=./skein-data $(ARGS)

# --all-targets, not --bins: the test build activates dev-dependencies, which
# changes the features of RocksDB's build-time dependencies (bindgen); a
# --bins build would then compile RocksDB's C++ a second time for the tests.
build: deps
	cargo build --workspace --all-targets

## test: install what the tests need, then lint, unit tests and real-client integration tests
test: deps test-tools build lint
	SKEIN_BIN=$(CARGO_TARGET_DIR)/debug/skein cargo test --workspace -- --test-threads=2

# Clippy runs in check mode, where Cargo re-runs librocksdb-sys's build script
# separately from the normal build and would compile RocksDB's C++ a second
# time (12 minutes). Check mode links nothing, so point the build script at the
# library the normal build already produced.
lint: build
	cargo fmt --all -- --check
	ROCKSDB_LIB_DIR="$$(dirname "$$(ls -t $(CARGO_TARGET_DIR)/debug/build/librocksdb-sys-*/out/librocksdb.a | head -n 1)")" \
	ROCKSDB_STATIC=1 cargo clippy --workspace --all-targets -- -D warnings

## deps: Debian packages for the build (libclang for RocksDB's bindings) and tests (kcat)
deps:
	bash scripts/install-system-deps.sh

## test-tools: Kafka's Java CLI tools (Maven Central), Python clients (PyPI), franz-go (Go proxy)
test-tools:
	bash scripts/install-test-tools.sh

## fuzz: run each cargo-fuzz target briefly (needs nightly; installs cargo-fuzz)
fuzz:
	bash scripts/fuzz.sh

## bench: Skein vs Apache Kafka 4.3.1 side by side on this machine (~20 min; BENCH_QUICK=1: ~2 min smoke run); report in benches/results/
bench: deps
	bash scripts/install-test-tools.sh --with-kafka-broker
	cargo build --release -p skein-broker --bin skein
	python3 benches/scripts/bench.py $(BENCH_ARGS)

## bench-scale: one Skein node with 10,000 partitions, 10,000 idle connections, 1,000 concurrent producers; report in benches/results/
bench-scale: deps
	bash scripts/install-test-tools.sh
	cargo build --release -p skein-broker --bin skein
	python3 benches/scripts/scale.py $(BENCH_ARGS)

## bench-micro: criterion micro-benchmarks
bench-micro:
	cargo bench -p skein-benches

clean:
	cargo clean
