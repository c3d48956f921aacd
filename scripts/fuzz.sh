#!/usr/bin/env bash
# Builds and runs each cargo-fuzz target for a short time (FUZZ_SECONDS, default 60).
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP lets the stable
# toolchain accept them, so no second toolchain is downloaded.
set -euo pipefail
cd "$(dirname "$0")/../protocol"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-60}"
for target in request_decode record_batch; do
  cargo fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536
done
