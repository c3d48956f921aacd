#!/usr/bin/env bash
# Rough side-by-side produce run: kafka-producer-perf-test against Skein
# (release build) and then Apache Kafka 4.3.1, one broker at a time, on this
# machine. Prints the perf tool's summary lines, peak RSS and disk bytes
# written. Needs: cargo build --release -p skein-broker, and
# scripts/install-test-tools.sh --with-kafka-broker. The full `make bench`
# comparison is the performance issue's work; this is its rough precursor.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
tools="${SKEIN_TOOLS_DIR:-$repo/.tools}"
target="${CARGO_TARGET_DIR:-$repo/target}"
perf="$tools/bin/kafka-producer-perf-test"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run() { # label bootstrap topic records size
  echo "== $1: $4 records of $5 B, acks=all"
  "$perf" --topic "$3" --num-records "$4" --record-size "$5" --throughput -1 \
    --command-property bootstrap.servers="$2" acks=all linger.ms=5 2>/dev/null | tail -n 1
}

"$target/release/skein" --log.dirs="$work/skein" --listeners=PLAINTEXT://127.0.0.1:39092 \
  --skein.http.listener= 2>"$work/skein.log" &
skein=$!
sleep 1
grep -o "startup_ms=[0-9]*" "$work/skein.log" || true
run skein 127.0.0.1:39092 s1k 500000 1024
run skein 127.0.0.1:39092 s100 2000000 100
echo "skein: $(grep write_bytes /proc/$skein/io | head -n 1), $(grep VmHWM /proc/$skein/status)"
kill -TERM "$skein"
wait "$skein" || true

SKEIN_TOOLS_DIR="$tools" bash "$repo/scripts/start-apache-kafka.sh" 39093 "$work/kafka" >"$work/kafka.log" 2>&1 &
kafka=$!
for _ in $(seq 1 60); do (echo >/dev/tcp/127.0.0.1/39093) 2>/dev/null && break; sleep 1; done
run kafka 127.0.0.1:39093 k1k 500000 1024
run kafka 127.0.0.1:39093 k100 2000000 100
java_pid=$(pgrep -f kafka.Kafka | head -n 1)
echo "kafka: $(grep write_bytes /proc/$java_pid/io | head -n 1), $(grep VmHWM /proc/$java_pid/status)"
kill -TERM "$kafka"
wait "$kafka" || true
