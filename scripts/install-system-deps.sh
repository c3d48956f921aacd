#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need (idempotent).
# libclang-dev: bindgen for librocksdb-sys. kcat: a librdkafka-based client used by the tests.
set -euo pipefail
need=()
for pkg in libclang-dev clang kcat; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
